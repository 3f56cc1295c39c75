-- The two-way conversation (issue "two-way conversation"; followup/conversation): the family
-- writes to the clinic, with photos outside the schedule, and the clinic answers.
--
-- The family's messages extend the existing messages table rather than a table of their own:
-- the clinic's notes and retake requests already live there, and the family sees one thread
-- with all three in order. One table keeps that thread one index range (messages_procedure),
-- keeps the procedure's rows version (00008) moving with every message without another
-- trigger, and lets a clinic reply be what a note already is (kind 'note'). A family message
-- has kind 'family', its parent link instead of a clinic author, an optional client_id that
-- makes a retry return the same message, and the clinic's read and handled marks. Bodies stay
-- text of 1 to 2000 characters, as before; they are never copied anywhere else.
--
-- A photo outside the schedule (a concern: blisters, crusts, swelling) is a photo row of kind
-- 'concern', with no timepoint and no view, stored through the same upload path as a scheduled
-- one (sanitizer, store, upload_id idempotency, quotas); message_id attaches it to the message
-- it came with. Constraints are added NOT VALID and validated after, so that the photos table
-- is read for them under a lock that lets uploads go on.
--
-- The worklist (00012) gains what its "New message" filter needs: per procedure, the family
-- messages not yet handled and the oldest one's time (waiting_since, the filter's order,
-- oldest first), and per clinic shard the number of procedures with one. A clinic reply marks
-- the family's earlier messages handled (followup/conversation), so "unanswered" and "not
-- handled" are one state. Concern photos count as photos waiting for review, like any other,
-- and never fill a gap of the schedule.

-- +goose Up
alter table messages add constraint messages_id_clinic unique (id, clinic_id);
alter table messages drop constraint messages_kind_check;
alter table messages add constraint messages_kind_check check (kind in ('retake', 'note', 'family'));
alter table messages alter column author_id drop not null;
alter table messages
	add column parent_link_id uuid references parent_links (id),
	add column client_id text check (client_id is null or length(client_id) between 8 and 64),
	add column read_at timestamptz,
	add column read_by uuid,
	add column handled_at timestamptz,
	add column handled_by uuid,
	add foreign key (read_by, clinic_id) references users (id, clinic_id),
	add foreign key (handled_by, clinic_id) references users (id, clinic_id),
	-- The family writes through its link, the clinic as a user; only the family's are read
	-- and handled.
	add constraint messages_author check (case when kind = 'family' then parent_link_id is not null and author_id is null
		else parent_link_id is null and author_id is not null and client_id is null end),
	add constraint messages_marks check ((read_at is null) = (read_by is null) and (handled_at is null) = (handled_by is null)
		and (kind = 'family' or (read_at is null and handled_at is null)));
create unique index messages_client on messages (procedure_id, client_id) where client_id is not null;
-- The per-link rate limit counts a link's recent messages.
create index messages_link on messages (parent_link_id, created_at) where parent_link_id is not null;

alter table photos alter column timepoint_key drop not null;
alter table photos alter column view drop not null;
alter table photos
	add column kind text not null default 'scheduled',
	add column message_id uuid;
alter table photos add constraint photos_kind check (case kind when 'scheduled' then timepoint_key is not null and view is not null
	when 'concern' then timepoint_key is null and view is null else false end) not valid;
alter table photos add constraint photos_message check (message_id is null or kind = 'concern') not valid;
alter table photos add constraint photos_message_fk foreign key (message_id, clinic_id) references messages (id, clinic_id) not valid;
alter table photos validate constraint photos_kind;
alter table photos validate constraint photos_message;
alter table photos validate constraint photos_message_fk;
create index photos_message on photos (message_id) where message_id is not null;

alter table worklist_entries
	add column unanswered integer not null default 0,
	add column waiting_since timestamptz;
create index worklist_entries_waiting on worklist_entries (clinic_id, waiting_since, procedure_id)
	where status = 'active' and waiting_since is not null;
alter table worklist_counts add column waiting integer not null default 0;

-- +goose StatementBegin
-- A photo without a timepoint has no gap to fill.
create or replace function worklist_recount_gap(p uuid, tp text) returns void language plpgsql as $$
begin
	if tp is null then
		return;
	end if;
	if exists (select 1 from timepoints t where t.procedure_id = p and t.key = tp
			and exists (select 1 from unnest(t.views) v(name) where not exists (
				select 1 from photos ph where ph.procedure_id = p and ph.timepoint_key = tp
					and ph.view = v.name and ph.status = 'active'))) then
		insert into worklist_gaps (procedure_id, timepoint_key, clinic_id, due_on, overdue, active, performed_at, review_rank,
				reminder_failed)
			select t.procedure_id, t.key, e.clinic_id, t.due_on, tstzrange(t.closes_at, t.grace_ends_at), e.status = 'active',
				e.performed_at, e.review_rank, e.reminder_failed
			from timepoints t join worklist_entries e on e.procedure_id = t.procedure_id
			where t.procedure_id = p and t.key = tp
			on conflict (procedure_id, timepoint_key) do nothing;
	else
		delete from worklist_gaps where procedure_id = p and timepoint_key = tp;
	end if;
end
$$;

create function worklist_recount_messages(p uuid) returns void language plpgsql as $$
begin
	update worklist_entries e set unanswered = m.n, waiting_since = m.since
	from (select count(*)::integer as n, min(created_at) as since from messages
		where procedure_id = p and kind = 'family' and handled_at is null) m
	where e.procedure_id = p and (e.unanswered, e.waiting_since) is distinct from (m.n, m.since);
end
$$;

create function worklist_messages_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_lock(old.procedure_id);
		perform worklist_recount_messages(old.procedure_id);
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.procedure_id is distinct from old.procedure_id) then
		perform worklist_lock(new.procedure_id);
		perform worklist_recount_messages(new.procedure_id);
	end if;
	return null;
end
$$;

create function worklist_count(clinic uuid, procedure uuid, sign integer, active boolean, unreviewed boolean,
		failed boolean, waiting boolean) returns void language plpgsql as $$
begin
	if not active then
		return;
	end if;
	insert into worklist_counts as c (clinic_id, shard, active, unreviewed, failed, waiting)
		values (clinic, get_byte(uuid_send(procedure), 15) % 16, sign, sign * unreviewed::integer, sign * failed::integer,
			sign * waiting::integer)
		on conflict (clinic_id, shard) do update set active = c.active + excluded.active,
			unreviewed = c.unreviewed + excluded.unreviewed, failed = c.failed + excluded.failed,
			waiting = c.waiting + excluded.waiting;
end
$$;

create or replace function worklist_entries_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_count(old.clinic_id, old.procedure_id, -1, old.status = 'active', old.review_rank = 1, old.reminder_failed,
			old.waiting_since is not null);
	end if;
	if tg_op in ('INSERT', 'UPDATE') then
		perform worklist_count(new.clinic_id, new.procedure_id, 1, new.status = 'active', new.review_rank = 1, new.reminder_failed,
			new.waiting_since is not null);
	end if;
	return null;
end
$$;

-- worklist_refill as in 00012, with the messages' columns and count.
create or replace function worklist_refill() returns void language plpgsql as $$
begin
	delete from worklist_gaps;
	delete from worklist_entries;
	insert into worklist_entries (procedure_id, clinic_id, patient_id, protocol_id, performed_at, status, unreviewed,
			last_received, reminder_failed, updated_at, unanswered, waiting_since)
		select pr.id, pr.clinic_id, pr.patient_id, pr.protocol_id, pr.performed_at, pr.status, u.n, u.last, f.failed,
			greatest(pr.created_at, pr.status_changed_at, ch.at), m.n, m.since
		from procedures pr
		cross join lateral (select count(*)::integer as n, max(ph.received_at) as last from photos ph
			where ph.procedure_id = pr.id and ph.status = 'active' and ph.received_at >
				coalesce((select max(a.created_at) from assessments a where a.procedure_id = pr.id), '-infinity')) u
		cross join lateral (select exists (select 1 from reminders r where r.procedure_id = pr.id and r.status = 'failed'
			and not exists (select 1 from reminders later where later.procedure_id = pr.id and later.channel = r.channel
				and later.status = 'sent' and later.created_at > r.created_at)) as failed) f
		cross join lateral (select count(*)::integer as n, min(ms.created_at) as since from messages ms
			where ms.procedure_id = pr.id and ms.kind = 'family' and ms.handled_at is null) m
		cross join lateral (select greatest(
			(select max(greatest(ph.received_at, ph.status_changed_at, ph.thumbnails_at)) from photos ph where ph.procedure_id = pr.id),
			(select max(a.created_at) from assessments a where a.procedure_id = pr.id),
			(select max(greatest(m.created_at, m.read_at, m.handled_at)) from messages m where m.procedure_id = pr.id),
			(select max(greatest(l.created_at, l.revoked_at)) from parent_links l where l.procedure_id = pr.id),
			(select max(r.updated_at) from reminders r where r.procedure_id = pr.id)) as at) ch;
	analyze worklist_entries;
	insert into worklist_gaps (procedure_id, timepoint_key, clinic_id, due_on, overdue, active, performed_at, review_rank,
			reminder_failed)
		select t.procedure_id, t.key, e.clinic_id, t.due_on, tstzrange(t.closes_at, t.grace_ends_at), e.status = 'active',
			e.performed_at, e.review_rank, e.reminder_failed
		from timepoints t join worklist_entries e on e.procedure_id = t.procedure_id
		where exists (select 1 from unnest(t.views) v(name) where not exists (
			select 1 from photos ph where ph.procedure_id = t.procedure_id and ph.timepoint_key = t.key
				and ph.view = v.name and ph.status = 'active'));
	delete from worklist_counts;
	insert into worklist_counts (clinic_id, shard, active, unreviewed, failed, waiting)
		select clinic_id, get_byte(uuid_send(procedure_id), 15) % 16, count(*), count(*) filter (where review_rank = 1),
			count(*) filter (where reminder_failed), count(*) filter (where waiting_since is not null)
		from worklist_entries where status = 'active' group by 1, 2;
end
$$;
-- +goose StatementEnd

drop function worklist_count(uuid, uuid, integer, boolean, boolean, boolean);

-- After messages_rows_version, which sorts first: the rows version is locked first.
create trigger messages_worklist after insert or delete or update of procedure_id, kind, handled_at, created_at
	on messages for each row execute function worklist_messages_changed();
drop trigger worklist_entries_recount on worklist_entries;
create trigger worklist_entries_recount after update on worklist_entries
	for each row when ((old.clinic_id, old.status, old.review_rank, old.reminder_failed, old.waiting_since is null)
		is distinct from (new.clinic_id, new.status, new.review_rank, new.reminder_failed, new.waiting_since is null))
	execute function worklist_entries_changed();

-- +goose Down
-- Refused (a NOT NULL fails) while concern photos or family messages exist: nothing is deleted.
drop trigger worklist_entries_recount on worklist_entries;
drop trigger messages_worklist on messages;
-- +goose StatementBegin
create function worklist_count(clinic uuid, procedure uuid, sign integer, active boolean, unreviewed boolean,
		failed boolean) returns void language plpgsql as $$
begin
	if not active then
		return;
	end if;
	insert into worklist_counts as c (clinic_id, shard, active, unreviewed, failed)
		values (clinic, get_byte(uuid_send(procedure), 15) % 16, sign, sign * unreviewed::integer, sign * failed::integer)
		on conflict (clinic_id, shard) do update set active = c.active + excluded.active,
			unreviewed = c.unreviewed + excluded.unreviewed, failed = c.failed + excluded.failed;
end
$$;

create or replace function worklist_entries_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_count(old.clinic_id, old.procedure_id, -1, old.status = 'active', old.review_rank = 1, old.reminder_failed);
	end if;
	if tg_op in ('INSERT', 'UPDATE') then
		perform worklist_count(new.clinic_id, new.procedure_id, 1, new.status = 'active', new.review_rank = 1, new.reminder_failed);
	end if;
	return null;
end
$$;
-- +goose StatementEnd
create trigger worklist_entries_recount after update on worklist_entries
	for each row when ((old.clinic_id, old.status, old.review_rank, old.reminder_failed)
		is distinct from (new.clinic_id, new.status, new.review_rank, new.reminder_failed))
	execute function worklist_entries_changed();
drop function worklist_count(uuid, uuid, integer, boolean, boolean, boolean, boolean);
drop function worklist_messages_changed();
drop function worklist_recount_messages(uuid);
-- +goose StatementBegin
-- worklist_refill as 00012 made it (worklist_recount_gap's new body reads nothing dropped).
create or replace function worklist_refill() returns void language plpgsql as $$
begin
	delete from worklist_gaps;
	delete from worklist_entries;
	insert into worklist_entries (procedure_id, clinic_id, patient_id, protocol_id, performed_at, status, unreviewed,
			last_received, reminder_failed, updated_at)
		select pr.id, pr.clinic_id, pr.patient_id, pr.protocol_id, pr.performed_at, pr.status, u.n, u.last, f.failed,
			greatest(pr.created_at, pr.status_changed_at, ch.at)
		from procedures pr
		cross join lateral (select count(*)::integer as n, max(ph.received_at) as last from photos ph
			where ph.procedure_id = pr.id and ph.status = 'active' and ph.received_at >
				coalesce((select max(a.created_at) from assessments a where a.procedure_id = pr.id), '-infinity')) u
		cross join lateral (select exists (select 1 from reminders r where r.procedure_id = pr.id and r.status = 'failed'
			and not exists (select 1 from reminders later where later.procedure_id = pr.id and later.channel = r.channel
				and later.status = 'sent' and later.created_at > r.created_at)) as failed) f
		-- The latest change a row shows; updates leave no trace but in the row itself.
		cross join lateral (select greatest(
			(select max(greatest(ph.received_at, ph.status_changed_at, ph.thumbnails_at)) from photos ph where ph.procedure_id = pr.id),
			(select max(a.created_at) from assessments a where a.procedure_id = pr.id),
			(select max(m.created_at) from messages m where m.procedure_id = pr.id),
			(select max(greatest(l.created_at, l.revoked_at)) from parent_links l where l.procedure_id = pr.id),
			(select max(r.updated_at) from reminders r where r.procedure_id = pr.id)) as at) ch;
	-- The entries just written are what the next statements join: plan them with their size.
	analyze worklist_entries;
	insert into worklist_gaps (procedure_id, timepoint_key, clinic_id, due_on, overdue, active, performed_at, review_rank,
			reminder_failed)
		select t.procedure_id, t.key, e.clinic_id, t.due_on, tstzrange(t.closes_at, t.grace_ends_at), e.status = 'active',
			e.performed_at, e.review_rank, e.reminder_failed
		from timepoints t join worklist_entries e on e.procedure_id = t.procedure_id
		where exists (select 1 from unnest(t.views) v(name) where not exists (
			select 1 from photos ph where ph.procedure_id = t.procedure_id and ph.timepoint_key = t.key
				and ph.view = v.name and ph.status = 'active'));
	-- Last, whatever the entries' trigger counted meanwhile.
	delete from worklist_counts;
	insert into worklist_counts (clinic_id, shard, active, unreviewed, failed)
		select clinic_id, get_byte(uuid_send(procedure_id), 15) % 16, count(*), count(*) filter (where review_rank = 1),
			count(*) filter (where reminder_failed)
		from worklist_entries where status = 'active' group by 1, 2;
end
$$;
-- +goose StatementEnd
drop index worklist_entries_waiting;
alter table worklist_counts drop column waiting;
alter table worklist_entries drop column waiting_since, drop column unanswered;

drop index photos_message;
alter table photos drop constraint photos_message_fk, drop constraint photos_message, drop constraint photos_kind;
alter table photos drop column message_id, drop column kind;
alter table photos alter column view set not null;
alter table photos alter column timepoint_key set not null;

drop index messages_link;
drop index messages_client;
alter table messages drop constraint messages_marks, drop constraint messages_author;
alter table messages drop column handled_by, drop column handled_at, drop column read_by, drop column read_at,
	drop column client_id, drop column parent_link_id;
alter table messages alter column author_id set not null;
alter table messages drop constraint messages_kind_check;
alter table messages add constraint messages_kind_check check (kind in ('retake', 'note'));
alter table messages drop constraint messages_id_clinic;
