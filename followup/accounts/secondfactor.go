package accounts

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// StepUpAge is how long a second-factor check vouches for actions that ask for it again
// (starting or downloading an export, managing users, changing clinic settings).
const StepUpAge = 15 * time.Minute

// Verified is a passed second-factor check: how, and when (by the Service's clock). A page
// keeps At in the session for StepUpDue.
type Verified struct {
	Method string
	At     time.Time
}

// StepUpDue reports whether an action that asks for a recent second factor must ask again,
// given when the last check passed (zero: never).
func (s *Service) StepUpDue(verifiedAt time.Time) bool {
	return verifiedAt.IsZero() || s.now().Sub(verifiedAt) >= StepUpAge
}

// Now is the Service's clock: what Verified.At and StepUpDue count by. A page that records a
// check the Service passed without returning a Verified (a code confirmed at enrolment, a
// passkey just registered) takes the time from here.
func (s *Service) Now() time.Time { return s.now() }

// SecondFactorState is what a page needs to decide the step after the password.
type SecondFactorState struct {
	// Required: admins and researchers always, clinicians where their clinic says so. A user
	// who is required but not Enrolled may do nothing but enrol.
	Required bool
	// Enrolled: the user has a set-up authenticator app or a passkey.
	Enrolled bool
	// Methods lists what the user can pass the second step with: MethodPasskey, MethodTOTP
	// and MethodRecoveryCode (where codes are left).
	Methods           []string
	Passkeys          int
	RecoveryCodesLeft int
	// PasswordlessAllowed: the clinic lets its users sign in with a passkey alone.
	PasswordlessAllowed bool
	// PasskeysAvailable: this server is configured for passkeys (Config.RPID).
	PasskeysAvailable bool
}

// SecondFactorState returns the second-factor standing of a user who is not disabled (an
// unknown or disabled user answers followup.EUNAUTHORIZED).
func (s *Service) SecondFactorState(ctx context.Context, userID uuid.UUID) (SecondFactorState, error) {
	var (
		st            SecondFactorState
		role          string
		clinicRequire bool
		totp          bool
	)
	err := s.pool.QueryRow(ctx, `select u.role, c.require_second_factor, c.allow_passwordless,
			exists (select 1 from user_totp t where t.user_id = u.id and t.confirmed_at is not null),
			(select count(*) from passkeys p where p.user_id = u.id and p.rp_id = $2),
			(select count(*) from recovery_codes r where r.user_id = u.id and r.used_at is null)
		from users u join clinics c on c.id = u.clinic_id
		where u.id = $1 and u.disabled_at is null`, userID, s.rpID()).
		Scan(&role, &clinicRequire, &st.PasswordlessAllowed, &totp, &st.Passkeys, &st.RecoveryCodesLeft)
	if errors.Is(err, pgx.ErrNoRows) {
		return SecondFactorState{}, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	if err != nil {
		return SecondFactorState{}, wrap(followup.Unavailable(err), "second factor state")
	}
	st.Required = secondFactorRequired(role, clinicRequire)
	st.PasskeysAvailable = s.webauthn != nil
	if st.Passkeys > 0 {
		st.Methods = append(st.Methods, MethodPasskey)
	}
	if totp {
		st.Methods = append(st.Methods, MethodTOTP)
	}
	st.Enrolled = len(st.Methods) > 0
	if st.Enrolled && st.RecoveryCodesLeft > 0 {
		st.Methods = append(st.Methods, MethodRecoveryCode)
	}
	return st, nil
}

// secondFactorRequired is the policy: admins (who manage users and settings) and researchers
// (who export) always; clinicians where the clinic requires it.
func secondFactorRequired(role string, clinicRequires bool) bool {
	return role == followup.RoleAdmin || role == followup.RoleResearcher || clinicRequires
}

// VerifySecondFactor checks the second step of a sign-in (or a step-up) of the user: a
// six-digit code of the user's authenticator app, or one of the user's recovery codes (see
// RecoveryCodeCount for their form). The code's form is checked first (followup.EINVALID,
// before any database work); a wrong, reused or spent code answers followup.EUNAUTHORIZED
// and counts against the account's and the address's budgets, and once one is spent the
// answer is followup.ETOOMANY with a WaitError, without checking the code. Passes and
// failures are audited, never with the code.
func (s *Service) VerifySecondFactor(ctx context.Context, userID uuid.UUID, code string, addr netip.Addr) (Verified, error) {
	method, code, err := classifyCode(code)
	if err != nil {
		return Verified{}, err
	}
	addr = addr.Unmap()
	u, err := s.userByID(ctx, userID)
	if followup.ErrorCode(err) == followup.ENOTFOUND || err == nil && u.Disabled {
		return Verified{}, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	if err != nil {
		return Verified{}, wrap(err, "verify second factor")
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: u.ID, ClinicID: u.ClinicID, Role: u.Role, Addr: addr}
	at, err := s.reserve(ctx, append(addrBudgets(addr), codeBudget(u.ID))...)
	if err != nil {
		return Verified{}, wrap(err, "verify second factor")
	}
	var reason string
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if method == MethodTOTP {
			reason, err = s.useTOTP(ctx, tx, u.ID, code)
		} else {
			reason, err = s.useRecoveryCode(ctx, tx, u.ID, code)
		}
		if err != nil {
			return err
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorVerified, TargetKind: "user", TargetID: u.ID,
			Detail: map[string]any{"method": method}})
	})
	s.settle(ctx, at, err)
	if followup.ErrorCode(err) == followup.EUNAUTHORIZED {
		if aerr := s.auditCodeFailure(ctx, a, method, reason); aerr != nil {
			return Verified{}, aerr
		}
	}
	if err != nil {
		return Verified{}, wrap(err, "verify second factor")
	}
	return Verified{Method: method, At: s.now()}, nil
}

// auditCodeFailure records a failed second-factor check: the method and why, never the code.
func (s *Service) auditCodeFailure(ctx context.Context, a followup.Actor, method, reason string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorFailed, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": method, "reason": reason}})
	})
	return wrap(err, "audit second factor failure")
}

// requireUser refuses anyone but a signed-in clinic user.
func requireUser(a followup.Actor) error {
	if a.Kind != followup.ActorUser || a.ID == uuid.Nil {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	return nil
}

func (s *Service) userByID(ctx context.Context, id uuid.UUID) (User, error) {
	var u User
	var disabled *time.Time
	err := s.pool.QueryRow(ctx, `select id, clinic_id, email, name, role, disabled_at from users where id = $1`, id).
		Scan(&u.ID, &u.ClinicID, &u.Email, &u.Name, &u.Role, &disabled)
	if err != nil {
		return User{}, followup.NotFound(err, "user")
	}
	u.Disabled = disabled != nil
	return u, nil
}
