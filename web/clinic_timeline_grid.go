package web

import (
	"html/template"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// The timeline page is written in Go rather than by its template (which keeps only the page's
// frame): html/template spends a reflective call per escaper per action, which was about a
// fifth of the server's CPU for this page, against its 50 ms p99 target. This file has
// the grid and the forms' option lists; clinic_timeline_body.go the rest.
//
// The rule here: every value that is not a constant of these functions goes through
// html.EscapeString (htmlWriter.text) for the text or double-quoted attribute it lands in;
// ids are UUIDs, formatted here; numbers come from strconv. TestTimelineHTMLEscapes and
// TestTimelineBodyEscapes feed them hostile names.

// timelineGrid writes the grid's head (timepoints across) and body (views down, the newest
// thumbnail of each cell, which opens the comparison).
func timelineGrid(procedure uuid.UUID, cols []timelineColumn, rows []timelineRow) template.HTML {
	var b htmlWriter
	b.Grow(len(cols)*160 + len(rows)*(len(cols)*260+64))
	esc := b.text
	b.WriteString(`<thead><tr><th></th>`)
	for _, c := range cols {
		b.WriteString(`<th class="tl-head state-`)
		esc(c.State)
		b.WriteString(`" data-key="`)
		esc(c.Key)
		b.WriteString(`">`)
		esc(c.Label)
		b.WriteString(`<br><small>day ` + strconv.Itoa(c.Day) + ` · ` + c.DueOn.String() + `</small><br><small class="tl-state">`)
		esc(c.State)
		b.WriteString(`</small></th>`)
	}
	b.WriteString("</tr></thead>\n<tbody>")
	compare := "/procedures/" + procedure.String() + "/compare?b="
	for _, r := range rows {
		b.WriteString(`<tr><th scope="row">`)
		esc(r.Label)
		b.WriteString(`</th>`)
		for _, c := range r.Cells {
			if c.Required {
				b.WriteString(`<td class="tl-cell required">`)
			} else {
				b.WriteString(`<td class="tl-cell">`)
			}
			switch p := c.Photo; {
			case p != nil && p.ThumbsReady:
				id := p.ID.String()
				b.WriteString(`<a href="` + compare + id + `" class="tl-photo"><img src="/api/v1/photos/` + id + `/thumbnail" alt="`)
				esc(p.Timepoint + " " + p.View)
				b.WriteString(`" width="120" height="120" loading="lazy"></a>`)
			case p != nil && p.ThumbnailState == followup.ThumbnailUnreadable:
				b.WriteString(`<a href="/api/v1/photos/` + p.ID.String() + `/original" class="tl-unreadable">cannot be shown: its image data does not decode. Download the original</a>`)
			case p != nil:
				b.WriteString(`<a href="` + compare + p.ID.String() + `" class="tl-pending">processing…</a>`)
			case c.Required && c.Upcoming:
				b.WriteString(`<span class="tl-due">due</span>`)
			case c.Required:
				b.WriteString(`<span class="tl-missing">missing</span>`)
			default:
				b.WriteString(`<span class="tl-none">–</span>`)
			}
			if p := c.Photo; p != nil && p.Quality != nil && len(p.Quality.Flags) > 0 {
				// The measured quality, in words (the thresholds: imagestore/quality.go).
				b.WriteString(`<small class="tl-quality">`)
				esc(strings.Join(p.Quality.Flags, ", "))
				b.WriteString(`</small>`)
			}
			if c.Count > 1 {
				b.WriteString(`<small class="cl-muted">` + strconv.Itoa(c.Count) + ` photos</small>`)
			}
			b.WriteString(`</td>`)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString(`</tbody>`)
	return template.HTML(b.String())
}

// option is one choice of a <select>.
type option struct{ Value, Label string }

// optionsHTML writes the <option> elements of a <select>.
func optionsHTML(opts []option) template.HTML {
	var b htmlWriter
	for _, o := range opts {
		b.raw(`<option value="`)
		b.text(o.Value)
		b.raw(`">`)
		b.text(o.Label)
		b.raw(`</option>`)
	}
	return template.HTML(b.String())
}
