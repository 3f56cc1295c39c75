package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/protocols"
)

var bodySites = []string{"face", "face", "face", "neck", "scalp", "chest", "back", "upper-arm", "forearm", "hand", "thigh", "lower-leg"}

// procGen is what a procedure's timepoints need to know about it.
type procGen struct {
	id, patient, clinician, link uuid.UUID
	performed                    time.Time
	email, phone                 string
	active                       func(t time.Time) bool // whether it is active at t
	photos                       []uuid.UUID            // all of it, for the audit of views
}

// procedure writes a procedure with its schedule, its enrolment link, its photos, grades,
// messages and reminders, and their audit events.
func (c *clinicGen) procedure(patient uuid.UUID, proto *protocols.Protocol, performed time.Time, clinician uuid.UUID, email, phone string) {
	p := &procGen{id: c.uuid(), patient: patient, clinician: clinician, performed: performed, email: email, phone: phone}
	created := performed.Add(-time.Duration(30+c.rng.IntN(180)) * time.Minute)
	dues := proto.Schedule(performed, c.loc)
	end := dues[len(dues)-1].GraceEnds
	status, changed := "active", (*time.Time)(nil)
	if end.Before(c.cfg.Now) {
		at := c.between(end, c.cfg.Now)
		switch x := c.rng.Float64(); {
		case x < closedAfter:
			status, changed = "closed", &at
		case x < closedAfter+withdrawnAfter:
			status, changed = "withdrawn", &at
		}
	} else if c.chance(0.03) {
		at := c.between(created, c.cfg.Now)
		status, changed = "withdrawn", &at
	}
	p.active = func(t time.Time) bool { return changed == nil || t.Before(*changed) }
	kind := proto.Kinds[c.rng.IntN(len(proto.Kinds))]
	c.b.procedures.add(p.id, c.id, patient, kind, bodySites[c.rng.IntN(len(bodySites))], performed, proto.ID, proto.Version,
		clinician, status, changed, true, created)
	c.audit(created, "user", clinician, "procedure_enrolled", "procedure", p.id, fmt.Sprintf(`{"protocol": %q, "version": %d}`, proto.ID, proto.Version))
	if changed != nil {
		c.audit(*changed, "user", clinician, "procedure_status", "procedure", p.id, fmt.Sprintf(`{"from": "active", "to": %q}`, status))
	}
	// The family's link, made right after enrolment, valid until a month after the last
	// grace period.
	p.link = c.uuid()
	linkAt := created.Add(time.Duration(1+c.rng.IntN(20)) * time.Minute)
	c.b.links.add(p.link, c.id, p.id, c.bytes(32), clinician, linkAt, end.Add(30*24*time.Hour), nil)
	c.audit(linkAt, "user", clinician, "link_created", "parent_link", p.link, fmt.Sprintf(`{"procedure": %q}`, p.id))
	for i, d := range dues {
		c.b.timepoints.add(p.id, d.Key, i, d.At, dateOf(d.DueOn), dateOf(d.WindowStart), dateOf(d.WindowEnd), d.Opens, d.Closes,
			d.GraceEnds, d.Views, d.Who, d.Remind)
	}
	for _, d := range dues {
		arrived := c.timepoint(p, d)
		if len(arrived) > 0 && c.chance(gradedShare) {
			at := c.after(slices.MaxFunc(arrived, time.Time.Compare), 48*time.Hour)
			if at.Before(c.cfg.Now) {
				c.grade(p, proto, d.Key, at)
			}
		}
	}
	if c.chance(noteShare) {
		at := c.between(created, minTime(end, c.cfg.Now))
		c.b.messages.add(c.uuid(), c.id, p.id, "note", nil, nil, "Please keep the area out of the sun this week.", clinician, at)
		c.audit(at, "user", clinician, "message_added", "procedure", p.id, `{"kind": "note", "timepoint": ""}`)
	}
}

func dateOf(d protocols.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// timepoint writes the photos of one timepoint that arrived before now, a retake now and
// then, and its reminders; it returns when its photos arrived.
func (c *clinicGen) timepoint(p *procGen, d protocols.Due) []time.Time {
	if !d.Opens.Before(c.cfg.Now) {
		return nil // not open yet: nothing has happened
	}
	complete, partial := familyComplete, familyPartial
	if d.Who == "clinic" {
		complete, partial = clinicComplete, 0.05
	}
	var views []string
	switch x := c.rng.Float64(); {
	case x < complete:
		views = d.Views
	case x < complete+partial && len(d.Views) > 1:
		views = d.Views[:1+c.rng.IntN(len(d.Views)-1)]
	}
	var arrived []time.Time
	last := time.Time{}
	for _, v := range views {
		at := c.between(d.Opens, d.Closes)
		if c.chance(latePhoto) && d.Who == "family" {
			at = c.between(d.Closes, d.GraceEnds)
		}
		if !at.Before(c.cfg.Now) || !p.active(at) {
			continue
		}
		c.photo(p, d, v, at)
		arrived = append(arrived, at)
		if at.After(last) {
			last = at
		}
		if c.chance(retakeShare) {
			// The clinician asks for it again; the family sends a new one a day or two later.
			ask := c.after(at, 12*time.Hour)
			again := c.after(ask, 36*time.Hour)
			if again.Before(c.cfg.Now) {
				old := p.photos[len(p.photos)-1]
				c.b.messages.add(c.uuid(), c.id, p.id, "retake", d.Key, old, "The photo is blurred; please take it again in daylight.", p.clinician, ask)
				c.audit(ask, "user", p.clinician, "message_added", "procedure", p.id, fmt.Sprintf(`{"kind": "retake", "timepoint": %q}`, d.Key))
				c.photo(p, d, v, again)
				arrived = append(arrived, again)
				if again.After(last) {
					last = again
				}
			}
		}
	}
	if d.Who == "family" && d.Remind {
		complete := len(views) == len(d.Views)
		c.reminders(p, d, complete, last)
	}
	return arrived
}

// photo writes one stored photo as an upload writes it, with its audit event.
func (c *clinicGen) photo(p *procGen, d protocols.Due, view string, at time.Time) {
	id := c.uuid()
	sum := c.bytes(32)
	key := hex.EncodeToString(c.bytes(16))
	size := int64(900_000 + c.rng.IntN(3_500_000))
	source, link, uploader := "family", any(p.link), any(nil)
	actorKind, actor := "parent", any(p.link)
	if d.Who == "clinic" {
		source, link, uploader, actorKind, actor = "clinic", nil, p.clinician, "user", p.clinician
	}
	// A phone that records the capture time records its offset with it: the service stores
	// whether it did (captured_offset), false without a capture time.
	var captured any
	if c.chance(0.6) {
		captured = at.Add(-time.Duration(1+c.rng.IntN(600)) * time.Second)
	}
	w, h := 4032, 3024
	if c.chance(0.4) {
		w, h = 3024, 4032
	}
	removed := fmt.Sprintf(`[{"kind": "exif", "bytes": %d}, {"kind": "xmp", "bytes": %d}]`, 8000+c.rng.IntN(40000), 2000+c.rng.IntN(9000))
	c.b.photos.add(id, c.id, p.id, d.Key, view, hex.EncodeToString(c.bytes(12)), "photos/"+key[:2]+"/"+key, "image/jpeg", size, sum,
		w, h, 1+5*c.rng.IntN(2), captured, captured != nil, at, source, link, uploader, []byte(removed), at.Add(time.Duration(2+c.rng.IntN(20))*time.Second))
	c.audit(at, actorKind, actor, "photo_uploaded", "photo", id, fmt.Sprintf(
		`{"procedure": %q, "timepoint": %q, "view": %q, "bytes": %d, "removed": %s, "had_gps": %t, "had_serial": true, "had_thumbnail": true, "had_trailer": false}`,
		p.id, d.Key, view, size, removed, c.chance(0.3)))
	p.photos = append(p.photos, id)
}

// grade writes an assessment of a timepoint and the views of the photos the clinician looked
// at to make it: the timeline's latest thumbnails, and a large photo now and then.
func (c *clinicGen) grade(p *procGen, proto *protocols.Protocol, key string, at time.Time) {
	scale, err := c.reg.Scale(proto.Scale)
	if err != nil {
		panic(err)
	}
	level := scale.Levels[c.rng.IntN(len(scale.Levels))].Key
	grader := c.clinicians[c.rng.IntN(len(c.clinicians))]
	c.b.assessments.add(c.uuid(), c.id, p.id, key, scale.ID, level, "", grader, at)
	c.audit(at, "user", grader, "assessment_added", "procedure", p.id, fmt.Sprintf(`{"timepoint": %q, "scale": %q, "level": %q}`, key, scale.ID, level))
	// The timeline shows the photos so far as thumbnails, and viewing one records it: the
	// clinician looks at the latest few (about two views per photo over a follow-up).
	seen := p.photos
	if len(seen) > 5 {
		seen = seen[len(seen)-5:]
	}
	for _, ph := range seen {
		c.audit(at.Add(-time.Duration(c.rng.IntN(300))*time.Second), "user", grader, "photo_viewed", "photo", ph, `{"variant": "small"}`)
	}
	if len(seen) > 0 && c.chance(0.3) {
		c.audit(at.Add(-time.Minute), "user", grader, "photo_viewed", "photo", seen[c.rng.IntN(len(seen))], `{"variant": "large"}`)
	}
}

// reminders writes what the reminder scan and its jobs would have: a window-open reminder on
// every channel the family has, once the window opens (after the quiet hours), and a
// closing-soon one if the photos are still missing when the window is about to close; each
// sent, skipped (the photos came first) or failed, with the fresh link of each attempt.
func (c *clinicGen) reminders(p *procGen, d protocols.Due, complete bool, lastPhoto time.Time) {
	var channels []string
	if p.email != "" {
		channels = append(channels, "email")
	}
	if c.webhook && p.phone != "" {
		channels = append(channels, "webhook")
	}
	closingSoon := closingSoonAt(d, c.loc)
	for _, kind := range []string{"window-open", "closing-soon"} {
		at := c.quietNext(d.Opens.Add(time.Duration(c.rng.IntN(60)) * time.Second))
		if kind == "closing-soon" {
			at = c.quietNext(closingSoon.Add(time.Duration(c.rng.IntN(60)) * time.Second))
		}
		if kind == "window-open" && !at.Before(closingSoon) {
			continue // too late for it: the scan queues closing-soon instead
		}
		if !at.Before(d.Closes) || !at.Before(c.cfg.Now) || !p.active(at) {
			continue
		}
		if complete && !lastPhoto.After(at) {
			continue // every photo was in before the scan looked: nothing to remind of
		}
		for _, ch := range channels {
			// Most are sent within a minute; some only on a later attempt, hours on (the
			// channel was down), by when the photos may have come.
			sendAt, attempts := at.Add(time.Duration(5+c.rng.IntN(60))*time.Second), 1
			if c.chance(0.2) {
				sendAt, attempts = at.Add(time.Duration(1+c.rng.IntN(8*60))*time.Minute), 2+c.rng.IntN(3)
			}
			if !sendAt.Before(c.cfg.Now) {
				sendAt, attempts = at.Add(time.Second), 1
			}
			id := c.uuid()
			status, lastError, link, sent := "sent", "", any(nil), any(nil)
			switch {
			case complete && !lastPhoto.After(sendAt):
				status, lastError = "skipped", "the photos have arrived"
			case c.chance(deliveryFails):
				status, lastError = "failed", map[string]string{"email": "smtp: 550 mailbox unavailable", "webhook": "webhook: the gateway answered 503"}[ch]
			}
			if status != "skipped" {
				l := c.uuid()
				link = l
				var revoked any
				if status == "failed" {
					revoked = sendAt
				}
				c.b.links.add(l, c.id, p.id, c.bytes(32), nil, sendAt, d.GraceEnds.Add(30*24*time.Hour), revoked)
				c.audit(sendAt, "system", nil, "link_created", "parent_link", l, fmt.Sprintf(`{"procedure": %q, "reminder": %q}`, p.id, id))
				if status == "failed" {
					c.audit(sendAt, "system", nil, "link_revoked", "parent_link", l, fmt.Sprintf(`{"procedure": %q, "reminder": %q, "unsent": true}`, p.id, id))
				} else {
					sent = sendAt
				}
			}
			c.b.reminders.add(id, c.id, p.id, d.Key, kind, ch, status, attempts, lastError, at, link, at, sendAt, sent)
		}
	}
}

// closingSoonAt is followup's: the start of the window's last local day, or half way through
// a window of a day or less.
func closingSoonAt(d protocols.Due, loc *time.Location) time.Time {
	lastDay := d.WindowEnd.Start(loc)
	half := d.Opens.Add(d.Closes.Sub(d.Opens) / 2)
	if lastDay.After(half) {
		return lastDay
	}
	return half
}

// quietNext is t, or the end of the clinic's quiet hours t falls in.
func (c *clinicGen) quietNext(t time.Time) time.Time {
	l := t.In(c.loc)
	tod := time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute
	if tod < c.quietStart && tod >= c.quietEnd {
		return t
	}
	y, m, d := l.Date()
	end := time.Date(y, m, d, 0, 0, 0, 0, c.loc).Add(c.quietEnd)
	if !end.After(t) {
		end = time.Date(y, m, d+1, 0, 0, 0, 0, c.loc).Add(c.quietEnd)
	}
	return end
}

// logins writes a sign-in of each clinician on most working days.
func (c *clinicGen) logins(start time.Time) {
	for day := start; day.Before(c.cfg.Now); day = day.Add(24 * time.Hour) {
		if wd := day.In(c.loc).Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for _, u := range append([]uuid.UUID{c.admin}, c.clinicians...) {
			if c.chance(0.8) {
				at := c.workingHours(day)
				if at.Before(c.cfg.Now) {
					c.audit(at, "user", u, "login", "user", u, `{"method": "password"}`)
				}
			}
		}
	}
}

// exports writes about one research export a month, all long expired.
func (c *clinicGen) exports(ctx context.Context, w *writer, start time.Time) error {
	t := &table{name: "exports", columns: []string{"id", "clinic_id", "requested_by", "protocol_id", "views", "status",
		"progress_done", "progress_total", "subjects", "photos", "created_at", "started_at", "finished_at", "expires_at"}}
	for at := start.Add(20 * 24 * time.Hour); at.Before(c.cfg.Now.Add(-8 * 24 * time.Hour)); at = at.Add(time.Duration(20+c.rng.IntN(20)) * 24 * time.Hour) {
		id := c.uuid()
		n := 200 + c.rng.IntN(3000)
		t.add(id, c.id, c.researcher, "pws-hemoporfin-pdt", []string{"front", "left-oblique", "right-oblique", "close-up"}, "expired",
			n, n, n/12, n, at, at.Add(time.Second), at.Add(time.Duration(n)*30*time.Millisecond), at.Add(7*24*time.Hour))
		c.audit(at, "user", c.researcher, "export_started", "export", id, `{"protocol": "pws-hemoporfin-pdt"}`)
	}
	return w.copy(ctx, t)
}
