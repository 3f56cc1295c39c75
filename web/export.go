package web

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/export"
	"github.com/dermfollow/dermfollow/protocols"
)

// exportDownloadExpiry is how long a signed archive URL stays valid: long enough to start the
// download, too short to be worth passing around.
const exportDownloadExpiry = 5 * time.Minute

// exportJSON adds the download link of a finished export: the route that audits the download.
func exportJSON(e export.Export) export.Export {
	if e.Status == export.StatusDone {
		e.DownloadURL = "/api/v1/exports/" + e.ID.String() + "/download"
	}
	return e
}

func (s *Server) apiStartExport(c echo.Context) error {
	var in export.Request
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	e, err := s.export.Start(c.Request().Context(), actorOf(c), in)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/exports/"+e.ID.String())
	return c.JSON(http.StatusAccepted, exportJSON(e))
}

func (s *Server) apiListExports(c echo.Context) error {
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return followup.Errorf(followup.EINVALID, "limit must be a number from 1 to 100")
		}
		limit = n
	}
	list, err := s.export.List(c.Request().Context(), actorOf(c), limit)
	if err != nil {
		return err
	}
	out := make([]export.Export, len(list))
	for i, e := range list {
		out[i] = exportJSON(e)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"exports": out})
}

func (s *Server) apiGetExport(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	e, err := s.export.Get(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, exportJSON(e))
}

// apiDownloadExport records the download and then redirects to a short-lived signed URL of
// the store (S3), or streams the archive where the store has none (the local directory).
func (s *Server) apiDownloadExport(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	d, err := s.export.Download(c.Request().Context(), actorOf(c), id, exportDownloadExpiry)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if d.URL != "" {
		return c.Redirect(http.StatusFound, d.URL)
	}
	defer d.Body.Close()
	h.Set("Content-Disposition", `attachment; filename="`+d.Name+`"`)
	h.Set("Content-Length", itoa(d.Size))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	return c.Stream(http.StatusOK, "application/zip", d.Body)
}

// The researcher's export page: a form to start an export and the clinic's recent exports with
// their progress and download links. It runs in the clinicians' session (session.go) with
// their CSRF protection and error pages; the download link is the audited API route, which
// the session cookie opens.

type exportPageData struct {
	Protocols []exportProtocolOption
	Views     []exportViewOption
	In        export.Request
	Error     string
	Exports   []export.Export
	// Busy makes the page refresh itself while an export is queued or running.
	Busy bool
}

type exportProtocolOption struct {
	ID, Title string
	Selected  bool
}

type exportViewOption struct {
	Name, Label string
	Checked     bool
}

func (s *Server) exportPage(c echo.Context) error {
	return s.renderExportPage(c, http.StatusOK, export.Request{}, "")
}

func (s *Server) renderExportPage(c echo.Context, status int, in export.Request, problem string) error {
	ctx := c.Request().Context()
	a := actorOf(c)
	list, err := s.export.List(ctx, a, 20)
	if err != nil {
		return err
	}
	d := exportPageData{In: in, Error: problem}
	for i, e := range list {
		list[i] = exportJSON(e)
		if e.Status == export.StatusQueued || e.Status == export.StatusRunning {
			d.Busy = true
		}
	}
	d.Exports = list
	seen := map[string]bool{}
	for _, p := range s.svc.Protocols().Protocols() {
		if seen[p.ID] {
			continue
		}
		seen[p.ID] = true
		d.Protocols = append(d.Protocols, exportProtocolOption{ID: p.ID, Title: p.Title.In(protocols.EN), Selected: p.ID == in.Protocol})
	}
	for _, v := range protocols.Views() {
		d.Views = append(d.Views, exportViewOption{Name: v.Name, Label: v.Label.In(protocols.EN),
			Checked: len(in.Views) == 0 || slices.Contains(in.Views, v.Name)})
	}
	return s.page(c, status, tr(clinicLang(c), "cl_title_exports"), exportIndexPage(d))
}

// exportPageStart is the form's POST: start the export, then back to the page (which shows
// its progress), or the form again with the problem.
func (s *Server) exportPageStart(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return followup.Errorf(followup.EINVALID, "the form could not be read")
	}
	in := export.Request{Protocol: form.Get("protocol"), From: form.Get("from"), To: form.Get("to"),
		Views: form["views"], AgeInMonths: form.Get("age_in_months") == "yes", IncludeUnscheduled: form.Get("include_unscheduled") == "yes"}
	if _, err := s.export.Start(c.Request().Context(), actorOf(c), in); err != nil {
		if followup.ErrorCode(err) == followup.EINVALID {
			return s.renderExportPage(c, http.StatusUnprocessableEntity, in, followup.ErrorMessage(err))
		}
		return err
	}
	s.flashIn(c, "cl_export_started")
	return c.Redirect(http.StatusSeeOther, "/exports")
}
