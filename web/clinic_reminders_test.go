package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// enrolDueProcedure enrols the fixture's patient in a procedure four days ago, so that its
// day-4 photos are due now, and gives the family a link.
func (f *clinicFixture) enrolDueProcedure(t *testing.T) string {
	t.Helper()
	ctx := clinicCtx(t)
	e, err := f.svc.Enrol(ctx, f.clinicianActor, followup.NewProcedure{PatientID: f.patientID, Protocol: "pws-hemoporfin-pdt",
		BodySite: "back", PerformedAt: time.Now().AddDate(0, 0, -4).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateLink(ctx, f.clinicianActor, e.ID, false); err != nil {
		t.Fatal(err)
	}
	return e.ID.String()
}

// addReminder puts a row in a procedure's outbox as the sender leaves it: a sent one opening
// the day-4 window, any other one before it closes.
func (f *clinicFixture) addReminder(t *testing.T, procedureID, status, reason string) {
	t.Helper()
	if _, err := f.srv.cfg.Pool.Exec(clinicCtx(t), `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel,
			status, attempts, last_error, send_after, created_at, sent_at)
		values ($1, $2, 'day-4', case when $3 = 'sent' then 'window-open' else 'closing-soon' end, 'email', $3, 1, $4, '2026-11-20T01:00:00Z', '2026-11-20T01:00:00Z',
			case when $3 = 'sent' then '2026-11-20T01:02:00Z'::timestamptz end)`,
		f.clinicianActor.ClinicID, procedureID, status, reason); err != nil {
		t.Fatal(err)
	}
}

func (f *clinicFixture) remindersEnabled(t *testing.T, procedureID string) bool {
	t.Helper()
	var on bool
	if err := f.srv.cfg.Pool.QueryRow(clinicCtx(t), `select reminders_enabled from procedures where id = $1`, procedureID).Scan(&on); err != nil {
		t.Fatal(err)
	}
	return on
}

func TestClinicReminderOutbox(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	id := f.enrolDueProcedure(t)
	b := f.client(t)
	b.mustLogin(f.clinician)

	p := b.get("/procedures/" + id + "/reminders")
	if p.status != 200 || !strings.Contains(p.body, "No reminder yet.") {
		t.Fatalf("empty outbox = %d", p.status)
	}
	f.addReminder(t, id, followup.ReminderSent, "")
	f.addReminder(t, id, followup.ReminderFailed, "smtp: 550 mailbox unavailable")
	p = b.get("/procedures/" + id + "/reminders")
	if p.status != 200 || strings.Count(p.body, `class="outbox-row`) != 2 {
		t.Fatalf("outbox = %d with %d rows, want 2", p.status, strings.Count(p.body, `class="outbox-row`))
	}
	// Times in the clinic's zone (Asia/Shanghai, UTC+8), the failure with its reason.
	for _, want := range []string{`status-sent`, `status-failed`, "smtp: 550 mailbox unavailable", "2026-11-20 09:00", "2026-11-20 09:02",
		"Asia/Shanghai", "window-open", "email"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("outbox lacks %q", want)
		}
	}
	// The procedure page shows the outbox itself, with the controls.
	p = b.get("/procedures/" + id)
	for _, want := range []string{`id="reminders"`, `action="/procedures/` + id + `/reminders"`, `id="reminder-switch"`,
		`href="/procedures/` + id + `/reminders"`, `id="outbox"`} {
		if p.status != 200 || !strings.Contains(p.body, want) {
			t.Errorf("procedure page (%d) lacks %q", p.status, want)
		}
	}
	if n := strings.Count(p.body, `class="outbox-row`); n != 2 {
		t.Errorf("procedure page shows %d outbox rows, want 2", n)
	}
}

func TestClinicReminderSendAndSwitch(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	id := f.enrolDueProcedure(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	outbox := "/procedures/" + id + "/reminders"
	flash := regexp.MustCompile(`class="cl-flash" role="status">([^<]*)<`)

	p := b.post(outbox, nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != outbox {
		t.Fatalf("send = %d %q", p.status, p.header.Get("Location"))
	}
	p = b.get(outbox)
	if m := flash.FindStringSubmatch(p.body); m == nil || !strings.Contains(m[1], "Reminder queued") {
		t.Errorf("flash after sending = %v", m)
	}
	if strings.Count(p.body, `class="outbox-row status-queued"`) != 1 || !strings.Contains(p.body, "manual") {
		t.Errorf("the outbox does not show the queued reminder")
	}
	// Again within minutes: refused, with the core's reason as the flash.
	if p := b.post(outbox, nil); p.status != http.StatusSeeOther {
		t.Fatalf("second send = %d", p.status)
	}
	if m := flash.FindStringSubmatch(b.get(outbox).body); m == nil || !strings.Contains(m[1], "less than") {
		t.Errorf("flash after a second send = %v", m)
	}

	// Off, then on.
	p = b.post(outbox+"/settings", url.Values{"enabled": {"false"}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/procedures/"+id+"#reminders" || f.remindersEnabled(t, id) {
		t.Fatalf("turn off = %d %q, enabled %v", p.status, p.header.Get("Location"), f.remindersEnabled(t, id))
	}
	p = b.get("/procedures/" + id)
	if !strings.Contains(p.body, "Turn reminders on") || strings.Contains(p.body, `id="reminder-send"`) ||
		!strings.Contains(p.body, "Reminders are off") {
		t.Error("the procedure page does not show reminders off")
	}
	if p := b.post(outbox+"/settings", url.Values{"enabled": {"true"}}); p.status != http.StatusSeeOther || !f.remindersEnabled(t, id) {
		t.Fatalf("turn on = %d, enabled %v", p.status, f.remindersEnabled(t, id))
	}
	if p := b.get("/procedures/" + id); !strings.Contains(p.body, "Turn reminders off") || !strings.Contains(p.body, `id="reminder-send"`) {
		t.Error("the procedure page does not show reminders on")
	}

	// A closed procedure sends nothing: the reason is the flash, and the outbox is unchanged.
	if err := f.svc.SetStatus(clinicCtx(t), f.clinicianActor, uuid.MustParse(id), followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	if p := b.post(outbox, nil); p.status != http.StatusSeeOther || p.header.Get("Location") != outbox {
		t.Fatalf("send when closed = %d", p.status)
	}
	p = b.get(outbox)
	if m := flash.FindStringSubmatch(p.body); m == nil || !strings.Contains(m[1], "closed") {
		t.Errorf("flash when closed = %v", m)
	}
	if n := strings.Count(p.body, `class="outbox-row`); n != 1 {
		t.Errorf("outbox rows after refusals = %d, want 1", n)
	}

	// Bad input.
	for _, c := range []struct {
		path string
		form url.Values
		want int
	}{
		{outbox + "/settings", url.Values{}, http.StatusUnprocessableEntity},
		{outbox + "/settings", url.Values{"enabled": {"maybe"}}, http.StatusUnprocessableEntity},
		{"/procedures/not-a-uuid/reminders", nil, http.StatusNotFound},
		{"/procedures/" + uuid.NewString() + "/reminders", nil, http.StatusNotFound},
		{"/procedures/" + uuid.NewString() + "/reminders/settings", url.Values{"enabled": {"false"}}, http.StatusNotFound},
	} {
		if p := b.post(c.path, c.form); p.status != c.want {
			t.Errorf("POST %s %v = %d, want %d", c.path, c.form, p.status, c.want)
		}
	}
	if p := b.get("/procedures/" + uuid.NewString() + "/reminders"); p.status != http.StatusNotFound {
		t.Errorf("outbox of an unknown procedure = %d", p.status)
	}
}

func TestClinicReminderAuthorization(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	watchAuthz(f.srv)
	id := f.enrolDueProcedure(t)
	outbox := "/procedures/" + id + "/reminders"
	posts := map[string]url.Values{outbox: {}, outbox + "/settings": {"enabled": {"false"}}}

	// Without the CSRF token: refused, nothing changes.
	b := f.client(t)
	b.mustLogin(f.clinician)
	for path, form := range posts {
		form = url.Values{"csrf_token": {""}, "enabled": form["enabled"]}
		if p := b.post(path, form); p.status != http.StatusForbidden {
			t.Errorf("POST %s without CSRF = %d, want 403", path, p.status)
		}
	}
	if !f.remindersEnabled(t, id) || strings.Count(b.get(outbox).body, `class="outbox-row`) != 0 {
		t.Error("a CSRF-less post changed something")
	}

	outsider := f.client(t)
	outsider.mustLogin(f.outsider)
	researcher := f.client(t)
	researcher.mustLogin(f.researcher)
	for who, c := range map[string]struct {
		b    *clinicBrowser
		want int
	}{"outsider": {outsider, http.StatusNotFound}, "researcher": {researcher, http.StatusForbidden}} {
		if p := c.b.get(outbox); p.status != c.want {
			t.Errorf("%s GET outbox = %d, want %d", who, p.status, c.want)
		}
		for path, form := range posts {
			if p := c.b.post(path, form); p.status != c.want {
				t.Errorf("%s POST %s = %d, want %d", who, path, p.status, c.want)
			}
		}
	}
	if !f.remindersEnabled(t, id) {
		t.Error("a refused post turned reminders off")
	}

	anon := f.client(t)
	if p := anon.get(outbox); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login?next=") {
		t.Errorf("signed-out GET outbox = %d %q", p.status, p.header.Get("Location"))
	}
	for path, form := range posts {
		if p := anon.post(path, form); p.status != http.StatusUnauthorized {
			t.Errorf("signed-out POST %s = %d, want 401", path, p.status)
		}
	}

	// The admin of the clinic may do what a clinician does.
	admin := f.client(t)
	admin.mustLogin(f.admin)
	if p := admin.get(outbox); p.status != 200 {
		t.Errorf("admin GET outbox = %d", p.status)
	}
	if p := admin.post(outbox+"/settings", url.Values{"enabled": {"false"}}); p.status != http.StatusSeeOther || f.remindersEnabled(t, id) {
		t.Errorf("admin turn off = %d", p.status)
	}
}

func TestClinicReminderWorklist(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	b := f.client(t)
	b.mustLogin(f.clinician)
	count := regexp.MustCompile(`data-state="reminder_failed">[^<]*<span class="cl-count">(\d+)</span>`)
	p := b.get("/")
	if m := count.FindStringSubmatch(p.body); m == nil || m[1] != "0" || strings.Contains(p.body, "reminder failed</a>") {
		t.Fatalf("before any failure: count %v", m)
	}
	f.addReminder(t, f.procedureID, followup.ReminderFailed, "webhook: 502")
	p = b.get("/")
	if m := count.FindStringSubmatch(p.body); m == nil || m[1] != "1" || !strings.Contains(p.body, "Reminder failed <span") {
		t.Errorf("failed-reminder count = %v", m)
	}
	if !strings.Contains(p.body, `href="/procedures/`+f.procedureID+`/reminders" class="badge failed">reminder failed</a>`) {
		t.Error("the row has no failed-reminder flag")
	}
	p = b.get("/?state=reminder_failed")
	if p.status != 200 || strings.Count(p.body, `class="wl-row"`) != 1 {
		t.Errorf("failed-reminder filter = %d with %d rows", p.status, strings.Count(p.body, `class="wl-row"`))
	}
}
