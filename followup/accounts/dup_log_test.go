package accounts

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/migrations"
)

// TestDuplicateEmailStaysOutOfTheDatabaseLog: a duplicate staff email is a conflict for the
// caller, and never an error in PostgreSQL's own log, whose DETAIL line would name it.
func TestDuplicateEmailStaysOutOfTheDatabaseLog(t *testing.T) {
	t.Parallel()
	cluster := pgtest.StartCluster(t)
	if _, err := migrations.Up(testCtx(t), cluster.URL("postgres"), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Pool: pgtest.OpenPool(t, cluster.URL("postgres"))})
	if err != nil {
		t.Fatal(err)
	}
	clinic := mustClinic(t, s, "Log clinic", "UTC")
	const email = "logsecret.person@example.org"
	u := NewUser{ClinicID: clinic.ID, Email: email, Name: "B", Role: followup.RoleClinician, Password: testPassword}
	if _, err := s.CreateUser(testCtx(t), followup.SystemActor(clinic.ID), u); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateUser(testCtx(t), followup.SystemActor(clinic.ID), u)
	wantCode(t, "duplicate email", err, followup.ECONFLICT)
	if log := cluster.ServerLog(t); strings.Contains(log, email) {
		t.Errorf("PostgreSQL's log names the email:\n%s", log)
	}
}
