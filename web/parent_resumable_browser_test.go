package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// The family's page on a phone's poor network: Chromium on a phone viewport, the page talking
// to the server (real PostgreSQL and MinIO) through a proxy that stands for the phone's link
// (browsertest.NetProxy: upstream bandwidth, drops, stalls). Each test asserts that the photo is
// stored once, sanitized (exiftool finds no metadata, no GPS), and that nothing is left in
// staging once the page shows it sent.
//
// The photos and rates are scaled down by four, both, so the times are the issue's
// while the bytes (and the machine's work) are a quarter: 7.2 MB at 36 KB/s is 1.8 MB at 9 KB/s,
// still over 180 s (the total timeout the page used to have, which the test would catch);
// 4.9 MB at 200 KB/s is 1.2 MB at 50 KB/s.

// resumableScene is one family's page in a browser behind its own network proxy.
type resumableScene struct {
	f         *apiFixture
	procedure string
	proxy     *browsertest.NetProxy
	tab       context.Context
	photo     string
	size      int64
}

func newResumableScene(t *testing.T, size int, timeout time.Duration) *resumableScene {
	t.Helper()
	f := newAPIFixture(t)
	f.runThumbnailer(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	b := phonePhoto(t, size, uint64(size))
	path := filepath.Join(t.TempDir(), "IMG_2041.JPG")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &resumableScene{f: f, procedure: procedure, proxy: browsertest.NewNetProxy(t, f.url),
		tab: browsertest.NewLong(t, browsertest.Phone, timeout), photo: path, size: int64(len(b))}
	if err := chromedp.Do(s.tab, chromedp.Navigate(s.proxy.URL()+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	return s
}

// pick chooses the photo on the first card, as the parent does, and returns the upstream byte
// count before it.
func (s *resumableScene) pick(t *testing.T) int64 {
	t.Helper()
	base := s.proxy.Upstream()
	if err := chromedp.Do(s.tab, chromedp.SetUploadFiles(chromedp.CSS("#card-1-camera"), []string{s.photo})); err != nil {
		t.Fatal(err)
	}
	return base
}

func (s *resumableScene) waitState(t *testing.T, state string) {
	t.Helper()
	if err := chromedp.Do(s.tab, chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state="`+state+`"]`))); err != nil {
		text, _ := chromedp.Run(s.tab, chromedp.Evaluate[string](`(document.querySelector("#card-1 li")||{}).textContent||""`))
		t.Fatalf("waiting for %s: %v (the page says %q)", state, err, text)
	}
}

// checkStored asserts the photo arrived once, sanitized, and staging is empty.
func (s *resumableScene) checkStored(t *testing.T) {
	t.Helper()
	s.f.storedOriginal(t, s.procedure)
	if n := s.f.stagedObjects(t); n != 0 {
		t.Errorf("%d staged objects left after the page showed the photo sent", n)
	}
}

// sentBytes checks what went up since base against the photo's size.
func (s *resumableScene) sentBytes(t *testing.T, base int64, most float64) {
	t.Helper()
	sent := s.proxy.Upstream() - base
	t.Logf("%d bytes up for a %d byte photo (%.3fx)", sent, s.size, float64(sent)/float64(s.size))
	if float64(sent) > most*float64(s.size) {
		t.Errorf("%d bytes went up for a %d byte photo: %.2fx, want at most %.2fx", sent, s.size, float64(sent)/float64(s.size), most)
	}
}

// A weak 3G link: the photo takes longer than any total timeout would allow, and arrives.
func TestResumablePageSlowLink(t *testing.T) {
	t.Parallel()
	s := newResumableScene(t, 1800<<10, 8*time.Minute)
	s.proxy.SetRate(9 << 10)
	start := time.Now()
	base := s.pick(t)
	s.waitState(t, "sending")
	// Half-way, the bar shows what the server has acknowledged, and a time remaining.
	if err := s.proxy.WaitUpstream(s.tab, base+s.size/2); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(s.tab, chromedp.Poll[string](`(() => { const p = document.querySelector("#card-1 li p"); const bar = document.querySelector("#card-1 li progress");
		return bar && bar.value > 20 && p.textContent.includes("left") ? p.textContent : null })()`, chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		t.Errorf("no acknowledged progress and time left half-way: %v", err)
	} else {
		t.Logf("half-way the page says %q", text)
	}
	s.waitState(t, "sent")
	took := time.Since(start)
	t.Logf("%d bytes at 9 KB/s took %v", s.size, took)
	if took < 180*time.Second {
		t.Errorf("the upload took %v: the test no longer proves that an upload longer than 180 s arrives", took)
	}
	s.checkStored(t)
	s.sentBytes(t, base, 1.05)
}

// A 5 s drop at 72 %: the page resumes from the server's offset, so the drop costs its own 5
// s and little more, and almost no bytes.
func TestResumablePageDrop(t *testing.T) {
	t.Parallel()
	s := newResumableScene(t, 1225<<10, 3*time.Minute)
	const rate = 50 << 10
	s.proxy.SetRate(rate)
	start := time.Now()
	base := s.pick(t)
	if err := s.proxy.WaitUpstream(s.tab, base+s.size*72/100); err != nil {
		t.Fatal(err)
	}
	s.proxy.Down(5 * time.Second)
	s.waitState(t, "sent")
	took := time.Since(start)
	ideal := time.Duration(float64(s.size) / rate * float64(time.Second))
	t.Logf("took %v; the photo alone takes %v at the rate", took, ideal)
	if took > ideal+5*time.Second+5*time.Second {
		t.Errorf("took %v, more than the %v the photo takes plus the 5 s drop plus 5 s", took, ideal)
	}
	if s.proxy.Connections() < 2 {
		t.Error("the drop cut nothing")
	}
	s.checkStored(t)
	s.sentBytes(t, base, 1.05)
}

// A reload at 40 % (the phone's browser evicted the tab): the page shows the photo again and
// sends the rest, without the parent picking it again.
func TestResumablePageReload(t *testing.T) {
	t.Parallel()
	s := newResumableScene(t, 1225<<10, 3*time.Minute)
	s.proxy.SetRate(100 << 10)
	base := s.pick(t)
	if err := s.proxy.WaitUpstream(s.tab, base+s.size*40/100); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(s.tab, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	// The photo is on the page again, from the browser's own storage, and goes on.
	if err := chromedp.Do(s.tab, chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state]`))); err != nil {
		t.Fatalf("the photo did not come back after the reload: %v", err)
	}
	s.waitState(t, "sent")
	s.checkStored(t)
	s.sentBytes(t, base, 1.1)
	kept, err := chromedp.Run(s.tab, chromedp.Evaluate[int](`document.querySelectorAll("li[data-state]").length`))
	if err != nil || kept != 1 {
		t.Errorf("%d photos on the page after the reload, want the one picked (%v)", kept, err)
	}
}

// offline sets what the page's navigator says about the network.
func offline(off bool) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	})
}

// A photo picked offline says it waits for the connection, and goes when it is back.
func TestResumablePageOffline(t *testing.T) {
	t.Parallel()
	s := newResumableScene(t, 400<<10, 2*time.Minute)
	s.proxy.Down(time.Hour)
	if err := chromedp.Do(s.tab, offline(true)); err != nil {
		t.Fatal(err)
	}
	base := s.pick(t)
	s.waitState(t, "waiting")
	text, _ := chromedp.Run(s.tab, chromedp.Text(chromedp.CSS(`#card-1 li[data-state="waiting"] p`)))
	if !strings.Contains(text, "connection") {
		t.Errorf("the waiting photo says %q", text)
	}
	if n := s.f.count(t, `select count(*) from resumable_uploads`); n != 0 {
		t.Errorf("%d uploads created while offline", n)
	}
	s.proxy.Up()
	if err := chromedp.Do(s.tab, offline(false)); err != nil {
		t.Fatal(err)
	}
	s.waitState(t, "sent")
	s.checkStored(t)
	s.sentBytes(t, base, 1.05)
}

// A link that dies without a word (the connections stay open, nothing moves) is noticed by
// the stall timeout, and the upload resumes on a new connection. The browser may first try
// its idle connections, dead too: a request with no answer at all is given up after the
// shorter reply timeout (10 s), so each costs that, not another 30 s.
func TestResumablePageStall(t *testing.T) {
	t.Parallel()
	s := newResumableScene(t, 800<<10, 3*time.Minute)
	s.proxy.SetRate(80 << 10)
	base := s.pick(t)
	if err := s.proxy.WaitUpstream(s.tab, base+s.size*30/100); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	s.proxy.Stall()
	s.waitState(t, "retrying")
	if d := time.Since(stalled); d < 25*time.Second {
		t.Errorf("resumed %v after the stall: the stall timeout is 30 s", d)
	}
	s.waitState(t, "sent")
	t.Logf("sent %v after the stall, over %d connections", time.Since(stalled).Round(time.Second), s.proxy.Connections())
	s.checkStored(t)
	s.sentBytes(t, base, 1.1)
}
