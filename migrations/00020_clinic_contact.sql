-- The conversation's settings and notices (issue "two-way conversation").
--
-- A clinic says how the family reaches it besides the thread, and where news of the family's
-- messages goes: contact_phone (which existed, unbounded and unset) is the number for anything
-- urgent, clinic_hours a short text of when messages are read ("Mon-Fri 8:00-17:00"), and
-- message_inbox the address that hears of new family messages. The core owns them
-- (followup/clinic_contact.go); the family's page reads the phone and the hours.
--
-- The clinic hears of a new family message through message_notices: one row per notice and
-- channel (the inbox by email, the clinic's signed webhook), its River job carrying only the
-- row's id. At most one is queued per procedure and channel (a message arriving while one
-- waits adds nothing: the notice says only that there are messages), and a new one waits
-- until 15 minutes after the last one sent: the rows are the durable record of that window.
-- A notice names no patient and quotes no message: it links to the procedure page.
--
-- The family hears that the clinic answered (a reply, a note, a retake request) through the
-- reminder outbox, as kind 'answered': the same channels, quiet hours, fresh link per attempt
-- and outbox the clinicians read. Such a reminder is about no step, so its timepoint_key is
-- null (and only its is); at most one is queued per procedure and channel.
--
-- A research export holds the concern photos (kind 'concern', outside the schedule) only when
-- the researcher asks: exports.include_unscheduled records that choice with the export.
--
-- Constraints on the reminders table are added NOT VALID and validated after, so the table is
-- read for them under a lock that lets reminders go on being written.

-- +goose Up
alter table clinics
	add column message_inbox text not null default '' check (length(message_inbox) <= 254),
	add column clinic_hours text not null default '' check (length(clinic_hours) <= 120),
	add constraint clinics_contact_phone check (length(contact_phone) <= 40),
	add constraint clinics_contact_email check (length(contact_email) <= 254);

alter table reminders drop constraint reminders_kind_check;
alter table reminders add constraint reminders_kind_check
	check (kind in ('window-open', 'closing-soon', 'manual', 'answered')) not valid;
alter table reminders alter column timepoint_key drop not null;
alter table reminders add constraint reminders_timepoint check ((timepoint_key is null) = (kind = 'answered')) not valid;
alter table reminders validate constraint reminders_kind_check;
alter table reminders validate constraint reminders_timepoint;
create unique index reminders_answered_queued on reminders (procedure_id, channel)
	where kind = 'answered' and status = 'queued';

create table message_notices (
	id           uuid primary key default gen_random_uuid(),
	clinic_id    uuid not null references clinics (id),
	procedure_id uuid not null,
	channel      text not null check (channel in ('email', 'webhook')),
	-- skipped: by its time the clinic had read the messages (last_error says so).
	status       text not null default 'queued' check (status in ('queued', 'sent', 'failed', 'skipped')),
	attempts     integer not null default 0 check (attempts >= 0),
	-- A short reason, never a message, a name or an address.
	last_error   text not null default '' check (length(last_error) <= 300),
	-- Not before this instant: 15 minutes after the procedure's last notice on the channel.
	send_after   timestamptz not null,
	created_at   timestamptz not null default now(),
	updated_at   timestamptz not null default now(),
	sent_at      timestamptz,
	foreign key (procedure_id, clinic_id) references procedures (id, clinic_id),
	check ((status = 'sent') = (sent_at is not null))
);
create unique index message_notices_queued on message_notices (procedure_id, channel) where status = 'queued';
create index message_notices_sent on message_notices (procedure_id, channel, sent_at) where status = 'sent';

alter table exports add column include_unscheduled boolean not null default false;

-- +goose Down
-- Refused (a NOT NULL fails) while 'answered' reminders exist: nothing is deleted.
alter table exports drop column include_unscheduled;
drop table message_notices;
drop index reminders_answered_queued;
alter table reminders drop constraint reminders_timepoint;
alter table reminders alter column timepoint_key set not null;
alter table reminders drop constraint reminders_kind_check;
alter table reminders add constraint reminders_kind_check check (kind in ('window-open', 'closing-soon', 'manual'));
alter table clinics drop constraint clinics_contact_email, drop constraint clinics_contact_phone,
	drop column clinic_hours, drop column message_inbox;
