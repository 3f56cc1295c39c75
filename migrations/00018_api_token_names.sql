-- API tokens get a name (what it is for, shown in the list of a user's tokens), a role no
-- higher than their user's, and an expiry: new tokens always have one (90 days unless asked,
-- at most 365), and tokens made before this change expire 90 days after it, so that none
-- lives for ever. A null role means the user's own role.

-- +goose Up
alter table api_tokens
	add column name text not null default 'API token' check (length(name) between 1 and 60),
	add column role text check (role in ('clinician', 'researcher', 'admin'));
alter table api_tokens alter column name drop default;
update api_tokens set expires_at = now() + interval '90 days' where expires_at is null and revoked_at is null;

-- +goose Down
alter table api_tokens drop column role, drop column name;
