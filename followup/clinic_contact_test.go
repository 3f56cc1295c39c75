package followup

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// An admin sets the clinic's contact; the family's link reads the phone and the hours of its
// own clinic only; everyone else is refused, and bad input changes nothing.
func TestClinicContactSettings(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	_, admin := mustUser(t, f.svc, f.clinic.ID, RoleAdmin)
	_, researcher := mustUser(t, f.svc, f.clinic.ID, RoleResearcher)
	parent := f.parent(t)

	if h, err := f.svc.ParentHome(ctx, parent); err != nil || h.Clinic.Phone != "" || h.Clinic.Hours != "" || h.Clinic.Name != f.clinic.Name {
		t.Fatalf("contact before any setting = %+v, %v", h.Clinic, err)
	}
	in := ContactSettings{MessageInbox: "  Messages@Clinic.Example ", Phone: " +86 10 1234 5678 ", Hours: " Mon-Fri 8:00-17:00 "}
	out, err := f.svc.SetContactSettings(ctx, admin, in)
	want := ContactSettings{MessageInbox: "messages@clinic.example", Phone: "+86 10 1234 5678", Hours: "Mon-Fri 8:00-17:00"}
	if err != nil || out != want {
		t.Fatalf("set = %+v, %v; want %+v", out, err, want)
	}
	for _, a := range []Actor{admin, f.clinician} {
		if got, err := f.svc.ContactSettings(ctx, a); err != nil || got != want {
			t.Errorf("settings read by %s = %+v, %v", a.Role, got, err)
		}
	}
	// The family's page (ParentHome) shows the phone and the hours.
	if h, err := f.svc.ParentHome(ctx, parent); err != nil || h.Clinic.Name != f.clinic.Name || h.Clinic.Phone != want.Phone ||
		h.Clinic.Hours != want.Hours {
		t.Fatalf("the family's contact = %+v, %v", h.Clinic, err)
	}
	// The change is audited with which fields changed, never their values.
	var detail string
	if err := f.svc.pool.QueryRow(ctx, `select detail::text from audit_events where action = $1 and target_id = $2`,
		AuditContactSettings, f.clinic.ID).Scan(&detail); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(detail, "1234") || strings.Contains(detail, "clinic.example") || !strings.Contains(detail, `"contact_phone": true`) {
		t.Errorf("audit detail = %s", detail)
	}
	// Saving the same settings again records nothing more.
	if _, err := f.svc.SetContactSettings(ctx, admin, want); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.svc, `select count(*) from audit_events where action = $1 and target_id = $2`, AuditContactSettings, f.clinic.ID); n != 1 {
		t.Errorf("%d audit events after an unchanged save, want 1", n)
	}

	// Another clinic reads as its own: nothing of this one's.
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "UTC")
	if c, err := f.svc.Clinic(ctx, other.ID); err != nil || c.ContactPhone != "" || c.Hours != "" {
		t.Fatalf("the other clinic's contact = %+v, %v", c, err)
	}

	// Who may not.
	wantCode(t, "clinician sets", second(f.svc.SetContactSettings(ctx, f.clinician, want)), EFORBIDDEN)
	wantCode(t, "researcher sets", second(f.svc.SetContactSettings(ctx, researcher, want)), EFORBIDDEN)
	wantCode(t, "parent sets", second(f.svc.SetContactSettings(ctx, parent, want)), EUNAUTHORIZED)
	wantCode(t, "researcher reads", second(f.svc.ContactSettings(ctx, researcher)), EFORBIDDEN)
	wantCode(t, "parent reads the settings", second(f.svc.ContactSettings(ctx, parent)), EUNAUTHORIZED)

	// Bad input: refused with the field named, nothing changed.
	for _, bad := range []struct {
		field string
		in    ContactSettings
	}{
		{"message_inbox", ContactSettings{MessageInbox: "not an address"}},
		{"message_inbox", ContactSettings{MessageInbox: "Clinic <messages@clinic.example>"}},
		{"message_inbox", ContactSettings{MessageInbox: strings.Repeat("a", 250) + "@x.example"}},
		{"contact_phone", ContactSettings{Phone: "call us"}},
		{"contact_phone", ContactSettings{Phone: "12"}},
		{"contact_phone", ContactSettings{Phone: strings.Repeat("1", 33)}},
		{"clinic_hours", ContactSettings{Hours: strings.Repeat("h", MaxClinicHours+1)}},
		{"clinic_hours", ContactSettings{Hours: "Mon-Fri\n8:00-17:00"}},
		{"clinic_hours", ContactSettings{Hours: "Mon\x00"}},
	} {
		_, err := f.svc.SetContactSettings(ctx, admin, bad.in)
		wantCode(t, "bad settings", err, EINVALID)
		if !strings.HasPrefix(ErrorMessage(err), bad.field+":") {
			t.Errorf("%+v: message %q does not name %s", bad.in, ErrorMessage(err), bad.field)
		}
	}
	if got, _ := f.svc.ContactSettings(ctx, admin); got != want {
		t.Errorf("after refused changes the settings are %+v", got)
	}
	// A long hours text in Chinese counts characters, not bytes.
	zh := ContactSettings{Hours: strings.Repeat("周", MaxClinicHours)}
	if _, err := f.svc.SetContactSettings(ctx, admin, zh); err != nil {
		t.Fatalf("%d Chinese characters refused: %v", MaxClinicHours, err)
	}
	// The system acting for the clinic (the demo's seed) may; with no clinic it may not.
	if got, err := f.svc.SetContactSettings(ctx, SystemActor(f.clinic.ID), want); err != nil || got != want {
		t.Fatalf("the system sets = %+v, %v", got, err)
	}
	wantCode(t, "system of no clinic sets", second(f.svc.SetContactSettings(ctx, SystemActor(uuid.Nil), want)), EUNAUTHORIZED)
	// Clearing them is allowed.
	if out, err := f.svc.SetContactSettings(ctx, admin, ContactSettings{}); err != nil || out != (ContactSettings{}) {
		t.Fatalf("clear = %+v, %v", out, err)
	}
}

// second is the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }
