package web

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

type procedureListJSON struct {
	Procedures []struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		Protocol  string    `json:"protocol"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"procedures"`
	Next *string `json:"next"`
}

type patientListJSON struct {
	Patients []struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
	} `json:"patients"`
	Next *string `json:"next"`
}

// pageAll follows next from the first page of path until it is empty and returns every id,
// in order, failing on a page larger than limit, a repeated id or a missing next.
func pageAll[T any](t *testing.T, f *apiFixture, token, path string, limit int, items func(T) ([]string, *string)) []string {
	t.Helper()
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("%s: the pages never end", path)
		}
		u := path + "&limit=" + fmt.Sprint(limit)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var page T
		if code := f.call(t, "GET", u, token, nil, &page); code != 200 {
			t.Fatalf("GET %s = %d", u, code)
		}
		ids, next := items(page)
		if next == nil {
			t.Fatalf("GET %s: no next field", u)
		}
		if len(ids) > limit || (*next != "" && len(ids) != limit) {
			t.Fatalf("GET %s: %d items, next %q", u, len(ids), *next)
		}
		for _, id := range ids {
			if slices.Contains(all, id) {
				t.Fatalf("GET %s: %s again", u, id)
			}
		}
		all = append(all, ids...)
		if *next == "" {
			return all
		}
		cursor = *next
	}
}

func procedureIDs(p procedureListJSON) ([]string, *string) {
	var ids []string
	for _, x := range p.Procedures {
		ids = append(ids, x.ID)
	}
	return ids, p.Next
}

func patientIDs(p patientListJSON) ([]string, *string) {
	var ids []string
	for _, x := range p.Patients {
		ids = append(ids, x.ID)
	}
	return ids, p.Next
}

// The procedure and patient lists page by cursor through the caller's clinic only, with
// their filters, and refuse what they cannot answer.
func TestAPIListsPage(t *testing.T) {
	t.Parallel()
	f := newAPIFixture(t)
	ctx := context.Background()
	a := f.clinicianActor
	var all, surgical, closed []string
	var patients []string
	for i := range 11 {
		p, err := f.svc.CreatePatient(ctx, a, followup.NewPatient{DisplayName: fmt.Sprintf("Child %02d %s", i, []string{"Wang", "Li"}[i%2]),
			BirthDate: "2024-02-02", MRN: fmt.Sprintf("LIST-%02d", i), GuardianEmail: "g@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		patients = append(patients, p.ID.String())
		proto := []string{"surgical-wound", "pws-hemoporfin-pdt"}[i%2]
		e, err := f.svc.Enrol(ctx, a, followup.NewProcedure{PatientID: p.ID.String(), Protocol: proto, BodySite: "back",
			PerformedAt: time.Now().Add(-time.Duration(i) * 24 * time.Hour).Format(time.RFC3339)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, e.ID.String())
		if proto == "surgical-wound" {
			surgical = append(surgical, e.ID.String())
		}
		if i%4 == 0 {
			if err := f.svc.SetStatus(ctx, a, e.ID, followup.StatusClosed); err != nil {
				t.Fatal(err)
			}
			closed = append(closed, e.ID.String())
		}
	}
	// Another clinic's patient and procedure are in none of these lists.
	outsider, err := f.acc.AuthenticateToken(ctx, f.outsider, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	op, err := f.svc.CreatePatient(ctx, outsider, followup.NewPatient{DisplayName: "Child Wang Elsewhere", BirthDate: "2024-02-02", GuardianEmail: "g@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	oe, err := f.svc.Enrol(ctx, outsider, followup.NewProcedure{PatientID: op.ID.String(), Protocol: "surgical-wound", BodySite: "back",
		PerformedAt: time.Now().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}

	sameSet := func(what string, got, want []string) {
		t.Helper()
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	sameSet("all procedures", pageAll(t, f, f.clinician, "/api/v1/procedures?", 3, procedureIDs), all)
	sameSet("surgical-wound", pageAll(t, f, f.clinician, "/api/v1/procedures?protocol=surgical-wound", 2, procedureIDs), surgical)
	sameSet("closed", pageAll(t, f, f.clinician, "/api/v1/procedures?state=closed", 2, procedureIDs), closed)
	sameSet("the other clinic's", pageAll(t, f, f.outsider, "/api/v1/procedures?", 5, procedureIDs), []string{oe.ID.String()})

	// updated_since: what changed from then on, a change to a procedure's rows included.
	var first procedureListJSON
	if code := f.call(t, "GET", "/api/v1/procedures?limit=200", f.clinician, nil, &first); code != 200 || len(first.Procedures) != len(all) {
		t.Fatalf("one page of all = %d, %d items", code, len(first.Procedures))
	}
	last := first.Procedures[len(first.Procedures)-1].UpdatedAt
	for i := 1; i < len(first.Procedures); i++ {
		if first.Procedures[i].UpdatedAt.Before(first.Procedures[i-1].UpdatedAt) {
			t.Fatalf("not in the order of change: %v", first.Procedures)
		}
	}
	if _, err := f.svc.CreateLink(ctx, a, uuid.MustParse(all[1]), false); err != nil { // a new link is a change
		t.Fatal(err)
	}
	if err := f.svc.SetStatus(ctx, a, uuid.MustParse(all[3]), followup.StatusWithdrawn); err != nil {
		t.Fatal(err)
	}
	since := url.QueryEscape(last.Add(time.Microsecond).Format(time.RFC3339Nano))
	sameSet("updated since", pageAll(t, f, f.clinician, "/api/v1/procedures?updated_since="+since, 1, procedureIDs), []string{all[1], all[3]})

	sameSet("all patients", pageAll(t, f, f.clinician, "/api/v1/patients?", 4, patientIDs), patients)
	var wang []string
	for i, id := range patients {
		if i%2 == 0 {
			wang = append(wang, id)
		}
	}
	sameSet("patients named wang", pageAll(t, f, f.clinician, "/api/v1/patients?search=WANG", 2, patientIDs), wang)
	sameSet("patient by MRN", pageAll(t, f, f.clinician, "/api/v1/patients?search=LIST-07", 2, patientIDs), []string{patients[7]})
	sameSet("another clinic's patients", pageAll(t, f, f.outsider, "/api/v1/patients?search=wang", 2, patientIDs), []string{op.ID.String()})

	for _, path := range []string{"/api/v1/procedures?limit=0", "/api/v1/procedures?limit=201", "/api/v1/procedures?limit=x",
		"/api/v1/procedures?cursor=nonsense", "/api/v1/procedures?state=bogus", "/api/v1/procedures?updated_since=yesterday",
		"/api/v1/patients?limit=500", "/api/v1/patients?cursor=AAAA"} {
		if code := f.send(t, "GET", path, f.clinician, nil, false); code != 422 {
			t.Errorf("GET %s = %d, want 422", path, code)
		}
	}
	if code := f.call(t, "GET", "/api/v1/procedures?limit=200", f.clinician, nil, &first); code != 200 || len(first.Procedures) != len(all) {
		t.Errorf("the largest page = %d, %d items", code, len(first.Procedures))
	}
}
