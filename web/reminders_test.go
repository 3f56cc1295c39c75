package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// enrolDue enrols a procedure four days ago, so that its day-4 photos are due now, and gives
// the family a link.
func (f *apiFixture) enrolDue(t *testing.T) string {
	t.Helper()
	var p struct{ ID string }
	if code := f.call(t, "POST", "/api/v1/patients", f.clinician, map[string]any{
		"display_name": "Reminder Child", "birth_date": "2025-03-02", "guardian_email": "guardian-" + uuid.NewString()[:8] + "@example.org",
		"preferred_language": "en"}, &p); code != 201 {
		t.Fatalf("create patient = %d", code)
	}
	var e struct{ ID string }
	if code := f.call(t, "POST", "/api/v1/procedures", f.clinician, map[string]any{
		"patient_id": p.ID, "protocol": "pws-hemoporfin-pdt", "body_site": "back",
		"performed_at": time.Now().AddDate(0, 0, -4).Format(time.RFC3339)}, &e); code != 201 {
		t.Fatalf("enrol = %d", code)
	}
	if code := f.call(t, "POST", "/api/v1/procedures/"+e.ID+"/parent-links", f.clinician, nil, nil); code != 201 {
		t.Fatalf("create link = %d", code)
	}
	return e.ID
}

type reminderList struct {
	Reminders []struct {
		ID, Timepoint, Kind, Channel, Status string
		SendAfter                            time.Time `json:"send_after"`
	}
}

func TestReminderAPI(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	id := f.enrolDue(t)
	base := "/api/v1/procedures/" + id + "/reminders"

	var list reminderList
	if code := f.call(t, "GET", base, f.clinician, nil, &list); code != 200 || list.Reminders == nil || len(list.Reminders) != 0 {
		t.Fatalf("empty outbox = %d %+v", code, list)
	}
	var sent reminderList
	if code := f.call(t, "POST", base, f.clinician, nil, &sent); code != 202 || len(sent.Reminders) != 1 ||
		sent.Reminders[0].Kind != "manual" || sent.Reminders[0].Channel != "email" || sent.Reminders[0].Timepoint != "day-4" ||
		sent.Reminders[0].Status != "queued" {
		t.Fatalf("send = %d %+v", code, sent)
	}
	// Queued with its job in the same transaction; the job carries the outbox id only.
	if n := f.count(t, `select count(*) from river_job where kind = 'reminder_send' and args = jsonb_build_object('reminder_id', $1::text)`,
		sent.Reminders[0].ID); n != 1 {
		t.Fatalf("%d jobs for the reminder", n)
	}
	if code := f.call(t, "POST", base, f.admin, map[string]any{}, nil); code != 409 {
		t.Fatalf("a second reminder by hand within minutes = %d, want 409", code)
	}
	if code := f.call(t, "GET", base, f.admin, nil, &list); code != 200 || len(list.Reminders) != 1 || list.Reminders[0].ID != sent.Reminders[0].ID {
		t.Fatalf("outbox = %d %+v", code, list)
	}

	var sw struct{ Enabled *bool }
	if code := f.call(t, "POST", base+"/settings", f.clinician, map[string]any{"enabled": false}, &sw); code != 200 || sw.Enabled == nil || *sw.Enabled {
		t.Fatalf("turn off = %d %+v", code, sw)
	}
	if n := f.count(t, `select count(*) from procedures where id = $1 and not reminders_enabled`, id); n != 1 {
		t.Fatal("reminders still on")
	}
	var problem struct{ Error struct{ Message string } }
	if code := f.call(t, "POST", base, f.clinician, nil, &problem); code != 409 {
		t.Fatalf("send with reminders off = %d", code)
	}
	if code := f.call(t, "POST", base+"/settings", f.admin, map[string]any{"enabled": true}, nil); code != 200 {
		t.Fatalf("turn on = %d", code)
	}

	// Bad input.
	for _, c := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"bad id", "GET", "/api/v1/procedures/not-a-uuid/reminders", nil, 404},
		{"unknown procedure", "GET", "/api/v1/procedures/" + uuid.NewString() + "/reminders", nil, 404},
		{"send to unknown", "POST", "/api/v1/procedures/" + uuid.NewString() + "/reminders", nil, 404},
		{"enabled missing", "POST", base + "/settings", map[string]any{}, 400},
		{"enabled not bool", "POST", base + "/settings", map[string]any{"enabled": "no"}, 400},
		{"unknown field", "POST", base + "/settings", map[string]any{"enabled": true, "channel": "sms"}, 400},
		{"send with a body", "POST", base, map[string]any{"message": "hello"}, 400},
		{"webhook over http", "PUT", "/api/v1/reminder-settings", map[string]any{"webhook_url": "http://gateway.example/sms",
			"webhook_secret": "a webhook secret of more than 32 characters"}, 422},
		{"short secret", "PUT", "/api/v1/reminder-settings", map[string]any{"webhook_url": "https://gateway.example/sms",
			"webhook_secret": "short"}, 422},
		{"bad quiet hours", "PUT", "/api/v1/reminder-settings", map[string]any{"quiet_start": "9pm", "quiet_end": "08:00"}, 422},
	} {
		token := f.clinician
		if c.method == "PUT" {
			token = f.admin
		}
		if code := f.call(t, c.method, c.path, token, c.body, nil); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	req, _ := http.NewRequest("POST", f.url+base+"/settings", strings.NewReader("enabled=false"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+f.clinician)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("form body = %d, want 415", resp.StatusCode)
	}
	var settings map[string]any
	if code := f.call(t, "PUT", "/api/v1/reminder-settings", f.admin, map[string]any{"webhook_url": "https://gateway.example/sms?key=GATEWAYKEY123",
		"webhook_secret": "a webhook secret of more than 32 characters", "quiet_start": "20:00", "quiet_end": "07:30"}, &settings); code != 200 ||
		settings["webhook_secret"] != nil || settings["quiet_start"] != "20:00" {
		t.Fatalf("settings = %d %v", code, settings)
	}
	// Clinicians learn only that a gateway is set; admins see where it goes, its key masked.
	settings = nil
	if code := f.call(t, "GET", "/api/v1/reminder-settings", f.clinician, nil, &settings); code != 200 ||
		settings["webhook_url"] != "" || settings["webhook_configured"] != true || settings["webhook_secret"] != nil ||
		settings["quiet_start"] != "20:00" || settings["quiet_end"] != "07:30" {
		t.Fatalf("clinician reads settings = %d %v", code, settings)
	}
	settings = nil
	if code := f.call(t, "GET", "/api/v1/reminder-settings", f.admin, nil, &settings); code != 200 ||
		settings["webhook_url"] != "https://gateway.example/sms?key=%2A%2A%2A" {
		t.Fatalf("admin reads settings = %d %v, want the URL with its key masked", code, settings)
	}
}

func TestReminderAPIAuthorization(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	watchAuthz(f.srv)
	id := f.enrolDue(t)
	base := "/api/v1/procedures/" + id + "/reminders"
	type route struct {
		method, path string
		body         any
		ok, outsider int
	}
	routes := []route{
		{"GET", base, nil, 200, 404},
		{"GET", "/api/v1/reminder-settings", nil, 200, 200}, // their own clinic's
		{"POST", base + "/settings", map[string]any{"enabled": true}, 200, 404},
	}
	for _, r := range routes {
		for _, c := range []struct {
			name, token string
			want        int
		}{
			{"clinician", f.clinician, r.ok}, {"admin", f.admin, r.ok}, {"researcher", f.researcher, 403},
			{"other clinic", f.outsider, r.outsider}, {"no credentials", "", 401}, {"garbage", "dft_nonsense", 401},
		} {
			if code := f.call(t, r.method, r.path, c.token, r.body, nil); code != c.want {
				t.Errorf("%s %s as %s = %d, want %d", r.method, r.path, c.name, code, c.want)
			}
		}
	}
	// Sending by hand: the refusals first, then the clinician (a second send is refused).
	for _, c := range []struct {
		name, token string
		want        int
	}{{"researcher", f.researcher, 403}, {"other clinic", f.outsider, 404}, {"no credentials", "", 401}, {"clinician", f.clinician, 202}, {"admin", f.admin, 409}} {
		if code := f.call(t, "POST", base, c.token, nil, nil); code != c.want {
			t.Errorf("POST %s as %s = %d, want %d", base, c.name, code, c.want)
		}
	}
	if n := f.count(t, `select count(*) from reminders where procedure_id = $1`, id); n != 1 {
		t.Fatalf("%d reminders queued, want 1", n)
	}
	// Clinic settings are for admins.
	body := map[string]any{"quiet_start": "21:00", "quiet_end": "08:00"}
	for _, c := range []struct {
		name, token string
		want        int
	}{{"admin", f.admin, 200}, {"clinician", f.clinician, 403}, {"researcher", f.researcher, 403}, {"no credentials", "", 401}} {
		if code := f.call(t, "PUT", "/api/v1/reminder-settings", c.token, body, nil); code != c.want {
			t.Errorf("PUT reminder-settings as %s = %d, want %d", c.name, code, c.want)
		}
	}
}
