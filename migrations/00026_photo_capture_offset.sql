-- Whether a photo's capture time carried the camera's UTC offset (EXIF OffsetTimeOriginal):
-- true, captured_at is the instant; false, the camera recorded its wall clock alone, and
-- captured_at holds that wall clock written as if it were UTC. Null for the photos stored
-- before it was kept, which are read as false.

-- +goose Up
alter table photos add column captured_offset boolean;

-- +goose Down
alter table photos drop column captured_offset;
