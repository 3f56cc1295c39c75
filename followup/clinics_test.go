package followup

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestCreateClinic(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ctx := testCtx(t)

	c, err := s.CreateClinic(ctx, "  Shanghai Skin  ", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Shanghai Skin" || c.TimeZone != "Asia/Shanghai" || c.Location.String() != "Asia/Shanghai" || c.ID == uuid.Nil {
		t.Errorf("created %+v", c)
	}
	for _, get := range []func() (Clinic, error){
		func() (Clinic, error) { return s.Clinic(ctx, c.ID) },
		func() (Clinic, error) { return s.ClinicByName(ctx, "Shanghai Skin") },
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != c.ID || got.Name != c.Name || got.Location.String() != "Asia/Shanghai" {
			t.Errorf("read back %+v, want %+v", got, c)
		}
	}

	_, err = s.CreateClinic(ctx, "Shanghai Skin", "UTC")
	wantCode(t, "duplicate name", err, ECONFLICT)
	for _, tc := range []struct{ name, zone string }{
		{"", "UTC"},
		{"   ", "UTC"},
		{strings.Repeat("诊", 201), "UTC"},
		{"A", ""},
		{"A", "Local"},
		{"A", "Mars/Olympus_Mons"},
		{"A", "../../etc/passwd"},
	} {
		_, err := s.CreateClinic(ctx, tc.name, tc.zone)
		wantCode(t, "clinic "+tc.name+" in "+tc.zone, err, EINVALID)
	}
	if _, err := s.CreateClinic(ctx, strings.Repeat("诊", 200), "Europe/Berlin"); err != nil {
		t.Errorf("200-character name: %v", err)
	}

	_, err = s.Clinic(ctx, uuid.New())
	wantCode(t, "unknown id", err, ENOTFOUND)
	_, err = s.ClinicByName(ctx, "Nowhere")
	wantCode(t, "unknown name", err, ENOTFOUND)

	var n int
	if err := s.pool.QueryRow(ctx, `select count(*) from audit_events where action = $1 and target_id = $2 and clinic_id = $2`, AuditClinicCreated, c.ID).Scan(&n); err != nil || n != 1 {
		t.Errorf("clinic_created audit rows = %d (%v), want 1", n, err)
	}
}
