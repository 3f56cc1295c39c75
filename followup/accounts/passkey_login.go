package accounts

import (
	"context"
	"errors"
	"net/netip"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// BeginLogin starts a passkey check of the user as the second step of a sign-in (or a
// step-up), offering the user's passkeys. A user without one answers followup.ENOTFOUND.
func (s *Service) BeginLogin(ctx context.Context, userID uuid.UUID) (Ceremony, error) {
	if err := s.requirePasskeys(); err != nil {
		return Ceremony{}, err
	}
	p, err := s.loadPasskeyUser(ctx, userID, false)
	if err != nil {
		return Ceremony{}, wrap(err, "begin passkey login")
	}
	if len(p.creds) == 0 {
		return Ceremony{}, followup.Errorf(followup.ENOTFOUND, "no passkey is registered")
	}
	assertion, sd, err := s.webauthn.BeginLogin(p)
	if err != nil {
		return Ceremony{}, wrap(err, "begin passkey login")
	}
	c, err := s.saveCeremony(ctx, ceremonyLogin, userID, sd, assertion)
	return c, wrap(err, "begin passkey login")
}

// FinishLogin verifies the browser's answer (the JSON of the PublicKeyCredential) to the
// user's passkey check. An answer to another user's ceremony, to an expired or used one, or
// one that does not verify, answers followup.EUNAUTHORIZED; so does a passkey whose signature
// counter went back (a copied authenticator). Passes and failures are audited.
func (s *Service) FinishLogin(ctx context.Context, userID uuid.UUID, ceremonyID string, response []byte, addr netip.Addr) (Verified, error) {
	if err := checkPasskeyResponse(response); err != nil {
		return Verified{}, err
	}
	if err := s.requirePasskeys(); err != nil {
		return Verified{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Verified{}, errPasskeyUnreadable(err)
	}
	sd, err := s.takeCeremony(ctx, ceremonyID, ceremonyLogin, userID)
	if err != nil {
		return Verified{}, wrap(err, "finish passkey login")
	}
	p, err := s.loadPasskeyUser(ctx, userID, false)
	if err != nil {
		return Verified{}, wrap(err, "finish passkey login")
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: p.u.ID, ClinicID: p.u.ClinicID, Role: p.u.Role, Addr: addr.Unmap()}
	cred, err := s.webauthn.ValidateLogin(p, sd, parsed)
	if err := s.passkeyUsed(ctx, a, p, cred, err, AuditSecondFactorVerified, AuditSecondFactorFailed); err != nil {
		return Verified{}, err
	}
	return Verified{Method: MethodPasskey, At: s.now()}, nil
}

// BeginPasswordlessLogin starts a sign-in with a passkey alone: the browser offers whichever
// of this site's passkeys the person has, and must verify them (PIN or biometrics). The page
// should limit how often one address may begin (each keeps a row for CeremonyTTL).
func (s *Service) BeginPasswordlessLogin(ctx context.Context) (Ceremony, error) {
	if err := s.requirePasskeys(); err != nil {
		return Ceremony{}, err
	}
	assertion, sd, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, wrap(err, "begin passwordless login")
	}
	c, err := s.saveCeremony(ctx, ceremonyPasswordless, uuid.Nil, sd, assertion)
	return c, wrap(err, "begin passwordless login")
}

// FinishPasswordlessLogin verifies the answer to a passwordless ceremony and returns the
// user it signs in, whose second factor it also is (a verified passkey is something the user
// has and knows or is). Where the user's clinic does not allow it (SetClinicPasswordless)
// the answer is followup.EFORBIDDEN, after verifying, so that the policy is told only to the
// passkey's owner. Everything else that fails answers followup.EUNAUTHORIZED.
func (s *Service) FinishPasswordlessLogin(ctx context.Context, ceremonyID string, response []byte, addr netip.Addr) (followup.Actor, Verified, error) {
	if err := checkPasskeyResponse(response); err != nil {
		return followup.Actor{}, Verified{}, err
	}
	if err := s.requirePasskeys(); err != nil {
		return followup.Actor{}, Verified{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return followup.Actor{}, Verified{}, errPasskeyUnreadable(err)
	}
	sd, err := s.takeCeremony(ctx, ceremonyID, ceremonyPasswordless, uuid.Nil)
	if err != nil {
		return followup.Actor{}, Verified{}, wrap(err, "finish passwordless login")
	}
	var p *passkeyUser
	handler := func(_, handle []byte) (webauthn.User, error) {
		var id uuid.UUID
		err := s.pool.QueryRow(ctx, `select user_id from webauthn_users where handle = $1`, handle).Scan(&id)
		if err != nil {
			return nil, err
		}
		p, err = s.loadPasskeyUser(ctx, id, false)
		return p, err
	}
	_, cred, err := s.webauthn.ValidatePasskeyLogin(handler, sd, parsed)
	if p == nil {
		if err == nil {
			err = errors.New("no user")
		}
		return followup.Actor{}, Verified{}, errPasskeyRefused(err)
	}
	a := followup.Actor{Kind: followup.ActorUser, ID: p.u.ID, ClinicID: p.u.ClinicID, Role: p.u.Role, Addr: addr.Unmap()}
	if err == nil {
		var allowed bool
		if qerr := s.pool.QueryRow(ctx, `select allow_passwordless from clinics where id = $1`, p.u.ClinicID).Scan(&allowed); qerr != nil {
			return followup.Actor{}, Verified{}, wrap(followup.Unavailable(qerr), "finish passwordless login")
		}
		if !allowed {
			if aerr := s.auditPasskeyFailure(ctx, a, AuditLoginFailed, "passwordless_not_allowed"); aerr != nil {
				return followup.Actor{}, Verified{}, aerr
			}
			return followup.Actor{}, Verified{}, followup.Errorf(followup.EFORBIDDEN, "your clinic does not allow signing in with a passkey alone; sign in with your password")
		}
	}
	if err := s.passkeyUsed(ctx, a, p, cred, err, AuditLogin, AuditLoginFailed); err != nil {
		return followup.Actor{}, Verified{}, err
	}
	return a, Verified{Method: MethodPasskey, At: s.now()}, nil
}

// passkeyUsed settles a verified (verr nil) or refused passkey answer: a pass records the
// passkey's new counter, flags and use and audits passed; a refusal, or a passkey whose
// counter went back, audits failed and answers followup.EUNAUTHORIZED.
func (s *Service) passkeyUsed(ctx context.Context, a followup.Actor, p *passkeyUser, cred *webauthn.Credential, verr error, passed, failed string) error {
	reason := ""
	switch {
	case verr != nil:
		reason = "not_verified"
	case cred.Authenticator.CloneWarning:
		reason = "counter_went_back"
	}
	row := uuid.Nil
	if cred != nil {
		row = p.row(cred.ID)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if reason == "counter_went_back" {
			if _, err := tx.Exec(ctx, `update passkeys set clone_warning = true where id = $1`, row); err != nil {
				return followup.Unavailable(err)
			}
		}
		if reason != "" {
			return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: failed, TargetKind: "user", TargetID: a.ID,
				Detail: map[string]any{"method": MethodPasskey, "reason": reason}})
		}
		if _, err := tx.Exec(ctx, `update passkeys set sign_count = $2, flags = $3, last_used_at = $4 where id = $1`,
			row, int64(cred.Authenticator.SignCount), int16(cred.Flags.ProtocolValue()), s.now()); err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: passed, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodPasskey, "passkey_id": row.String()}})
	})
	if err != nil {
		return wrap(err, "passkey sign-in")
	}
	if reason == "counter_went_back" {
		return followup.Errorf(followup.EUNAUTHORIZED, "this passkey may have been copied (its counter went back); use another, or ask your clinic's admin")
	}
	if reason != "" {
		return errPasskeyRefused(verr)
	}
	return nil
}

// auditPasskeyFailure records a refused passkey sign-in that passkeyUsed does not see.
func (s *Service) auditPasskeyFailure(ctx context.Context, a followup.Actor, action, reason string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: action, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodPasskey, "reason": reason}})
	})
	return wrap(err, "audit passkey failure")
}
