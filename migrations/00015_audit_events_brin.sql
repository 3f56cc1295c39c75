-- The audit log grows with every view of a photo: at 100,000 procedures it was 40% of the
-- database, 370 bytes a row, about 1 GB a year (docs/PERFORMANCE.md, make bench-scale). Its
-- B-tree on (clinic_id, at) was 14% of that and no query reads it: the patient audit page
-- goes by target_id. A BRIN index on at (the table is append-only, so its rows lie in the
-- order of time) answers the queries by time instead, a records officer's period or the
-- archiving of a month, for a few hundred KB.

-- +goose Up
create index audit_events_at on audit_events using brin (at);
drop index audit_events_clinic_at;

-- +goose Down
create index audit_events_clinic_at on audit_events (clinic_id, at);
drop index audit_events_at;
