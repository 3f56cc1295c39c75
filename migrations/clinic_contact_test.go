package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup/pgtest"
	"github.com/dermfollow/dermfollow/migrations"
)

// 00020_clinic_contact.sql: a reminder about no step exists only as kind 'answered', and its
// down path refuses to run while one exists rather than delete it.
func TestClinicContactMigration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := pgtest.NewEmptyDatabase(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := migrations.Up(ctx, url, log); err != nil {
		t.Fatal(err)
	}
	pool := pgtest.OpenPool(t, url)
	var clinic, patient, procedure string
	if err := pool.QueryRow(ctx, `insert into clinics (name, time_zone, clinic_hours, message_inbox)
		values ('Migration clinic', 'UTC', 'Mon-Fri 8-17', 'inbox@clinic.example') returning id`).Scan(&clinic); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `insert into patients (clinic_id, display_name, birth_date, guardian_email)
		values ($1, 'A Child', '2025-01-01', 'g@example.org') returning id`, clinic).Scan(&patient); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `insert into procedures (clinic_id, patient_id, protocol_id, protocol_version, kind, body_site,
			performed_at)
		values ($1, $2, 'pws-hemoporfin-pdt', 1, 'pdt', 'face', now()) returning id`, clinic, patient).Scan(&procedure); err != nil {
		t.Fatal(err)
	}
	insert := func(kind string, timepoint any) error {
		_, err := pool.Exec(ctx, `insert into reminders (clinic_id, procedure_id, timepoint_key, kind, channel, send_after)
			values ($1, $2, $3, $4, 'email', now())`, clinic, procedure, timepoint, kind)
		return err
	}
	if err := insert("manual", nil); err == nil {
		t.Error("a manual reminder without a step was stored")
	}
	if err := insert("answered", nil); err != nil {
		t.Fatalf("an answered notice: %v", err)
	}
	if err := insert("answered", nil); err == nil {
		t.Error("a second queued answered notice of one procedure and channel was stored")
	}
	if _, err := pool.Exec(ctx, `insert into clinics (name, time_zone, clinic_hours) values ('Long hours', 'UTC', repeat('h', 121))`); err == nil {
		t.Error("a clinic hours text of 121 characters was stored")
	}
	if err := migrations.DownTo(ctx, url, 19); err == nil {
		t.Fatal("down ran with an answered reminder stored")
	}
	if _, err := pool.Exec(ctx, `delete from reminders where kind = 'answered'`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.DownTo(ctx, url, 19); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, url, log); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
