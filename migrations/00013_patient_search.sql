-- Patient search by any part of the name, served by an index: a trigram index (pg_trgm) whose
-- first column is the clinic (btree_gin), so that a search reads the entries of the caller's
-- clinic only, whatever the other clinics hold. An MRN is found whole, through the existing
-- unique index on (clinic_id, mrn). The trigram index replaces the B-tree on lower names,
-- which no query of a substring could use. The API's patient list pages by (created_at, id):
-- a cursor made of names would carry patient data into URLs.
--
-- pg_trgm and btree_gin ship with PostgreSQL (contrib) and are trusted extensions: the
-- database's owner may create them.

-- +goose Up
create extension if not exists pg_trgm;
create extension if not exists btree_gin;

create index patients_name_trgm on patients using gin (clinic_id, lower(display_name) gin_trgm_ops);
create index patients_clinic_created on patients (clinic_id, created_at, id);
drop index patients_clinic_name;

-- +goose Down
create index patients_clinic_name on patients (clinic_id, lower(display_name));
drop index patients_clinic_created;
drop index patients_name_trgm;
