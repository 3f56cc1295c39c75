package followup

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/migrations"
)

// TestDuplicatesStayOutOfTheDatabaseLog: a duplicate MRN is a conflict for the caller, and
// never an error in PostgreSQL's own log, whose DETAIL line would name the value. (The staff
// email's twin is in package accounts.)
func TestDuplicatesStayOutOfTheDatabaseLog(t *testing.T) {
	t.Parallel()
	cluster := pgtest.StartCluster(t)
	if _, err := migrations.Up(testCtx(t), cluster.URL("postgres"), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	svc := newTestService(t, func(c *Config) { c.Pool = pgtest.OpenPool(t, cluster.URL("postgres")) })
	clinic := mustClinic(t, svc, "Log clinic", "UTC")
	_, clinician := mustUser(t, svc, clinic.ID, RoleClinician)
	const mrn = "MRN-LOGSECRET-4711"
	in := NewPatient{DisplayName: "A", BirthDate: "2024-01-01", MRN: mrn, GuardianPhone: "+1 555 0100"}
	if _, err := svc.CreatePatient(testCtx(t), clinician, in); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreatePatient(testCtx(t), clinician, in); ErrorCode(err) != ECONFLICT {
		t.Errorf("duplicate MRN = %v, want conflict", err)
	}
	log := cluster.ServerLog(t)
	for _, secret := range []string{mrn} {
		if strings.Contains(log, secret) {
			t.Errorf("PostgreSQL's log names %s:\n%s", secret, log)
		}
	}
}
