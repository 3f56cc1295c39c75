-- The reminder scan (followup/reminders_workers.go, Scan) runs every minute and wants the
-- reminding family timepoints whose window is open now. A B-tree on either end of the window
-- reads every window that opened before now (the whole history) or closes after it (every
-- future one); a GiST index on the window as a range finds the ones that contain now and no
-- others, so the scan's cost follows the windows open, not the size of the tables.

-- +goose Up
create index timepoints_reminder_windows on timepoints using gist (tstzrange(opens_at, closes_at))
	where remind and who = 'family';

-- +goose Down
drop index timepoints_reminder_windows;
