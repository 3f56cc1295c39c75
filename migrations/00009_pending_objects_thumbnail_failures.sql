-- Objects on their way into the store. A row is written before an object is stored and
-- removed in the transaction that commits the object's own row (a photo's), so that an object
-- whose upload failed anywhere (the store, the database, the process) is known by its row here
-- and can be removed once its upload cannot still be in flight, without listing the bucket.
-- The sweeper takes rows with FOR UPDATE SKIP LOCKED: a row whose photo is being committed is
-- locked by that transaction and never swept under it.
--
-- Photos whose thumbnails cannot be made are recorded: the attempts, the last error (the
-- decoder's words, never patient data) and when to try again; after the last attempt a photo
-- is unreadable and the thumbnailer passes it by, so one bad file never holds up the others.

-- +goose Up
create table pending_objects (
	object_key text primary key,
	created_at timestamptz not null default now()
);
create index pending_objects_created on pending_objects (created_at);

alter table photos
	add column thumbnail_attempts smallint not null default 0,
	add column thumbnail_error text check (length(thumbnail_error) <= 500),
	add column thumbnail_retry_at timestamptz,
	add column unreadable_at timestamptz;

-- The thumbnailer's queue: photos without thumbnails that are not given up on.
create index photos_thumbnail_queue on photos (received_at)
	where thumbnails_at is null and unreadable_at is null;
drop index photos_thumbnails_pending;

-- +goose Down
create index photos_thumbnails_pending on photos (received_at) where thumbnails_at is null;
drop index photos_thumbnail_queue;
alter table photos
	drop column thumbnail_attempts,
	drop column thumbnail_error,
	drop column thumbnail_retry_at,
	drop column unreadable_at;
drop table pending_objects;
