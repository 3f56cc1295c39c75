package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dermfollow/dermfollow/followup"
)

// BeginRegistration starts adding a passkey for the signed-in user. The browser is asked for
// a discoverable credential (so it can sign in without a password where the clinic allows
// it), never for one the user has already, and for no attestation.
func (s *Service) BeginRegistration(ctx context.Context, a followup.Actor) (Ceremony, error) {
	if err := s.requirePasskeys(); err != nil {
		return Ceremony{}, err
	}
	if err := requireUser(a); err != nil {
		return Ceremony{}, err
	}
	p, err := s.loadPasskeyUser(ctx, a.ID, true)
	if err != nil {
		return Ceremony{}, wrap(err, "begin passkey registration")
	}
	if len(p.creds) >= MaxPasskeys {
		return Ceremony{}, followup.Errorf(followup.EINVALID, "you have %d passkeys, the most there can be; remove one first", MaxPasskeys)
	}
	creation, sd, err := s.webauthn.BeginRegistration(p,
		webauthn.WithExclusions(webauthn.Credentials(p.creds).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred))
	if err != nil {
		return Ceremony{}, wrap(err, "begin passkey registration")
	}
	c, err := s.saveCeremony(ctx, ceremonyRegister, a.ID, sd, creation)
	return c, wrap(err, "begin passkey registration")
}

// FinishRegistration verifies the browser's answer (the JSON of the PublicKeyCredential) to
// the user's registration ceremony and keeps the passkey under name (1 to MaxPasskeyName
// characters). An answer to another user's ceremony, to an expired or used one, or one that
// does not verify, answers followup.EUNAUTHORIZED.
func (s *Service) FinishRegistration(ctx context.Context, a followup.Actor, ceremonyID, name string, response []byte) (Passkey, error) {
	name, err := checkPasskeyName(name)
	if err != nil {
		return Passkey{}, err
	}
	if err := checkPasskeyResponse(response); err != nil {
		return Passkey{}, err
	}
	if err := s.requirePasskeys(); err != nil {
		return Passkey{}, err
	}
	if err := requireUser(a); err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, errPasskeyUnreadable(err)
	}
	sd, err := s.takeCeremony(ctx, ceremonyID, ceremonyRegister, a.ID)
	if err != nil {
		return Passkey{}, wrap(err, "finish passkey registration")
	}
	p, err := s.loadPasskeyUser(ctx, a.ID, false)
	if err != nil {
		return Passkey{}, wrap(err, "finish passkey registration")
	}
	cred, err := s.webauthn.CreateCredential(p, sd, parsed)
	if err != nil {
		return Passkey{}, errPasskeyRefused(err)
	}
	pk := Passkey{Name: name, Synced: cred.Flags.BackupState}
	for _, t := range cred.Transport {
		pk.Transports = append(pk.Transports, string(t))
	}
	if id, err := uuid.FromBytes(cred.Authenticator.AAGUID); err == nil {
		pk.AAGUID = id
	}
	if len(pk.Transports) > 8 {
		pk.Transports = pk.Transports[:8]
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		aaguid := uuid.NullUUID{UUID: pk.AAGUID, Valid: pk.AAGUID != uuid.Nil}
		err := tx.QueryRow(ctx, `insert into passkeys (user_id, rp_id, credential_id, public_key, attestation_type, attestation_format,
				transports, aaguid, sign_count, flags, name)
			values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id, created_at`,
			a.ID, s.rpID(), cred.ID, cred.PublicKey, cred.AttestationType, cred.AttestationFormat, pk.Transports, aaguid,
			int64(cred.Authenticator.SignCount), int16(cred.Flags.ProtocolValue()), name).Scan(&pk.ID, &pk.CreatedAt)
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" {
			return followup.Errorf(followup.ECONFLICT, "this passkey is registered already")
		}
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorAdded, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodPasskey, "passkey_id": pk.ID.String()}})
	})
	if err != nil {
		return Passkey{}, wrap(err, "finish passkey registration")
	}
	return pk, nil
}

// ListPasskeys lists the signed-in user's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, a followup.Actor) ([]Passkey, error) {
	if err := requireUser(a); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `select id, name, created_at, last_used_at, transports,
		coalesce(aaguid, '00000000-0000-0000-0000-000000000000'), flags
		from passkeys where user_id = $1 order by created_at, id`, a.ID)
	if err != nil {
		return nil, wrap(followup.Unavailable(err), "list passkeys")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Passkey, error) {
		var p Passkey
		var used *time.Time
		var flags int16
		err := r.Scan(&p.ID, &p.Name, &p.CreatedAt, &used, &p.Transports, &p.AAGUID, &flags)
		if used != nil {
			p.LastUsedAt = *used
		}
		p.Synced = protocol.AuthenticatorFlags(flags).HasBackupState()
		return p, err
	})
	return list, wrap(followup.Unavailable(err), "list passkeys")
}

// RenamePasskey renames one of the signed-in user's passkeys; anyone else's is not found.
func (s *Service) RenamePasskey(ctx context.Context, a followup.Actor, id uuid.UUID, name string) error {
	name, err := checkPasskeyName(name)
	if err != nil {
		return err
	}
	if err := requireUser(a); err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `update passkeys set name = $3 where id = $1 and user_id = $2`, id, a.ID, name)
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return followup.Errorf(followup.ENOTFOUND, "passkey not found")
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditPasskeyRenamed, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"passkey_id": id.String()}})
	})
	return wrap(err, "rename passkey")
}

// RemovePasskey removes one of the signed-in user's passkeys; anyone else's is not found.
// When no second factor is left, the recovery codes go too.
func (s *Service) RemovePasskey(ctx context.Context, a followup.Actor, id uuid.UUID) error {
	if err := requireUser(a); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `delete from passkeys where id = $1 and user_id = $2`, id, a.ID)
		if err != nil {
			return followup.Unavailable(err)
		}
		if tag.RowsAffected() == 0 {
			return followup.Errorf(followup.ENOTFOUND, "passkey not found")
		}
		if err := dropOrphanRecoveryCodes(ctx, tx, a.ID); err != nil {
			return err
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSecondFactorRemoved, TargetKind: "user", TargetID: a.ID,
			Detail: map[string]any{"method": MethodPasskey, "passkey_id": id.String()}})
	})
	return wrap(err, "remove passkey")
}
