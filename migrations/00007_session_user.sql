-- The sessions table is now the follow-up core's own session store (followup/session_store.go)
-- rather than github.com/alexedwards/scs/pgxstore's: each session row also names its signed-in
-- user, so that loading a session and re-reading its user (role, clinic, disabled, epoch) is one
-- query per request instead of two. Anonymous sessions, and rows written before this change,
-- have no user; their user is read on its own, as before.

-- Sessions are also written in a new format (web/session_codec.go) that the release before
-- this one cannot read, so going back down ends every session: everyone signs in again.

-- +goose Up
alter table sessions add column user_id uuid references users (id) on delete cascade;
create index sessions_user_id_idx on sessions (user_id);

-- +goose Down
delete from sessions;
alter table sessions drop column user_id;
