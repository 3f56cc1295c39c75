-- The follow-up core: patients, procedures with their materialised schedule, parent links,
-- photos, assessments and messages to the family. Rows that belong to a clinic carry
-- clinic_id, and child rows reference (id, clinic_id) of their parent, so a row can never
-- point across clinics even if application code got it wrong.

-- +goose Up
alter table users add constraint users_id_clinic unique (id, clinic_id);

create table patients (
	id                  uuid primary key default gen_random_uuid(),
	clinic_id           uuid not null references clinics (id),
	display_name        text not null check (length(display_name) between 1 and 200),
	birth_date          date not null,
	mrn                 text check (mrn is null or length(mrn) between 1 and 64),
	guardian_email      text not null default '' check (length(guardian_email) <= 254),
	guardian_phone      text not null default '' check (length(guardian_phone) <= 32),
	preferred_language  text not null default 'en' check (preferred_language in ('en', 'zh-CN')),
	research_consent_at timestamptz,
	created_by          uuid,
	created_at          timestamptz not null default now(),
	unique (id, clinic_id),
	foreign key (created_by, clinic_id) references users (id, clinic_id)
);
create unique index patients_clinic_mrn on patients (clinic_id, mrn) where mrn is not null;
create index patients_clinic_name on patients (clinic_id, lower(display_name));

create table procedures (
	id                uuid primary key default gen_random_uuid(),
	clinic_id         uuid not null references clinics (id),
	patient_id        uuid not null,
	kind              text not null check (length(kind) between 1 and 64),
	body_site         text not null check (length(body_site) between 1 and 64),
	performed_at      timestamptz not null,
	protocol_id       text not null check (length(protocol_id) between 1 and 64),
	protocol_version  integer not null check (protocol_version > 0),
	clinician_id      uuid,
	status            text not null default 'active' check (status in ('active', 'closed', 'withdrawn')),
	status_changed_at timestamptz,
	reminders_enabled boolean not null default true,
	created_at        timestamptz not null default now(),
	unique (id, clinic_id),
	foreign key (patient_id, clinic_id) references patients (id, clinic_id),
	foreign key (clinician_id, clinic_id) references users (id, clinic_id)
);
create index procedures_clinic_status on procedures (clinic_id, status);
create index procedures_patient on procedures (patient_id);

-- The schedule as computed at enrolment from the protocol version the procedure keeps: a
-- newer protocol version never changes it, and states are computed from these rows alone.
create table timepoints (
	procedure_id uuid not null references procedures (id),
	key          text not null check (length(key) between 1 and 64),
	position     integer not null,
	due_at       timestamptz not null,
	due_on       date not null,
	window_start date not null,
	window_end   date not null,
	opens_at     timestamptz not null,
	closes_at    timestamptz not null,
	grace_ends_at timestamptz not null,
	views        text[] not null check (cardinality(views) > 0),
	who          text not null check (who in ('clinic', 'family')),
	remind       boolean not null,
	primary key (procedure_id, key),
	unique (procedure_id, position),
	check (window_start <= due_on and due_on <= window_end),
	check (opens_at <= closes_at and closes_at <= grace_ends_at)
);

-- A parent link's token is 32 random bytes; only its SHA-256 is kept.
create table parent_links (
	id           uuid primary key default gen_random_uuid(),
	clinic_id    uuid not null references clinics (id),
	procedure_id uuid not null,
	token_hash   bytea not null unique check (length(token_hash) = 32),
	created_by   uuid,
	created_at   timestamptz not null default now(),
	expires_at   timestamptz not null,
	revoked_at   timestamptz,
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	foreign key (created_by, clinic_id) references users (id, clinic_id)
);
create index parent_links_procedure on parent_links (procedure_id);

-- Photos are never deleted: a superseded or withdrawn photo stays, marked. A row exists only
-- once its object is durably stored.
create table photos (
	id               uuid primary key default gen_random_uuid(),
	clinic_id        uuid not null references clinics (id),
	procedure_id     uuid not null,
	timepoint_key    text not null,
	view             text not null check (length(view) between 1 and 32),
	-- Chosen by the client; a retry with the same value returns the same photo.
	upload_id        text not null check (length(upload_id) between 8 and 64),
	object_key       text not null unique,
	content_type     text not null,
	size_bytes       bigint not null check (size_bytes > 0),
	sha256           bytea not null check (length(sha256) = 32),
	width            integer not null check (width > 0),
	height           integer not null check (height > 0),
	orientation      smallint not null default 1 check (orientation between 1 and 8),
	captured_at      timestamptz,
	received_at      timestamptz not null default now(),
	source           text not null check (source in ('family', 'clinic')),
	parent_link_id   uuid references parent_links (id),
	uploaded_by      uuid,
	status           text not null default 'active' check (status in ('active', 'withdrawn')),
	status_changed_at timestamptz,
	-- What the sanitizer removed (kinds and byte counts, never values), for the audit trail.
	removed          jsonb not null default '[]',
	thumbnails_at    timestamptz,
	unique (id, clinic_id),
	unique (procedure_id, upload_id),
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	foreign key (procedure_id, timepoint_key) references timepoints (procedure_id, key),
	foreign key (uploaded_by, clinic_id) references users (id, clinic_id),
	check ((source = 'family') = (parent_link_id is not null))
);
create index photos_procedure on photos (procedure_id, timepoint_key, view, received_at desc);
create index photos_thumbnails_pending on photos (received_at) where thumbnails_at is null;
create index photos_sha256 on photos (sha256);

create table assessments (
	id            uuid primary key default gen_random_uuid(),
	clinic_id     uuid not null references clinics (id),
	procedure_id  uuid not null,
	timepoint_key text not null,
	scale_id      text not null,
	level         text not null check (length(level) between 1 and 32),
	note          text not null default '' check (length(note) <= 4000),
	grader_id     uuid not null,
	created_at    timestamptz not null default now(),
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	foreign key (procedure_id, timepoint_key) references timepoints (procedure_id, key),
	foreign key (grader_id, clinic_id) references users (id, clinic_id)
);
create index assessments_procedure on assessments (procedure_id, created_at);

-- Retake requests and notes to the family, shown on the parent's page.
create table messages (
	id            uuid primary key default gen_random_uuid(),
	clinic_id     uuid not null references clinics (id),
	procedure_id  uuid not null,
	kind          text not null check (kind in ('retake', 'note')),
	timepoint_key text,
	photo_id      uuid,
	body          text not null check (length(body) between 1 and 2000),
	author_id     uuid not null,
	created_at    timestamptz not null default now(),
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	foreign key (procedure_id, timepoint_key) references timepoints (procedure_id, key),
	foreign key (photo_id, clinic_id) references photos (id, clinic_id),
	foreign key (author_id, clinic_id) references users (id, clinic_id),
	check (kind <> 'retake' or photo_id is not null)
);
create index messages_procedure on messages (procedure_id, created_at);

-- +goose Down
drop table messages;
drop table assessments;
drop table photos;
drop table parent_links;
drop table timepoints;
drop table procedures;
drop table patients;
alter table users drop constraint users_id_clinic;
