package web

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// noisyJPEG is a photo that compresses badly, so an upload takes many network reads.
func noisyJPEG(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{byte(r.IntN(256)), byte(r.IntN(256)), byte(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runThumbnailer makes thumbnails in the background for the rest of the test.
func (f *apiFixture) runThumbnailer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.thumbs.Run(ctx, 200*time.Millisecond) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestParentPageInBrowser(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.runThumbnailer(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	token := link[strings.LastIndex(link, "/")+1:]
	tab := browsertest.New(t, browsertest.Phone)

	// Open the link: the page lands on /p/ and the token is in neither the address nor the
	// history.
	if err := chromedp.Do(tab, chromedp.Navigate(f.url+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(tab, chromedp.Location())
	if err != nil || loc != f.url+"/p/" {
		t.Errorf("location = %q, %v; want %s/p/", loc, err, f.url)
	}
	hist, err := chromedp.Run(tab, chromedp.NavigationEntries())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hist.Entries {
		if strings.Contains(e.URL, token) {
			t.Errorf("the token is in the history: entry %d", e.ID)
		}
	}
	step, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#now .step-now")))
	if err != nil || !strings.Contains(step, "Day 4") {
		t.Errorf("today's step = %q, %v", step, err)
	}
	width, err := chromedp.Run(tab, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	if err != nil || width > 360 {
		t.Errorf("page width = %d, %v; want no sideways scrolling at 360 px", width, err)
	}
	browsertest.Screenshot(t, tab, "1-home")

	// Take the front photo: the script sends it as soon as it is chosen, shows the progress,
	// then the thumbnail the server made.
	photo := noisyJPEG(t, 800, 600)
	if err := chromedp.Do(tab,
		chromedp.SetUploadFiles(chromedp.CSS("#card-1-camera"), []string{photo}),
		chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state="sent"] img.thumb`)),
	); err != nil {
		t.Fatal(err)
	}
	progress, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelector("#card-1 li progress").value`))
	if err != nil || progress != 100 {
		t.Errorf("progress = %d, %v; want 100", progress, err)
	}
	if n := f.count(t, `select count(*) from photos where procedure_id = $1 and timepoint_key = 'day-4' and view = 'front'`, procedure); n != 1 {
		t.Errorf("%d front photos stored, want 1", n)
	}
	browsertest.Screenshot(t, tab, "2-uploaded")

	// Switch to Chinese.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("a.lang-switch")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #now`))); err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#now-h")))
	if err != nil || heading != "现在要做的事" {
		t.Errorf("Chinese heading = %q, %v", heading, err)
	}
	browsertest.Screenshot(t, tab, "3-chinese")

	// The same page on a desktop screen: two cards a row, nothing wider than the window.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(browsertest.Desktop.Width, browsertest.Desktop.Height), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	width, err = chromedp.Run(tab, chromedp.Evaluate[int]("document.documentElement.scrollWidth"))
	if err != nil || width > int(browsertest.Desktop.Width) {
		t.Errorf("desktop page width = %d, %v", width, err)
	}
	browsertest.Screenshot(t, tab, "4-desktop")

	// Revoke the link: it opens only the friendly page now, and the session is over too.
	var links struct {
		Links []struct{ ID string } `json:"links"`
	}
	f.call(t, "GET", "/api/v1/procedures/"+procedure+"/parent-links", f.clinician, nil, &links)
	if code := f.call(t, "DELETE", "/api/v1/parent-links/"+links.Links[0].ID, f.clinician, nil, nil); code != 204 {
		t.Fatalf("revoke = %d", code)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(f.url+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#invalid"))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#invalid h1")))
	if err != nil || text != "此链接无法打开" {
		t.Errorf("revoked link page = %q, %v", text, err)
	}
	browsertest.Screenshot(t, tab, "5-revoked")
	if err := chromedp.Do(tab, chromedp.Navigate(f.url+"/p/"), chromedp.WaitVisible(chromedp.CSS("#invalid"))); err != nil {
		t.Errorf("the session outlived the revocation: %v", err)
	}

	if strings.Contains(f.logs.String(), token) {
		t.Error("the token reached the server log")
	}
	if !strings.Contains(f.logs.String(), `"route":"/p/:token"`) {
		t.Error("the log capture saw no link request")
	}
}

// An upload cut half-way (the phone lost its network) is resumed by the page from the
// server's offset: stored once, with little more than the photo's bytes sent.
func TestParentUploadInterruptedAndRetried(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	f.runThumbnailer(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	photo := noisyJPEG(t, 1000, 750)
	st, err := os.Stat(photo)
	if err != nil || st.Size() < 200<<10 {
		t.Fatalf("the photo is too small to cut halfway: %v", err)
	}
	proxy := browsertest.NewNetProxy(t, f.url)
	tab := browsertest.New(t, browsertest.Phone)
	if err := chromedp.Do(tab, chromedp.Navigate(proxy.URL()+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	proxy.SetRate(200 << 10)
	base := proxy.Upstream()
	if err := chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.CSS("#card-2-camera"), []string{photo})); err != nil {
		t.Fatal(err)
	}
	if err := proxy.WaitUpstream(tab, base+st.Size()/2); err != nil {
		t.Fatal(err)
	}
	conns := proxy.Connections()
	// The link goes for a second: a cut alone would let Chromium re-send the cut request at
	// once by itself (it does for a connection it had reused), at the old offset, which the
	// server refuses (409) only after the browser has pushed much of its body.
	proxy.Down(time.Second)
	if err := chromedp.Do(tab, chromedp.WaitVisible(chromedp.CSS(`#card-2 li[data-state="sent"] img.thumb`))); err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, tab, "sent-after-retry")
	if proxy.Connections() <= conns {
		t.Error("no new connection after the cut: nothing was retried")
	}
	if sent := proxy.Upstream() - base; float64(sent) > 1.05*float64(st.Size()) {
		t.Errorf("%d bytes sent for a %d byte photo: the retry started over", sent, st.Size())

	}
	if n := f.count(t, `select count(*) from photos where procedure_id = $1`, procedure); n != 1 {
		t.Errorf("%d photos stored, want exactly 1", n)
	}
	if n := f.count(t, `select count(distinct upload_id) from photos where procedure_id = $1 and view = 'left-oblique'`, procedure); n != 1 {
		t.Errorf("the photo is not the left-oblique one (%d)", n)
	}
}
