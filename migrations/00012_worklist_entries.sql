-- The worklist's per-procedure state, kept current by triggers in the transaction of every
-- change to its inputs, so that a worklist page reads indexes in urgency order and stops at the
-- page size instead of computing every active procedure's state first (issue "100 times the
-- data").
--
-- worklist_entries has one row per procedure: its status, protocol and date, the photos
-- received since its latest assessment (unreviewed), whether a reminder failed with nothing
-- sent on its channel since, and when the procedure or any row its rows version covers last
-- changed (updated_at, for the API's updated_since: the time of the write, clock_timestamp(),
-- as close to its commit as a trigger can know). worklist_gaps has one row per timepoint with
-- a required view that has no active photo: when it is due and when it is overdue, with a copy
-- of its procedure's entry. Overdue and due today depend on the clock, so they are not stored
-- as flags: a gap is overdue while now lies in its range [closes_at, grace_ends_at) and due
-- today on its due_on, which a GiST and a B-tree index answer exactly at any instant.
--
-- Locks: every trigger first locks the procedure's entry row, then reads what it recounts, each
-- statement with a snapshot taken after the lock, so two transactions that change one
-- procedure's photos and grades at once cannot leave a count that misses the other's change.
-- The entry row is locked only by these triggers, always after the rows version (its trigger
-- names sort first) and after the procedure's row where a transaction locks that; as with
-- procedure_row_versions, there is no foreign key to procedures, for the reason given there.

-- +goose Up
create extension if not exists btree_gist;

create table worklist_entries (
	procedure_id    uuid primary key,
	clinic_id       uuid not null,
	patient_id      uuid not null,
	protocol_id     text not null,
	performed_at    timestamptz not null,
	status          text not null,
	unreviewed      integer not null default 0,
	last_received   timestamptz,
	reminder_failed boolean not null default false,
	updated_at      timestamptz not null default clock_timestamp(),
	-- The part of the urgency order that does not move with the clock: 1 while photos wait
	-- for review.
	review_rank     smallint generated always as (case when unreviewed > 0 then 1 else 0 end) stored
);
-- The worklist's order outside the clock-dependent states, and its counts.
create index worklist_entries_active on worklist_entries (clinic_id, review_rank, performed_at, procedure_id)
	where status = 'active';
create index worklist_entries_failed on worklist_entries (clinic_id, review_rank, performed_at, procedure_id)
	where status = 'active' and reminder_failed;
-- The worklist search: the active procedures of the patients that match.
create index worklist_entries_patient on worklist_entries (patient_id) where status = 'active';
-- The API's lists, in the order of change (a protocol filter reads this order and skips the
-- other protocols' entries: a few times the page at most).
create index worklist_entries_updated on worklist_entries (clinic_id, updated_at, procedure_id);
create index worklist_entries_status_updated on worklist_entries (clinic_id, status, updated_at, procedure_id);

-- The worklist's totals per clinic (its active procedures, those with photos waiting for
-- review, those with a failed reminder), kept by a trigger on worklist_entries that writes
-- only when an entry moves in or out of one of them. A clinic's totals are spread over 16 rows
-- (by the last byte of the procedure's id) that the worklist sums, so that two changes in one
-- clinic seldom wait for the same row until their commits.
create table worklist_counts (
	clinic_id  uuid not null,
	shard      smallint not null,
	active     integer not null default 0,
	unreviewed integer not null default 0,
	failed     integer not null default 0,
	primary key (clinic_id, shard)
);

-- A gap carries a copy of its procedure's entry (active, date, review rank, failed reminder),
-- so that the worklist ranks the procedures overdue or due today from their gaps alone.
create table worklist_gaps (
	procedure_id    uuid not null,
	timepoint_key   text not null,
	clinic_id       uuid not null,
	due_on          date not null,
	overdue         tstzrange not null,
	active          boolean not null,
	performed_at    timestamptz not null,
	review_rank     smallint not null,
	reminder_failed boolean not null,
	primary key (procedure_id, timepoint_key)
);
create index worklist_gaps_due on worklist_gaps (clinic_id, due_on) where active;
create index worklist_gaps_overdue on worklist_gaps using gist (clinic_id, overdue) where active;

-- +goose StatementBegin
-- worklist_lock locks a procedure's entry row; what the caller reads next sees every change
-- committed before the lock was granted.
create function worklist_lock(p uuid) returns void language plpgsql as $$
begin
	perform 1 from worklist_entries where procedure_id = p for no key update;
end
$$;

-- worklist_sync_gaps copies a procedure's entry into its gaps.
create function worklist_sync_gaps(p uuid) returns void language plpgsql as $$
begin
	update worklist_gaps g set clinic_id = e.clinic_id, active = e.status = 'active', performed_at = e.performed_at,
		review_rank = e.review_rank, reminder_failed = e.reminder_failed
	from worklist_entries e
	where e.procedure_id = p and g.procedure_id = p
		and (g.clinic_id, g.active, g.performed_at, g.review_rank, g.reminder_failed)
			is distinct from (e.clinic_id, e.status = 'active', e.performed_at, e.review_rank, e.reminder_failed);
end
$$;

create function worklist_recount_review(p uuid) returns void language plpgsql as $$
begin
	update worklist_entries e set unreviewed = r.n, last_received = r.last
	from (select count(*)::integer as n, max(ph.received_at) as last from photos ph
		where ph.procedure_id = p and ph.status = 'active' and ph.received_at >
			coalesce((select max(a.created_at) from assessments a where a.procedure_id = p), '-infinity')) r
	where e.procedure_id = p and (e.unreviewed, e.last_received) is distinct from (r.n, r.last);
	perform worklist_sync_gaps(p);
end
$$;

create function worklist_recount_gap(p uuid, tp text) returns void language plpgsql as $$
begin
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

create function worklist_recount_failed(p uuid) returns void language plpgsql as $$
begin
	update worklist_entries e set reminder_failed = f.failed
	from (select exists (select 1 from reminders r where r.procedure_id = p and r.status = 'failed'
		and not exists (select 1 from reminders later where later.procedure_id = p and later.channel = r.channel
			and later.status = 'sent' and later.created_at > r.created_at)) as failed) f
	where e.procedure_id = p and e.reminder_failed is distinct from f.failed;
	perform worklist_sync_gaps(p);
end
$$;

create function worklist_procedures_changed() returns trigger language plpgsql as $$
begin
	if tg_op = 'INSERT' then
		insert into worklist_entries (procedure_id, clinic_id, patient_id, protocol_id, performed_at, status)
			values (new.id, new.clinic_id, new.patient_id, new.protocol_id, new.performed_at, new.status);
	else
		update worklist_entries set clinic_id = new.clinic_id, patient_id = new.patient_id, protocol_id = new.protocol_id,
			performed_at = new.performed_at, status = new.status, updated_at = clock_timestamp()
		where procedure_id = new.id;
		perform worklist_sync_gaps(new.id);
	end if;
	return null;
end
$$;

create function worklist_timepoints_changed() returns trigger language plpgsql as $$
begin
	perform worklist_lock(new.procedure_id);
	perform worklist_recount_gap(new.procedure_id, new.key);
	return null;
end
$$;

create function worklist_photos_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_lock(old.procedure_id);
		perform worklist_recount_review(old.procedure_id);
		perform worklist_recount_gap(old.procedure_id, old.timepoint_key);
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and (new.procedure_id, new.timepoint_key) is distinct from (old.procedure_id, old.timepoint_key)) then
		perform worklist_lock(new.procedure_id);
		perform worklist_recount_review(new.procedure_id);
		perform worklist_recount_gap(new.procedure_id, new.timepoint_key);
	end if;
	return null;
end
$$;

create function worklist_assessments_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_lock(old.procedure_id);
		perform worklist_recount_review(old.procedure_id);
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.procedure_id is distinct from old.procedure_id) then
		perform worklist_lock(new.procedure_id);
		perform worklist_recount_review(new.procedure_id);
	end if;
	return null;
end
$$;

create function worklist_reminders_changed() returns trigger language plpgsql as $$
begin
	if tg_op in ('UPDATE', 'DELETE') then
		perform worklist_lock(old.procedure_id);
		perform worklist_recount_failed(old.procedure_id);
	end if;
	if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new.procedure_id is distinct from old.procedure_id) then
		perform worklist_lock(new.procedure_id);
		perform worklist_recount_failed(new.procedure_id);
	end if;
	return null;
end
$$;

-- worklist_count moves an entry's share of its clinic's totals: -1 for the old row, +1 for the
-- new one.
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

create function worklist_entries_changed() returns trigger language plpgsql as $$
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

-- A new rows version is a change to a row the procedure's pages list.
create function worklist_rows_version_changed() returns trigger language plpgsql as $$
begin
	update worklist_entries set updated_at = clock_timestamp() where procedure_id = new.procedure_id;
	return null;
end
$$;

-- worklist_refill recomputes both tables from the rows they derive from: once here, for the
-- rows that exist, and after a bulk load that ran without triggers (scripts/scalegen).
create function worklist_refill() returns void language plpgsql as $$
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

-- Trigger names end in _worklist, after _rows_version: the rows version is locked first.
create trigger procedures_worklist after insert or update on procedures
	for each row execute function worklist_procedures_changed();
create trigger timepoints_worklist after insert on timepoints
	for each row execute function worklist_timepoints_changed();
create trigger photos_worklist after insert or delete or update of procedure_id, timepoint_key, view, status, received_at
	on photos for each row execute function worklist_photos_changed();
create trigger assessments_worklist after insert or delete or update of procedure_id, created_at
	on assessments for each row execute function worklist_assessments_changed();
create trigger reminders_worklist after insert or delete or update of procedure_id, channel, status, created_at
	on reminders for each row execute function worklist_reminders_changed();
create trigger procedure_row_versions_worklist after insert or update on procedure_row_versions
	for each row execute function worklist_rows_version_changed();
create trigger worklist_entries_count after insert or delete on worklist_entries
	for each row execute function worklist_entries_changed();
create trigger worklist_entries_recount after update on worklist_entries
	for each row when ((old.clinic_id, old.status, old.review_rank, old.reminder_failed)
		is distinct from (new.clinic_id, new.status, new.review_rank, new.reminder_failed))
	execute function worklist_entries_changed();

select worklist_refill();

-- +goose Down
drop trigger worklist_entries_recount on worklist_entries;
drop trigger worklist_entries_count on worklist_entries;
drop trigger procedure_row_versions_worklist on procedure_row_versions;
drop trigger reminders_worklist on reminders;
drop trigger assessments_worklist on assessments;
drop trigger photos_worklist on photos;
drop trigger timepoints_worklist on timepoints;
drop trigger procedures_worklist on procedures;
drop function worklist_refill();
drop function worklist_rows_version_changed();
drop function worklist_entries_changed();
drop function worklist_count(uuid, uuid, integer, boolean, boolean, boolean);
drop function worklist_reminders_changed();
drop function worklist_assessments_changed();
drop function worklist_photos_changed();
drop function worklist_timepoints_changed();
drop function worklist_procedures_changed();
drop function worklist_recount_failed(uuid);
drop function worklist_recount_gap(uuid, text);
drop function worklist_recount_review(uuid);
drop function worklist_sync_gaps(uuid);
drop function worklist_lock(uuid);
drop table worklist_gaps;
drop table worklist_counts;
drop table worklist_entries;
