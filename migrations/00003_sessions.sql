-- Clinician sign-in sessions, kept server-side (github.com/alexedwards/scs/pgxstore owns the
-- sessions table and its shape), and a per-user epoch that ends every session of a user at
-- once ("log out everywhere"): a session remembers the epoch it was signed in under and is
-- worthless once the user's epoch has moved on.

-- +goose Up
create table sessions (
	token  text primary key,
	data   bytea not null,
	expiry timestamptz not null
);
create index sessions_expiry_idx on sessions (expiry);

create table user_session_epochs (
	user_id uuid primary key references users (id),
	epoch   bigint not null check (epoch > 0)
);

-- +goose Down
drop table user_session_epochs;
drop table sessions;
