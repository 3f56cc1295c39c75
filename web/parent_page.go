package web

import (
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/conversation"
	"github.com/dermfollow/dermfollow/protocols"
)

// parentPage is what parentHomeView shows. Every text is already in the page's
// language; the template only places it.
type parentPage struct {
	Lang         string
	T            map[string]string
	Heading      string
	Title        string
	TreatedOn    string
	Instructions []string
	Clinic       followup.ParentClinic
	PhoneURL     string // tel: of the clinic's phone, or ""
	MailURL      string // mailto: of the clinic's email, or ""
	// Care is the aftercare that applies now: the step due now, or else the last one passed.
	Care       []string
	CareFor    string
	Flash      string
	FlashError bool
	// Now is the step to do now (open or late), or nil; Next is the coming one when nothing
	// is due now.
	Now      *stepView
	NowText  string
	Next     *stepView
	NextText string
	AllDone  bool
	Steps    []stepView
	// Talk is the conversation with the clinic (parent_talk.go).
	Talk talkView
	CSRF string
	// Owner names the link to the page's script, which keeps photos not yet sent in the
	// browser (IndexedDB) and must send each through the link it was picked for: opaque, and
	// the same for every session of the link.
	Owner string

	cards *cardMaker // numbers the cards, the conversation's retake cards too
}

// stepView is one timepoint of the schedule.
type stepView struct {
	Label       string
	Due         string
	State       string
	StateText   string
	ClinicTakes bool
	Aftercare   []string
	Cards       []photoCard
	Complete    bool
	Current     bool
}

// photoCard is one required photo: a form with the camera, the guide and the framing photo.
type photoCard struct {
	ID        string // element id, unique on the page
	Timepoint string
	View      string
	Label     string
	Hint      string
	UploadID  string // for the form without script; the script makes its own per photo
	Done      bool
	DoneID    string // the photo received for it, when Done
	PrevID    string // the previous photo of this view (framing guide), when there is one
	PrevAlt   string
	DoneAlt   string
	TakeLabel string
	T         map[string]string
	Action    string
}

// buildParentPage works out what the family's page shows, in its language: the steps, what
// to do now (with a card per photo) and the aftercare that applies. The conversation is added
// by addTalk.
func buildParentPage(h followup.ParentHome, lang, flash, action string) parentPage {
	p := parentPage{
		Lang:         lang,
		T:            catalogue[lang],
		Heading:      trf(lang, "photos_for", h.FirstName),
		Title:        h.Title.In(lang),
		TreatedOn:    trf(lang, "treated_on", formatDay(h.View.PerformedAt.In(h.Clinic.Location), lang)),
		Instructions: paragraphs(h.Instructions.In(lang)),
		Clinic:       h.Clinic,
		PhoneURL:     phoneURL(h.Clinic.Phone),
	}
	if h.Clinic.Email != "" && !strings.ContainsAny(h.Clinic.Email, "?&#/ ") {
		p.MailURL = "mailto:" + h.Clinic.Email
	}
	p.Flash, p.FlashError = flashText(flash, lang)
	cards := newCardMaker(h, lang, action)
	family := p.addSteps(h, lang)
	p.chooseNow(h, lang, cards)
	p.AllDone = family && p.Now == nil && p.Next == nil && !slices.ContainsFunc(p.Steps, func(s stepView) bool {
		return !s.ClinicTakes && !s.Complete
	})
	p.cards = cards
	return p
}

// addTalk adds the conversation: the thread, the form (form, after a refused post) and a
// message post's outcome (flash, a msg-... code, shown there rather than at the top).
func (p *parentPage) addTalk(h followup.ParentHome, t conversation.Thread, flash string, form talkForm) {
	if strings.HasPrefix(flash, "msg-") {
		p.Flash, p.FlashError = "", false
	} else {
		flash = ""
	}
	p.Talk = newTalkView(h, t, p.Lang, flash, form, p.cards)
}

// cardMaker makes the photo cards of a page, numbering their element ids.
type cardMaker struct {
	h      followup.ParentHome
	lang   string
	action string
	views  map[string]protocols.View
	n      int
}

func newCardMaker(h followup.ParentHome, lang, action string) *cardMaker {
	m := &cardMaker{h: h, lang: lang, action: action, views: map[string]protocols.View{}}
	for _, v := range protocols.Views() {
		m.views[v.Name] = v
	}
	return m
}

func (m *cardMaker) card(tp, view string) photoCard {
	m.n++
	lang := m.lang
	v := m.views[view]
	label := v.Label.In(lang)
	if label == "" {
		label = view
	}
	c := photoCard{ID: "card-" + itoa(int64(m.n)), Timepoint: tp, View: view, Label: label, Hint: v.Hint.In(lang),
		UploadID: uuid.NewString(), PrevAlt: trf(lang, "previous_alt", label), DoneAlt: trf(lang, "uploaded_alt", label),
		TakeLabel: trf(lang, "photo_of", label), T: catalogue[lang], Action: m.action}
	c.PrevID = previousPhoto(m.h.View.Photos, tp, view)
	if ph := latestPhoto(m.h.View.Photos, tp, view); ph != nil {
		c.Done = true
		if ph.ThumbsReady {
			c.DoneID = ph.ID.String()
		}
	}
	return c
}

// addSteps lists the schedule's steps; it reports whether the family has any of its own.
func (p *parentPage) addSteps(h followup.ParentHome, lang string) (family bool) {
	for _, t := range h.View.Timepoints {
		sv := stepView{Label: h.Labels[t.Key].In(lang), State: string(t.State),
			StateText: tr(lang, "state_"+string(t.State)), ClinicTakes: t.Who == protocols.Clinic,
			Aftercare: paragraphs(h.Aftercare[t.Key].In(lang)), Complete: t.State == protocols.StateComplete}
		if sv.Label == "" {
			sv.Label = t.Key
		}
		sv.Due = formatDate(t.DueOn, lang)
		if sv.ClinicTakes {
			// The clinic's own steps are not the family's to miss.
			sv.StateText = tr(lang, "clinic_takes")
			if !sv.Complete {
				sv.State = "clinic"
			}
		} else {
			family = true
		}
		p.Steps = append(p.Steps, sv)
	}
	return family
}

// chooseNow picks what to do now: the step whose window is open, else the latest one that is
// late; else the next one coming. The aftercare shown is the step's now, or the last passed.
func (p *parentPage) chooseNow(h followup.ParentHome, lang string, cards *cardMaker) {
	now := -1
	for i, t := range h.View.Timepoints {
		if p.Steps[i].ClinicTakes {
			continue
		}
		switch {
		case t.State == protocols.StateOpen && (now < 0 || h.View.Timepoints[now].State != protocols.StateOpen):
			now = i
		case t.State == protocols.StateOverdue && (now < 0 || h.View.Timepoints[now].State == protocols.StateOverdue):
			now = i
		case t.State == protocols.StateUpcoming && p.Next == nil:
			sv := p.Steps[i]
			p.Next = &sv
			p.NextText = trf(lang, "next_on", formatDate(t.WindowStart, lang))
		}
	}
	for i, t := range h.View.Timepoints {
		if i != now && t.State == protocols.StateOverdue && !p.Steps[i].ClinicTakes {
			p.Steps[i].StateText = tr(lang, "state_late") // late, but today's step comes first
		}
	}
	if now < 0 {
		for i, t := range h.View.Timepoints {
			if !t.DueAt.After(h.Now) && len(p.Steps[i].Aftercare) > 0 {
				p.Care, p.CareFor = p.Steps[i].Aftercare, p.Steps[i].Label
			}
		}
		return
	}
	t := h.View.Timepoints[now]
	p.Steps[now].Current = true
	sv := p.Steps[now]
	for _, v := range t.Views {
		sv.Cards = append(sv.Cards, cards.card(t.Key, v))
	}
	p.Now = &sv
	p.NowText = trf(lang, "due_by", formatDate(t.WindowEnd, lang))
	if t.State == protocols.StateOverdue {
		p.NowText = trf(lang, "overdue_by", formatDate(t.WindowEnd, lang))
	}
	p.Next = nil // one thing at a time: what is due now
	p.Care, p.CareFor = sv.Aftercare, sv.Label
}

// doneClass and stepClass are the classes the family's page styles by.
func doneClass(done bool) string {
	if done {
		return " done"
	}
	return ""
}

func stepClass(s stepView) string {
	c := "step state-" + s.State
	if s.ClinicTakes {
		c += " clinic"
	}
	return c
}

// previousPhoto is the newest active photo of the view from another step, with thumbnails
// ready: the framing to match.
func previousPhoto(photos []followup.Photo, timepoint, view string) string {
	var best *followup.Photo
	for i := range photos {
		ph := &photos[i]
		if ph.Status != "active" || ph.View != view || ph.Timepoint == timepoint || !ph.ThumbsReady {
			continue
		}
		if best == nil || ph.ReceivedAt.After(best.ReceivedAt) {
			best = ph
		}
	}
	if best == nil {
		return ""
	}
	return best.ID.String()
}

// latestPhoto is the newest active photo of the step's view, if one arrived.
func latestPhoto(photos []followup.Photo, timepoint, view string) *followup.Photo {
	var best *followup.Photo
	for i := range photos {
		ph := &photos[i]
		if ph.Status != "active" || ph.View != view || ph.Timepoint != timepoint {
			continue
		}
		if best == nil || ph.ReceivedAt.After(best.ReceivedAt) {
			best = ph
		}
	}
	return best
}

// phoneURL makes a tel: link of a clinic phone number (digits and a leading +), or "".
func phoneURL(phone string) string {
	var b strings.Builder
	for i, r := range phone {
		if r >= '0' && r <= '9' || r == '+' && i == 0 {
			b.WriteRune(r)
		}
	}
	if b.Len() < 3 {
		return ""
	}
	return "tel:" + b.String()
}

// paragraphs splits a protocol text at its line breaks.
func paragraphs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
