// Package browsertest drives Debian's headless Chromium for page tests, through chromedp.
//
//	tab := browsertest.New(t, browsertest.Phone)
//	err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible("h1"))
//	browsertest.Screenshot(t, tab, "home")
//
// Chromium comes from DERMFOLLOW_TEST_CHROMIUM or /usr/bin/chromium (`make test` installs
// it). Where it is missing, tests skip, unless DERMFOLLOW_REQUIRE_SERVICES or CI is set.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Device is the screen a test emulates.
type Device struct {
	Width, Height int64
	Scale         float64
	Mobile        bool
	// FakeCamera starts Chromium with its fake camera (a moving test pattern) and grants
	// camera access without asking, for pages that use getUserMedia.
	FakeCamera bool
}

// Phone is a small phone (360 px wide, the narrowest the pages must work on); Desktop a laptop.
var (
	Phone   = Device{Width: 360, Height: 740, Scale: 2, Mobile: true}
	Desktop = Device{Width: 1366, Height: 900, Scale: 1}
)

// New starts a browser for the test and returns its tab, emulating d. Everything is closed
// when the test ends. The tab's context carries a two-minute deadline.
func New(tb testing.TB, d Device) context.Context {
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
		chromedp.NoSandbox, // root in CI; the pages under test are our own
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
	if d.FakeCamera {
		opts = append(opts,
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-fake-ui-for-media-stream", true),
		)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	tab, cancelTimeout := context.WithTimeout(tab, 2*time.Minute)
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

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Screenshot writes a full-page PNG of the tab to .testout/screenshots/TEST-NAME.png at the
// module root, and returns its path.
func Screenshot(tb testing.TB, tab context.Context, name string) string {
	tb.Helper()
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100 makes a PNG
	if err != nil {
		tb.Errorf("browsertest: screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join(moduleRoot(), ".testout", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(tb.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
