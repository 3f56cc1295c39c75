package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

func TestBrowserRendersAPage(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width"><h1 id="h">Hello</h1>`))
	}))
	defer srv.Close()
	tab := New(t, Phone)
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL), chromedp.WaitVisible("#h")); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(tab, chromedp.Text("#h"))
	if err != nil || text != "Hello" {
		t.Errorf("text = %q, %v", text, err)
	}
	width, err := chromedp.Run(tab, chromedp.Evaluate[int]("window.innerWidth"))
	if err != nil || width != 360 {
		t.Errorf("phone viewport width = %d, %v; want 360", width, err)
	}
	if path := Screenshot(t, tab, "hello"); path != "" {
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Errorf("screenshot not written: %v", err)
		}
	}
}
