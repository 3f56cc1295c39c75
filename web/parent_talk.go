package web

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/protocols"
)

// The conversation on the family's page ("Message the clinic"): the thread, oldest first and
// newest at the bottom, the family's own messages, the clinic's answers and retake requests,
// and the form to write, which posts to /p/messages (parent_messages.go) with or without the
// page's script.

// talkView is the conversation section of the family's page.
type talkView struct {
	// Phone and Hours are the clinic's, for the always-visible line on when messages are read
	// and that anything urgent is a phone call (clinicContactLine); "" when not known.
	Phone, Hours string
	Messages     []talkMessage
	Older        string // the page of earlier messages, or ""
	// Open is false once the follow-up has ended: the clinic takes no messages through it.
	Open  bool
	Form  talkForm
	Flash string
	// FlashError marks Flash as a failure.
	FlashError bool
}

// talkMessage is one message of the thread, in the page's language.
type talkMessage struct {
	ID     string
	Mine   bool   // the family's own
	Class  string // msg-family, msg-note or msg-retake
	Author string
	Step   string
	When   string
	Body   string
	Photos []talkPhoto
	Card   *photoCard // where to send a retake
}

// talkPhoto is a concern photo of a family message.
type talkPhoto struct {
	ID    string
	Ready bool // its thumbnail is made
}

// talkForm is the message form: its action, the ids that make a second send of the same
// message (or of its photo) return the first, and, after a refused post, the text as written
// and why it was refused.
type talkForm struct {
	Action    string
	MessageID string
	UploadID  string
	PhotoIDs  []string // photos a refused post had stored, sent again with the text
	Body      string
	ErrorKey  string // the catalogue key of why the post was refused
	Error     string // its text, in the page's language
	Field     string // the field refused, for the page and its tests
}

// talkContact is the clinic's phone and the hours its messages are read, for the line on when
// messages are read (either may be empty: the line then says less).
func talkContact(c followup.ParentClinic) (phone, hours string) { return c.Phone, c.Hours }

// talkReadLine says when the clinic reads messages: in its hours, named when known.
func talkReadLine(hours, lang string) string {
	if hours != "" {
		return trf(lang, "talk_read_hours", hours)
	}
	return tr(lang, "talk_read")
}

// newTalkView builds the conversation section from the family's thread. flash is the page's
// outcome code after a post (msg-...); form carries a refused post's text, or is the zero
// value (a fresh form).
func newTalkView(h followup.ParentHome, t conversation.Thread, lang, flash string, form talkForm, cards *cardMaker) talkView {
	v := talkView{Open: h.View.Status == followup.StatusActive, Form: form}
	v.Phone, v.Hours = talkContact(h.Clinic)
	if v.Form.MessageID == "" {
		v.Form.MessageID = "m-" + uuid.NewString()
	}
	if v.Form.UploadID == "" {
		v.Form.UploadID = uuid.NewString()
	}
	if v.Form.ErrorKey != "" {
		v.Form.Error = tr(lang, v.Form.ErrorKey)
	}
	if t.Older != "" {
		v.Older = parentHome + "?before=" + t.Older + "#talk"
	}
	v.Flash, v.FlashError = talkFlash(flash, lang)
	for _, m := range t.Messages {
		v.Messages = append(v.Messages, newTalkMessage(h, m, lang, cards))
	}
	return v
}

func newTalkMessage(h followup.ParentHome, m conversation.Message, lang string, cards *cardMaker) talkMessage {
	at := m.CreatedAt.In(h.Clinic.Location)
	tm := talkMessage{ID: m.ID.String(), Body: m.Body, When: formatDay(at, lang) + " " + at.Format("15:04")}
	switch {
	case m.Author == conversation.AuthorFamily:
		tm.Mine, tm.Class, tm.Author = true, "msg-family", tr(lang, "talk_you")
		for _, id := range m.PhotoIDs {
			i := slices.IndexFunc(h.View.Photos, func(p followup.Photo) bool { return p.ID == id })
			tm.Photos = append(tm.Photos, talkPhoto{ID: id.String(), Ready: i >= 0 && h.View.Photos[i].ThumbsReady})
		}
		return tm
	case m.Kind == "retake":
		tm.Class, tm.Author = "msg-retake", tr(lang, "retake")
	default:
		tm.Class, tm.Author = "msg-note", tr(lang, "note")
	}
	if m.Timepoint != "" {
		label := h.Labels[m.Timepoint].In(lang)
		if label == "" {
			label = m.Timepoint
		}
		tm.Step = trf(lang, "for_step", label)
	}
	if m.Kind == "retake" && len(m.PhotoIDs) == 1 {
		tm.Card = retakeCard(h, m.PhotoIDs[0], cards)
	}
	return tm
}

// retakeCard is the card to send a retake of photo with, for a photo of a family step (a
// concern photo is answered with a new message instead).
func retakeCard(h followup.ParentHome, photo uuid.UUID, cards *cardMaker) *photoCard {
	i := slices.IndexFunc(h.View.Photos, func(ph followup.Photo) bool { return ph.ID == photo })
	if i < 0 || h.View.Photos[i].Kind == followup.PhotoConcern {
		return nil
	}
	ph := h.View.Photos[i]
	j := slices.IndexFunc(h.View.Timepoints, func(t followup.Timepoint) bool { return t.Key == ph.Timepoint })
	if j < 0 || h.View.Timepoints[j].Who == protocols.Clinic {
		return nil
	}
	c := cards.card(ph.Timepoint, ph.View)
	// A retake asks for a new photo even though one has arrived.
	c.Done, c.DoneID = false, ""
	c.PrevID = ph.ID.String()
	return &c
}

// talkFlash is the text of a message post's outcome code (msg-...), and whether it reports a
// failure; "" for any other code.
func talkFlash(code, lang string) (string, bool) {
	switch code {
	case "msg-sent":
		return tr(lang, "talk_sent"), false
	case "msg-photo":
		return tr(lang, "talk_sent_no_photo"), true
	}
	if r, ok := strings.CutPrefix(code, "msg-reject-"); ok {
		if text, _ := flashText("reject-"+r, lang); text != "" {
			return trf(lang, "talk_sent_photo_refused", text), true
		}
	}
	return "", false
}

// bodyProblem names what is wrong with a message's text as the form sent it (the catalogue
// key of the family's explanation), or "" when it can be sent. raw may have been cut off at
// the form's read limit (more than 4 bytes a character).
func bodyProblem(raw string) string {
	switch {
	case len(raw) > 4*conversation.MaxBody:
		return "talk_err_long"
	case checkText("body", raw) != nil:
		return "talk_err_text"
	}
	switch n := utf8.RuneCountInString(strings.TrimSpace(raw)); {
	case n == 0:
		return "talk_err_empty"
	case n > conversation.MaxBody:
		return "talk_err_long"
	}
	return ""
}

// keptText is a refused message's text as the form shows it again: invalid UTF-8 and control
// characters (other than line breaks and tabs) left out, at most what the form takes.
func keptText(raw string) string {
	s := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r < 0xa0 {
			return -1
		}
		return r
	}, strings.ToValidUTF8(raw, ""))
	if utf8.RuneCountInString(s) > 2*conversation.MaxBody {
		s = string([]rune(s)[:2*conversation.MaxBody])
	}
	return s
}

// talkCounter is the character counter's text for a body ("12 / 2000").
func talkCounter(body string) string {
	return strconv.Itoa(utf8.RuneCountInString(body)) + " / " + strconv.Itoa(conversation.MaxBody)
}
