-- Clinics, their users and API tokens, and the append-only audit log: the ground every other
-- table stands on. Every row that belongs to a clinic carries clinic_id, so every query can be
-- scoped by it.

-- +goose Up
create table clinics (
	id            uuid primary key default gen_random_uuid(),
	name          text not null unique check (length(name) between 1 and 200),
	time_zone     text not null check (length(time_zone) between 1 and 64),
	contact_phone text not null default '',
	contact_email text not null default '',
	created_at    timestamptz not null default now()
);

create table users (
	id            uuid primary key default gen_random_uuid(),
	clinic_id     uuid not null references clinics (id),
	email         text not null unique check (email = lower(email) and length(email) between 3 and 254),
	name          text not null check (length(name) between 1 and 200),
	role          text not null check (role in ('clinician', 'researcher', 'admin')),
	password_hash text not null,
	disabled_at   timestamptz,
	created_at    timestamptz not null default now()
);
create index users_clinic on users (clinic_id);

-- Only a SHA-256 of each token is kept; the token itself is shown once.
create table api_tokens (
	id           uuid primary key default gen_random_uuid(),
	user_id      uuid not null references users (id),
	token_hash   bytea not null unique check (length(token_hash) = 32),
	created_at   timestamptz not null default now(),
	expires_at   timestamptz,
	last_used_at timestamptz,
	revoked_at   timestamptz
);
create index api_tokens_user on api_tokens (user_id);

-- Who did what, when, from where. Never a token, a password or photo bytes.
create table audit_events (
	id          bigint generated always as identity primary key,
	at          timestamptz not null default now(),
	clinic_id   uuid references clinics (id),
	actor_kind  text not null check (actor_kind in ('user', 'parent', 'system')),
	actor_id    uuid,
	action      text not null check (length(action) between 1 and 64),
	target_kind text not null default '',
	target_id   uuid,
	client_addr inet,
	detail      jsonb not null default '{}'
);
create index audit_events_clinic_at on audit_events (clinic_id, at);
create index audit_events_target on audit_events (target_id) where target_id is not null;

-- +goose StatementBegin
create function audit_events_append_only() returns trigger language plpgsql as $$
begin
	raise exception 'audit_events is append-only';
end;
$$;
-- +goose StatementEnd

create trigger audit_events_no_update before update or delete on audit_events
	for each row execute function audit_events_append_only();
create trigger audit_events_no_truncate before truncate on audit_events
	for each statement execute function audit_events_append_only();

-- +goose Down
drop table audit_events;
drop function audit_events_append_only;
drop table api_tokens;
drop table users;
drop table clinics;
