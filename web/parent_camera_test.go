package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/dermfollow/dermfollow/imagestore/imagetest"
	"github.com/dermfollow/dermfollow/web/browsertest"
)

// TestParentLiveCameraWithGuide takes a photo through the live camera view, with Chromium's
// fake camera, over last time's photo of the same view, and checks it arrives like a picked
// file: one new photo, a JPEG the size of the camera's frame.
func TestParentLiveCameraWithGuide(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	procedure, link := f.enrolFamily(t, "en", dueNow())

	// The day-1 front photo, with its thumbnails made, is the framing guide of today's front card.
	pc := f.parentClient(t)
	csrf := csrfOf(t, pc.open(link))
	resp, body := pc.post(csrf, map[string]string{"timepoint": "day-1", "view": "front", "upload_id": "camera-test-0001"}, imagetest.JPEG(320, 240, 4))
	var earlier struct{ ID string }
	if err := json.Unmarshal([]byte(body), &earlier); err != nil || resp.StatusCode != 201 {
		t.Fatalf("day-1 upload = %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.thumbs.Make(ctx, 10); err != nil {
		t.Fatal(err)
	}
	f.runThumbnailer(t)

	d := browsertest.Phone
	d.FakeCamera = true
	tab := browsertest.New(t, d)
	if err := chromedp.Do(tab, chromedp.Navigate(f.url+linkPath(link)), chromedp.WaitVisible(chromedp.CSS("#card-1 button.live"))); err != nil {
		t.Fatal(err)
	}
	guide, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.querySelector("#card-1 button.live").dataset.guide`))
	if err != nil || guide != "/p/photos/"+earlier.ID+"/thumbnail?size=large" {
		t.Fatalf("the live camera button's guide = %q, %v", guide, err)
	}

	// Open the live camera: the video plays, the guide lies over it, semi-transparent, and the
	// focus is in the capture view.
	open := func() {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#card-1 button.live")), chromedp.WaitVisible(chromedp.CSS("#capture"))); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`(() => { const v = document.querySelector("#capture video");
			return v.videoWidth > 0 && !v.paused && v.currentTime > 0 && !document.querySelector("#capture .capture-shutter").disabled; })()`,
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("the camera video does not play: %v", err)
		}
	}
	open()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`document.querySelector("#capture img.capture-guide").complete`)); err != nil {
		t.Fatal(err)
	}
	overlay, err := chromedp.Run(tab, chromedp.Evaluate[captureState](`(() => {
		const v = document.querySelector("#capture video"), g = document.querySelector("#capture img.capture-guide");
		const a = v.getBoundingClientRect(), b = g.getBoundingClientRect();
		return {
			opacity: parseFloat(getComputedStyle(g).opacity),
			loaded: !g.hidden && g.naturalWidth > 0 && getComputedStyle(g).display !== "none",
			over: b.width > 0 && b.left < a.right && a.left < b.right && b.top < a.bottom && a.top < b.bottom,
			focusIn: document.getElementById("capture").contains(document.activeElement),
			pageInert: document.querySelector("main").inert,
			title: document.getElementById("capture-h").textContent,
		};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if !overlay.Loaded || !overlay.Over || overlay.Opacity <= 0 || overlay.Opacity >= 1 {
		t.Errorf("the guide is not shown semi-transparent over the video: %+v", overlay)
	}
	if !overlay.FocusIn || !overlay.PageInert || !strings.Contains(overlay.Title, "Front") {
		t.Errorf("the capture view is not a modal dialog with the focus in it: %+v", overlay)
	}
	width, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil || width > 360 {
		t.Errorf("page width = %d, %v; want no sideways scrolling at 360 px", width, err)
	}
	browsertest.Screenshot(t, tab, "1-capture")

	// The slider sets how visible the guide is.
	opacity, err := chromedp.Run(tab, chromedp.Evaluate[float64](`(() => { const s = document.getElementById("capture-opacity");
		s.value = 70; s.dispatchEvent(new Event("input"));
		return parseFloat(getComputedStyle(document.querySelector("#capture img.capture-guide")).opacity); })()`))
	if err != nil || opacity < 0.69 || opacity > 0.71 {
		t.Errorf("guide opacity after the slider = %v, %v; want 0.7", opacity, err)
	}

	// Escape closes it, stops the camera and gives the focus back to the button.
	if err := chromedp.Do(tab, chromedp.KeyEvent("\x1b"), chromedp.WaitNotVisible(chromedp.CSS("#capture"))); err != nil {
		t.Fatal(err)
	}
	closed, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.querySelector("#capture video").srcObject === null &&
		document.activeElement === document.querySelector("#card-1 button.live") && !document.querySelector("main").inert`))
	if err != nil || !closed {
		t.Errorf("after Escape: camera released, focus back, page usable = %v, %v", closed, err)
	}

	// Open it again and take the photo: it joins the upload queue and arrives.
	open()
	size, err := chromedp.Run(tab, chromedp.Evaluate[[]int](`(() => { const v = document.querySelector("#capture video"); return [v.videoWidth, v.videoHeight]; })()`))
	if err != nil || len(size) != 2 {
		t.Fatalf("video size = %v, %v", size, err)
	}
	if err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS("#capture .capture-shutter")),
		chromedp.WaitNotVisible(chromedp.CSS("#capture")),
		chromedp.WaitVisible(chromedp.CSS(`#card-1 li[data-state="sent"] img.thumb`)),
	); err != nil {
		t.Fatal(err)
	}
	browsertest.Screenshot(t, tab, "2-sent")
	if n := f.count(t, `select count(*) from photos where procedure_id = $1`, procedure); n != 2 {
		t.Errorf("%d photos stored, want the day-1 one and exactly one new", n)
	}
	var contentType string
	var w, h int
	if err := f.pool.QueryRow(context.Background(), `select content_type, width, height from photos
		where procedure_id = $1 and timepoint_key = 'day-4' and view = 'front'`, procedure).Scan(&contentType, &w, &h); err != nil {
		t.Fatal(err)
	}
	if contentType != "image/jpeg" || w != size[0] || h != size[1] {
		t.Errorf("stored photo = %s %dx%d, want image/jpeg %dx%d (the camera's frame)", contentType, w, h, size[0], size[1])
	}
}

// captureState is what the page says of the open capture view.
type captureState struct {
	Opacity            float64
	Loaded, Over       bool
	FocusIn, PageInert bool
	Title              string
}

// beforeScripts runs the script in every page the tab opens from now on, before the page's own.
func beforeScripts(script string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	})
}

// TestParentLiveCameraRefused checks the page stays as it was without a live camera: when the
// camera is refused, and when the browser has no getUserMedia at all.
func TestParentLiveCameraRefused(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	_, link := f.enrolFamily(t, "en", dueNow())
	tab := browsertest.New(t, browsertest.Phone)
	if err := chromedp.Do(tab,
		beforeScripts(`navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("refused", "NotAllowedError"));`),
		chromedp.Navigate(f.url+linkPath(link)),
		chromedp.Click(chromedp.CSS("#card-1 button.live")),
		chromedp.WaitVisible(chromedp.CSS("#card-1 .camera-note")),
	); err != nil {
		t.Fatal(err)
	}
	ok, err := chromedp.Run(tab, chromedp.Evaluate[bool](`document.getElementById("capture").hidden &&
		[...document.querySelectorAll("button.live")].every(b => b.hidden) &&
		document.activeElement === document.getElementById("card-1-camera") &&
		document.querySelector("#card-1 .camera-note").getAttribute("role") === "alert" &&
		!document.querySelector("main").inert`))
	if err != nil || !ok {
		t.Errorf("after a refusal: view closed, live buttons hidden, focus on Take photo, page usable = %v, %v", ok, err)
	}
	browsertest.Screenshot(t, tab, "refused")

	if err := chromedp.Do(tab,
		beforeScripts(`Object.defineProperty(Navigator.prototype, "mediaDevices", { get: () => undefined });`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#card-1 label[for=card-1-pick]")),
	); err != nil {
		t.Fatal(err)
	}
	ok, err = chromedp.Run(tab, chromedp.Evaluate[bool](`navigator.mediaDevices === undefined &&
		document.querySelectorAll("button.live").length > 0 &&
		[...document.querySelectorAll("button.live")].every(b => b.hidden) &&
		document.getElementById("capture") === null &&
		document.getElementById("card-1-camera").getAttribute("capture") === "environment"`))
	if err != nil || !ok {
		t.Errorf("without getUserMedia the live camera buttons show, or the camera input changed: %v, %v", ok, err)
	}
}
