package conversation

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
)

// A clinic's view of a page of the thread marks the family's unread messages on that page
// read by the viewer, and only those, and writes one audit event with the page's counts.
func TestThreadMarksPageReadAndAudits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{Posts: 100})
	ctx := testCtx(t)
	var posted []uuid.UUID
	for _, body := range []string{"first", "second", "third"} {
		f.clock.Add(time.Second)
		m, _, err := f.conv.Post(ctx, f.parent, Post{Body: body})
		if err != nil {
			t.Fatal(err)
		}
		posted = append(posted, m.ID)
	}
	f.clock.Add(time.Minute)
	viewedAt := f.clock.Now()
	viewer := f.clinician
	viewer.Addr = netip.MustParseAddr("192.0.2.7")

	th, err := f.conv.Thread(ctx, viewer, f.proc, Page{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := threadIDs(th); !slices.Equal(got, posted[1:]) || th.Older == "" {
		t.Fatalf("first page = %v (older %q), want %v and a cursor", got, th.Older, posted[1:])
	}
	for _, m := range th.Messages {
		if !m.Unread {
			t.Errorf("message %s not unread on its first view", m.ID)
		}
	}
	f.wantRead(t, posted[0], uuid.Nil, time.Time{})
	f.wantRead(t, posted[1], viewer.ID, viewedAt)
	f.wantRead(t, posted[2], viewer.ID, viewedAt)
	f.wantViewAudit(t, viewer, `{"messages": 2, "unread": 2}`, "192.0.2.7")

	older, err := f.conv.Thread(ctx, f.admin, f.proc, Page{Limit: 2, Before: th.Older})
	if err != nil {
		t.Fatal(err)
	}
	if got := threadIDs(older); !slices.Equal(got, posted[:1]) || older.Older != "" || !older.Messages[0].Unread {
		t.Fatalf("older page = %+v, want the first message, unread, and no cursor", older)
	}
	f.wantRead(t, posted[0], f.admin.ID, viewedAt)
	f.wantViewAudit(t, f.admin, `{"messages": 1, "unread": 1}`, "")

	again, err := f.conv.Thread(ctx, f.clinician, f.proc, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Messages) != 3 || slices.ContainsFunc(again.Messages, func(m Message) bool { return m.Unread }) {
		t.Errorf("third view = %+v, want three read messages", again.Messages)
	}
	f.wantViewAudit(t, f.clinician, `{"messages": 3, "unread": 0}`, "")
	f.wantRead(t, posted[1], viewer.ID, viewedAt) // the first reader stays
}

// A procedure without messages has an empty thread, and its view is audited; another
// clinic's procedure, or an unknown one, is not found and its view writes nothing.
func TestThreadEmptyAndOutOfScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{})
	ctx := testCtx(t)
	th, err := f.conv.Thread(ctx, f.clinician, f.proc, Page{})
	if err != nil || th.Messages == nil || len(th.Messages) != 0 || th.Older != "" || th.ProcedureID != f.proc {
		t.Fatalf("empty thread = %+v, %v", th, err)
	}
	f.wantViewAudit(t, f.clinician, `{"messages": 0, "unread": 0}`, "")

	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "question"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.conv.Thread(ctx, f.outsider, f.proc, Page{})
	wantCode(t, "other clinic reads", err, followup.ENOTFOUND)
	_, err = f.conv.Thread(ctx, f.clinician, uuid.New(), Page{})
	wantCode(t, "unknown procedure", err, followup.ENOTFOUND)
	_, err = f.conv.Thread(ctx, f.clinician, f.proc, Page{Limit: PageMax + 1})
	wantCode(t, "limit over the max", err, followup.EINVALID)
	if n := f.count(t, `select count(*) from audit_events where action = $1`, AuditViewed); n != 1 {
		t.Errorf("thread views audited = %d, want only the clinician's first", n)
	}
	if n := f.count(t, `select count(*) from messages where read_at is not null`); n != 0 {
		t.Errorf("refused views marked %d messages read", n)
	}
}

// The timeline page reads the thread on every view: one statement, with no transaction
// around it, whether or not it marks messages read.
func TestThreadIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{})
	ctx := testCtx(t)
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "question"}); err != nil {
		t.Fatal(err)
	}
	pc := f.pool.Config().Copy()
	tracer := &statementCount{}
	pc.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	conv, err := New(Config{Pool: pool, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(ctx); err != nil { // connect before counting
		t.Fatal(err)
	}
	for i, what := range []string{"a view that marks a message read", "a view with nothing unread"} {
		tracer.n.Store(0)
		th, err := conv.Thread(ctx, f.clinician, f.proc, Page{})
		if err != nil || len(th.Messages) != 1 || th.Messages[0].Unread != (i == 0) {
			t.Fatalf("%s: %+v, %v", what, th.Messages, err)
		}
		if n := tracer.n.Load(); n != 1 {
			t.Errorf("%s: %d round trips, want 1", what, n)
		}
	}

	// Queued with a page's other reads (followup.Service.ProcedureRecordWith), it adds none,
	// and writes its audit event as on its own.
	f.clock.Add(time.Second) // after the first message, which the views above marked read
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "another"}); err != nil {
		t.Fatal(err)
	}
	var th Thread
	var other int
	b := &pgx.Batch{}
	b.Queue(`select count(*) from procedures where id = $1 and clinic_id = $2`, f.proc, f.clinician.ClinicID).QueryRow(func(r pgx.Row) error {
		return r.Scan(&other)
	})
	if err := conv.QueueThread(b, f.clinician, f.proc, Page{}, &th); err != nil {
		t.Fatal(err)
	}
	tracer.n.Store(0)
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if n := tracer.n.Load(); n != 1 || other != 1 || len(th.Messages) != 2 || !th.Messages[1].Unread || th.Messages[0].Unread {
		t.Errorf("batched: %d round trips, other read %d, thread %+v", n, other, th.Messages)
	}
	f.wantViewAudit(t, f.clinician, `{"messages": 2, "unread": 1}`, "")
	bad := &pgx.Batch{}
	wantCode(t, "a bad page queued", conv.QueueThread(bad, f.clinician, f.proc, Page{Limit: -1}, &th), followup.EINVALID)
	if bad.Len() != 0 {
		t.Errorf("a refused page queued %d statements", bad.Len())
	}
}

// statementCount counts the statements and batches a pool sends: its round trips.
type statementCount struct{ n atomic.Int64 }

func (c *statementCount) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCount) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCount) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCount) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *statementCount) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func threadIDs(th Thread) []uuid.UUID {
	ids := make([]uuid.UUID, len(th.Messages))
	for i, m := range th.Messages {
		ids[i] = m.ID
	}
	return ids
}

// wantRead checks who marked a message read and when (uuid.Nil: nobody yet).
func (f *fixture) wantRead(t *testing.T, id, by uuid.UUID, at time.Time) {
	t.Helper()
	var readBy *uuid.UUID
	var readAt *time.Time
	if err := f.pool.QueryRow(testCtx(t), `select read_by, read_at from messages where id = $1`, id).Scan(&readBy, &readAt); err != nil {
		t.Fatal(err)
	}
	switch {
	case by == uuid.Nil && (readBy != nil || readAt != nil):
		t.Errorf("message %s read by %v at %v, want unread", id, readBy, readAt)
	case by != uuid.Nil && (readBy == nil || *readBy != by || readAt == nil || !readAt.Equal(at)):
		t.Errorf("message %s read by %v at %v, want %s at %s", id, readBy, readAt, by, at)
	}
}

// wantViewAudit checks the newest audit event: a's view of the fixture's procedure's thread
// with the detail (as jsonb) and the client address ("" for none).
func (f *fixture) wantViewAudit(t *testing.T, a followup.Actor, detail, addr string) {
	t.Helper()
	var clinic, actor, target uuid.UUID
	var kind, action, targetKind, gotDetail, gotAddr string
	var sameDetail bool
	err := f.pool.QueryRow(testCtx(t), `select clinic_id, actor_kind, actor_id, action, target_kind, target_id, detail::text,
			detail = $1::jsonb, coalesce(host(client_addr), '')
		from audit_events order by id desc limit 1`, detail).Scan(&clinic, &kind, &actor, &action, &targetKind, &target, &gotDetail,
		&sameDetail, &gotAddr)
	if err != nil {
		t.Fatal(err)
	}
	if clinic != a.ClinicID || kind != followup.ActorUser || actor != a.ID || action != AuditViewed || targetKind != "procedure" ||
		target != f.proc || !sameDetail || gotAddr != addr {
		t.Errorf("audit event = clinic %s, %s %s, %s of %s %s, detail %s, from %q; want %s's %s of procedure %s, detail %s, from %q",
			clinic, kind, actor, action, targetKind, target, gotDetail, gotAddr, a.ID, AuditViewed, f.proc, detail, addr)
	}
}
