package web

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"rsc.io/qr"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

// procedurePage is what the procedure's pages share: the view, the patient and the protocol
// version the procedure keeps, and the links and reminder outbox some of them show.
type procedurePage struct {
	View     followup.ProcedureView
	Patient  followup.Patient
	Protocol *protocols.Protocol // nil when that version is no longer installed
	Scale    *protocols.Scale
	position map[string]int // timepoint key -> column

	links     []followup.ParentLink
	reminders []followup.Reminder
	clinic    followup.Clinic
}

func (s *Server) loadProcedure(c echo.Context) (procedurePage, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return procedurePage{}, err
	}
	r, err := s.svc.ProcedureRecord(c.Request().Context(), actorOf(c), id)
	if err != nil {
		return procedurePage{}, err
	}
	return newProcedurePage(r, s.svc.Protocols()), nil
}

func newProcedurePage(r followup.ProcedureRecord, reg *protocols.Registry) procedurePage {
	v := r.ProcedureView
	pp := procedurePage{View: v, Patient: r.Patient, position: map[string]int{}, links: r.Links, reminders: r.Reminders, clinic: r.Clinic}
	for i, t := range v.Timepoints {
		pp.position[t.Key] = i
	}
	if p, err := reg.Get(v.Protocol, v.ProtocolVersion); err == nil {
		pp.Protocol = p
		pp.Scale, _ = reg.Scale(p.Scale)
	}
	return pp
}

// label is a timepoint's name in the protocol, or its key.
func (pp *procedurePage) label(key string) string {
	if pp.Protocol != nil {
		if tp, ok := pp.Protocol.Timepoint(key); ok {
			if l := tp.Label.In(protocols.EN); l != "" {
				return l
			}
		}
	}
	return key
}

// activePhotos are the procedure's active photos in timeline order (timepoint, then received).
func (pp *procedurePage) activePhotos() []followup.Photo {
	// Sorted as indices: a Photo is a large struct to move around.
	photos := pp.View.Photos
	var idx []int
	col := make([]int, len(photos))
	for i, p := range photos {
		if p.Status == "active" {
			idx = append(idx, i)
			col[i] = pp.position[p.Timepoint]
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(col[a], col[b]), photos[a].ReceivedAt.Compare(photos[b].ReceivedAt))
	})
	out := make([]followup.Photo, len(idx))
	for i, k := range idx {
		out[i] = photos[k]
	}
	return out
}

type timelineColumn struct {
	Key, Label, State string
	DueOn             protocols.Date
	Day               int
}

// timelineCell is one cell of the grid.
type timelineCell struct {
	Required bool            // the protocol asks for this view at this timepoint
	Upcoming bool            // the timepoint's window has not opened yet
	Photo    *followup.Photo // the newest active photo, if any
	Count    int             // active photos in the cell
}

type timelineRow struct {
	View, Label string
	Cells       []timelineCell
}

type timelineData struct {
	procedurePage
	Columns []timelineColumn
	Rows    []timelineRow
	Grid    template.HTML // the grid's head and body, see timelineGrid
	Links   []followup.ParentLink
	Now     time.Time
	Photos  []option // the photos a retake can be asked for, or withdrawn
	// Withdrawn lists the photos withdrawn from the record (kept, out of the grid).
	Withdrawn []string
	Levels    []option // the grading scale's levels
	// The forms' <option> lists, written by optionsHTML.
	StepOptions, ViewOptions, LevelOptions, PhotoOptions template.HTML
	Chart                                                gradeChart
	Grades                                               []gradeRow
	UploadID                                             string
	Active                                               bool
	Outbox                                               []outboxRow // the procedure's reminders, newest first
	Zone                                                 string      // the clinic's time zone, which the outbox's times are in
}

type gradeRow struct {
	Timepoint, Level, Note string
	At                     time.Time
}

// timeline is the procedure's page: the protocol's timepoints across, views down, the newest
// thumbnail in each cell. It decodes no image: thumbnails are made once, after upload.
func (s *Server) timeline(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	return s.page(c, http.StatusOK, "timeline", pp.Patient.DisplayName, newTimelineData(pp))
}

func newTimelineData(pp procedurePage) *timelineData {
	d := &timelineData{procedurePage: pp, Links: pp.links, Now: time.Now(), UploadID: newUploadID(),
		Active: pp.View.Status == followup.StatusActive}
	var views []string
	for _, t := range pp.View.Timepoints {
		d.Columns = append(d.Columns, timelineColumn{Key: t.Key, Label: pp.label(t.Key), State: string(t.State), DueOn: t.DueOn,
			Day: int(t.DueAt.Sub(pp.View.PerformedAt).Round(24*time.Hour) / (24 * time.Hour))})
		for _, v := range t.Views {
			if !slices.Contains(views, v) {
				views = append(views, v)
			}
		}
	}
	photos := pp.activePhotos()
	for _, p := range photos {
		if !slices.Contains(views, p.View) {
			views = append(views, p.View)
		}
	}
	slices.SortStableFunc(views, func(a, b string) int { return cmp.Compare(protocols.ViewOrder(a), protocols.ViewOrder(b)) })
	for _, v := range views {
		row := timelineRow{View: v, Label: v, Cells: make([]timelineCell, len(d.Columns))}
		if pv, ok := protocols.LookupView(v); ok {
			row.Label = pv.Label.In(protocols.EN)
		}
		for i, t := range pp.View.Timepoints {
			row.Cells[i].Required = slices.Contains(t.Views, v)
			row.Cells[i].Upcoming = t.State == protocols.StateUpcoming
		}
		for i := range photos {
			p := &photos[i]
			if col, ok := pp.position[p.Timepoint]; ok && p.View == v {
				row.Cells[col].Photo = p // timeline order: the newest wins
				row.Cells[col].Count++
			}
		}
		d.Rows = append(d.Rows, row)
	}
	for _, p := range photos {
		d.Photos = append(d.Photos, option{Value: p.ID.String(), Label: pp.label(p.Timepoint) + " · " + p.View + " · received " + p.ReceivedAt.Format("2006-01-02 15:04")})
	}
	for _, p := range pp.View.Photos {
		if p.Status == "withdrawn" {
			d.Withdrawn = append(d.Withdrawn, pp.label(p.Timepoint)+" · "+p.View+" · received "+p.ReceivedAt.Format("2006-01-02 15:04"))
		}
	}
	if pp.Scale != nil {
		for _, l := range pp.Scale.Levels {
			d.Levels = append(d.Levels, option{Value: l.Key, Label: l.Label.In(protocols.EN)})
		}
	}
	for _, a := range pp.View.Assessments {
		d.Grades = append(d.Grades, gradeRow{Timepoint: pp.label(a.Timepoint), Level: d.levelLabel(a.Level), Note: a.Note, At: a.CreatedAt})
	}
	d.Chart = newGradeChart(pp, d.Columns)
	d.Outbox, d.Zone = outboxRows(pp)
	d.Grid = timelineGrid(pp.View.ID, d.Columns, d.Rows)
	steps := make([]option, len(d.Columns))
	for i, c := range d.Columns {
		steps[i] = option{c.Key, c.Label}
	}
	rows := make([]option, len(d.Rows))
	for i, r := range d.Rows {
		rows[i] = option{r.View, r.Label}
	}
	d.StepOptions, d.ViewOptions = optionsHTML(steps), optionsHTML(rows)
	d.LevelOptions, d.PhotoOptions = optionsHTML(d.Levels), optionsHTML(d.Photos)
	return d
}

func (d *timelineData) levelLabel(key string) string {
	for _, l := range d.Levels {
		if l.Value == key {
			return l.Label
		}
	}
	return key
}

// gradeChart is the grade history drawn as SVG on the server: grade (worst at the bottom)
// against days since the procedure, the latest grade of each timepoint.
type gradeChart struct {
	Width, Height int
	Points        []chartPoint
	Line          string // polyline points
	YLabels       []chartLabel
	XLabels       []chartLabel
	Left, Bottom  int
}

type chartPoint struct {
	X, Y  int
	Title string
}

type chartLabel struct {
	X, Y int
	Text string
}

func newGradeChart(pp procedurePage, cols []timelineColumn) gradeChart {
	g := gradeChart{Width: 480, Height: 180, Left: 110, Bottom: 150}
	if pp.Scale == nil || len(pp.Scale.Levels) == 0 || len(cols) == 0 {
		return g
	}
	levels := pp.Scale.Levels
	maxDay := max(1, cols[len(cols)-1].Day)
	minDay := min(0, cols[0].Day)
	x := func(day int) int { return g.Left + (day-minDay)*(g.Width-g.Left-20)/max(1, maxDay-minDay) }
	y := func(level int) int {
		if len(levels) == 1 {
			return g.Bottom / 2
		}
		return g.Bottom - 10 - level*(g.Bottom-30)/(len(levels)-1)
	}
	for i, l := range levels {
		g.YLabels = append(g.YLabels, chartLabel{X: g.Left - 8, Y: y(i) + 4, Text: l.Label.In(protocols.EN)})
	}
	latest := map[string]followup.Assessment{}
	for _, a := range pp.View.Assessments { // oldest first: the last one wins
		latest[a.Timepoint] = a
	}
	var pts []string
	for _, col := range cols {
		a, ok := latest[col.Key]
		if !ok {
			continue
		}
		li := slices.IndexFunc(levels, func(l protocols.Level) bool { return l.Key == a.Level })
		if li < 0 {
			continue
		}
		p := chartPoint{X: x(col.Day), Y: y(li), Title: fmt.Sprintf("Day %d: %s", col.Day, levels[li].Label.In(protocols.EN))}
		g.Points = append(g.Points, p)
		g.XLabels = append(g.XLabels, chartLabel{X: p.X, Y: g.Bottom + 18, Text: "d" + strconv.Itoa(col.Day)})
		pts = append(pts, strconv.Itoa(p.X)+","+strconv.Itoa(p.Y))
	}
	g.Line = strings.Join(pts, " ")
	return g
}

// newUploadID makes the idempotency key of one upload form.
func newUploadID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "web-" + hex.EncodeToString(b)
}

type linkData struct {
	procedurePage
	Link   followup.ParentLink
	QRPath string
	QRSize int
}

// linkCreate makes a parent link and shows it this once, as text and as a QR code drawn as
// inline SVG from the code's modules (the token is not stored, so it cannot be shown again).
func (s *Server) linkCreate(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	l, err := s.svc.CreateLink(c.Request().Context(), actorOf(c), pp.View.ID, c.FormValue("rotate") == "yes")
	if err != nil {
		return err
	}
	code, err := qr.Encode(l.URL, qr.M)
	if err != nil {
		return err
	}
	var path strings.Builder
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if code.Black(x, y) {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x+4, y+4) // a 4-module quiet zone
			}
		}
	}
	return s.page(c, http.StatusCreated, "link", "Parent link", linkData{procedurePage: pp, Link: l, QRPath: path.String(), QRSize: code.Size + 8})
}

func (s *Server) linkRevoke(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	linkID, err := pathID(c, "link")
	if err != nil {
		return err
	}
	ctx, a := c.Request().Context(), actorOf(c)
	// The link must belong to this procedure: the URL names both.
	links, err := s.svc.Links(ctx, a, id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(links, func(l followup.ParentLink) bool { return l.ID == linkID }) {
		return followup.Errorf(followup.ENOTFOUND, "link not found")
	}
	if err := s.svc.RevokeLink(ctx, a, linkID); err != nil {
		return err
	}
	s.flash(c, "Link revoked: it no longer opens.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#links")
}

// clinicUpload takes a clinic photo from the procedure page's form (multipart, streamed by
// takeUpload) and returns to the page.
func (s *Server) clinicUpload(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	if _, _, err := s.takeUpload(c, actorOf(c), id); err != nil {
		return err
	}
	s.flash(c, "Photo received. Its thumbnail appears in a moment.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String())
}

type comparePhoto struct {
	followup.Photo
	Label string
}

type photoOption struct {
	ID    uuid.UUID
	Label string
}

type compareData struct {
	procedurePage
	Options []photoOption // every active photo, to choose either side
	A, B    comparePhoto
	Steps   []compareStep
	Prev    string
	Next    string
	SameSet bool
}

type compareStep struct {
	URL, Label string
	Current    bool
}

// compare shows two photos side by side: by default the first photo of a view (the baseline)
// against its latest; ?a= and ?b= choose any two photos of the procedure.
func (s *Server) compare(c echo.Context) error {
	pp, err := s.loadProcedure(c)
	if err != nil {
		return err
	}
	photos := pp.activePhotos()
	find := func(param string) (*followup.Photo, error) {
		v := c.QueryParam(param)
		if v == "" {
			return nil, nil
		}
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, followup.Errorf(followup.ENOTFOUND, "photo not found")
		}
		i := slices.IndexFunc(pp.View.Photos, func(p followup.Photo) bool { return p.ID == id })
		if i < 0 {
			return nil, followup.Errorf(followup.ENOTFOUND, "photo not found")
		}
		return &pp.View.Photos[i], nil
	}
	a, err := find("a")
	if err != nil {
		return err
	}
	b, err := find("b")
	if err != nil {
		return err
	}
	if len(photos) == 0 && (a == nil || b == nil) {
		return followup.Errorf(followup.ENOTFOUND, "This procedure has no photos to compare yet.")
	}
	if b == nil {
		view := photos[len(photos)-1].View
		if a != nil {
			view = a.View
		}
		for i := range photos {
			if photos[i].View == view {
				b = &photos[i]
			}
		}
	}
	if a == nil {
		for i := range photos {
			if photos[i].View == b.View {
				a = &photos[i]
				break
			}
		}
	}
	d := compareData{procedurePage: pp, A: comparePhoto{*a, pp.label(a.Timepoint)}, B: comparePhoto{*b, pp.label(b.Timepoint)}}
	for _, p := range photos {
		d.Options = append(d.Options, photoOption{ID: p.ID, Label: pp.label(p.Timepoint) + " · " + p.View})
	}
	base := "/procedures/" + pp.View.ID.String() + "/compare?a=" + a.ID.String() + "&b="
	var same []followup.Photo
	for _, p := range photos {
		if p.View == b.View {
			same = append(same, p)
		}
	}
	for i, p := range same {
		cur := p.ID == b.ID
		d.Steps = append(d.Steps, compareStep{URL: base + url.QueryEscape(p.ID.String()), Label: pp.label(p.Timepoint), Current: cur})
		if cur {
			if i > 0 {
				d.Prev = base + same[i-1].ID.String()
			}
			if i+1 < len(same) {
				d.Next = base + same[i+1].ID.String()
			}
		}
	}
	return s.page(c, http.StatusOK, "compare", "Compare", d)
}

func (s *Server) assessSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	_, err = s.svc.Assess(c.Request().Context(), actorOf(c), id, followup.NewAssessment{
		Timepoint: c.FormValue("timepoint"), Level: c.FormValue("level"), Note: c.FormValue("note")})
	if err != nil {
		return err
	}
	s.flash(c, "Grade saved.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#grades")
}

// photoWithdraw takes a photo out of the record (kept, marked, audited; see
// followup.WithdrawPhoto).
func (s *Server) photoWithdraw(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	photo, err := uuid.Parse(c.FormValue("photo_id"))
	if err != nil {
		return followup.Errorf(followup.EINVALID, "photo_id: choose a photo")
	}
	if _, err := s.svc.WithdrawPhoto(c.Request().Context(), actorOf(c), id, photo, strings.TrimSpace(c.FormValue("reason"))); err != nil {
		return err
	}
	s.flash(c, "Photo withdrawn: it stays stored and audited, marked withdrawn, and leaves the exports.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#withdraw")
}

func (s *Server) retakeSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	_, err = s.svc.SendMessage(c.Request().Context(), actorOf(c), id, followup.NewMessage{
		Kind: "retake", PhotoID: c.FormValue("photo_id"), Body: c.FormValue("body")})
	if err != nil {
		return err
	}
	s.flash(c, "Retake request sent: the family sees it on their page.")
	return c.Redirect(http.StatusSeeOther, "/procedures/"+id.String()+"#retake")
}
