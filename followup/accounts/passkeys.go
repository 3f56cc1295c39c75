package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// Passkey limits: how many a user may have, their names, and the browser's answers.
const (
	MaxPasskeys        = 10
	MaxPasskeyName     = 60
	maxPasskeyResponse = 64 << 10
)

// Passkey is one of a user's passkeys as a settings page lists it.
type Passkey struct {
	ID         uuid.UUID
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used to sign in
	Transports []string  // as the browser reported them: internal, hybrid, usb, nfc, ble
	AAGUID     uuid.UUID // the authenticator's model; uuid.Nil when it does not say
	Synced     bool      // backed up to the user's cloud account (a synced passkey)
}

func newWebAuthn(rpID, rpName string, origins []string) (*webauthn.WebAuthn, error) {
	w, err := webauthn.New(&webauthn.Config{
		RPID: rpID, RPDisplayName: rpName, RPOrigins: origins,
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationPreferred},
		// Expiry is kept by the ceremony table on the Service's clock; this is the browser's.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, wrap(err, "passkeys (RPID %q, RPOrigins %q)", rpID, origins)
	}
	return w, nil
}

func (s *Service) rpID() string {
	if s.webauthn == nil {
		return ""
	}
	return s.webauthn.Config.RPID
}

// PasskeysAvailable reports whether this server is configured for passkeys (Config.RPID), so
// that a page offers them only where they can work.
func (s *Service) PasskeysAvailable() bool { return s.webauthn != nil }

func (s *Service) requirePasskeys() error {
	if s.webauthn == nil {
		return followup.Errorf(followup.EFORBIDDEN, "passkeys are not available on this server (its public URL must name a host, not an IP address)")
	}
	return nil
}

// passkeyUser is a user as the webauthn library sees one: the handle and the passkeys of
// this relying party, with the row id of each.
type passkeyUser struct {
	u      User
	handle []byte
	creds  []webauthn.Credential
	rows   []uuid.UUID
}

func (p *passkeyUser) WebAuthnID() []byte                         { return p.handle }
func (p *passkeyUser) WebAuthnName() string                       { return p.u.Email }
func (p *passkeyUser) WebAuthnDisplayName() string                { return p.u.Name }
func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// row returns the row id of the credential with the id.
func (p *passkeyUser) row(credentialID []byte) uuid.UUID {
	for i, c := range p.creds {
		if string(c.ID) == string(credentialID) {
			return p.rows[i]
		}
	}
	return uuid.Nil
}

// loadPasskeyUser reads an active user's handle (made on first need, when create) and passkeys.
func (s *Service) loadPasskeyUser(ctx context.Context, id uuid.UUID, create bool) (*passkeyUser, error) {
	u, err := s.userByID(ctx, id)
	if followup.ErrorCode(err) == followup.ENOTFOUND || err == nil && u.Disabled {
		return nil, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	if err != nil {
		return nil, err
	}
	p := &passkeyUser{u: u}
	if create {
		handle := make([]byte, 32)
		rand.Read(handle)
		if _, err := s.pool.Exec(ctx, `insert into webauthn_users (user_id, handle) values ($1, $2) on conflict do nothing`, id, handle); err != nil {
			return nil, followup.Unavailable(err)
		}
	}
	err = s.pool.QueryRow(ctx, `select handle from webauthn_users where user_id = $1`, id).Scan(&p.handle)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, followup.Unavailable(err)
	}
	rows, err := s.pool.Query(ctx, `select id, credential_id, public_key, attestation_type, attestation_format, transports,
		coalesce(aaguid, '00000000-0000-0000-0000-000000000000'), sign_count, clone_warning, flags
		from passkeys where user_id = $1 and rp_id = $2 order by created_at`, id, s.rpID())
	if err != nil {
		return nil, followup.Unavailable(err)
	}
	var (
		row        uuid.UUID
		c          webauthn.Credential
		transports []string
		aaguid     uuid.UUID
		count      int64
		flags      int16
	)
	_, err = pgx.ForEachRow(rows, []any{&row, &c.ID, &c.PublicKey, &c.AttestationType, &c.AttestationFormat, &transports,
		&aaguid, &count, &c.Authenticator.CloneWarning, &flags}, func() error {
		cred := c
		for _, t := range transports {
			cred.Transport = append(cred.Transport, protocol.AuthenticatorTransport(t))
		}
		if aaguid != uuid.Nil {
			cred.Authenticator.AAGUID = aaguid[:]
		}
		cred.Authenticator.SignCount = uint32(count)
		cred.Flags = webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(flags))
		p.creds, p.rows = append(p.creds, cred), append(p.rows, row)
		return nil
	})
	return p, followup.Unavailable(err)
}

// checkPasskeyName trims a passkey's name and checks it: 1 to MaxPasskeyName characters of text.
func checkPasskeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if !utf8.ValidString(name) || n == 0 || n > MaxPasskeyName || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", followup.InvalidField("name", "must be 1 to %d characters, such as the device the passkey is on", MaxPasskeyName)
	}
	return name, nil
}

func checkPasskeyResponse(response []byte) error {
	if len(response) == 0 || len(response) > maxPasskeyResponse {
		return followup.InvalidField("response", "is not a passkey answer from the browser")
	}
	return nil
}

// errPasskeyRefused answers a passkey answer that does not verify; the library's reason stays
// inside, for the server's log.
func errPasskeyRefused(err error) error {
	return &followup.Error{Code: followup.EUNAUTHORIZED, Message: "the passkey could not be verified; try again", Err: err}
}

func errPasskeyUnreadable(err error) error {
	return &followup.Error{Code: followup.EINVALID, Message: "response: the browser's passkey answer could not be read", Err: err}
}
