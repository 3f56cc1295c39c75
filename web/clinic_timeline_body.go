package web

import (
	"html"
	"html/template"
	"net/url"
	"strconv"
	"strings"
)

// Body writes the timeline page's content: the heading, the grid, grades, retakes, the clinic
// upload, reminders and parent links. It follows the rule of clinic_timeline_grid.go: every
// value that is not a constant here goes through html.EscapeString for the text or
// double-quoted attribute it lands in (and url.QueryEscape first in a query string); ids are
// UUIDs, numbers come from strconv. In the template, html/template made a reflective call per
// escaper per action, and the page's seventy actions were about a fifth of the server's CPU
// for it. TestTimelineBodyEscapes feeds it hostile text; the browser tests find its forms.
func (d *timelineData) Body(csrf string) template.HTML {
	var w htmlWriter
	w.Grow(8192 + len(d.Grid) + len(d.StepOptions)*2 + len(d.ViewOptions) + len(d.LevelOptions) + len(d.PhotoOptions) +
		len(d.View.Messages)*160 + len(d.Grades)*160 + len(d.Outbox)*400 + len(d.Links)*360)
	v := d.View
	id := v.ID.String()
	proc := "/procedures/" + id
	csrfField := `<input type="hidden" name="csrf_token" value="` + html.EscapeString(csrf) + `">`

	w.raw("\n<h1>")
	w.text(d.Patient.DisplayName)
	w.raw(` <span class="cl-muted">`)
	w.text(v.Protocol)
	w.raws(" v", strconv.Itoa(v.ProtocolVersion), " · ")
	w.text(v.BodySite)
	w.raws(" · ", v.PerformedAt.Format("2006-01-02"), " · ")
	w.text(v.Status)
	w.raw("</span></h1>\n")
	w.raws(`<p><a href="/patients/`, d.Patient.ID.String(), `">Patient</a>`)
	if len(v.Photos) > 0 {
		w.raws(` · <a id="compare-link" href="`, proc, `/compare">Compare baseline and latest</a>`)
	}
	w.raw("</p>\n")
	w.raws(`<div class="tl-scroll"><table class="tl" id="timeline">`, string(d.Grid), "</table></div>\n\n")

	w.raw("<section id=\"grades\"><h2>Grades</h2>\n")
	d.writeChart(&w)
	w.raw("\n" + `<ul class="cl-grades">`)
	for _, g := range d.Grades {
		w.raw("<li>")
		w.text(g.Timepoint)
		w.raw(": <strong>")
		w.text(g.Level)
		w.raw("</strong>")
		if g.Note != "" {
			w.raw(" — ")
			w.text(g.Note)
		}
		w.raws(` <small class="cl-muted">`, g.At.Format("2006-01-02 15:04"), "</small></li>")
	}
	w.raw("</ul>\n")
	if len(d.Levels) > 0 {
		w.raws(`<form method="post" action="`, proc, `/assessments" class="cl-form" id="assess-form">`, "\n", csrfField, "\n")
		w.raws(`<label>Step <select name="timepoint">`, string(d.StepOptions), "</select></label>\n")
		w.raws(`<label>Grade <select name="level">`, string(d.LevelOptions), "</select></label>\n")
		w.raw(`<label>Note <textarea name="note" maxlength="4000" rows="2"></textarea></label>` + "\n")
		w.raw(`<button type="submit" id="assess-save">Save grade</button></form>`)
	}
	w.raw("</section>\n\n")

	w.raw("<section id=\"retake\"><h2>Ask for a retake</h2>\n")
	if len(d.Photos) > 0 {
		w.raws(`<form method="post" action="`, proc, `/retakes" class="cl-form" id="retake-form">`, "\n", csrfField, "\n")
		w.raws(`<label>Photo <select name="photo_id">`, string(d.PhotoOptions), "</select></label>\n")
		w.raw(`<label>Reason (the family reads this) <textarea name="body" maxlength="2000" rows="2" required></textarea></label>` + "\n")
		w.raw(`<button type="submit" id="retake-save">Send retake request</button></form>`)
	} else {
		w.raw(`<p class="cl-muted">No photos yet.</p>`)
	}
	w.raw("\n" + `<ul id="messages">`)
	for _, m := range v.Messages {
		w.raw(`<li class="msg-`)
		w.text(m.Kind)
		w.raw(`">`)
		w.text(m.Kind)
		if m.Timepoint != "" {
			w.raw(" (")
			w.text(m.Timepoint)
			w.raw(")")
		}
		w.raw(": ")
		w.text(m.Body)
		w.raws(` <small class="cl-muted">`, m.CreatedAt.Format("2006-01-02 15:04"), "</small></li>")
	}
	w.raw("</ul></section>\n\n")
	w.raw("<section id=\"withdraw\"><h2>Withdraw a photo</h2>\n")
	if len(d.Photos) > 0 {
		w.raw(`<p class="cl-muted">A withdrawn photo stays stored and audited, struck through here, and leaves the exports. ` +
			`For photos sent by mistake, or many through a forwarded link: revoke that link below too.</p>` + "\n")
		w.raws(`<form method="post" action="`, proc, `/photos/withdraw" class="cl-form" id="withdraw-form">`, "\n", csrfField, "\n")
		w.raws(`<label>Photo <select name="photo_id">`, string(d.PhotoOptions), "</select></label>\n")
		w.raw(`<label>Reason (kept in the audit log) <input name="reason" maxlength="500" required></label>` + "\n")
		w.raw(`<button type="submit" id="withdraw-save">Withdraw photo</button></form>`)
	} else {
		w.raw(`<p class="cl-muted">No photos yet.</p>`)
	}
	if len(d.Withdrawn) > 0 {
		w.raw("\n" + `<ul id="withdrawn" class="cl-muted">`)
		for _, l := range d.Withdrawn {
			w.raw("<li><s>")
			w.text(l)
			w.raw("</s> withdrawn</li>")
		}
		w.raw("</ul>")
	}
	w.raw("</section>\n\n")

	w.raw("<section id=\"upload\"><h2>Clinic photo</h2>\n")
	w.raws(`<form method="post" action="`, proc, `/photos?csrf_token=`, html.EscapeString(url.QueryEscape(csrf)), `" enctype="multipart/form-data" class="cl-form" id="upload-form">`, "\n")
	w.raws(`<label>Step <select name="timepoint">`, string(d.StepOptions), "</select></label>\n")
	w.raws(`<label>View <select name="view">`, string(d.ViewOptions), "</select></label>\n")
	w.raw(`<input type="hidden" name="upload_id" value="`)
	w.text(d.UploadID)
	w.raw("\">\n")
	w.raw(`<label>Photo <input type="file" name="file" accept="image/jpeg,image/png,image/webp" required></label>` + "\n")
	w.raw("<button type=\"submit\">Upload</button></form></section>\n\n")

	state, switchTo, switchLabel := "off", "true", "Turn reminders on"
	if v.RemindersEnabled {
		state, switchTo, switchLabel = "on", "false", "Turn reminders off"
	}
	w.raw("<section id=\"reminders\"><h2>Reminders</h2>\n")
	w.raws(`<p id="reminders-state">Reminders to the family are <strong>`, state, `</strong> for this procedure. Times are in the clinic's zone (`)
	w.text(d.Zone)
	w.raws(`). <a href="`, proc, `/reminders" id="outbox-link">The outbox on its own page</a></p>`, "\n")
	writeOutboxTable(&w, d.Outbox)
	w.raw("\n")
	if d.Active && v.RemindersEnabled {
		w.raws(`<form method="post" action="`, proc, `/reminders" class="cl-inline" id="reminder-send-form">`, csrfField, `<button id="reminder-send">Send a reminder now</button></form>`)
	}
	w.raws("\n", `<form method="post" action="`, proc, `/reminders/settings" class="cl-inline" id="reminder-switch-form">`, csrfField, `<input type="hidden" name="enabled" value="`, switchTo, `"><button id="reminder-switch">`, switchLabel, "</button></form></section>\n\n")

	w.raw("<section id=\"links\"><h2>Parent link</h2>\n")
	if d.Active {
		w.raws(`<form method="post" action="`, proc, `/links" class="cl-inline">`, csrfField, `<button id="link-create">Create a link for the family</button></form>`, "\n")
		w.raws(`<form method="post" action="`, proc, `/links" class="cl-inline">`, csrfField, `<input type="hidden" name="rotate" value="yes"><button>New link, revoking the others</button></form>`)
	}
	w.raw("\n" + `<ul id="link-list">`)
	for _, l := range d.Links {
		w.raws("<li>created ", l.CreatedAt.Format("2006-01-02 15:04"), ", ")
		switch {
		case l.RevokedAt != nil:
			w.raw("revoked")
		case l.Active(d.Now):
			w.raws("valid until ", l.ExpiresAt.Format("2006-01-02"), "\n")
			w.raws(`<form method="post" action="`, proc, `/links/`, l.ID.String(), `/revoke" class="cl-inline">`, csrfField, `<button class="link-revoke">Revoke</button></form>`)
		default:
			w.raw("expired")
		}
		w.raw("</li>")
	}
	if len(d.Links) == 0 {
		w.raw("<li>No link yet.</li>")
	}
	w.raw("</ul></section>\n")
	return template.HTML(w.String())
}

// writeChart draws the grade history (newGradeChart) as inline SVG.
func (d *timelineData) writeChart(w *htmlWriter) {
	c := d.Chart
	if len(c.Points) == 0 {
		w.raw(`<p class="cl-muted">No grades yet.</p>`)
		return
	}
	width, height := strconv.Itoa(c.Width), strconv.Itoa(c.Height)
	w.raws(`<svg class="cl-chart" id="grade-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `, width, " ", height, `" width="`, width, `" height="`, height, `" role="img" aria-label="Grades over days since the procedure">`, "\n")
	w.raws(`<line x1="`, strconv.Itoa(c.Left), `" y1="`, strconv.Itoa(c.Bottom), `" x2="`, width, `" y2="`, strconv.Itoa(c.Bottom), `" stroke="#888"/>`, "\n")
	for _, set := range []struct {
		labels []chartLabel
		anchor string
	}{{c.YLabels, "end"}, {c.XLabels, "middle"}} {
		for _, l := range set.labels {
			w.raws(`<text x="`, strconv.Itoa(l.X), `" y="`, strconv.Itoa(l.Y), `" text-anchor="`, set.anchor, `" font-size="11">`)
			w.text(l.Text)
			w.raw("</text>")
		}
		w.raw("\n")
	}
	w.raw(`<polyline points="`)
	w.text(c.Line)
	w.raw(`" fill="none" stroke="#2463a6" stroke-width="2"/>` + "\n")
	for _, p := range c.Points {
		w.raws(`<circle cx="`, strconv.Itoa(p.X), `" cy="`, strconv.Itoa(p.Y), `" r="4" fill="#2463a6"><title>`)
		w.text(p.Title)
		w.raw("</title></circle>")
	}
	w.raw("\n</svg>")
}

// writeOutboxTable writes a procedure's reminder outbox, newest first; the outbox page shows
// the same table.
func writeOutboxTable(w *htmlWriter, rows []outboxRow) {
	w.raw(`<table class="cl-table" id="outbox"><thead><tr><th>Created</th><th>Step</th><th>Kind</th><th>Channel</th><th>Status</th>` +
		`<th>Not before</th><th>Sent</th><th>Attempts</th><th>Reason</th></tr></thead><tbody>` + "\n")
	for _, r := range rows {
		w.raw(`<tr class="outbox-row status-`)
		w.text(r.Status)
		w.raw(`">`)
		for _, cell := range []string{r.Created, r.Label, r.Kind, r.Channel} {
			w.raw("<td>")
			w.text(cell)
			w.raw("</td>")
		}
		w.raw(`<td><strong class="outbox-status">`)
		w.text(r.Status)
		w.raw("</strong></td>")
		for _, cell := range []string{r.Due, r.SentAt, strconv.Itoa(r.Attempts)} {
			w.raw("<td>")
			w.text(cell)
			w.raw("</td>")
		}
		w.raw(`<td class="outbox-reason">`)
		w.text(r.LastError)
		w.raw("</td></tr>\n")
	}
	if len(rows) == 0 {
		w.raw(`<tr><td colspan="9">No reminder yet.</td></tr>` + "\n")
	}
	w.raw("</tbody></table>")
}

// outboxTable is writeOutboxTable for a template.
func outboxTable(rows []outboxRow) template.HTML {
	var w htmlWriter
	writeOutboxTable(&w, rows)
	return template.HTML(w.String())
}

// htmlWriter builds HTML: raw for the writer's own markup, text for any other value (element
// text or a double-quoted attribute value).
type htmlWriter struct{ strings.Builder }

func (w *htmlWriter) raw(s string) { w.WriteString(s) }

// raws is raw for each part, in order: no concatenated copy.
func (w *htmlWriter) raws(parts ...string) {
	for _, p := range parts {
		w.WriteString(p)
	}
}
func (w *htmlWriter) text(s string) { w.WriteString(html.EscapeString(s)) }
