// Package conversation owns the two-way conversation of a procedure: the family writes to the
// clinic (through its parent link, with photos outside the schedule when something worries
// it), the clinic reads the thread, answers and marks messages handled. The clinic's notes
// and retake requests, which the core sends (followup.Service.SendMessage), appear in the same
// thread: every message lives in the core's messages table (migrations/00019_conversation.sql
// says why), and concern photos are the core's photos, stored through its upload path with
// kind followup.PhotoConcern and attached here to the message they came with.
//
// What it owns: posting (with its per-link rate limit and client_id idempotency), the thread
// as each side reads it (the clinic's reads audited and marked read), replies and the handled
// mark. From the core it uses actors, errors and the audit log (followup/surface.go); it reads
// the clinic users' names for "who answered". A message's text never goes into logs, audit
// details or job arguments: only ids and counts do.
//
//	conv, err := conversation.New(conversation.Config{Pool: pool})
//	m, created, err := conv.Post(ctx, parent, conversation.Post{Body: "The crust is bleeding", PhotoIDs: ids})
//	t, err := conv.Thread(ctx, clinician, procedureID, conversation.Page{})
package conversation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
)

// MaxBody is the longest message, in characters.
const MaxBody = 2000

// MaxPhotos is how many concern photos one message may carry.
const MaxPhotos = 10

// Audit actions of the conversation (besides the core's message_added for a clinic reply).
const (
	AuditPosted  = "message_posted"  // the family wrote
	AuditViewed  = "thread_viewed"   // a clinic user read a thread
	AuditHandled = "message_handled" // a clinic user marked a family message handled
)

// Authors of a message.
const (
	AuthorFamily = "family"
	AuthorClinic = "clinic"
)

// RateLimit bounds the messages one parent link may post: Posts in any Per. A family in
// distress may send a few in a row; a script on a leaked link may not flood the clinic.
type RateLimit struct {
	Posts int           // default 10
	Per   time.Duration // default 10 minutes
}

// Notices tells each side that the other wrote (followup/reminders implements it). Both run
// inside the transaction that adds the message, so that a message exists if and only if its
// notice does; they say only that there is something to read, never what.
type Notices interface {
	// FamilyWrote tells the clinic of a new family message (a is the parent who wrote).
	FamilyWrote(ctx context.Context, tx pgx.Tx, a followup.Actor, procedureID uuid.UUID) error
	// ClinicAnswered tells the family that the clinic answered (a is who answered).
	ClinicAnswered(ctx context.Context, tx pgx.Tx, a followup.Actor, procedureID uuid.UUID) error
}

// Config holds a Service's dependencies.
type Config struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Now is the clock (tests pass their own).
	Now   func() time.Time
	Limit RateLimit
	// Notices, when set, tells each side of new messages.
	Notices Notices
}

// Service is the conversations of every clinic. Methods take ctx first and the Actor acting.
type Service struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	now     func() time.Time
	limit   RateLimit
	notices Notices
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Pool == nil {
		return nil, errors.New("conversation: Pool is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limit.Posts <= 0 {
		cfg.Limit.Posts = 10
	}
	if cfg.Limit.Per <= 0 {
		cfg.Limit.Per = 10 * time.Minute
	}
	return &Service{pool: cfg.Pool, log: cfg.Logger, now: cfg.Now, limit: cfg.Limit, notices: cfg.Notices}, nil
}

// Message is one message of a thread, from the family or from the clinic. The fields after
// PhotoIDs are the clinic's: a family's thread leaves them empty.
type Message struct {
	ID     uuid.UUID `json:"id"`
	Author string    `json:"author"` // AuthorFamily or AuthorClinic
	// Kind is "family" for the family's messages, and "note" (a reply) or "retake" for the
	// clinic's.
	Kind      string    `json:"kind"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	// PhotoIDs are the concern photos sent with a family message, or the photo a retake
	// request asks to take again; Timepoint is that retake's step.
	PhotoIDs  []uuid.UUID `json:"photo_ids"`
	Timepoint string      `json:"timepoint,omitempty"`
	Handled   bool        `json:"handled"`

	AuthorID      *uuid.UUID `json:"author_id,omitempty"` // the clinic user who wrote it
	AuthorName    string     `json:"author_name,omitempty"`
	HandledAt     *time.Time `json:"handled_at,omitempty"`
	HandledBy     *uuid.UUID `json:"handled_by,omitempty"`
	HandledByName string     `json:"handled_by_name,omitempty"`
	// Unread is true for a family message no one at the clinic had read before this view.
	Unread bool `json:"unread,omitempty"`
}

// CheckBody trims a message's text and checks its length: 1 to MaxBody characters. (Bad
// characters are refused at the web boundary, for every field.)
func CheckBody(body string) (string, error) {
	body = strings.TrimSpace(body)
	if n := utf8.RuneCountInString(body); n == 0 || n > MaxBody {
		return "", followup.InvalidField("body", "is required (at most %d characters)", MaxBody)
	}
	return body, nil
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("conversation: "+format+": %w", append(args, err)...)
}
