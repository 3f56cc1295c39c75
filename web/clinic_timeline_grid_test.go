package web

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/net/html"

	"github.com/dermfollow/dermfollow/followup"
)

// TestTimelineHTMLEscapes feeds the Go-written parts of the timeline page hostile names and
// checks, by parsing the result as a browser would, that every one stays text or an attribute
// value: no element, attribute or character reference is added.
func TestTimelineHTMLEscapes(t *testing.T) {
	t.Parallel()
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2) a='&amp;`
	photo := &followup.Photo{ID: uuid.New(), Timepoint: evil, View: evil, ThumbsReady: true}
	pending := &followup.Photo{ID: uuid.New(), Timepoint: "t", View: "v"}
	cols := []timelineColumn{{Key: evil, Label: evil, State: evil, Day: 7}, {Key: "k", Label: "l", State: "open"}, {Key: "u", Label: "u", State: "upcoming"}}
	rows := []timelineRow{{View: evil, Label: evil, Cells: []timelineCell{
		{Required: true, Photo: photo, Count: 3}, {Photo: pending}, {Required: true, Upcoming: true}}},
		{View: "v", Label: "v", Cells: []timelineCell{{Required: true}, {}, {}}}}
	grid := string(timelineGrid(uuid.New(), cols, rows))
	opts := string(optionsHTML([]option{{evil, evil}, {"a", "b"}}))

	for name, fragment := range map[string]string{"grid": "<table>" + grid + "</table>", "options": "<select>" + opts + "</select>"} {
		doc, err := html.Parse(strings.NewReader("<!doctype html><body>" + fragment))
		if err != nil {
			t.Fatal(err)
		}
		var texts, attrs []string
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				switch n.Data {
				case "html", "head", "body", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "small", "br", "select", "option":
				default:
					t.Errorf("%s: unexpected element <%s>", name, n.Data)
				}
				for _, a := range n.Attr {
					switch a.Key {
					case "class", "data-key", "scope", "href", "src", "alt", "width", "height", "loading", "value":
					default:
						t.Errorf("%s: unexpected attribute %s on <%s>", name, a.Key, n.Data)
					}
					attrs = append(attrs, a.Val)
				}
			}
			if n.Type == html.TextNode {
				texts = append(texts, n.Data)
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		// The hostile string comes back whole, as data: as text and as attribute values.
		if !strings.Contains(strings.Join(texts, "\n"), evil) {
			t.Errorf("%s: the name is not kept as text", name)
		}
		if !strings.Contains(strings.Join(attrs, "\n"), evil) {
			t.Errorf("%s: the name is not kept as an attribute value", name)
		}
	}
	for _, want := range []string{`<span class="tl-due">due</span>`, `<span class="tl-missing">missing</span>`, `<span class="tl-none">–</span>`,
		`class="tl-pending">processing…</a>`, `<small class="cl-muted">3 photos</small>`, "/api/v1/photos/" + photo.ID.String() + "/thumbnail"} {
		if !strings.Contains(grid, want) {
			t.Errorf("grid lacks %s", want)
		}
	}
}
