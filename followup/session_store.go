package followup

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// StoredSession is a clinician session as the store holds it: the session manager's encoded
// data and, when the session names a signed-in user, that user as of now.
type StoredSession struct {
	Data []byte
	// UserID is the user the session was signed in as; uuid.Nil for an anonymous session
	// (and for rows written before sessions named their user).
	UserID uuid.UUID
	// User is set when UserID names a user who exists and is not disabled: the same facts
	// SessionUser reads, so that a page needs one query for its session and its user.
	User *SessionUserState
}

// SessionUserState is a signed-in user's standing, re-read on every request.
type SessionUserState struct {
	ClinicID uuid.UUID
	Role     string
	Epoch    int64 // the user's session epoch, see EndAllSessions
}

// FindSession returns the unexpired session stored under token (the session manager stores a
// hash of the browser's token, never the token), with its user as of now.
func (s *Service) FindSession(ctx context.Context, token string) (StoredSession, bool, error) {
	var (
		ss       StoredSession
		userID   *uuid.UUID
		clinicID *uuid.UUID
		role     *string
		epoch    int64
	)
	err := s.pool.QueryRow(ctx, `select s.data, s.user_id, u.clinic_id, u.role, coalesce(e.epoch, 0)
		from sessions s
		left join users u on u.id = s.user_id and u.disabled_at is null
		left join user_session_epochs e on e.user_id = u.id
		where s.token = $1 and current_timestamp < s.expiry`, token).Scan(&ss.Data, &userID, &clinicID, &role, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredSession{}, false, nil
	}
	if err != nil {
		return StoredSession{}, false, wrap(unavailable(err), "find session")
	}
	if userID != nil {
		ss.UserID = *userID
		if clinicID != nil && role != nil {
			ss.User = &SessionUserState{ClinicID: *clinicID, Role: *role, Epoch: epoch}
		}
	}
	return ss, true, nil
}

// CommitSession stores a session's data until expiry under token, naming its signed-in user
// (uuid.Nil: none).
func (s *Service) CommitSession(ctx context.Context, token string, data []byte, expiry time.Time, userID uuid.UUID) error {
	user := uuid.NullUUID{UUID: userID, Valid: userID != uuid.Nil}
	_, err := s.pool.Exec(ctx, `insert into sessions (token, data, expiry, user_id) values ($1, $2, $3, $4)
		on conflict (token) do update set data = excluded.data, expiry = excluded.expiry, user_id = excluded.user_id`,
		token, data, expiry, user)
	return wrap(unavailable(err), "commit session")
}

// DeleteSession removes the session stored under token.
func (s *Service) DeleteSession(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, `delete from sessions where token = $1`, token)
	return wrap(unavailable(err), "delete session")
}

// DeleteExpiredSessions removes sessions past their expiry and returns how many.
func (s *Service) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `delete from sessions where expiry < current_timestamp`)
	if err != nil {
		return 0, wrap(unavailable(err), "delete expired sessions")
	}
	return tag.RowsAffected(), nil
}
