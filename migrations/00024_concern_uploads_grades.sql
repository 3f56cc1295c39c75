-- Concern photos (00019) on the family's page and the clinic's timeline (issue "two-way
-- conversation", its pages).
--
-- The family's page sends every photo it picks through the resumable upload path (tus,
-- 00016), concern photos too: same upload_id idempotency, the same resume after a cut, the
-- same IndexedDB keeping on the phone. A resumable upload so far named the step and view of
-- the photo it becomes; it now says its kind, and a concern upload names neither (stored as
-- empty text: the table is short-lived and its columns stay NOT NULL).
--
-- A concern photo can be graded like the scheduled ones. A grade so far named a step of the
-- schedule; a grade of a concern photo names the photo instead (photo_id), and no step. The
-- clinic's grades of steps, the grade chart and the export read grades by step, which a
-- grade without one never matches. That the photo is a concern photo of the same procedure
-- and clinic is checked by followup.Service.Assess (no composite key on photos to point at
-- without rebuilding an index of that table).

-- +goose Up
alter table resumable_uploads
	add column kind text not null default 'scheduled',
	drop constraint resumable_uploads_timepoint_key_check,
	drop constraint resumable_uploads_view_check,
	add constraint resumable_uploads_kind check (case kind
		when 'scheduled' then length(timepoint_key) between 1 and 128 and length(view) between 1 and 32
		when 'concern' then timepoint_key = '' and view = ''
		else false end);

alter table assessments
	alter column timepoint_key drop not null,
	add column photo_id uuid references photos (id),
	add constraint assessments_target check ((timepoint_key is null) <> (photo_id is null));
create index assessments_photo on assessments (photo_id) where photo_id is not null;

-- +goose Down
-- Refused (a constraint or NOT NULL fails) while concern uploads or grades of concern photos
-- exist: nothing is deleted.
drop index assessments_photo;
alter table assessments
	drop constraint assessments_target,
	drop column photo_id,
	alter column timepoint_key set not null;

alter table resumable_uploads
	drop constraint resumable_uploads_kind,
	add constraint resumable_uploads_timepoint_key_check check (length(timepoint_key) between 1 and 128),
	add constraint resumable_uploads_view_check check (length(view) between 1 and 32),
	drop column kind;
