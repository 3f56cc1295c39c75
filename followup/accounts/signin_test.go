package accounts

import (
	"net/netip"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// SignIn tells the page where to go after the password: on, enrolment, or the second step.
func TestSignInNextStep(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	strict := mustClinic(t, s, "Strict "+uuid.NewString()[:8], "")
	trial := mustClinic(t, s, "Trial "+uuid.NewString()[:8], "")
	if err := s.SetClinicSecondFactor(ctx, followup.SystemActor(trial.ID), false); err != nil {
		t.Fatal(err)
	}
	strictDoc, _ := mustUser(t, s, strict.ID, followup.RoleClinician)
	trialDoc, _ := mustUser(t, s, trial.ID, followup.RoleClinician)
	trialAdmin, _ := mustUser(t, s, trial.ID, followup.RoleAdmin)
	trialResearcher, _ := mustUser(t, s, trial.ID, followup.RoleResearcher)
	careful, carefulActor := mustUser(t, s, trial.ID, followup.RoleClinician)
	enrolTOTP(t, s, clock, carefulActor)
	addr := netip.MustParseAddr("192.0.2.10")

	for _, tc := range []struct {
		name string
		u    User
		want SignInStep
	}{
		{"clinician where the clinic requires a factor", strictDoc, StepEnrol},
		{"clinician where it does not", trialDoc, StepDone},
		{"admin, always", trialAdmin, StepEnrol},
		{"researcher, always", trialResearcher, StepEnrol},
		{"clinician who set one up anyway", careful, StepSecondFactor},
	} {
		res, err := s.SignIn(ctx, tc.u.Email, testPassword, addr)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if res.Next != tc.want || res.User.ID != tc.u.ID || res.Actor.ID != tc.u.ID || res.Actor.Addr != addr {
			t.Errorf("%s: %+v, want next %q", tc.name, res, tc.want)
		}
	}
	res, err := s.SignIn(ctx, careful.Email, testPassword, addr)
	if err != nil || res.SecondFactor.Methods[0] != MethodTOTP || res.SecondFactor.RecoveryCodesLeft != RecoveryCodeCount {
		t.Errorf("second factor of the careful clinician: %+v, %v", res.SecondFactor, err)
	}
	_, err = s.SignIn(ctx, trialDoc.Email, "wrong password", addr)
	wantCode(t, "wrong password", err, followup.EUNAUTHORIZED)
	_, err = s.SignIn(ctx, "nobody@example.org", testPassword, addr)
	wantCode(t, "unknown email", err, followup.EUNAUTHORIZED)
}
