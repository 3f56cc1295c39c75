package conversation

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// The family writes with a concern photo, the clinic reads (unread once, audited), answers,
// and the family reads the answer; the photo is the procedure's, without a step.
func TestFamilyWritesClinicAnswers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{})
	ctx := testCtx(t)
	photo, err := f.concern(t, f.parent, "concern-photo-1", imagetest.PhoneJPEG(64, 48, 3, 6))
	if err != nil {
		t.Fatal(err)
	}
	if photo.Kind != followup.PhotoConcern || photo.Timepoint != "" || photo.View != "" {
		t.Fatalf("concern photo = kind %q, timepoint %q, view %q", photo.Kind, photo.Timepoint, photo.View)
	}
	const body = "The crust on her cheek is bleeding a little. 结痂出血了"
	m, created, err := f.conv.Post(ctx, f.parent, Post{Body: "  " + body + "\n", ClientID: "post-0001", PhotoIDs: []uuid.UUID{photo.ID}})
	if err != nil || !created {
		t.Fatalf("post = %v, created %v", err, created)
	}
	if m.Body != body || m.Author != AuthorFamily || !slices.Equal(m.PhotoIDs, []uuid.UUID{photo.ID}) {
		t.Errorf("posted = %+v", m)
	}
	again, created, err := f.conv.Post(ctx, f.parent, Post{Body: body, ClientID: "post-0001"})
	if err != nil || created || again.ID != m.ID {
		t.Errorf("retry = %v, created %v, id %v; want the same message", err, created, again.ID)
	}

	th, err := f.conv.Thread(ctx, f.clinician, f.proc, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(th.Messages) != 1 || !th.Messages[0].Unread || th.Messages[0].Handled {
		t.Fatalf("clinic's first view = %+v", th.Messages)
	}
	th, err = f.conv.Thread(ctx, f.admin, f.proc, Page{})
	if err != nil || th.Messages[0].Unread {
		t.Errorf("second view: unread %v, err %v", th.Messages[0].Unread, err)
	}
	if n := f.count(t, `select count(*) from audit_events where action = $1 and target_id = $2`, AuditViewed, f.proc); n != 2 {
		t.Errorf("thread views audited = %d, want 2", n)
	}

	f.clock.Add(time.Minute)
	reply, err := f.conv.Reply(ctx, f.clinician, f.proc, "Please keep it clean and dry; we will call you today.")
	if err != nil {
		t.Fatal(err)
	}
	if reply.AuthorName != "Dr Chen" {
		t.Errorf("reply author name = %q", reply.AuthorName)
	}
	th, err = f.conv.Thread(ctx, f.admin, f.proc, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(th.Messages) != 2 || th.Messages[1].ID != reply.ID || !th.Messages[0].Handled || th.Messages[0].HandledByName != "Dr Chen" {
		t.Errorf("thread after reply = %+v", th.Messages)
	}

	fam, err := f.conv.FamilyThread(ctx, f.parent, Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fam.Messages) != 2 || fam.Messages[1].Author != AuthorClinic || fam.Messages[1].AuthorName != "" || fam.Messages[1].AuthorID != nil {
		t.Errorf("family thread = %+v (the clinic's names stay out)", fam.Messages)
	}

	// The photo is on the procedure with no step, attached to the message; the family's text
	// is not in the procedure view, and no audit event holds any message text.
	v, err := f.core.ProcedureView(ctx, f.clinician, f.proc)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(v.Photos, func(p followup.Photo) bool { return p.ID == photo.ID })
	if i < 0 || v.Photos[i].MessageID == nil || *v.Photos[i].MessageID != m.ID {
		t.Errorf("procedure view's photos = %+v", v.Photos)
	}
	if len(v.Messages) != 1 || v.Messages[0].ID != reply.ID {
		t.Errorf("procedure view's messages = %+v, want the reply only", v.Messages)
	}
	if n := f.count(t, `select count(*) from audit_events where detail::text like '%crust%' or detail::text like '%clean and dry%'`); n != 0 {
		t.Errorf("%d audit events hold message text", n)
	}
}

func TestPostBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{})
	ctx := testCtx(t)
	for name, body := range map[string]string{"empty": "", "blank": " \n\t ", "too long": strings.Repeat("痒", MaxBody+1)} {
		_, _, err := f.conv.Post(ctx, f.parent, Post{Body: body})
		wantCode(t, name, err, followup.EINVALID)
	}
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: strings.Repeat("痒", MaxBody)}); err != nil {
		t.Errorf("%d characters: %v", MaxBody, err)
	}
	_, _, err := f.conv.Post(ctx, f.parent, Post{Body: "hello", ClientID: "bad id!"})
	wantCode(t, "bad message_id", err, followup.EINVALID)
	_, _, err = f.conv.Post(ctx, f.clinician, Post{Body: "hello"})
	wantCode(t, "clinician posting as family", err, followup.EFORBIDDEN)

	// Photos: a scheduled photo, another procedure's concern photo and one sent already are
	// refused, and the message with them is not stored.
	sched, err := f.photo(t, f.parent, followup.PhotoUpload{Timepoint: "day-1", View: "front", UploadID: "sched-0001"}, imagetest.JPEG(64, 48, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, proc2 := f.enrol(t, "Ming Li", "2026-05-04T10:00:00+08:00")
	theirs, err := f.concern(t, f.link(t, proc2), "their-concern", imagetest.JPEG(64, 48, 2))
	if err != nil {
		t.Fatal(err)
	}
	mine, err := f.concern(t, f.parent, "my-concern-1", imagetest.JPEG(64, 48, 4))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "first", PhotoIDs: []uuid.UUID{mine.ID}}); err != nil {
		t.Fatal(err)
	}
	before := f.count(t, `select count(*) from messages where procedure_id = $1`, f.proc)
	for name, id := range map[string]uuid.UUID{"scheduled photo": sched.ID, "another procedure's": theirs.ID, "sent already": mine.ID, "unknown": uuid.New()} {
		_, _, err := f.conv.Post(ctx, f.parent, Post{Body: "look", PhotoIDs: []uuid.UUID{id}})
		wantCode(t, name, err, followup.EINVALID)
	}
	if after := f.count(t, `select count(*) from messages where procedure_id = $1`, f.proc); after != before {
		t.Errorf("refused posts stored %d messages", after-before)
	}

	// A photo the sanitizer refuses never gets an id; the message goes without it.
	if _, err := f.concern(t, f.parent, "heic-concern", imagetest.HEIC()); err == nil {
		t.Error("a HEIC concern photo was stored")
	}
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "the photo would not send"}); err != nil {
		t.Errorf("message after a refused photo: %v", err)
	}

	// A revoked link, and a follow-up that ended.
	other := f.link(t, f.proc) // a new link revokes none unless rotated
	if err := f.core.RevokeLink(ctx, f.clinician, other.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.conv.Post(ctx, other, Post{Body: "hello"})
	wantCode(t, "revoked link", err, followup.ENOTFOUND)
	if err := f.core.SetStatus(ctx, f.clinician, f.proc, followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.conv.Post(ctx, f.parent, Post{Body: "hello"})
	wantCode(t, "closed follow-up", err, followup.ECONFLICT)
}

// A burst of 100 posts from one link at once: exactly the limit is taken, every one
// acknowledged is in the thread, the rest are refused as too many; the window moves on.
func TestPostBurstIsLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{Posts: 10, Per: 10 * time.Minute})
	ctx := testCtx(t)
	var mu sync.Mutex
	var acked []uuid.UUID
	codes := map[string]int{}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			m, _, err := f.conv.Post(ctx, f.parent, Post{Body: "help " + strings.Repeat("!", i%5+1)})
			mu.Lock()
			defer mu.Unlock()
			codes[followup.ErrorCode(err)]++
			if err == nil {
				acked = append(acked, m.ID)
			}
		})
	}
	wg.Wait()
	if codes[""] != 10 || codes[followup.ETOOMANY] != 90 {
		t.Fatalf("outcomes = %v, want 10 posted and 90 too many", codes)
	}
	th, err := f.conv.Thread(ctx, f.clinician, f.proc, Page{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []uuid.UUID
	for _, m := range th.Messages {
		stored = append(stored, m.ID)
	}
	slices.SortFunc(acked, compareUUID)
	slices.SortFunc(stored, compareUUID)
	if !slices.Equal(acked, stored) {
		t.Errorf("thread holds %d messages, %d acknowledged: not the same", len(stored), len(acked))
	}
	f.clock.Add(10*time.Minute + time.Second)
	if _, _, err := f.conv.Post(ctx, f.parent, Post{Body: "later"}); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

// Clinic scoping, roles and the family's own thread only.
func TestThreadAuthorization(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{})
	ctx := testCtx(t)
	m, _, err := f.conv.Post(ctx, f.parent, Post{Body: "question"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.conv.Thread(ctx, f.outsider, f.proc, Page{})
	wantCode(t, "other clinic reads", err, followup.ENOTFOUND)
	_, err = f.conv.Reply(ctx, f.outsider, f.proc, "hi")
	wantCode(t, "other clinic replies", err, followup.ENOTFOUND)
	_, err = f.conv.MarkHandled(ctx, f.outsider, f.proc, m.ID)
	wantCode(t, "other clinic handles", err, followup.ENOTFOUND)
	_, err = f.conv.Thread(ctx, f.research, f.proc, Page{})
	wantCode(t, "researcher reads", err, followup.EFORBIDDEN)
	_, err = f.conv.Reply(ctx, f.research, f.proc, "hi")
	wantCode(t, "researcher replies", err, followup.EFORBIDDEN)
	_, err = f.conv.MarkHandled(ctx, f.research, f.proc, m.ID)
	wantCode(t, "researcher handles", err, followup.EFORBIDDEN)
	_, err = f.conv.Thread(ctx, f.parent, f.proc, Page{})
	wantCode(t, "parent reads the clinic's thread", err, followup.EUNAUTHORIZED)
	if n := f.count(t, `select count(*) from messages where read_at is not null or handled_at is not null`); n != 0 {
		t.Errorf("refused callers marked %d messages", n)
	}

	// Another family sees its own thread, empty, and cannot handle or attach to this one.
	_, proc2 := f.enrol(t, "Ming Li", "2026-05-04T10:00:00+08:00")
	them := f.link(t, proc2)
	th, err := f.conv.FamilyThread(ctx, them, Page{})
	if err != nil || len(th.Messages) != 0 || th.ProcedureID != proc2 {
		t.Errorf("other family's thread = %+v, %v", th, err)
	}
	_, err = f.conv.MarkHandled(ctx, f.clinician, proc2, m.ID)
	wantCode(t, "handling a message under another procedure", err, followup.ENOTFOUND)
	reply, err := f.conv.Reply(ctx, f.clinician, f.proc, "answer")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.conv.MarkHandled(ctx, f.clinician, f.proc, reply.ID)
	wantCode(t, "handling the clinic's own note", err, followup.ENOTFOUND)
	got, err := f.conv.MarkHandled(ctx, f.admin, f.proc, m.ID)
	if err != nil || !got.Handled || got.HandledByName != "Dr Chen" {
		t.Errorf("handled again = %+v, %v; want the first handler kept", got, err)
	}
}

// A thread pages from its newest messages back, by keyset.
func TestThreadPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{Posts: 100})
	ctx := testCtx(t)
	var want []uuid.UUID
	for i := range 5 {
		f.clock.Add(time.Second)
		m, _, err := f.conv.Post(ctx, f.parent, Post{Body: "message " + strings.Repeat("x", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
	}
	var got []uuid.UUID
	p := Page{Limit: 2}
	for pages := 0; ; pages++ {
		th, err := f.conv.FamilyThread(ctx, f.parent, p)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		var ids []uuid.UUID
		for _, m := range th.Messages {
			ids = append(ids, m.ID)
		}
		got = append(ids, got...)
		if th.Older == "" {
			break
		}
		p.Before = th.Older
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged thread = %v, want %v", got, want)
	}
	_, err := f.conv.FamilyThread(ctx, f.parent, Page{Limit: PageMax + 1})
	wantCode(t, "limit over the max", err, followup.EINVALID)
}
