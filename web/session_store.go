package web

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup/accounts"
)

// sessionStore keeps the session manager's sessions in PostgreSQL through the follow-up core
// (followup.FindSession and friends). Each row also names the session's user, and loading a
// session reads that user's standing in the same query; the request's sessionLookup carries
// it to sessionActor, which would otherwise ask the database a second time.
type sessionStore struct {
	accounts *accounts.Service
}

var _ scs.CtxStore = sessionStore{}

// sessionLookup is what loading the request's session found out about its user.
type sessionLookup struct {
	loaded bool
	stored accounts.StoredSession // Data is not kept
}

type sessionLookupKey struct{}

// withSessionLookup gives ctx a place for the store to leave what it reads with the session.
func withSessionLookup(ctx context.Context) context.Context {
	return context.WithValue(ctx, sessionLookupKey{}, &sessionLookup{})
}

// lookedUpUser returns the standing of user id as loaded with the session, if it was.
// ok is false when the session was not loaded through the store in this request, or the
// stored row names another user (or none): the caller then reads the user itself.
func lookedUpUser(ctx context.Context, id uuid.UUID) (u *accounts.SessionUserState, ok bool) {
	l, _ := ctx.Value(sessionLookupKey{}).(*sessionLookup)
	if l == nil || !l.loaded || l.stored.UserID != id {
		return nil, false
	}
	return l.stored.User, true
}

func (st sessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	ss, found, err := st.accounts.FindSession(ctx, token)
	if err != nil || !found {
		return nil, found, err
	}
	if l, _ := ctx.Value(sessionLookupKey{}).(*sessionLookup); l != nil {
		*l = sessionLookup{loaded: true, stored: accounts.StoredSession{UserID: ss.UserID, User: ss.User}}
	}
	return ss.Data, true, nil
}

// CommitCtx stores the session with the user its data names, so that the next load can read
// that user in the same query.
func (st sessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	var user uuid.UUID
	if _, values, err := decodeSession(b); err == nil {
		if s, ok := values[sessionUserKey].(string); ok {
			user, _ = uuid.Parse(s)
		}
	}
	return st.accounts.CommitSession(ctx, token, b, expiry, user)
}

func (st sessionStore) DeleteCtx(ctx context.Context, token string) error {
	return st.accounts.DeleteSession(ctx, token)
}

// The session manager calls these only without a request context.
func (st sessionStore) Find(token string) ([]byte, bool, error) {
	return st.FindCtx(context.Background(), token)
}

func (st sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return st.CommitCtx(context.Background(), token, b, expiry)
}

func (st sessionStore) Delete(token string) error { return st.DeleteCtx(context.Background(), token) }
