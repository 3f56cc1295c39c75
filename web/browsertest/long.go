package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// NewLong is New for a test whose page works for longer than New's two minutes (an upload
// over a slow link): the tab's deadline is timeout. It starts Chromium as New does.
func NewLong(tb testing.TB, d Device, timeout time.Duration) context.Context {
	tb.Helper()
	path := os.Getenv("DERMFOLLOW_TEST_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("DERMFOLLOW_REQUIRE_SERVICES") != "" || os.Getenv("CI") != "" {
			tb.Fatalf("browsertest: Chromium not found at %s; `make test` installs Debian's chromium", path)
		}
		tb.Skipf("browsertest: Chromium not found at %s", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(int(d.Width), int(d.Height)),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	tab, cancelTimeout := context.WithTimeout(tab, timeout)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	vp := []chromedp.EmulateViewportOption{chromedp.EmulateScale(d.Scale)}
	if d.Mobile {
		vp = append(vp, chromedp.EmulateMobile)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(d.Width, d.Height, vp...)); err != nil {
		tb.Fatalf("browsertest: start Chromium: %v", err)
	}
	return tab
}
