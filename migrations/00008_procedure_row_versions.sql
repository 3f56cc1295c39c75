-- A procedure's rows version changes with every change to the rows its clinic pages list:
-- photos, assessments, messages, parent links and reminders. A process may keep what it read of
-- those rows (followup/record_cache.go) and learn whether it is still current from the version,
-- which it reads with the procedure itself, instead of reading every row again on each page.
--
-- Triggers set the version, so no write path, present or future, in this program or outside
-- it, can change a listed row without it. The procedure's own row, its patient and its clinic
-- are read afresh on every page and need none.
--
-- The version lives in a table of its own, not in procedures, whose rows several transactions
-- lock first (creating a link locks the procedure, then revokes the old links) while others
-- lock a link first (revoking one): bumping a count in the procedure's row from a link's
-- trigger made those two deadlock. Nothing locks a version row but these triggers, at the end
-- of the statement that changed a listed row. The version is random rather than a count, so
-- that after a restore from a backup no version can come back with other rows than it had.

-- +goose Up
-- No foreign key to procedures, on purpose: checking one, when a trigger adds a procedure's
-- first version row, would lock the procedure's row behind a transaction that holds it for
-- update and waits on the very row whose change fired the trigger (a new link replacing the
-- old ones, against a revocation). Every procedure_id here comes from a listed row, which
-- references its procedure itself, and procedures are never deleted.
create table procedure_row_versions (
	procedure_id uuid primary key,
	version      uuid not null
);

-- +goose StatementBegin
create function procedure_rows_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		insert into procedure_row_versions (procedure_id, version) values (old.procedure_id, gen_random_uuid())
			on conflict (procedure_id) do update set version = excluded.version;
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.procedure_id is distinct from old.procedure_id) then
		insert into procedure_row_versions (procedure_id, version) values (new.procedure_id, gen_random_uuid())
			on conflict (procedure_id) do update set version = excluded.version;
	end if;
	return null;
end
$$;
-- +goose StatementEnd

create trigger photos_rows_version after insert or update or delete on photos
	for each row execute function procedure_rows_changed();
create trigger assessments_rows_version after insert or update or delete on assessments
	for each row execute function procedure_rows_changed();
create trigger messages_rows_version after insert or update or delete on messages
	for each row execute function procedure_rows_changed();
create trigger parent_links_rows_version after insert or update or delete on parent_links
	for each row execute function procedure_rows_changed();
create trigger reminders_rows_version after insert or update or delete on reminders
	for each row execute function procedure_rows_changed();

-- +goose Down
drop trigger reminders_rows_version on reminders;
drop trigger parent_links_rows_version on parent_links;
drop trigger messages_rows_version on messages;
drop trigger assessments_rows_version on assessments;
drop trigger photos_rows_version on photos;
drop function procedure_rows_changed();
drop table procedure_row_versions;
