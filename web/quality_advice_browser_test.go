package web

import (
	"context"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/disintegration/imaging"

	"github.com/dermfollow/dermfollow/web/browsertest"
)

// writeJPEG writes img as a JPEG file for the page's file input.
func writeJPEG(t *testing.T, img image.Image, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := imaging.Save(img, path, imaging.JPEGQuality(92)); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQualityAdviceOnParentPage: a blurred photo shows the advice before it is sent; "Send
// anyway" sends it, "Take again" sends nothing; a sharp photo goes without a word; the advice is
// in the family's language.
func TestQualityAdviceOnParentPage(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())
	sharp := textured(1200, 900, 7)
	blurred := writeJPEG(t, imaging.Blur(sharp, 12), "blurred.jpg")
	good := writeJPEG(t, sharp, "sharp.jpg")
	tab := browsertest.New(t, browsertest.Phone)
	if err := chromedp.Do(tab, chromedp.Navigate(f.url+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#now"))); err != nil {
		t.Fatal(err)
	}
	stored := func() int {
		return f.count(t, `select count(*) from photos where procedure_id = $1 and status = 'active'`, procedure)
	}

	// A blurred photo: the advice, in English; "Send anyway" sends it.
	advice := adviceFor(t, tab, "#card-1", blurred)
	if advice != tr("en", "advice_blurry") {
		t.Errorf("advice = %q, want %q", advice, tr("en", "advice_blurry"))
	}
	browsertest.Screenshot(t, tab, "advice-blurry")
	if n := stored(); n != 0 {
		t.Errorf("%d photos stored while the advice is shown, want 0", n)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#card-1 .advice-send")),
		chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state="sent"]`))); err != nil {
		t.Fatal(err)
	}
	if n := stored(); n != 1 {
		t.Errorf("%d photos stored after send anyway, want 1", n)
	}

	// Again, but "Take again": nothing is queued, nothing sent.
	adviceFor(t, tab, "#card-2", blurred)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#card-2 .advice-again")),
		chromedp.WaitNotPresent(chromedp.CSS("#card-2 .advice"))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#card-2 li").length`)); err != nil || n != 0 {
		t.Errorf("%d photos queued on card 2 after take again (%v), want 0", n, err)
	}

	// A sharp photo: sent, no advice.
	if err := chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.CSS("#card-2-camera"), []string{good}),
		chromedp.WaitVisible(chromedp.CSS(`#card-2 li[data-state="sent"]`))); err != nil {
		t.Fatal(err)
	}
	q, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#card-2 form").dataset.quality + " " + document.querySelectorAll(".advice").length`))
	if err != nil || q != "good 0" {
		t.Errorf("sharp photo: quality and advice boxes = %q, %v; want \"good 0\"", q, err)
	}
	if n := stored(); n != 2 {
		t.Errorf("%d photos stored, want 2", n)
	}

	// In Chinese.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("a.lang-switch")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #now`))); err != nil {
		t.Fatal(err)
	}
	if advice := adviceFor(t, tab, "#card-3", blurred); advice != tr("zh-CN", "advice_blurry") {
		t.Errorf("Chinese advice = %q, want %q", advice, tr("zh-CN", "advice_blurry"))
	}
	label, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#card-3 .advice-send")))
	if err != nil || label != tr("zh-CN", "send_anyway") {
		t.Errorf("Chinese send-anyway = %q, %v", label, err)
	}
	browsertest.Screenshot(t, tab, "advice-blurry-zh")
}

// adviceFor picks the photo at path on the card and returns the advice's text.
func adviceFor(t *testing.T, tab context.Context, card, path string) string {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.SetUploadFiles(chromedp.CSS(card+"-camera"), []string{path}),
		chromedp.WaitVisible(chromedp.CSS(card+" .advice p"))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(card+" .advice p")))
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// lesionPhoto is a photo with large shapes, as a follow-up photo has: skin lit from one side, a
// darker port-wine patch at (cx, cy), and a fine texture (so that it is sharp).
func lesionPhoto(w, h int, cx, cy, gain float64) *image.NRGBA {
	tex := textured(w, h, 5)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			light := 0.75 + 0.35*u
			patch := math.Exp(-((u-cx)*(u-cx)/0.02 + (v-cy)*(v-cy)/0.01))
			c := tex.NRGBAAt(x, y)
			f := func(base uint8, dark float64) uint8 {
				return uint8(max(0, min(255, math.Round(float64(base)*light*gain*(1-dark*patch)))))
			}
			img.SetNRGBA(x, y, color.NRGBA{f(c.R, 0.25), f(c.G, 0.6), f(c.B, 0.5), 255})
		}
	}
	return img
}

// TestFramingInBrowser: quality.js's framing score of a new photo against the last one of the
// same view stays high for the same framing in another light or moved a little, and falls
// below the threshold (the "framing" advice) for a photo framed elsewhere or from much nearer.
func TestFramingInBrowser(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("static/quality.js")
	if err != nil {
		t.Fatal(err)
	}
	tab := browsertest.New(t, browsertest.Phone)
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(tab, chromedp.Evaluate[*runtime.RemoteObject](string(js))); err != nil {
		t.Fatal(err)
	}
	last := lesionPhoto(1200, 900, 0.45, 0.5, 1)
	lastURL, _ := jpegDataURL(t, last)
	shifted := imaging.Resize(imaging.Crop(lesionPhoto(1260, 945, 0.45, 0.5, 1), image.Rect(40, 30, 1240, 930)), 1200, 900, imaging.Linear)
	cases := []struct {
		name    string
		img     image.Image
		framing bool
	}{
		{"the same", last, false},
		{"darker light", lesionPhoto(1200, 900, 0.45, 0.5, 0.7), false},
		{"moved a little", shifted, false},
		{"a little brighter", imaging.AdjustBrightness(lesionPhoto(1200, 900, 0.45, 0.5, 1), 8), false},
		{"another place", lesionPhoto(1200, 900, 0.85, 0.15, 1), true},
		{"much nearer, beside the patch", imaging.Resize(imaging.Crop(last, image.Rect(0, 0, 480, 360)), 1200, 900, imaging.Linear), true},
	}
	for _, c := range cases {
		url, _ := jpegDataURL(t, c.img)
		script := `(async () => {
			const m = async (u) => DermfollowQuality.measureBlob(await (await fetch(u)).blob());
			const q = DermfollowQuality.compare(await m(` + strconv.Quote(url) + `), await m(` + strconv.Quote(lastURL) + `));
			return {framing: q.framing, flags: q.flags}; })()`
		got, err := chromedp.Run(tab, chromedp.Evaluate[struct {
			Framing float64  `json:"framing"`
			Flags   []string `json:"flags"`
		}](script, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		flagged := false
		for _, f := range got.Flags {
			flagged = flagged || f == "framing"
		}
		if flagged != c.framing {
			t.Errorf("%s: framing %.2f, advice %v; want advice %v", c.name, got.Framing, flagged, c.framing)
		}
		t.Logf("%-28s framing %.2f flags %v", c.name, got.Framing, got.Flags)
	}
}
