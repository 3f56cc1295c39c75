package followup

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// What the capability packages (accounts, reminders, export, worklist, thumbnails, staging,
// sweep) use of the core, beyond its types and errors: a few functions named for what they do.

// Audit appends an event to the audit log in tx, the transaction of the change it records:
// the event exists if and only if the change does.
func Audit(ctx context.Context, tx pgx.Tx, a Actor, e AuditEvent) error { return audit(ctx, tx, a, e) }

// AuditArgs are an event's values for AuditColumns (clinic_id, actor_kind, actor_id, action,
// target_kind, target_id, client_addr, detail as jsonb), for a statement that writes the event
// together with the change or the read it records, so that one round trip does both:
//
//	insert into audit_events (<AuditColumns>) select $1::uuid, $2::text, $3::uuid, $4::text,
//		$5::text, $6::uuid, $7::inet, $8::jsonb from ...
func AuditArgs(a Actor, e AuditEvent) ([]any, error) {
	v, err := auditValues(a, e)
	if err != nil {
		return nil, err
	}
	return v.args(), nil
}

// Unavailable turns a database error into the application's error: "try again" (503) for an
// outage or a transient failure, the error itself (a bug: 500) otherwise. See unavailable.
func Unavailable(err error) error { return unavailable(err) }

// NotFound is a not-found error naming what was looked up for pgx.ErrNoRows, and Unavailable
// for any other error.
func NotFound(err error, what string) error { return notFound(err, what) }

// InvalidField is an invalid-input error that names the field.
func InvalidField(field, format string, args ...any) *Error {
	return invalidField(field, format, args...)
}

// WithTx runs fn in a transaction of pool, committing if it returns nil and rolling back
// otherwise; database failures come back through Unavailable.
func WithTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return runTx(ctx, pool, fn, unavailable)
}

// CanManageUsersOf checks that a may add users to (or create tokens for users of) clinic: the
// system acting for that clinic, or an admin of it. Another clinic answers not found.
func (a Actor) CanManageUsersOf(clinic uuid.UUID) error {
	switch a.Kind {
	case ActorSystem:
		if a.ClinicID != uuid.Nil && a.ClinicID != clinic {
			return Errorf(ENOTFOUND, "clinic not found")
		}
		return nil
	case ActorUser:
		if a.Role != RoleAdmin {
			return Errorf(EFORBIDDEN, "only an admin can manage users")
		}
		if a.ClinicID != clinic {
			return Errorf(ENOTFOUND, "clinic not found")
		}
		return nil
	}
	return Errorf(EFORBIDDEN, "only an admin can manage users")
}

// SeesClinic reports whether clinic data is visible to a: its own clinic, or any for the
// system acting for no clinic in particular.
func (a Actor) SeesClinic(clinic uuid.UUID) bool {
	if a.Kind == ActorSystem && a.ClinicID == uuid.Nil {
		return true
	}
	return (a.Kind == ActorSystem || a.Kind == ActorUser) && a.ClinicID == clinic
}

// RequireClinical admits the clinic users who work with identified data (clinicians and
// admins): anyone else is unauthorized (not signed in) or forbidden.
func (a Actor) RequireClinical() error { return a.requireClinical() }

// LockProcedure reads a procedure the actor may see and locks its row for the rest of tx;
// another clinic's id is not found.
func LockProcedure(ctx context.Context, tx pgx.Tx, a Actor, id uuid.UUID) (Procedure, error) {
	return procedureIn(ctx, tx, a, id, true)
}

// MakeParentLink makes a parent link for a procedure of clinic inside tx, as the system (a
// reminder carries one): it expires like the links clinicians make, at least a week after
// now, and its audit event, the system's, carries detail beside the procedure. It returns the
// link's id and its token, which exists nowhere else: only its hash is stored.
func MakeParentLink(ctx context.Context, tx pgx.Tx, clinic, procedure uuid.UUID, now time.Time, detail map[string]any) (uuid.UUID, string, error) {
	var lastGrace time.Time
	if err := tx.QueryRow(ctx, `select coalesce(max(grace_ends_at), $2) from timepoints where procedure_id = $1`,
		procedure, now).Scan(&lastGrace); err != nil {
		return uuid.Nil, "", unavailable(err)
	}
	expires := lastGrace.Add(LinkGrace)
	if expires.Before(now.Add(7 * 24 * time.Hour)) {
		expires = now.Add(7 * 24 * time.Hour)
	}
	token := newToken()
	var id uuid.UUID
	err := tx.QueryRow(ctx, `insert into parent_links (clinic_id, procedure_id, token_hash, expires_at, created_at)
		values ($1, $2, $3, $4, $5) returning id`, clinic, procedure, tokenHash(token), expires, now).Scan(&id)
	if err != nil {
		return uuid.Nil, "", unavailable(err)
	}
	d := map[string]any{"procedure": procedure}
	for k, v := range detail {
		d[k] = v
	}
	err = audit(ctx, tx, SystemActor(clinic), AuditEvent{Action: AuditLinkCreated, TargetKind: "parent_link", TargetID: id,
		Detail: d})
	return id, token, err
}

// Now is the service's clock: what the schedules, the worklist and the reminders take for the
// present (tests set it through Config.Now).
func (s *Service) Now() time.Time { return s.now() }

// ContainsPattern is a LIKE pattern matching any lower-cased text that contains s (trimmed)
// literally: the searches by part of a patient's name.
func ContainsPattern(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(strings.TrimSpace(s))) + "%"
}

// Zone is the time zone of a clinic by its IANA name, loaded once per process (see zones).
func Zone(name string) (*time.Location, error) { return zone(name) }

// WithTxKnown is WithTx for writes whose caller must tell a failed COMMIT from one whose
// answer was lost: the latter comes back unavailable, and CommitUnknown reports it. Only a
// COMMIT that PostgreSQL answered with an error is a certain failure: pgx reports a
// connection that broke after the COMMIT left as "conn closed", safe to retry (seen with a
// cut after the server had committed), so no other error is taken for proof that nothing was
// committed.
func WithTxKnown(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return runTx(ctx, pool, fn, commitOutcome)
}

// CommitUnknown reports whether err is (or wraps) a COMMIT whose outcome is unknown: it may
// have landed. Nothing the transaction would have recorded may be deleted on it.
func CommitUnknown(err error) bool {
	var unknown *commitUnknownError
	return errors.As(err, &unknown)
}

// The life of an object stored outside the photo write path (an export's archive): a new
// key, a pending note before it is stored (the sweeper's lead should the process die), the
// note kept fresh while the upload lasts, and then either the note forgotten in the
// transaction that records the object, or the object discarded.

// NewObjectKey is a random key under prefix ("exports", say) that carries nothing else.
func NewObjectKey(prefix string) string { return newObjectKey(prefix) }

// NotePending records that an object is about to be stored under key.
func (s *Service) NotePending(ctx context.Context, key string) error { return s.notePending(ctx, key) }

// KeepPending keeps key's note fresh, so that the sweeper (see PendingGrace) leaves alone an
// object whose upload is still going on.
func (s *Service) KeepPending(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `update pending_objects set created_at = now() where object_key = $1`, key)
	return unavailable(err)
}

// ForgetPending removes key's note inside tx, the transaction that records the object: the
// note is gone if and only if the record exists.
func ForgetPending(ctx context.Context, tx pgx.Tx, key string) error {
	_, err := tx.Exec(ctx, `delete from pending_objects where object_key = $1`, key)
	return unavailable(err)
}

// DiscardObject removes a stored object whose record certainly does not exist, then its
// note; whatever fails is left to the sweeper, which the note still points at.
func (s *Service) DiscardObject(ctx context.Context, key string) { s.discardObject(ctx, key) }

// The thumbnailer (package thumbnails) works beside this process's photo write path: the
// path tells it when there is work, and it gives the uploads the CPU first.

// nudgeThumbnailer wakes the thumbnail worker of this process without blocking.
func (s *Service) nudgeThumbnailer() {
	select {
	case s.thumbNudge <- struct{}{}:
	default:
	}
}

// uploadActivity records that this process is working on an upload.
func (s *Service) uploadActivity() { s.lastUpload.Store(time.Now().UnixNano()) }

// ThumbnailsDue receives when this process has made work for the thumbnailer (a photo stored,
// a thumbnail found missing); one signal waits at most, however many there were. One
// thumbnailer a process takes them.
func (s *Service) ThumbnailsDue() <-chan struct{} { return s.thumbNudge }

// SinceUpload is how long ago this process last worked on an upload (began or ended one).
func (s *Service) SinceUpload() time.Duration { return time.Since(time.Unix(0, s.lastUpload.Load())) }

// StoreTimeout bounds one Put to the store (Config.StoreTimeout): a store that stalls longer
// fails the write rather than hold it.
func (s *Service) StoreTimeout() time.Duration { return s.storeTimeout }

// RowTimeout bounds one statement of a write that runs detached from its request (the rows of
// an upload whose client may be gone): as long as StoreTimeout, up to 15 s.
func (s *Service) RowTimeout() time.Duration { return s.rowTimeout }

// CheckUpload checks what AddPhoto checks before a photo's bytes are read: that a may add
// this photo to the procedure (the step and the view, the follow-up still active, the
// link's and the step's quotas). When an earlier try of the same upload_id has stored its
// photo, it returns that photo and checks nothing more. Package staging calls it when a
// resumable upload starts.
func (s *Service) CheckUpload(ctx context.Context, a Actor, procedureID uuid.UUID, up PhotoUpload) (*Photo, error) {
	return s.checkUpload(ctx, a, procedureID, up)
}

// StoredKind is the upload's kind as a photo row stores it: PhotoScheduled or PhotoConcern.
func (up PhotoUpload) StoredKind() string { return up.kind() }
