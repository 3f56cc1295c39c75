package web

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/protocols"
)

// procedurePage is what the procedure's pages share: the view, the patient and the protocol
// version the procedure keeps, and the links and reminder outbox some of them show.
type procedurePage struct {
	View     followup.ProcedureView
	Patient  followup.Patient
	Protocol *protocols.Protocol // nil when that version is no longer installed
	Scale    *protocols.Scale
	Lang     string         // the page's language, for the protocol's texts
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
	return s.loadProcedureWith(c, id, nil)
}

// loadProcedureWith reads the procedure's record, with queue's statements in its round trip.
func (s *Server) loadProcedureWith(c echo.Context, id uuid.UUID, queue func(*pgx.Batch)) (procedurePage, error) {
	r, err := s.svc.ProcedureRecordWith(c.Request().Context(), actorOf(c), id, queue)
	if err != nil {
		return procedurePage{}, err
	}
	pp := newProcedurePage(r, s.svc.Protocols())
	pp.Lang = clinicLang(c)
	return pp, nil
}

// loadProcedureAndThread is loadProcedure with the page of the procedure's thread (audited and
// marked read, as conversation.Service.Thread does) read in the same round trip: the timeline
// shows both on every view. A refused page of the thread is answered after the procedure's
// own errors, as when the two were read apart.
func (s *Server) loadProcedureAndThread(c echo.Context) (procedurePage, conversation.Thread, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return procedurePage{}, conversation.Thread{}, err
	}
	var t conversation.Thread
	page, refused := threadPage(c)
	var queue func(*pgx.Batch)
	if refused == nil {
		queue = func(b *pgx.Batch) { refused = s.conv.QueueThread(b, actorOf(c), id, page, &t) }
	}
	pp, err := s.loadProcedureWith(c, id, queue)
	if err == nil {
		err = refused
	}
	if err != nil {
		return procedurePage{}, conversation.Thread{}, err
	}
	return pp, t, nil
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
			if l := tp.Label.In(pp.Lang); l != "" {
				return l
			}
		}
	}
	return key
}

// photoLabel names a photo on the clinic's pages: its step, or, for a concern photo (sent
// with a family message, outside the schedule), the day since the procedure it came on.
func (pp *procedurePage) photoLabel(p *followup.Photo) string {
	if p.Kind == followup.PhotoConcern {
		return tr1(pp.Lang, "cl_concern_day", strconv.Itoa(pp.day(p.ReceivedAt)))
	}
	return pp.label(p.Timepoint)
}

// day is the day offset of t from the procedure (day 0), counted in calendar days of the
// clinic's time zone, as the schedule's days are.
func (pp *procedurePage) day(t time.Time) int {
	loc := orUTC(pp.clinic.Location)
	date := func(t time.Time) time.Time {
		y, m, d := t.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return int(date(t).Sub(date(pp.View.PerformedAt)).Hours() / 24)
}

// at is an instant as the procedure's pages show it (clinicTime).
func (pp *procedurePage) at(t time.Time) string { return clinicTime(t, pp.clinic.Location) }

// on is an instant's date as the procedure's pages show it (clinicDate).
func (pp *procedurePage) on(t time.Time) string { return clinicDate(t, pp.clinic.Location) }

// viewLabel is a view's name in the page's language ("front": 正面), or its key.
func (pp *procedurePage) viewLabel(view string) string {
	if pv, ok := protocols.LookupView(view); ok {
		if l := pv.Label.In(pp.Lang); l != "" {
			return l
		}
	}
	return view
}

// activePhotos are the procedure's active photos in timeline order (timepoint, then received;
// concern photos last), as pointers into the view's photos: a Photo is a large struct to copy.
func (pp *procedurePage) activePhotos() []*followup.Photo {
	// Sorted as indices: a Photo is a large struct to move around.
	photos := pp.View.Photos
	var idx []int
	col := make([]int, len(photos))
	for i, p := range photos {
		if p.Status == "active" {
			idx = append(idx, i)
			col[i] = pp.position[p.Timepoint]
			if p.Kind == followup.PhotoConcern {
				col[i] = len(pp.position) // after every step
			}
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(col[a], col[b]), photos[a].ReceivedAt.Compare(photos[b].ReceivedAt))
	})
	out := make([]*followup.Photo, len(idx))
	for i, k := range idx {
		out[i] = &photos[k]
	}
	return out
}
