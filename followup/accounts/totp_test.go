package accounts

import (
	"bytes"
	"encoding/base32"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// enrolTOTP sets up an authenticator app for the user and returns its secret and the
// recovery codes.
func enrolTOTP(t *testing.T, s *Service, clock *testClock, a followup.Actor) (string, []string) {
	t.Helper()
	e, err := s.BeginTOTP(testCtx(t), a)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := s.ConfirmTOTP(testCtx(t), a, codeAt(t, e.Secret, clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return e.Secret, codes
}

func TestTOTPEnrolment(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "TOTP "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleClinician)

	e, err := s.BeginTOTP(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(raw) != totpSecretSize {
		t.Fatalf("secret %q: %d bytes, %v", e.Secret, len(raw), err)
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/Dermfollow:") || !strings.Contains(e.URL, "secret="+e.Secret) ||
		!strings.Contains(e.URL, "issuer=Dermfollow") || !strings.Contains(e.URL, "digits=6") || !strings.Contains(e.URL, "period=30") {
		t.Errorf("URL %q", e.URL)
	}
	if !bytes.HasPrefix(e.QRPNG, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("QR is not a PNG: % x", e.QRPNG[:min(8, len(e.QRPNG))])
	}
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `select secret_sealed from user_totp where user_id = $1`, u.ID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, raw) || bytes.Contains(sealed, []byte(e.Secret)) {
		t.Error("user_totp holds the secret unsealed")
	}
	if st, err := s.SecondFactorState(ctx, u.ID); err != nil || st.Enrolled || len(st.Methods) != 0 {
		t.Errorf("pending enrolment: state %+v, %v; want not enrolled", st, err)
	}
	// A pending app does not pass the second step.
	if _, err := s.VerifySecondFactor(ctx, u.ID, codeAt(t, e.Secret, clock.Now()), netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("code of a pending app = %v, want EUNAUTHORIZED", err)
	}

	_, err = s.ConfirmTOTP(ctx, a, "12345")
	wantCode(t, "five digits", err, followup.EINVALID)
	wrong := codeAt(t, e.Secret, clock.Now().Add(10*time.Minute))
	_, err = s.ConfirmTOTP(ctx, a, wrong)
	wantCode(t, "wrong code", err, followup.EUNAUTHORIZED)

	// Beginning again replaces the pending secret: the first one's codes no longer confirm.
	e2, err := s.BeginTOTP(ctx, a)
	if err != nil || e2.Secret == e.Secret {
		t.Fatalf("second begin: %v (same secret: %v)", err, e2.Secret == e.Secret)
	}
	_, err = s.ConfirmTOTP(ctx, a, codeAt(t, e.Secret, clock.Now()))
	wantCode(t, "code of the replaced secret", err, followup.EUNAUTHORIZED)
	now := codeAt(t, e2.Secret, clock.Now())
	codes, err := s.ConfirmTOTP(ctx, a, now[:3]+" "+now[3:]) // as the apps show it
	if err != nil {
		t.Fatal(err)
	}
	format := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)
	seen := map[string]bool{}
	for _, code := range codes {
		if !format.MatchString(code) || seen[code] {
			t.Errorf("recovery code %q (of %v)", code, codes)
		}
		seen[code] = true
	}
	if len(codes) != RecoveryCodeCount {
		t.Errorf("%d recovery codes, want %d", len(codes), RecoveryCodeCount)
	}
	if n := countRows(t, s, `select count(*) from recovery_codes where user_id = $1 and length(code_hash) = 32 and used_at is null`, u.ID); n != RecoveryCodeCount {
		t.Errorf("%d stored recovery code hashes", n)
	}
	st, err := s.SecondFactorState(ctx, u.ID)
	if err != nil || !st.Enrolled || !slices.Equal(st.Methods, []string{MethodTOTP, MethodRecoveryCode}) || st.RecoveryCodesLeft != 10 {
		t.Errorf("state after enrolment = %+v, %v", st, err)
	}
	// The code that confirmed is spent; a second app needs the first removed.
	if _, err := s.VerifySecondFactor(ctx, u.ID, now, netip.Addr{}); followup.ErrorCode(err) != followup.EUNAUTHORIZED {
		t.Errorf("the confirming code again = %v, want EUNAUTHORIZED", err)
	}
	_, err = s.BeginTOTP(ctx, a)
	wantCode(t, "begin with an app set up", err, followup.ECONFLICT)
	_, err = s.ConfirmTOTP(ctx, a, codeAt(t, e2.Secret, clock.Now().Add(30*time.Second)))
	wantCode(t, "confirm twice", err, followup.ECONFLICT)
	_, err = s.BeginTOTP(ctx, followup.SystemActor(c.ID))
	wantCode(t, "system", err, followup.EUNAUTHORIZED)

	var dump string
	if err := s.pool.QueryRow(ctx, `select string_agg(r::text, ' ') from recovery_codes r`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, code := range codes {
		if norm, _ := normalizeRecoveryCode(code); strings.Contains(strings.ToUpper(dump), norm) {
			t.Errorf("recovery_codes holds %s", code)
		}
	}
	if n := countRows(t, s, `select count(*) from audit_events where action = $1 and target_id = $2 and detail->>'method' = 'totp'`,
		AuditSecondFactorAdded, u.ID); n != 1 {
		t.Errorf("%d enrolment audit events, want 1", n)
	}
	assertAuditClean(t, s, append(codes, e.Secret, e2.Secret, now, wrong)...)
}

func TestVerifyTOTP(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Verify "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleAdmin)
	secret, _ := enrolTOTP(t, s, clock, a)
	addr := netip.MustParseAddr("198.51.100.4")

	clock.Add(time.Minute)
	code := codeAt(t, secret, clock.Now())
	v, err := s.VerifySecondFactor(ctx, u.ID, code, addr)
	if err != nil || v.Method != MethodTOTP || !v.At.Equal(clock.Now()) {
		t.Fatalf("right code: %+v, %v", v, err)
	}
	// Never twice, and never an older one after a newer.
	_, err = s.VerifySecondFactor(ctx, u.ID, code, addr)
	wantCode(t, "replay", err, followup.EUNAUTHORIZED)
	if !strings.Contains(followup.ErrorMessage(err), "used already") {
		t.Errorf("replay message %q", followup.ErrorMessage(err))
	}
	// One step of skew either way: the next step's code passes now, then the current one, older, does not.
	if _, err := s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now().Add(30*time.Second)), addr); err != nil {
		t.Errorf("next step's code: %v", err)
	}
	clock.Add(2 * time.Minute)
	_, err = s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now().Add(-60*time.Second)), addr)
	wantCode(t, "two steps old", err, followup.EUNAUTHORIZED)
	_, err = s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now().Add(60*time.Second)), addr)
	wantCode(t, "two steps ahead", err, followup.EUNAUTHORIZED)
	if _, err := s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now().Add(-30*time.Second)), addr); err != nil {
		t.Errorf("previous step's code: %v", err)
	}

	// Concurrent requests with one code: exactly one passes. An attempt in flight holds a
	// failure of the budget until it passes, so the failures above must age out first, or
	// the eighth could find the budget spent.
	clock.Add(FailureWindow)
	code = codeAt(t, secret, clock.Now())
	var mu sync.Mutex
	passed, refused := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := s.VerifySecondFactor(ctx, u.ID, code, addr)
			mu.Lock()
			defer mu.Unlock()
			switch followup.ErrorCode(err) {
			case "":
				passed++
			case followup.EUNAUTHORIZED:
				refused++
			default:
				t.Errorf("concurrent: %v", err)
			}
		})
	}
	wg.Wait()
	if passed != 1 || refused != 7 {
		t.Errorf("8 concurrent uses of one code: %d passed, %d refused; want 1 and 7", passed, refused)
	}

	// Disabled and unknown users do not get that far.
	_, err = s.VerifySecondFactor(ctx, uuid.New(), "123456", addr)
	wantCode(t, "unknown user", err, followup.EUNAUTHORIZED)
	if _, err := s.pool.Exec(ctx, `update users set disabled_at = now() where id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	_, err = s.VerifySecondFactor(ctx, u.ID, codeAt(t, secret, clock.Now()), addr)
	wantCode(t, "disabled user", err, followup.EUNAUTHORIZED)

	var verified, failed int
	if err := s.pool.QueryRow(ctx, `select count(*) filter (where action = $1), count(*) filter (where action = $2)
		from audit_events where target_id = $3 and host(client_addr) = $4`, AuditSecondFactorVerified, AuditSecondFactorFailed, u.ID, addr.String()).
		Scan(&verified, &failed); err != nil {
		t.Fatal(err)
	}
	if verified != 4 || failed != 10 {
		t.Errorf("audit: %d verified, %d failed; want 4 and 10", verified, failed)
	}
	assertAuditClean(t, s, secret, code)
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	s, clock := newFactorService(t)
	ctx := testCtx(t)
	c := mustClinic(t, s, "Recovery "+uuid.NewString()[:8], "")
	u, a := mustUser(t, s, c.ID, followup.RoleResearcher)
	secret, codes := enrolTOTP(t, s, clock, a)

	// Case, hyphens and look-alike letters do not matter.
	typed := strings.ToLower(strings.ReplaceAll(codes[0], "-", " "))
	typed = strings.NewReplacer("0", "o", "1", "l").Replace(typed)
	v, err := s.VerifySecondFactor(ctx, u.ID, typed, netip.Addr{})
	if err != nil || v.Method != MethodRecoveryCode {
		t.Fatalf("recovery code %q typed as %q: %+v, %v", codes[0], typed, v, err)
	}
	_, err = s.VerifySecondFactor(ctx, u.ID, codes[0], netip.Addr{})
	wantCode(t, "a recovery code twice", err, followup.EUNAUTHORIZED)
	other := newRecoveryCode()
	_, err = s.VerifySecondFactor(ctx, u.ID, other, netip.Addr{})
	wantCode(t, "a code that was never made", err, followup.EUNAUTHORIZED)
	if st, _ := s.SecondFactorState(ctx, u.ID); st.RecoveryCodesLeft != 9 {
		t.Errorf("codes left = %d, want 9", st.RecoveryCodesLeft)
	}

	fresh, err := s.RegenerateRecoveryCodes(ctx, a)
	if err != nil || len(fresh) != RecoveryCodeCount {
		t.Fatalf("regenerate: %d codes, %v", len(fresh), err)
	}
	_, err = s.VerifySecondFactor(ctx, u.ID, codes[1], netip.Addr{})
	wantCode(t, "an old code after regenerating", err, followup.EUNAUTHORIZED)
	if _, err := s.VerifySecondFactor(ctx, u.ID, fresh[9], netip.Addr{}); err != nil {
		t.Errorf("a new code: %v", err)
	}

	// Removing the only factor takes the recovery codes with it.
	if err := s.RemoveTOTP(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "remove twice", s.RemoveTOTP(ctx, a), followup.ENOTFOUND)
	if st, err := s.SecondFactorState(ctx, u.ID); err != nil || st.Enrolled || st.RecoveryCodesLeft != 0 || len(st.Methods) != 0 {
		t.Errorf("state after removing the app = %+v, %v", st, err)
	}
	_, err = s.VerifySecondFactor(ctx, u.ID, fresh[0], netip.Addr{})
	wantCode(t, "recovery code without a factor", err, followup.EUNAUTHORIZED)
	_, err = s.RegenerateRecoveryCodes(ctx, a)
	wantCode(t, "regenerate without a factor", err, followup.EINVALID)
	assertAuditClean(t, s, append(append(codes, fresh...), secret, typed)...)
}

// Malformed codes are refused by their form alone: with a context no query could use, the
// answer is still "invalid", while a well-formed code gets as far as the database.
func TestCodeFormatsBeforeDatabase(t *testing.T) {
	t.Parallel()
	s, _ := newFactorService(t)
	dead := cancelledCtx()
	a := followup.Actor{Kind: followup.ActorUser, ID: uuid.New(), Role: followup.RoleClinician}
	for _, bad := range []string{"", "12345", "1234567", "12a456", "١٢٣٤٥٦", "123-456", strings.Repeat("1", 100),
		"7KQ2-M9XD-H4TW-0BZ", "7KQ2-M9XD-H4TW-0BZRX", "7KQ2-M9XD-H4TW-0BZU", "7KQ2_M9XD_H4TW_0BZR", "7KQ2-M9XD-H4TW-0BZ\x00"} {
		_, err := s.VerifySecondFactor(dead, a.ID, bad, netip.Addr{})
		wantCode(t, "verify "+bad, err, followup.EINVALID)
		if msg := followup.ErrorMessage(err); !strings.HasPrefix(msg, "code: ") {
			t.Errorf("verify %q: message %q does not name the field", bad, msg)
		}
	}
	for _, bad := range []string{"", "12345", "7KQ2-M9XD-H4TW-0BZR", "abcdef"} {
		_, err := s.ConfirmTOTP(dead, a, bad)
		wantCode(t, "confirm "+bad, err, followup.EINVALID)
	}
	for _, good := range []string{"123456", " 123 456 ", "7kq2-m9xd-h4tw-0bzr", "7KQ2M9XDH4TW0BZR"} {
		if _, err := s.VerifySecondFactor(dead, a.ID, good, netip.Addr{}); followup.ErrorCode(err) == followup.EINVALID {
			t.Errorf("well-formed %q refused for its form: %v", good, err)
		}
	}
}

func TestTOTPNeedsSecretKey(t *testing.T) {
	t.Parallel()
	s := newTestService(t) // no SecretKey
	c := mustClinic(t, s, "Keyless "+uuid.NewString()[:8], "")
	_, a := mustUser(t, s, c.ID, followup.RoleClinician)
	if _, err := s.BeginTOTP(testCtx(t), a); err == nil || followup.ErrorCode(err) != followup.EINTERNAL {
		t.Errorf("BeginTOTP without a secret key = %v, want an internal error", err)
	}
}
