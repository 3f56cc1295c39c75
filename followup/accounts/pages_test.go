package accounts

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// The small reads the sign-in pages make: the user themself, whether passkeys are on, and
// the clock that Verified.At counts by.
func TestPageReads(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	clinic := mustClinic(t, s, "Page reads", "")
	u, a := mustUser(t, s, clinic.ID, followup.RoleClinician)
	_, admin := mustUser(t, s, clinic.ID, followup.RoleAdmin)
	ctx := testCtx(t)
	got, err := s.CurrentUser(ctx, a)
	if err != nil || got.ID != u.ID || got.Email != u.Email {
		t.Errorf("CurrentUser = %+v, %v; want %s", got, err, u.Email)
	}
	_, err = s.CurrentUser(ctx, followup.Actor{Kind: followup.ActorUser, ID: uuid.New(), ClinicID: clinic.ID})
	wantCode(t, "unknown user", err, followup.EUNAUTHORIZED)
	_, err = s.CurrentUser(ctx, followup.SystemActor(clinic.ID))
	wantCode(t, "system actor", err, followup.EUNAUTHORIZED)
	if err := s.SetUserDisabled(ctx, admin, u.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = s.CurrentUser(ctx, a)
	wantCode(t, "disabled user", err, followup.EUNAUTHORIZED)

	if !s.PasskeysAvailable() || newTestService(t).PasskeysAvailable() {
		t.Error("PasskeysAvailable does not follow Config.RPID")
	}
	clock.Add(time.Hour)
	if !s.Now().Equal(clock.Now()) || s.StepUpDue(s.Now()) || !s.StepUpDue(s.Now().Add(-StepUpAge)) {
		t.Errorf("Now = %v, clock %v", s.Now(), clock.Now())
	}
}
