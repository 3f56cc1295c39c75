package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

// BenchmarkTimelinePage measures the clinician's timeline page of a procedure with every view
// of every timepoint photographed (the page with a latency target; `make bench` measures
// its latency under load through the real binary): "page" is the whole request through the
// server's handler stack with a signed-in session (no network), "render" the template alone.
func BenchmarkTimelinePage(b *testing.B) {
	f := newClinicFixture(b)
	ctx := clinicCtx(b)
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
	br := f.client(b)
	br.mustLogin(f.clinician)
	cookie := br.sessionCookie()
	path := "/procedures/" + f.procedureID

	b.Run("page", func(b *testing.B) {
		var size int
		defer reportCPU(b)()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("GET %s = %d", path, rec.Code)
			}
			size = rec.Body.Len()
		}
		b.ReportMetric(float64(size), "page-bytes")
	})
	b.Run("render", func(b *testing.B) {
		r, err := f.svc.ProcedureRecord(ctx, f.clinicianActor, id)
		if err != nil {
			b.Fatal(err)
		}
		info := pageInfo{Lang: "en", Title: "t", User: f.clinicianActor, CSRF: "csrf"}
		ctx := withPage(ctx, info)
		defer reportCPU(b)()
		for b.Loop() {
			if err := timelinePage(newTimelineData(newProcedurePage(r, f.svc.Protocols()))).Render(ctx, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reportCPU reports the process's CPU time per op from now to the call of the function it
// returns: the handler's, pgx's and the garbage collector's work, as `make bench` counts the
// server's from /proc, without PostgreSQL's.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
