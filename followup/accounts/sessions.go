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

// SessionUser returns the actor a signed-in session of user id stands for, as the user is now
// (role and clinic re-read on every request, so a disabled user or a changed role takes effect
// at once), and the user's session epoch: a session signed in under an older epoch has been
// ended by EndAllSessions. Unknown and disabled users answer followup.EUNAUTHORIZED.
func (s *Service) SessionUser(ctx context.Context, id uuid.UUID, addr netip.Addr) (followup.Actor, int64, error) {
	a := followup.Actor{Kind: followup.ActorUser, ID: id, Addr: addr.Unmap()}
	var epoch int64
	err := s.pool.QueryRow(ctx, `select u.clinic_id, u.role, coalesce(u.language, ''), coalesce(e.epoch, 0)
		from users u left join user_session_epochs e on e.user_id = u.id
		where u.id = $1 and u.disabled_at is null`, id).Scan(&a.ClinicID, &a.Role, &a.Lang, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return followup.Actor{}, 0, followup.Errorf(followup.EUNAUTHORIZED, "sign in again")
	}
	if err != nil {
		return followup.Actor{}, 0, wrap(followup.Unavailable(err), "session user")
	}
	return a, epoch, nil
}

// EndAllSessions ends every session of the signed-in user, on every device, by moving the
// user's session epoch on. It returns the new epoch.
func (s *Service) EndAllSessions(ctx context.Context, a followup.Actor) (int64, error) {
	if a.Kind != followup.ActorUser {
		return 0, followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	var epoch int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into user_session_epochs (user_id, epoch) values ($1, 1)
			on conflict (user_id) do update set epoch = user_session_epochs.epoch + 1 returning epoch`, a.ID).Scan(&epoch)
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditSessionsEnded, TargetKind: "user", TargetID: a.ID})
	})
	return epoch, wrap(err, "end sessions")
}

// RecordLogout audits a sign-out.
func (s *Service) RecordLogout(ctx context.Context, a followup.Actor) error {
	if a.Kind != followup.ActorUser {
		return followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditLogout, TargetKind: "user", TargetID: a.ID})
	})
	return wrap(err, "logout")
}

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
	Lang     string // the user's language for the pages, "" when not chosen
	Epoch    int64  // the user's session epoch, see EndAllSessions
}

// FindSession returns the unexpired session stored under token (the session manager stores a
// hash of the browser's token, never the token), with its user as of now.
func (s *Service) FindSession(ctx context.Context, token string) (StoredSession, bool, error) {
	var (
		ss       StoredSession
		userID   *uuid.UUID
		clinicID *uuid.UUID
		role     *string
		lang     string
		epoch    int64
	)
	err := s.pool.QueryRow(ctx, `select s.data, s.user_id, u.clinic_id, u.role, coalesce(u.language, ''), coalesce(e.epoch, 0)
		from sessions s
		left join users u on u.id = s.user_id and u.disabled_at is null
		left join user_session_epochs e on e.user_id = u.id
		where s.token = $1 and current_timestamp < s.expiry`, token).Scan(&ss.Data, &userID, &clinicID, &role, &lang, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredSession{}, false, nil
	}
	if err != nil {
		return StoredSession{}, false, wrap(followup.Unavailable(err), "find session")
	}
	if userID != nil {
		ss.UserID = *userID
		if clinicID != nil && role != nil {
			ss.User = &SessionUserState{ClinicID: *clinicID, Role: *role, Lang: lang, Epoch: epoch}
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
	return wrap(followup.Unavailable(err), "commit session")
}

// DeleteSession removes the session stored under token.
func (s *Service) DeleteSession(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, `delete from sessions where token = $1`, token)
	return wrap(followup.Unavailable(err), "delete session")
}

// DeleteExpiredSessions removes sessions past their expiry and returns how many.
func (s *Service) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `delete from sessions where expiry < current_timestamp`)
	if err != nil {
		return 0, wrap(followup.Unavailable(err), "delete expired sessions")
	}
	return tag.RowsAffected(), nil
}
