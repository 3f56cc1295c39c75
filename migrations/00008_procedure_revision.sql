-- A procedure's revision counts the changes to the rows its clinic pages list: photos,
-- assessments, messages, parent links and reminders. A process may keep what it read of those
-- rows (followup/record_cache.go) and learn whether it is still current from the revision,
-- which it reads with the procedure itself, instead of reading every row again on each page.
--
-- Triggers keep the count, so no write path, present or future, in this program or outside it,
-- can change a listed row without it. The procedure's own row, its patient and its clinic are
-- read afresh on every page and need no count.

-- +goose Up
alter table procedures add column revision bigint not null default 0;

-- +goose StatementBegin
create function procedure_rows_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		update procedures set revision = revision + 1 where id = old.procedure_id;
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.procedure_id is distinct from old.procedure_id) then
		update procedures set revision = revision + 1 where id = new.procedure_id;
	end if;
	return null;
end
$$;
-- +goose StatementEnd

create trigger photos_revision after insert or update or delete on photos
	for each row execute function procedure_rows_changed();
create trigger assessments_revision after insert or update or delete on assessments
	for each row execute function procedure_rows_changed();
create trigger messages_revision after insert or update or delete on messages
	for each row execute function procedure_rows_changed();
create trigger parent_links_revision after insert or update or delete on parent_links
	for each row execute function procedure_rows_changed();
create trigger reminders_revision after insert or update or delete on reminders
	for each row execute function procedure_rows_changed();

-- +goose Down
drop trigger reminders_revision on reminders;
drop trigger parent_links_revision on parent_links;
drop trigger messages_revision on messages;
drop trigger assessments_revision on assessments;
drop trigger photos_revision on photos;
drop function procedure_rows_changed();
alter table procedures drop column revision;
