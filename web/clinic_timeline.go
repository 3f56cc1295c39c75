package web

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/protocols"
)

type timelineData struct {
	procedurePage
	Proc    string // the procedure's path, which its forms post under
	Heading string // the protocol, its version, the body site, the date and the status
	Columns []timelineColumn
	Rows    []timelineRow
	Links   []followup.ParentLink
	Now     time.Time
	Photos  []option // the photos a retake can be asked for, or withdrawn
	// Withdrawn lists the photos withdrawn from the record (kept, out of the grid).
	Withdrawn []string
	Levels    []option // the grading scale's levels
	// The forms' <option> lists of the steps and the views.
	StepOptions, ViewOptions []option
	Chart                    gradeChart
	Grades                   []gradeRow
	UploadID                 string
	Active                   bool
	Outbox                   []outboxRow // the procedure's reminders, newest first
	Zone                     string      // the clinic's time zone, which the outbox's times are in
	// Concerns are the photos the family sent outside the schedule, in their own row;
	// ConcernOptions the grade form's choice of them.
	Concerns       []concernCell
	ConcernOptions []option
	Talk           clinicTalk // the conversation with the family (clinic_talk.go)
}

type gradeRow struct {
	Timepoint, Level, Note string
	At                     time.Time
}

// timeline is the procedure's page: the protocol's timepoints across, views down, the newest
// thumbnail in each cell. It decodes no image: thumbnails are made once, after upload.
func (s *Server) timeline(c echo.Context) error {
	pp, thread, err := s.loadProcedureAndThread(c)
	if err != nil {
		return err
	}
	d := newTimelineData(pp)
	d.Talk = newClinicTalk(pp, thread, replyForm{})
	return s.page(c, http.StatusOK, pp.Patient.DisplayName, timelinePage(d))
}

func newTimelineData(pp procedurePage) *timelineData {
	proc := "/procedures/" + pp.View.ID.String()
	d := &timelineData{procedurePage: pp, Proc: proc, Links: pp.links, Now: time.Now(), UploadID: newUploadID(),
		Active: pp.View.Status == followup.StatusActive}
	d.Heading = d.protocolTitle() + " v" + strconv.Itoa(pp.View.ProtocolVersion) + " · " + pp.View.BodySite + " · " +
		pp.on(pp.View.PerformedAt) + " · " + procStatusIn(pp.Lang, pp.View.Status)
	photos := pp.activePhotos()
	d.Columns, d.Rows = newTimelineGrid(&pp, photos, proc)
	d.Photos = make([]option, len(photos))
	for i, p := range photos {
		d.Photos[i] = option{Value: p.ID.String(), Label: pp.photoChoice(p)}
		if p.Kind == followup.PhotoConcern { // outside the schedule: a row of their own
			d.Concerns = append(d.Concerns, pp.concernCell(p))
			d.ConcernOptions = append(d.ConcernOptions, d.Photos[i])
		}
	}
	for i := range pp.View.Photos {
		if p := &pp.View.Photos[i]; p.Status == "withdrawn" {
			d.Withdrawn = append(d.Withdrawn, pp.photoChoice(p))
		}
	}
	if pp.Scale != nil {
		for _, l := range pp.Scale.Levels {
			d.Levels = append(d.Levels, option{Value: l.Key, Label: l.Label.In(pp.Lang)})
		}
	}
	for _, a := range pp.View.Assessments {
		d.Grades = append(d.Grades, gradeRow{Timepoint: gradedLabel(pp, a), Level: d.levelLabel(a.Level), Note: a.Note, At: a.CreatedAt})
	}
	d.Chart = newGradeChart(pp, d.Columns)
	d.Outbox, d.Zone = outboxRows(pp)
	d.StepOptions = make([]option, len(d.Columns))
	for i, c := range d.Columns {
		d.StepOptions[i] = option{c.Key, c.Label}
	}
	d.ViewOptions = make([]option, len(d.Rows))
	for i, r := range d.Rows {
		d.ViewOptions[i] = option{r.View, r.Label}
	}
	return d
}

// option is one choice of a <select>.
type option struct{ Value, Label string }

// protocolTitle is the procedure's protocol by its title in the page's language, or its id
// when that version is no longer installed.
func (d *timelineData) protocolTitle() string {
	if d.Protocol != nil {
		return d.Protocol.Title.In(d.Lang)
	}
	return d.View.Protocol
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
		g.YLabels = append(g.YLabels, chartLabel{X: g.Left - 8, Y: y(i) + 4, Text: l.Label.In(pp.Lang)})
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
		p := chartPoint{X: x(col.Day), Y: y(li), Title: trf(pp.Lang, "cl_chart_point", strconv.Itoa(col.Day), levels[li].Label.In(pp.Lang))}
		g.Points = append(g.Points, p)
		g.XLabels = append(g.XLabels, chartLabel{X: p.X, Y: g.Bottom + 18, Text: "d" + strconv.Itoa(col.Day)})
		pts = append(pts, strconv.Itoa(p.X)+","+strconv.Itoa(p.Y))
	}
	g.Line = strings.Join(pts, " ")
	return g
}
