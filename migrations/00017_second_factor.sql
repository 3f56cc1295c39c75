-- Second factors for clinic users (followup/accounts): authenticator-app codes (TOTP) with
-- one-time recovery codes, passkeys (WebAuthn) with their ceremonies, the clinic's sign-in
-- policy, and the failed attempts that throttle guessing across every server.

-- +goose Up
-- A second factor is required of admins and researchers always, and of clinicians where
-- require_second_factor says so (on for every clinic, existing ones too). allow_passwordless
-- lets the clinic's users sign in with a passkey alone.
alter table clinics
	add column require_second_factor boolean not null default true,
	add column allow_passwordless boolean not null default false;

-- One authenticator app per user. The secret is sealed (AES-256-GCM under a key derived from
-- DERMFOLLOW_SECRET_KEY, bound to the user); confirmed_at is null while enrolment is pending.
-- last_step is the newest TOTP time step accepted: a code of that step or an older one is
-- never accepted again.
create table user_totp (
	user_id       uuid primary key references users (id),
	secret_sealed bytea not null check (length(secret_sealed) between 28 and 256),
	confirmed_at  timestamptz,
	last_step     bigint not null default 0,
	created_at    timestamptz not null default now()
);

-- Ten one-time recovery codes per user, made at TOTP enrolment; only SHA-256 hashes kept.
create table recovery_codes (
	user_id    uuid not null references users (id),
	code_hash  bytea not null check (length(code_hash) = 32),
	used_at    timestamptz,
	created_at timestamptz not null default now(),
	primary key (user_id, code_hash)
);

-- The WebAuthn user handle: random, stable for the user, never the user's id.
create table webauthn_users (
	user_id uuid primary key references users (id),
	handle  bytea not null unique check (length(handle) = 32)
);

create table passkeys (
	id                 uuid primary key default gen_random_uuid(),
	user_id            uuid not null references users (id),
	rp_id              text not null check (length(rp_id) between 1 and 253),
	credential_id      bytea not null check (length(credential_id) between 1 and 1023),
	public_key         bytea not null check (length(public_key) between 1 and 4096),
	attestation_type   text not null default '' check (length(attestation_type) <= 64),
	attestation_format text not null default '' check (length(attestation_format) <= 64),
	transports         text[] not null default '{}' check (cardinality(transports) <= 8),
	aaguid             uuid,
	sign_count         bigint not null default 0 check (sign_count >= 0),
	clone_warning      boolean not null default false,
	flags              smallint not null check (flags between 0 and 255),
	name               text not null check (length(name) between 1 and 60),
	created_at         timestamptz not null default now(),
	last_used_at       timestamptz,
	unique (rp_id, credential_id)
);
create index passkeys_user on passkeys (user_id);

-- A WebAuthn ceremony between its begin and its finish: the library's session data, under
-- the SHA-256 of a random id the page keeps; bound to its user (null: a passwordless sign-in,
-- where the passkey names the user), expiring, and deleted when used.
create table webauthn_ceremonies (
	id_hash    bytea primary key check (length(id_hash) = 32),
	kind       text not null check (kind in ('register', 'login', 'passwordless')),
	user_id    uuid references users (id),
	session    jsonb not null,
	expires_at timestamptz not null,
	check ((kind = 'passwordless') = (user_id is null))
);
create index webauthn_ceremonies_expires on webauthn_ceremonies (expires_at);

-- Failed (and in-flight) sign-in attempts, one row each, by scope: an account
-- ('user:<id>', or 'email:<sha-256>' for an address without an account) or a client address
-- ('addr:<ip>'). Reserved before a password or code is checked and removed again when it was
-- right, so concurrent guesses on several servers cannot pass the budget together.
create table sign_in_failures (
	id    bigint generated always as identity primary key,
	scope text not null check (length(scope) between 1 and 128),
	at    timestamptz not null
);
create index sign_in_failures_scope_at on sign_in_failures (scope, at);

-- +goose Down
drop table sign_in_failures;
drop table webauthn_ceremonies;
drop table passkeys;
drop table webauthn_users;
drop table recovery_codes;
drop table user_totp;
alter table clinics drop column allow_passwordless, drop column require_second_factor;
