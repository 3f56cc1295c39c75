package web

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/worklist"
)

var (
	worklistNextLink = regexp.MustCompile(`<a href="([^"]+)" rel="next"`)
	worklistPrevLink = regexp.MustCompile(`<a href="([^"]+)" rel="prev"`)
	worklistAllCount = regexp.MustCompile(`data-state="">All <span class="cl-count">(\d+)</span>`)
)

// The worklist page shows a page of procedures with links to the pages around it; the totals
// count every procedure, not the page's; a filter link starts from the first page.
func TestClinicWorklistPages(t *testing.T) {
	t.Parallel()
	f := newClinicFixture(t)
	ctx := clinicCtx(t)
	const extra = worklist.PageSize + 3
	for i := range extra {
		p, err := f.svc.CreatePatient(ctx, f.clinicianActor, followup.NewPatient{DisplayName: fmt.Sprintf("Paging Child %02d", i),
			BirthDate: "2024-05-05", GuardianPhone: "+86 139 1234 5678"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enrol(ctx, f.clinicianActor, followup.NewProcedure{PatientID: p.ID.String(), Protocol: "surgical-wound",
			BodySite: "back", PerformedAt: time.Now().Add(-time.Duration(i) * time.Hour).Format(time.RFC3339)}); err != nil {
			t.Fatal(err)
		}
	}
	b := f.client(t)
	b.mustLogin(f.clinician)
	rows := func(body string) int { return strings.Count(body, `class="wl-row"`) }
	first := b.get("/")
	total := worklistAllCount.FindStringSubmatch(first.body)
	if first.status != 200 || total == nil || total[1] != fmt.Sprint(extra+1) || rows(first.body) != worklist.PageSize {
		t.Fatalf("first page: %d, total %v, %d rows; want %d in all, %d on the page", first.status, total, rows(first.body), extra+1,
			worklist.PageSize)
	}
	if worklistPrevLink.MatchString(first.body) {
		t.Error("the first page links to a previous one")
	}
	next := worklistNextLink.FindStringSubmatch(first.body)
	if next == nil {
		t.Fatal("the first page has no next link")
	}
	second := b.get(html.UnescapeString(next[1]))
	if second.status != 200 || rows(second.body) != extra+1-worklist.PageSize || worklistNextLink.MatchString(second.body) {
		t.Fatalf("second page: %d, %d rows, next %v", second.status, rows(second.body), worklistNextLink.FindStringSubmatch(second.body))
	}
	if c := worklistAllCount.FindStringSubmatch(second.body); c == nil || c[1] != total[1] {
		t.Errorf("the second page's total = %v, want %s", c, total[1])
	}
	prev := worklistPrevLink.FindStringSubmatch(second.body)
	if prev == nil {
		t.Fatal("the second page has no previous link")
	}
	back := b.get(html.UnescapeString(prev[1]))
	if back.status != 200 || rows(back.body) != worklist.PageSize || worklistPrevLink.MatchString(back.body) {
		t.Errorf("back to the first page: %d, %d rows", back.status, rows(back.body))
	}
	if first.body[strings.Index(first.body, `<table`):] != back.body[strings.Index(back.body, `<table`):] {
		t.Error("the page before the second is not the first page")
	}
	// A filter link drops the cursor; a cursor that is not one is refused.
	if strings.Contains(first.body, `href="/?state=overdue&amp;q=&amp;after`) {
		t.Error("a filter link keeps the cursor")
	}
	if p := b.get("/?after=not-a-cursor"); p.status != 422 {
		t.Errorf("a bad cursor = %d, want 422", p.status)
	}
}
