-- Reminders to families: per-clinic channel settings and an outbox that clinicians see (what
-- was sent, when, through which channel, delivered or failed and why). The outbox holds no
-- message bodies, links or addresses: a reminder is rendered from current data when it is
-- sent. River jobs carry only an outbox row's id.

-- +goose Up
create table reminder_settings (
	clinic_id      uuid primary key references clinics (id),
	-- A generic SMS or messaging gateway: one signed JSON POST per reminder. Empty: unused.
	webhook_url    text not null default '' check (length(webhook_url) <= 2000),
	-- Sealed with AES-256-GCM under a key derived from DERMFOLLOW_SECRET_KEY; never plain.
	webhook_secret text not null default '' check (length(webhook_secret) <= 400),
	-- No messages at night, in the clinic's time zone: from quiet_start to quiet_end.
	quiet_start    time not null default '21:00',
	quiet_end      time not null default '08:00',
	updated_at     timestamptz not null default now(),
	check ((webhook_url = '') = (webhook_secret = ''))
);

create table reminders (
	id             uuid primary key default gen_random_uuid(),
	clinic_id      uuid not null references clinics (id),
	procedure_id   uuid not null,
	timepoint_key  text not null,
	kind           text not null check (kind in ('window-open', 'closing-soon', 'manual')),
	channel        text not null check (channel in ('email', 'webhook')),
	recipient_kind text not null default 'guardian' check (recipient_kind in ('guardian')),
	-- skipped: not sent because by its time the photos had arrived, the link was revoked,
	-- the procedure was closed or its reminders turned off (last_error says which).
	status         text not null default 'queued' check (status in ('queued', 'sent', 'failed', 'skipped')),
	attempts       integer not null default 0 check (attempts >= 0),
	-- A short reason, never a message body, link or address.
	last_error     text not null default '' check (length(last_error) <= 300),
	-- Not before this instant (quiet hours).
	send_after     timestamptz not null,
	-- The parent link the last attempt carried (a new one per attempt: tokens are kept hashed).
	parent_link_id uuid,
	created_by     uuid,
	created_at     timestamptz not null default now(),
	updated_at     timestamptz not null default now(),
	sent_at        timestamptz,
	unique (id, clinic_id),
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	foreign key (procedure_id, timepoint_key) references timepoints (procedure_id, key),
	foreign key (created_by, clinic_id) references users (id, clinic_id),
	foreign key (parent_link_id) references parent_links (id),
	check ((status = 'sent') = (sent_at is not null))
);
-- An automatic reminder exists once per timepoint, kind and channel, whoever finds it due.
create unique index reminders_automatic on reminders (procedure_id, timepoint_key, kind, channel)
	where kind <> 'manual';
create index reminders_procedure on reminders (procedure_id, created_at);
create index reminders_failed on reminders (clinic_id, updated_at) where status = 'failed';

-- +goose Down
drop table reminders;
drop table reminder_settings;
