package accounts

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

func TestClinicSessions(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Sessions "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	addr := netip.MustParseAddr("::ffff:192.0.2.7")

	got, epoch, err := s.SessionUser(ctx, u.ID, addr)
	if err != nil || epoch != 0 || got.ID != u.ID || got.ClinicID != c.ID || got.Role != followup.RoleClinician || got.Addr.String() != "192.0.2.7" {
		t.Fatalf("SessionUser = %+v, %d, %v", got, epoch, err)
	}
	for want := int64(1); want <= 2; want++ {
		if e, err := s.EndAllSessions(ctx, a); err != nil || e != want {
			t.Errorf("EndAllSessions = %d, %v; want %d", e, err, want)
		}
	}
	if _, epoch, _ := s.SessionUser(ctx, u.ID, addr); epoch != 2 {
		t.Errorf("epoch after two ends = %d", epoch)
	}
	if err := s.RecordLogout(ctx, a); err != nil {
		t.Error(err)
	}
	if n := countRows(t, s, `select count(*) from audit_events where actor_id = $1 and action in ('sessions_ended', 'logout')`, u.ID); n != 3 {
		t.Errorf("audit events = %d, want 3", n)
	}
	if _, err := s.EndAllSessions(ctx, followup.SystemActor(c.ID)); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("EndAllSessions by the system = %v", err)
	}
	if err := s.RecordLogout(ctx, followup.Actor{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("RecordLogout without a user = %v", err)
	}
	if _, _, err := s.SessionUser(ctx, uuid.New(), addr); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("unknown user = %v, want EUNAUTHORIZED", err)
	}
	if _, err := s.pool.Exec(ctx, `update users set disabled_at = now() where id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionUser(ctx, u.ID, addr); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("disabled user = %v, want EUNAUTHORIZED", err)
	}
}
