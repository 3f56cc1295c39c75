package followup

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// What the capability packages (accounts, reminders, export) use of the core, beyond its
// types and errors: a few functions named for what they do.

// Audit appends an event to the audit log in tx, the transaction of the change it records:
// the event exists if and only if the change does.
func Audit(ctx context.Context, tx pgx.Tx, a Actor, e AuditEvent) error { return audit(ctx, tx, a, e) }

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
