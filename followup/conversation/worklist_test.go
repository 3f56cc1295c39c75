package conversation

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/worklist"
	"github.com/dermfollow/dermfollow/imagestore/imagetest"
)

// The worklist's new-message filter lists the procedures whose family waits for an answer,
// oldest waiting first, pages by keyset, and its count follows replies, handled marks and
// closed follow-ups; a concern photo waits for review like any photo and fills no step.
func TestWorklistNewMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, RateLimit{Posts: 100})
	ctx := testCtx(t)
	procs := []uuid.UUID{f.proc}
	parents := []followup.Actor{f.parent}
	for _, name := range []string{"Ming Li", "Wei Wang", "An Zhou"} {
		_, p := f.enrol(t, name, "2026-05-03T10:00:00+08:00")
		procs = append(procs, p)
		parents = append(parents, f.link(t, p))
	}
	// Families 2, 0, 1 write in that order; family 0 twice. Family 3 stays silent.
	var first []uuid.UUID
	for _, i := range []int{2, 0, 1, 0} {
		f.clock.Add(time.Minute)
		m, _, err := f.conv.Post(ctx, parents[i], Post{Body: "a question"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = append(first, m.ID)
		}
	}
	messages := func(fl worklist.Filter) worklist.Page {
		t.Helper()
		fl.State = worklist.NewMessage
		wl, err := worklist.New(f.core, f.pool).ClinicWorklist(ctx, f.clinician, fl)
		if err != nil {
			t.Fatal(err)
		}
		return wl
	}
	ids := func(wl worklist.Page) []uuid.UUID {
		var out []uuid.UUID
		for _, it := range wl.Items {
			out = append(out, it.ID)
		}
		return out
	}
	wl := messages(worklist.Filter{})
	if want := []uuid.UUID{procs[2], procs[0], procs[1]}; !slices.Equal(ids(wl), want) || wl.Counts[worklist.NewMessage] != 3 {
		t.Fatalf("new messages = %v (count %d), want %v (3)", ids(wl), wl.Counts[worklist.NewMessage], want)
	}
	if it := wl.Items[1]; it.Unanswered != 2 || it.WaitingSince == nil || !it.Has(worklist.NewMessage) {
		t.Errorf("family 0's item = %+v", it)
	}
	// One at a time, forward and back.
	var paged []uuid.UUID
	fl := worklist.Filter{Limit: 1}
	for range 4 {
		page := messages(fl)
		paged = append(paged, ids(page)...)
		if page.Next == "" {
			break
		}
		fl.After = page.Next
	}
	if !slices.Equal(paged, ids(wl)) {
		t.Errorf("paged = %v, want %v", paged, ids(wl))
	}
	back := messages(worklist.Filter{Limit: 1, Before: messages(worklist.Filter{Limit: 1, After: messages(worklist.Filter{Limit: 1}).Next}).Prev})
	if !slices.Equal(ids(back), []uuid.UUID{procs[2]}) {
		t.Errorf("back to the first page = %v", ids(back))
	}
	// A search keeps the order and counts its own matches.
	if s := messages(worklist.Filter{Search: "ming"}); !slices.Equal(ids(s), []uuid.UUID{procs[1]}) || s.Counts[worklist.NewMessage] != 1 {
		t.Errorf("search = %v (count %d)", ids(s), s.Counts[worklist.NewMessage])
	}

	// Family 2's is answered, one of family 0's handled (the other still waits), family 1's
	// follow-up closed.
	if _, err := f.conv.Reply(ctx, f.clinician, procs[2], "answered"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.conv.MarkHandled(ctx, f.clinician, procs[0], first[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.core.SetStatus(ctx, f.clinician, procs[1], followup.StatusClosed); err != nil {
		t.Fatal(err)
	}
	wl = messages(worklist.Filter{})
	if !slices.Equal(ids(wl), []uuid.UUID{procs[0]}) || wl.Counts[worklist.NewMessage] != 1 || wl.Items[0].Unanswered != 1 {
		t.Errorf("after answers = %v (count %d)", ids(wl), wl.Counts[worklist.NewMessage])
	}
	all, err := worklist.New(f.core, f.pool).ClinicWorklist(ctx, f.clinician, worklist.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Counts[worklist.NewMessage] != 1 {
		t.Errorf("unfiltered count = %d", all.Counts[worklist.NewMessage])
	}

	// A concern photo: one more photo to review, and no step of the schedule is filled by it.
	before := f.count(t, `select count(*) from worklist_gaps where procedure_id = $1`, procs[3])
	if _, err := f.concern(t, parents[3], "worry-0001", imagetest.JPEG(64, 48, 9)); err != nil {
		t.Fatal(err)
	}
	if after := f.count(t, `select count(*) from worklist_gaps where procedure_id = $1`, procs[3]); after != before {
		t.Errorf("gaps %d -> %d after a concern photo", before, after)
	}
	rev, err := worklist.New(f.core, f.pool).ClinicWorklist(ctx, f.clinician, worklist.Filter{State: worklist.Unreviewed})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(rev), []uuid.UUID{procs[3]}) || rev.Items[0].Unreviewed != 1 {
		t.Errorf("unreviewed = %v", ids(rev))
	}
	// The counters the triggers kept are what a refill computes from the rows.
	counts := `select coalesce(sum(active), 0), coalesce(sum(unreviewed), 0), coalesce(sum(waiting), 0) from worklist_counts where clinic_id = $1`
	var kept, refilled [3]int
	if err := f.pool.QueryRow(ctx, counts, f.clinic.ID).Scan(&kept[0], &kept[1], &kept[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `select worklist_refill()`); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, counts, f.clinic.ID).Scan(&refilled[0], &refilled[1], &refilled[2]); err != nil {
		t.Fatal(err)
	}
	if kept != refilled || kept[2] != 1 {
		t.Errorf("kept counts %v, refilled %v", kept, refilled)
	}
}
