package accounts

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

func TestSecondFactorPolicy(t *testing.T) {
	t.Parallel()
	s, _ := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Policy "+uuid.NewString()[:8], "")
	other := mustClinic(t, s, "Other "+uuid.NewString()[:8], "")
	clinician, clinicianActor := mustUser(t, s, c.ID, followup.RoleClinician)
	researcher, _ := mustUser(t, s, c.ID, followup.RoleResearcher)
	admin, adminActor := mustUser(t, s, c.ID, followup.RoleAdmin)
	_, otherAdmin := mustUser(t, s, other.ID, followup.RoleAdmin)

	required := func(u User) bool {
		t.Helper()
		st, err := s.SecondFactorState(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Required
	}
	if p, err := s.ClinicSignInPolicy(ctx, clinicianActor); err != nil || p != (SignInPolicy{RequireSecondFactor: true}) {
		t.Errorf("a new clinic's policy = %+v, %v; want a second factor required, no passwordless", p, err)
	}
	if !required(clinician) || !required(researcher) || !required(admin) {
		t.Error("by default everyone needs a second factor")
	}

	wantCode(t, "clinician", s.SetClinicSecondFactor(ctx, clinicianActor, false), followup.EFORBIDDEN)
	wantCode(t, "nobody", s.SetClinicSecondFactor(ctx, followup.Actor{}, false), followup.EUNAUTHORIZED)
	wantCode(t, "system for no clinic", s.SetClinicSecondFactor(ctx, followup.SystemActor(uuid.Nil), false), followup.EINVALID)
	wantCode(t, "unknown clinic", s.SetClinicSecondFactor(ctx, followup.SystemActor(uuid.New()), false), followup.ENOTFOUND)
	// Another clinic's admin changes their own clinic, never this one.
	if err := s.SetClinicSecondFactor(ctx, otherAdmin, false); err != nil {
		t.Fatal(err)
	}
	if !required(clinician) {
		t.Error("another clinic's setting applied here")
	}
	if err := s.SetClinicSecondFactor(ctx, adminActor, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClinicSecondFactor(ctx, adminActor, false); err != nil { // no change, no audit
		t.Fatal(err)
	}
	if required(clinician) || !required(researcher) || !required(admin) {
		t.Error("turned off: clinicians need none, researchers and admins still do")
	}
	if err := s.SetClinicSecondFactor(ctx, followup.SystemActor(c.ID), true); err != nil {
		t.Fatal(err)
	}
	if !required(clinician) {
		t.Error("the system's change did not apply")
	}
	var byAdmin, bySystem int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where actor_kind = 'user' and actor_id = $3),
		count(*) filter (where actor_kind = 'system') from audit_events where action = $1 and target_id = $2`,
		AuditSignInPolicy, c.ID, admin.ID).Scan(&byAdmin, &bySystem); err != nil {
		t.Fatal(err)
	}
	if byAdmin != 1 || bySystem != 1 {
		t.Errorf("policy audit: %d by the admin, %d by the system; want 1 each", byAdmin, bySystem)
	}
	if _, err := s.SecondFactorState(ctx, uuid.New()); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("state of an unknown user = %v", err)
	}
}

func TestResetSecondFactor(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Reset "+uuid.NewString()[:8], "")
	other := mustClinic(t, s, "Elsewhere "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)
	_, colleague := mustUser(t, s, c.ID, followup.RoleClinician)
	adminUser, admin := mustUser(t, s, c.ID, followup.RoleAdmin)
	_, otherAdmin := mustUser(t, s, other.ID, followup.RoleAdmin)
	secret, codes := enrolTOTP(t, s, clock, a)
	registerPasskey(t, s, a, newSoftAuthenticator(t), "Key")

	wantCode(t, "colleague", resetErr(s.ResetSecondFactor(ctx, colleague, u.Email)), followup.EFORBIDDEN)
	wantCode(t, "other clinic's admin", resetErr(s.ResetSecondFactor(ctx, otherAdmin, u.Email)), followup.ENOTFOUND)
	wantCode(t, "admin's own", resetErr(s.ResetSecondFactor(ctx, admin, adminUser.Email)), followup.EINVALID)
	wantCode(t, "unknown", resetErr(s.ResetSecondFactor(ctx, admin, "nobody@example.org")), followup.ENOTFOUND)
	if st, _ := s.SecondFactorState(ctx, u.ID); !st.Enrolled {
		t.Fatal("refused resets removed something")
	}
	removed, err := s.ResetSecondFactor(ctx, followup.SystemActor(uuid.Nil), u.Email)
	if err != nil {
		t.Fatal(err)
	}
	if removed != (RemovedFactors{TOTP: 1, Passkeys: 1, RecoveryCodes: RecoveryCodeCount}) {
		t.Errorf("removed %+v", removed)
	}
	st, err := s.SecondFactorState(ctx, u.ID)
	if err != nil || st.Enrolled || st.Passkeys != 0 || st.RecoveryCodesLeft != 0 {
		t.Errorf("after reset: %+v, %v", st, err)
	}
	if _, epoch, _ := s.SessionUser(ctx, u.ID, netip.Addr{}); epoch != 1 {
		t.Errorf("epoch %d after reset: sessions not ended", epoch)
	}
	var detail string
	if err := s.pool.QueryRow(ctx, `select detail::text from audit_events where action = $1 and target_id = $2 and actor_kind = 'system' and clinic_id = $3`,
		AuditSecondFactorReset, u.ID, c.ID).Scan(&detail); err != nil {
		t.Fatalf("reset audit row: %v", err)
	}
	if detail != `{"totp": 1, "passkeys": 1, "recovery_codes": 10}` {
		t.Errorf("reset detail %s", detail)
	}
	// Enrolling again works, with a new secret.
	secret2, _ := enrolTOTP(t, s, clock, a)
	if secret2 == secret {
		t.Error("the same secret after a reset")
	}
	if _, err := s.ResetSecondFactor(ctx, admin, u.Email); err != nil {
		t.Errorf("by the clinic's admin: %v", err)
	}
	assertAuditClean(t, s, append(codes, secret, secret2)...)
}

func resetErr(_ RemovedFactors, err error) error { return err }

func TestRecentSignIns(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Recent "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleAdmin)
	_, other := mustUser(t, s, c.ID, followup.RoleAdmin)
	secret, _ := enrolTOTP(t, s, clock, a)
	addr := netip.MustParseAddr("192.0.2.77")
	if _, _, err := s.Authenticate(ctx, u.Email, "wrong password", addr); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, u.Email, testPassword, addr); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	s.VerifySecondFactor(ctx, u.ID, "000000", addr)
	if _, err := s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now()), addr); err != nil {
		t.Fatal(err)
	}

	list, err := s.RecentSignIns(ctx, a, 3)
	if err != nil || len(list) != 3 {
		t.Fatalf("recent = %+v, %v", list, err)
	}
	want := []SignIn{
		{Addr: addr, Method: MethodTOTP, SecondStep: true},
		{Addr: addr, Method: MethodTOTP, SecondStep: true, Failed: true, Reason: "wrong_code"},
		{Addr: addr, Method: MethodPassword},
	}
	for i := range want {
		got := list[i]
		got.At = time.Time{}
		if got != want[i] || list[i].At.IsZero() {
			t.Errorf("recent[%d] = %+v, want %+v", i, list[i], want[i])
		}
	}
	if all, _ := s.RecentSignIns(ctx, a, MaxRecentSignIns); len(all) != 4 {
		t.Errorf("all sign-ins: %d, want 4", len(all))
	}
	if mine, _ := s.RecentSignIns(ctx, other, 10); len(mine) != 0 {
		t.Errorf("another user sees %+v", mine)
	}
	for _, n := range []int{0, -1, MaxRecentSignIns + 1} {
		_, err := s.RecentSignIns(ctx, a, n)
		wantCode(t, "n out of range", err, followup.EINVALID)
	}
	_, err = s.RecentSignIns(ctx, followup.SystemActor(c.ID), 5)
	wantCode(t, "system", err, followup.EUNAUTHORIZED)
}

func TestStepUpDue(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	checked := clock.Now()
	if s.StepUpDue(checked) {
		t.Error("due right after a check")
	}
	clock.Add(StepUpAge - time.Second)
	if s.StepUpDue(checked) {
		t.Error("due before 15 minutes")
	}
	clock.Add(time.Second)
	if !s.StepUpDue(checked) || !s.StepUpDue(time.Time{}) {
		t.Error("not due after 15 minutes, or without a check")
	}
}
