package web

import (
	"cmp"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
)

// The conversation on the procedure's page: the thread (oldest first, newest at the bottom)
// with the family's unread messages marked and who at the clinic answered or handled each, a
// one-form reply (message_reply.go) and a "mark handled" button per family message
// (message_handle.go); and the photos the family sent outside the schedule, in their own row
// of the timeline.

// clinicTalk is the conversation section of the procedure's page.
type clinicTalk struct {
	Messages []clinicMessage
	Older    string // the page of earlier messages, or ""
	Unread   int    // family messages no one had read before this view
	Form     replyForm
}

// replyForm is the reply form: empty, or a refused reply's text as written and why.
type replyForm struct {
	Body  string
	Error string
}

// clinicMessage is one message of the thread as the clinic reads it.
type clinicMessage struct {
	conversation.Message
	Class   string // msg-family, msg-note or msg-retake
	Who     string // "Family", or the colleague who wrote it
	Step    string // the step a retake or note is about
	When    string
	Handled string // who marked a family message handled, and when
	Photos  []talkThumb
}

// talkThumb is a photo of a message: a concern photo (opening the comparison with the
// baseline) or the photo a retake request names.
type talkThumb struct {
	ID, Label, Href string
	Ready           bool
}

// concernCell is a concern photo in the timeline's concern row.
type concernCell struct {
	Photo   followup.Photo
	Day     int
	On      string // the date it arrived, in the clinic's zone
	Compare string // the comparison with the baseline
}

// clinicThread reads the procedure's thread for the page, which audits the view and marks
// the family's messages read (conversation.Service.Thread).
func (s *Server) clinicThread(c echo.Context, pp procedurePage, form replyForm) (clinicTalk, error) {
	page, err := threadPage(c)
	if err != nil {
		return clinicTalk{}, err
	}
	t, err := s.conv.Thread(c.Request().Context(), actorOf(c), pp.View.ID, page)
	if err != nil {
		return clinicTalk{}, err
	}
	return newClinicTalk(pp, t, form), nil
}

func newClinicTalk(pp procedurePage, t conversation.Thread, form replyForm) clinicTalk {
	ct := clinicTalk{Form: form}
	if t.Older != "" {
		ct.Older = "/procedures/" + pp.View.ID.String() + "?before=" + t.Older + "#conversation"
	}
	for _, m := range t.Messages {
		cm := clinicMessage{Message: m, Class: "msg-" + m.Kind, When: pp.at(m.CreatedAt)}
		switch {
		case m.Author == conversation.AuthorFamily:
			cm.Who = tr(pp.Lang, "cl_talk_family")
			if m.Unread {
				ct.Unread++
			}
			if m.HandledAt != nil {
				cm.Handled = trf(pp.Lang, "cl_talk_handled_by", nameOr(pp.Lang, m.HandledByName), pp.at(*m.HandledAt))
			}
		case m.Kind == "retake":
			cm.Who = trf(pp.Lang, "cl_talk_retake_from", nameOr(pp.Lang, m.AuthorName))
		default:
			cm.Who = trf(pp.Lang, "cl_talk_answer_from", nameOr(pp.Lang, m.AuthorName))
		}
		if m.Timepoint != "" {
			cm.Step = pp.label(m.Timepoint)
		}
		for _, id := range m.PhotoIDs {
			cm.Photos = append(cm.Photos, pp.talkThumb(id))
		}
		ct.Messages = append(ct.Messages, cm)
	}
	return ct
}

// nameOr is a colleague's name, or what to say when the account has none.
func nameOr(lang, name string) string {
	if name == "" {
		return tr(lang, "cl_talk_colleague")
	}
	return name
}

func (pp *procedurePage) talkThumb(id uuid.UUID) talkThumb {
	i := slices.IndexFunc(pp.View.Photos, func(p followup.Photo) bool { return p.ID == id })
	if i < 0 {
		return talkThumb{ID: id.String(), Label: tr(pp.Lang, "cl_talk_photo")}
	}
	p := &pp.View.Photos[i]
	return talkThumb{ID: id.String(), Label: pp.photoLabel(p), Href: pp.compareWithBaseline(p), Ready: p.ThumbsReady}
}

// baseline is the first scheduled photo of the timeline (the earliest step's, the first
// received there), or nil: the first of activePhotos that is not a concern photo, found
// without sorting, as the page asks for it per concern photo and per photo of the thread.
func (pp *procedurePage) baseline() *followup.Photo {
	var b *followup.Photo
	for i := range pp.View.Photos {
		p := &pp.View.Photos[i]
		if p.Status != "active" || p.Kind == followup.PhotoConcern {
			continue
		}
		if b == nil || cmp.Or(cmp.Compare(pp.position[p.Timepoint], pp.position[b.Timepoint]), p.ReceivedAt.Compare(b.ReceivedAt)) < 0 {
			b = p
		}
	}
	return b
}

// compareWithBaseline is the comparison of p (right) with the baseline (left).
func (pp *procedurePage) compareWithBaseline(p *followup.Photo) string {
	u := "/procedures/" + pp.View.ID.String() + "/compare?b=" + p.ID.String()
	if b := pp.baseline(); b != nil && b.ID != p.ID {
		u = "/procedures/" + pp.View.ID.String() + "/compare?a=" + b.ID.String() + "&b=" + p.ID.String()
	}
	return u
}

func (pp *procedurePage) concernCell(p *followup.Photo) concernCell {
	return concernCell{Photo: *p, Day: pp.day(p.ReceivedAt), On: pp.on(p.ReceivedAt), Compare: pp.compareWithBaseline(p)}
}

// photoChoice is a photo as a form's <select> lists it.
func (pp *procedurePage) photoChoice(p *followup.Photo) string {
	received := tr1(pp.Lang, "cl_talk_received", pp.at(p.ReceivedAt))
	if p.View == "" {
		return pp.photoLabel(p) + " · " + received
	}
	return pp.photoLabel(p) + " · " + pp.viewLabel(p.View) + " · " + received
}

// gradedLabel names what a grade is of: a step, or a concern photo.
func gradedLabel(pp procedurePage, a followup.Assessment) string {
	if a.PhotoID != nil {
		if i := slices.IndexFunc(pp.View.Photos, func(p followup.Photo) bool { return p.ID == *a.PhotoID }); i >= 0 {
			return pp.photoLabel(&pp.View.Photos[i])
		}
		return tr(pp.Lang, "cl_concern_photo")
	}
	return pp.label(a.Timepoint)
}
