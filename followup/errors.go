// Package followup is the clinical core of Dermfollow: clinics, patients, procedures and their
// schedules, photos, parent links, assessments, messages and the audit log. Its PostgreSQL
// code (pgx v5) lives here behind methods that take ctx first and return errors that carry a
// code (see Error), which the web layer maps to HTTP statuses in one place.
//
// Capabilities with a life of their own are sub-packages that import this one (never the
// reverse): accounts (who signs in), reminders (the outbox, its settings and workers) and
// export (the research export). What they use of the core beyond its types and errors is
// in surface.go, named for what it does; web and cmd wire them beside the core.
package followup

import (
	"errors"
	"fmt"
)

// Error codes. The web layer maps each to one HTTP status.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	EUNAVAILABLE  = "unavailable"
	// ETOOMANY is a request over a quota (photos through one link, say): try later, or ask.
	ETOOMANY = "too_many"
)

// Error is an application error: a code and a message fit to show the user. Internal causes
// are wrapped and never shown.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with a user-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first application error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err, or a generic one for internal errors.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "An internal error occurred."
}

// StoreUnavailable is a failure of the photo store, for the client to try again (503).
func StoreUnavailable(err error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "The photo store is unavailable; please try again.", Err: err}
}
