package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/followup"
)

func settingsForm(inbox, phone, hours string) url.Values {
	return url.Values{"message_inbox": {inbox}, "contact_phone": {phone}, "clinic_hours": {hours}}
}

// The admin's settings page: the contact form saved and shown again, the reminder settings
// beside it; bad input is shown again with the reason and changes nothing.
func TestClinicSettingsPage(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	admin := f.client(t)
	admin.mustLogin(f.admin)

	p := admin.get("/admin/settings")
	for _, want := range []string{`id="contact-form"`, `action="/admin/settings/contact"`, `name="message_inbox"`, `id="quiet-hours">21:00–08:00<`,
		`id="gateway">None<`} {
		if p.status != http.StatusOK || !strings.Contains(p.body, want) {
			t.Errorf("settings page (%d) lacks %q", p.status, want)
		}
	}
	if !strings.Contains(admin.get("/").body, `href="/admin/settings"`) {
		t.Error("the admin's navigation has no settings link")
	}
	p = admin.post("/admin/settings/contact", settingsForm("Inbox@Clinic.Example", "+86 10 8888 0000", "Mon-Fri 8:00-17:00 <b>"))
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/settings" {
		t.Fatalf("save = %d %q: %s", p.status, p.header.Get("Location"), p.body)
	}
	p = admin.get("/admin/settings")
	for _, want := range []string{`value="inbox@clinic.example"`, `value="+86 10 8888 0000"`, `value="Mon-Fri 8:00-17:00 &lt;b&gt;"`, "Settings saved."} {
		if !strings.Contains(p.body, want) {
			t.Errorf("settings page after saving lacks %q", want)
		}
	}
	want := followup.ContactSettings{MessageInbox: "inbox@clinic.example", Phone: "+86 10 8888 0000", Hours: "Mon-Fri 8:00-17:00 <b>"}
	if got, err := f.svc.ContactSettings(clinicCtx(t), f.clinicianActor); err != nil || got != want {
		t.Fatalf("stored = %+v, %v", got, err)
	}

	for _, c := range []struct {
		form  url.Values
		field string
		want  int
	}{
		{settingsForm("not an address", "", ""), "message_inbox", http.StatusUnprocessableEntity},
		{settingsForm("", "ring us", ""), "contact_phone", http.StatusUnprocessableEntity},
		{settingsForm("", "", strings.Repeat("h", followup.MaxClinicHours+1)), "clinic_hours", http.StatusUnprocessableEntity},
		{settingsForm("", "", "Mon\r\nTue"), "clinic_hours", http.StatusUnprocessableEntity},
		{settingsForm("", "", "Mon\x01"), "clinic_hours", http.StatusUnprocessableEntity},
	} {
		p := admin.post("/admin/settings/contact", c.form)
		if p.status != c.want || !strings.Contains(p.body, c.field) {
			t.Errorf("save %v = %d, want %d naming %s", c.form, p.status, c.want, c.field)
		}
		if c.field == "contact_phone" && !strings.Contains(p.body, `value="ring us"`) {
			t.Error("the refused form is not shown again with what was typed")
		}
	}
	if got, _ := f.svc.ContactSettings(clinicCtx(t), f.clinicianActor); got != want {
		t.Errorf("after refused saves the settings are %+v", got)
	}
}

func TestClinicSettingsAuthorization(t *testing.T) {
	t.Parallel()
	f, outsiderAdmin := userAdminFixture(t)
	watchAuthz(f.srv)
	admin := f.client(t)
	admin.mustLogin(f.admin)
	if p := admin.post("/admin/settings/contact", settingsForm("inbox@clinic-a.example", "", "")); p.status != http.StatusSeeOther {
		t.Fatalf("save = %d", p.status)
	}
	form := settingsForm("thief@elsewhere.example", "", "")
	for email, want := range map[string]int{f.clinician: http.StatusForbidden, f.researcher: http.StatusForbidden, f.outsider: http.StatusForbidden} {
		b := f.client(t)
		b.mustLogin(email)
		if p := b.get("/admin/settings"); p.status != want {
			t.Errorf("GET settings as %s = %d, want %d", email, p.status, want)
		}
		if p := b.post("/admin/settings/contact", form); p.status != want {
			t.Errorf("POST settings as %s = %d, want %d", email, p.status, want)
		}
	}
	anon := f.client(t)
	if p := anon.get("/admin/settings"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("GET settings signed out = %d %q", p.status, p.header.Get("Location"))
	}
	anon.get("/login")
	if p := anon.post("/admin/settings/contact", form); p.status != http.StatusUnauthorized {
		t.Errorf("POST settings signed out = %d, want 401", p.status)
	}
	if p := admin.post("/admin/settings/contact", url.Values{"csrf_token": {""}, "message_inbox": {"thief@elsewhere.example"}}); p.status != http.StatusForbidden {
		t.Errorf("POST settings without the CSRF token = %d, want 403", p.status)
	}
	// Another clinic's admin sees and changes only their own clinic's settings.
	other := f.client(t)
	other.mustLogin(outsiderAdmin)
	if p := other.get("/admin/settings"); p.status != http.StatusOK || strings.Contains(p.body, "clinic-a.example") {
		t.Errorf("the other clinic's admin: %d, sees clinic A's inbox: %v", p.status, strings.Contains(p.body, "clinic-a.example"))
	}
	if p := other.post("/admin/settings/contact", form); p.status != http.StatusSeeOther {
		t.Errorf("the other clinic's admin saves = %d", p.status)
	}
	if got, _ := f.svc.ContactSettings(clinicCtx(t), f.clinicianActor); got.MessageInbox != "inbox@clinic-a.example" {
		t.Errorf("clinic A's inbox is now %q", got.MessageInbox)
	}
}

func TestContactSettingsAPI(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	body := map[string]any{"message_inbox": "inbox@clinic.example", "contact_phone": "+49 30 1234567", "clinic_hours": "Mo-Fr 8-16"}
	var out map[string]string
	if code := f.call(t, "PUT", "/api/v1/contact-settings", f.admin, body, &out); code != 200 || out["message_inbox"] != "inbox@clinic.example" {
		t.Fatalf("PUT = %d %v", code, out)
	}
	for _, c := range []struct {
		name, method, token string
		body                any
		want                int
	}{
		{"clinician reads", "GET", f.clinician, nil, 200},
		{"admin reads", "GET", f.admin, nil, 200},
		{"researcher reads", "GET", f.researcher, nil, 403},
		{"signed out reads", "GET", "", nil, 401},
		{"clinician writes", "PUT", f.clinician, body, 403},
		{"researcher writes", "PUT", f.researcher, body, 403},
		{"signed out writes", "PUT", "", body, 401},
		{"other clinic writes", "PUT", f.outsider, body, 403},
		{"bad inbox", "PUT", f.admin, map[string]any{"message_inbox": "nobody"}, 422},
		{"bad phone", "PUT", f.admin, map[string]any{"contact_phone": "call"}, 422},
		{"unknown field", "PUT", f.admin, map[string]any{"contact_email": "x@example.org"}, 400},
	} {
		if code := f.call(t, c.method, "/api/v1/contact-settings", c.token, c.body, nil); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	out = nil
	if code := f.call(t, "GET", "/api/v1/contact-settings", f.clinician, nil, &out); code != 200 ||
		out["contact_phone"] != "+49 30 1234567" || out["clinic_hours"] != "Mo-Fr 8-16" {
		t.Fatalf("GET = %d %v (refused writes changed something?)", code, out)
	}
	// Another clinic reads its own, empty, settings.
	out = nil
	if code := f.call(t, "GET", "/api/v1/contact-settings", f.outsider, nil, &out); code != 200 || out["message_inbox"] != "" {
		t.Fatalf("other clinic GET = %d %v", code, out)
	}
}
