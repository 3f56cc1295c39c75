-- Research exports: de-identified photo series of one protocol, built by a background job
-- into a zip archive in the object store. A row is the request, the job's state and
-- progress, and, once done, where the archive lives until it expires.

-- +goose Up
create table exports (
	id             uuid primary key default gen_random_uuid(),
	clinic_id      uuid not null references clinics (id),
	requested_by   uuid not null,
	-- The parameters the researcher chose.
	protocol_id    text not null check (length(protocol_id) between 1 and 64),
	-- Procedures performed from_date to to_date (clinic time); null: unbounded.
	from_date      date,
	to_date        date,
	views          text[] not null check (cardinality(views) > 0),
	age_in_months  boolean not null default false,
	-- The job: claimed by a worker (run_id) that keeps heartbeat_at fresh; a run whose heartbeat
	-- stops (the process died) is picked up again by another worker.
	status         text not null default 'queued' check (status in ('queued', 'running', 'done', 'failed', 'expired')),
	run_id         uuid,
	attempts       integer not null default 0,
	heartbeat_at   timestamptz,
	progress_done  integer not null default 0 check (progress_done >= 0),
	progress_total integer not null default 0 check (progress_total >= 0),
	subjects       integer not null default 0,
	photos         integer not null default 0,
	-- Photos left out because they failed the sanitizer or the verifier on the way out.
	excluded       integer not null default 0,
	-- The archive, once done; null again after the sweep deleted it.
	object_key     text unique,
	size_bytes     bigint,
	sha256         bytea check (sha256 is null or length(sha256) = 32),
	-- A message fit to show the researcher: never patient data.
	error          text not null default '' check (length(error) <= 500),
	created_at     timestamptz not null default now(),
	started_at     timestamptz,
	finished_at    timestamptz,
	expires_at     timestamptz not null,
	unique (id, clinic_id),
	foreign key (requested_by, clinic_id) references users (id, clinic_id),
	check (from_date <= to_date),
	check (status <> 'done' or (object_key is not null and size_bytes is not null and sha256 is not null))
);
create index exports_clinic on exports (clinic_id, created_at desc);
create index exports_pending on exports (created_at) where status in ('queued', 'running');
create index exports_expiring on exports (expires_at) where status <> 'expired';

-- +goose Down
drop table exports;
