package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
)

// CeremonyTTL is how long a begun passkey ceremony can be finished.
const CeremonyTTL = 5 * time.Minute

// maxCeremoniesPerUser bounds the pending ceremonies of one user (a few tabs).
const maxCeremoniesPerUser = 5

// Ceremony kinds, as the webauthn_ceremonies table names them.
const (
	ceremonyRegister     = "register"
	ceremonyLogin        = "login"
	ceremonyPasswordless = "passwordless"
)

// Ceremony is a begun passkey ceremony. The page keeps ID on the server side (in the user's
// session) and hands it back to the Finish call; Options is the JSON for the browser's
// navigator.credentials.create or .get ({"publicKey": ...}). A ceremony can be finished
// once, by the user it was begun for, until ExpiresAt.
type Ceremony struct {
	ID        string
	Options   []byte
	ExpiresAt time.Time
}

// ceremonyIDLength is the length of an ID: 32 random bytes in base64url.
const ceremonyIDLength = 43

func ceremonyHash(id string) ([]byte, bool) {
	if len(id) != ceremonyIDLength {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(id); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(id))
	return h[:], true
}

// saveCeremony keeps the library's session data of a begun ceremony for user (uuid.Nil for a
// passwordless sign-in) and returns the ceremony for the page.
func (s *Service) saveCeremony(ctx context.Context, kind string, user uuid.UUID, sd *webauthn.SessionData, options any) (Ceremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, err
	}
	session, err := json.Marshal(sd)
	if err != nil {
		return Ceremony{}, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	c := Ceremony{ID: base64.RawURLEncoding.EncodeToString(raw), Options: opts, ExpiresAt: s.now().Add(CeremonyTTL)}
	hash, _ := ceremonyHash(c.ID)
	owner := uuid.NullUUID{UUID: user, Valid: user != uuid.Nil}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `insert into webauthn_ceremonies (id_hash, kind, user_id, session, expires_at) values ($1, $2, $3, $4, $5)`,
			hash, kind, owner, session, c.ExpiresAt); err != nil {
			return followup.Unavailable(err)
		}
		if !owner.Valid {
			return nil
		}
		_, err := tx.Exec(ctx, `delete from webauthn_ceremonies where user_id = $1 and id_hash not in
			(select id_hash from webauthn_ceremonies where user_id = $1 order by expires_at desc limit $2)`, user, maxCeremoniesPerUser)
		return followup.Unavailable(err)
	})
	if err != nil {
		return Ceremony{}, err
	}
	return c, nil
}

// takeCeremony removes and returns the session data of the unexpired ceremony id of kind
// begun for user (uuid.Nil: passwordless). Another user's ceremony is not found and stays.
func (s *Service) takeCeremony(ctx context.Context, id, kind string, user uuid.UUID) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	hash, ok := ceremonyHash(id)
	if !ok {
		return sd, followup.InvalidField("ceremony", "is not a passkey request of this server")
	}
	owner := uuid.NullUUID{UUID: user, Valid: user != uuid.Nil}
	var session []byte
	var expires time.Time
	err := s.pool.QueryRow(ctx, `delete from webauthn_ceremonies where id_hash = $1 and kind = $2 and user_id is not distinct from $3
		returning session, expires_at`, hash, kind, owner).Scan(&session, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return sd, s.whyNoCeremony(ctx, hash)
	}
	if err != nil {
		return sd, followup.Unavailable(err)
	}
	if !s.now().Before(expires) {
		return sd, followup.Errorf(followup.EUNAUTHORIZED, "the passkey request expired; start again")
	}
	if err := json.Unmarshal(session, &sd); err != nil {
		return sd, err
	}
	return sd, nil
}

// whyNoCeremony tells why takeCeremony found nothing for a well-formed id: a ceremony of
// another user or another step (left as it is, for its own user to finish), or none at all.
func (s *Service) whyNoCeremony(ctx context.Context, hash []byte) error {
	var found int
	err := s.pool.QueryRow(ctx, `select 1 from webauthn_ceremonies where id_hash = $1`, hash).Scan(&found)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return followup.Errorf(followup.EUNAUTHORIZED, "the passkey request is unknown or was used already; start again")
	case err != nil:
		return followup.Unavailable(err)
	}
	return followup.Errorf(followup.EUNAUTHORIZED, "the passkey request was started for another account or another step; start again")
}

// DeleteExpiredSignInState removes passkey ceremonies past their expiry and failures older
// than FailureWindow, and returns how many rows went. Neither is used once it is that old;
// this keeps the tables small.
func (s *Service) DeleteExpiredSignInState(ctx context.Context) (int64, error) {
	now := s.now()
	a, err := s.pool.Exec(ctx, `delete from webauthn_ceremonies where expires_at <= $1`, now)
	if err != nil {
		return 0, wrap(followup.Unavailable(err), "delete expired ceremonies")
	}
	b, err := s.pool.Exec(ctx, `delete from sign_in_failures where at <= $1`, now.Add(-FailureWindow))
	if err != nil {
		return a.RowsAffected(), wrap(followup.Unavailable(err), "delete old sign-in failures")
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}
