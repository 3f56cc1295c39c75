package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/google/uuid"
	"golang.org/x/net/html"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/imagestore"
)

// evilText is a name that breaks out of text and attribute values unless escaped.
const evilText = `"><script>alert(1)</script><img src=x onerror=alert(2) a='&amp;`

// TestTimelineHTMLEscapes feeds the grid and option lists of the timeline page hostile names and
// checks, by parsing the result as a browser would, that every one stays text or an attribute
// value: no element, attribute or character reference is added.
func TestTimelineHTMLEscapes(t *testing.T) {
	t.Parallel()
	photo := &followup.Photo{ID: uuid.New(), Timepoint: evilText, View: evilText, ThumbsReady: true,
		Quality: &imagestore.Quality{Flags: []string{evilText, "blurry"}}}
	pending := &followup.Photo{ID: uuid.New(), Timepoint: "t", View: "v"}
	cols := []timelineColumn{{Key: evilText, Label: evilText, State: evilText, Day: 7, When: evilText, StateText: evilText},
		{Key: "k", Label: "l", State: "open"}, {Key: "u", Label: "u", State: "upcoming"}}
	rows := []timelineRow{{View: evilText, Label: evilText, Cells: []timelineCell{
		{Required: true, Photo: photo, Count: 3}, {Photo: pending}, {Required: true, Upcoming: true}}},
		{View: "v", Label: "v", Cells: []timelineCell{{Required: true}, {}, {}}}}
	for r := range rows {
		for i := range rows[r].Cells {
			rows[r].Cells[i].describe("/procedures/"+uuid.NewString(), "en")
		}
	}
	grid := renderHTML(t, pageInfo{}, timelineGrid(cols, rows))
	opts := renderHTML(t, pageInfo{}, options([]option{{evilText, evilText}, {"a", "b"}}))

	checkEscaped(t, "grid", "<table>"+grid+"</table>")
	checkEscaped(t, "options", "<select>"+opts+"</select>")
	for _, want := range []string{`<span class="tl-due">due</span>`, `<span class="tl-missing">missing</span>`, `<span class="tl-none">–</span>`,
		`class="tl-pending">processing…</a>`, `<small class="cl-muted">3 photos</small>`, `<td class="tl-cell required">`, `<td class="tl-cell">`,
		`<th class="tl-head state-open" data-key="k">`, ", blurry</small>", "/api/v1/photos/" + photo.ID.String() + "/thumbnail"} {
		if !strings.Contains(grid, want) {
			t.Errorf("grid lacks %s", want)
		}
	}
}

// TestTimelineBodyEscapes does the same for the whole page (timelinePage): every
// free-text field a clinic, a family or a failed send can fill holds the hostile name.
func TestTimelineBodyEscapes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	revoked := now.Add(-time.Hour)
	d := timelineData{
		Proc:    "/procedures/" + uuid.NewString(),
		Heading: evilText, // the protocol and the body site (newTimelineData)
		procedurePage: procedurePage{
			View: followup.ProcedureView{
				Procedure: followup.Procedure{ID: uuid.New(), Protocol: evilText, ProtocolVersion: 1, BodySite: evilText,
					PerformedAt: now, Status: followup.StatusActive, RemindersEnabled: true},
				Photos:   []followup.Photo{{ID: uuid.New()}},
				Messages: []followup.Message{{Kind: evilText, Timepoint: evilText, Body: evilText, CreatedAt: now}},
			},
			Patient: followup.Patient{ID: uuid.New(), DisplayName: evilText},
		},
		Links: []followup.ParentLink{{ID: uuid.New(), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			{ID: uuid.New(), CreatedAt: now, ExpiresAt: now.Add(time.Hour), RevokedAt: &revoked}},
		Now:    now,
		Photos: []option{{"p", "photo"}},
		Levels: []option{{"l", "level"}},
		Chart: gradeChart{Width: 480, Height: 180, Left: 110, Bottom: 150, Points: []chartPoint{{X: 1, Y: 2, Title: evilText}},
			Line: evilText, YLabels: []chartLabel{{Text: evilText}}, XLabels: []chartLabel{{Text: evilText}}},
		Grades:   []gradeRow{{Timepoint: evilText, Level: evilText, Note: evilText, At: now}},
		UploadID: evilText,
		Active:   true,
		Outbox: []outboxRow{{Reminder: followup.Reminder{Kind: evilText, Channel: evilText, Status: evilText, LastError: evilText},
			Label: evilText, Created: evilText, Due: evilText, SentAt: evilText}},
		Zone:           evilText,
		Concerns:       []concernCell{{Photo: followup.Photo{ID: uuid.New(), ThumbsReady: true}, Day: 3, Compare: "/procedures/x/compare?b=" + evilText}},
		ConcernOptions: []option{{"c", evilText}},
		Talk: clinicTalk{Unread: 1, Form: replyForm{Body: evilText, Error: evilText}, Messages: []clinicMessage{
			{Message: conversation.Message{ID: uuid.New(), Author: conversation.AuthorFamily, Body: evilText, Unread: true}, Class: "msg-family",
				Who: evilText, When: evilText, Photos: []talkThumb{{ID: evilText, Label: evilText, Href: "/procedures/x/compare?b=" + evilText, Ready: true}}},
			{Message: conversation.Message{ID: uuid.New(), Author: conversation.AuthorClinic, Body: evilText}, Class: "msg-note", Who: evilText,
				Step: evilText, Handled: evilText}}},
	}
	body := renderHTML(t, pageInfo{Title: evilText, CSRF: evilText, Flash: evilText, User: followup.Actor{Kind: followup.ActorUser, Role: followup.RoleAdmin}},
		timelinePage(&d))
	checkEscaped(t, "body", body)
	for _, want := range []string{`id="assess-form"`, `id="retake-form"`, `id="upload-form"`, `id="reminder-send-form"`,
		`id="reminder-switch-form"`, `id="link-create"`, `class="link-revoke"`, `id="grade-chart"`, `class="outbox-row status-`,
		`id="reply-form"`, `id="reply-error"`, `class="msg-handle-button"`, `id="concerns"`, `id="concern-assess-form"`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s", want)
		}
	}
	// In the upload form's query string the CSRF token is query-escaped, then attribute-escaped.
	if !strings.Contains(body, `/photos?csrf_token=%22%3E%3Cscript%3E`) {
		t.Error("the CSRF token in the upload form's action is not query-escaped")
	}
	if !strings.Contains(renderHTML(t, pageInfo{}, outboxTable(nil)), "No reminder yet.") {
		t.Error("an empty outbox does not say so")
	}
}

// renderHTML renders a component as a page would, with info in its context.
func renderHTML(t testing.TB, info pageInfo, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(withPage(context.Background(), info), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkEscaped parses fragment (or a whole page) as a browser would and fails on any element
// or attribute outside what the pages produce; the hostile name must come back whole
// as text and as an attribute value.
func checkEscaped(t *testing.T, name, fragment string) {
	t.Helper()
	if !strings.HasPrefix(fragment, "<!DOCTYPE") {
		fragment = "<!doctype html><body>" + fragment
	}
	doc, err := html.Parse(strings.NewReader(fragment))
	if err != nil {
		t.Fatal(err)
	}
	var texts, attrs []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "html", "head", "body", "meta", "link", "script", "header", "nav", "main", "table", "thead", "tbody", "tr", "th", "td", "a", "img", "span", "small", "br", "select", "option",
				"h1", "h2", "p", "div", "section", "ul", "ol", "li", "figure", "figcaption", "strong", "form", "input", "label", "textarea", "button",
				"svg", "line", "text", "polyline", "circle", "title":
			default:
				t.Errorf("%s: unexpected element <%s>", name, n.Data)
			}
			for _, a := range n.Attr {
				switch a.Key {
				case "class", "data-key", "scope", "href", "src", "alt", "width", "height", "loading", "value", "id", "method", "action",
					"type", "name", "maxlength", "rows", "required", "enctype", "accept", "colspan", "data-day", "data-field", "aria-invalid", "aria-describedby",
					"xmlns", "viewBox", "role", "aria-label", "x1", "y1", "x2", "y2", "stroke", "x", "y", "text-anchor", "font-size",
					"points", "fill", "stroke-width", "cx", "cy", "r", "charset", "content", "rel", "defer", "lang":
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
	if !strings.Contains(strings.Join(texts, "\n"), evilText) {
		t.Errorf("%s: the name is not kept as text", name)
	}
	if !strings.Contains(strings.Join(attrs, "\n"), evilText) {
		t.Errorf("%s: the name is not kept as an attribute value", name)
	}
}
