package web

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// BenchmarkTimelineRender is the CPU of the timeline page alone, from the loaded record to the
// written bytes (the page data and the component), into a reused buffer as render does. The
// record is the fixture's procedure with every view of every timepoint photographed, a grade
// and a message: the same input as BenchmarkTimelinePage. Run the same benchmark at an older
// commit to compare (docs/PERFORMANCE.md).
func BenchmarkTimelineRender(b *testing.B) {
	f := newClinicFixture(b)
	ctx := clinicCtx(b)
	r := timelineBenchRecord(b, f, ctx)
	var buf bytes.Buffer
	info := pageInfo{Lang: "en", Title: r.Patient.DisplayName, User: f.clinicianActor, CSRF: "csrf-token-of-the-session"}
	pctx := withPage(ctx, info)
	for b.Loop() {
		buf.Reset()
		if err := timelinePage(newTimelineData(newProcedurePage(r, f.svc.Protocols()))).Render(pctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "page-bytes")
}

// timelineBenchRecord photographs every view of every timepoint of the fixture's procedure and
// loads its record.
func timelineBenchRecord(b *testing.B, f *clinicFixture, ctx context.Context) followup.ProcedureRecord {
	b.Helper()
	id := uuid.MustParse(f.procedureID)
	v, err := f.svc.ProcedureView(ctx, f.clinicianActor, id)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, tp := range v.Timepoints {
		for _, view := range tp.Views {
			n++
			f.addPhoto(b, tp.Key, view, byte(n))
		}
	}
	r, err := f.svc.ProcedureRecord(ctx, f.clinicianActor, id)
	if err != nil {
		b.Fatal(err)
	}
	return r
}
