-- Resumable family uploads (the tus protocol, web/resumable*.go; followup/staging.go). An
-- upload is created with its declared length and bound to the parent session that created it,
-- the procedure, step, view and upload_id of the photo it will become; its bytes arrive in
-- pieces and are staged in the object store, one object per piece (a segment), until the last
-- byte is in and the photo goes through the normal upload path. The staged bytes are the
-- phone's file, metadata and all: they are deleted as soon as the photo is stored or refused,
-- and every segment is noted in pending_objects, dated so that the pending sweeper removes it
-- (and any multipart parts of it) once the upload has expired.
--
-- lock_token and lock_until are a lease on the upload, held by the one request that writes
-- it at a time, on whichever server: segments are committed only under the lease (the offset
-- moves only from the offset the writer started at), so two writers can never both extend an
-- upload. unlock_requested asks the holder to let go (a client resuming on another server).

-- +goose Up
create table resumable_uploads (
	id               uuid primary key,
	clinic_id        uuid not null references clinics (id),
	procedure_id     uuid not null,
	parent_link_id   uuid not null references parent_links (id),
	-- The parent session that created the upload (web/parent_session.go); only it may go on.
	session_id       bytea not null check (length(session_id) = 16),
	timepoint_key    text not null check (length(timepoint_key) between 1 and 128),
	view             text not null check (length(view) between 1 and 32),
	upload_id        text not null check (length(upload_id) between 8 and 64),
	size_bytes       bigint not null check (size_bytes > 0),
	offset_bytes     bigint not null default 0 check (offset_bytes between 0 and size_bytes),
	created_at       timestamptz not null default now(),
	expires_at       timestamptz not null,
	-- Set once the upload ended: the photo it stored, or why the photo was refused.
	photo_id         uuid references photos (id),
	refusal          text check (length(refusal) <= 64),
	lock_token       uuid,
	lock_until       timestamptz,
	unlock_requested boolean not null default false,
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	check (photo_id is null or refusal is null)
);
create index resumable_uploads_link on resumable_uploads (parent_link_id) where photo_id is null and refusal is null;
create index resumable_uploads_open on resumable_uploads (expires_at) where photo_id is null and refusal is null;
create index resumable_uploads_expires on resumable_uploads (expires_at);

-- A segment's row is written before its object is stored; stored is set when the object is in
-- and the upload's offset moved past it, in one statement. Segments with stored false are
-- objects of a write that failed or lost its lease: never read, removed with the upload.
create table resumable_segments (
	upload       uuid not null references resumable_uploads (id) on delete cascade,
	offset_bytes bigint not null check (offset_bytes >= 0),
	size_bytes   bigint not null check (size_bytes > 0),
	object_key   text primary key,
	stored       boolean not null default false
);
create index resumable_segments_upload on resumable_segments (upload, offset_bytes);

-- +goose Down
drop table resumable_segments;
drop table resumable_uploads;
