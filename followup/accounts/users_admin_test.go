package accounts

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

func TestSetUserDisabled(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	addr := netip.MustParseAddr("192.0.2.7")
	c := mustClinic(t, s, "Clinic "+uuid.NewString()[:8], "")
	other := mustClinic(t, s, "Other "+uuid.NewString()[:8], "")
	_, admin := mustUser(t, s, c.ID, followup.RoleAdmin)
	u, clinician := mustUser(t, s, c.ID, followup.RoleClinician)
	_, otherAdmin := mustUser(t, s, other.ID, followup.RoleAdmin)

	// Authorization: another clinic's admin does not find the user, a clinician may not, nobody
	// disables themselves, an unknown user is not found.
	for name, tc := range map[string]struct {
		a    followup.Actor
		id   uuid.UUID
		want string
	}{
		"other clinic": {otherAdmin, u.ID, followup.ENOTFOUND},
		"clinician":    {clinician, u.ID, followup.EFORBIDDEN},
		"no actor":     {followup.Actor{}, u.ID, followup.EUNAUTHORIZED},
		"system":       {followup.SystemActor(c.ID), u.ID, followup.EUNAUTHORIZED},
		"self":         {admin, admin.ID, followup.EINVALID},
		"unknown":      {admin, uuid.New(), followup.ENOTFOUND},
	} {
		if err := s.SetUserDisabled(ctx, tc.a, tc.id, true); followup.ErrorCode(err) != tc.want {
			t.Errorf("%s: SetUserDisabled = %v, want %s", name, err, tc.want)
		}
	}
	if _, epoch, err := s.SessionUser(ctx, u.ID, addr); err != nil || epoch != 0 {
		t.Fatalf("after refused attempts: SessionUser = %d, %v", epoch, err)
	}

	if err := s.SetUserDisabled(ctx, admin, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionUser(ctx, u.ID, addr); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("session of a disabled user = %v, want EUNAUTHORIZED", err)
	}
	if _, _, err := s.Authenticate(ctx, u.Email, testPassword, addr); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("login of a disabled user = %v, want EUNAUTHORIZED", err)
	}
	// Disabling again changes nothing and audits nothing.
	if err := s.SetUserDisabled(ctx, admin, u.ID, true); err != nil {
		t.Fatal(err)
	}
	users, err := s.ClinicUsers(ctx, admin)
	if err != nil || len(users) != 2 {
		t.Fatalf("clinic users = %v, %v; want the admin and the clinician, not the other clinic's", users, err)
	}
	if _, err := s.ClinicUsers(ctx, clinician); followup.ErrorCode(err) != followup.EFORBIDDEN {
		t.Errorf("clinician listing users = %v, want EFORBIDDEN", err)
	}
	for _, x := range users {
		if x.ID == u.ID && !x.Disabled {
			t.Error("ClinicUsers does not show the user disabled")
		}
	}

	// Re-enabled, the user signs in again, but sessions from before stay ended: the epoch moved.
	if err := s.SetUserDisabled(ctx, admin, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, u.Email, testPassword, addr); err != nil {
		t.Errorf("login after re-enabling = %v", err)
	}
	if _, epoch, err := s.SessionUser(ctx, u.ID, addr); err != nil || epoch != 1 {
		t.Errorf("after re-enabling: SessionUser = %d, %v; want epoch 1", epoch, err)
	}

	var disabledEvents, enabledEvents int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where action = $1), count(*) filter (where action = $2)
		from audit_events where target_id = $3 and actor_id = $4`, AuditUserDisabled, AuditUserEnabled, u.ID, admin.ID).
		Scan(&disabledEvents, &enabledEvents); err != nil {
		t.Fatal(err)
	}
	if disabledEvents != 1 || enabledEvents != 1 {
		t.Errorf("audit events: %d disabled, %d enabled; want 1 each", disabledEvents, enabledEvents)
	}
}
