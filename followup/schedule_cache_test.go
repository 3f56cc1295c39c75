package followup

import (
	"testing"

	"github.com/google/uuid"
)

// The schedule cache keeps schedules, never access: once a procedure's schedule is cached,
// another clinic still cannot read the procedure, and callers get copies to set states on.
func TestScheduleCacheKeepsScope(t *testing.T) {
	t.Parallel()
	f := newCoreFixture(t)
	ctx := testCtx(t)
	other := mustClinic(t, f.svc, "Other "+uuid.NewString()[:8], "")
	_, stranger := mustUser(t, f.svc, other.ID, RoleClinician)

	v, err := f.svc.ProcedureView(ctx, f.clinician, f.proc.ID)
	if err != nil || len(v.Timepoints) == 0 {
		t.Fatalf("ProcedureView = %d timepoints, %v", len(v.Timepoints), err)
	}
	if _, ok := f.svc.schedules.get(f.proc.ID); !ok {
		t.Fatal("the schedule was not kept")
	}
	if _, err := f.svc.ProcedureView(ctx, stranger, f.proc.ID); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's view with the schedule cached = %v, want ENOTFOUND", err)
	}
	if _, err := f.svc.ProcedureRecord(ctx, stranger, f.proc.ID); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's record with the schedule cached = %v, want ENOTFOUND", err)
	}
	if _, _, err := f.upload(t, stranger, v.Timepoints[0].Key, v.Timepoints[0].Views[0], uuid.NewString(), testJPEG(t, 1)); ErrorCode(err) != ENOTFOUND {
		t.Errorf("another clinic's upload with the schedule cached = %v, want ENOTFOUND", err)
	}
	// What a caller does to its copy stays in it.
	want := v.Timepoints[0].Key
	v.Timepoints[0].Key = "changed"
	r, err := f.svc.ProcedureRecord(ctx, f.clinician, f.proc.ID)
	if err != nil || r.Timepoints[0].Key != want || r.Timepoints[0].State == "" {
		t.Errorf("cached schedule after a caller changed its copy: %+v, %v", r.Timepoints[0], err)
	}
	// The upload path checks timepoints against the cached schedule as before.
	if _, _, err := f.upload(t, f.clinician, "no-such-step", "front", uuid.NewString(), testJPEG(t, 2)); ErrorCode(err) != EINVALID {
		t.Errorf("upload to an unknown timepoint = %v, want EINVALID", err)
	}
	if _, _, err := f.upload(t, f.clinician, want, v.Timepoints[0].Views[0], uuid.NewString(), testJPEG(t, 3)); err != nil {
		t.Errorf("upload to %s: %v", want, err)
	}
}

// TestScheduleCacheBounded: the cache keeps at most its bound, and past it forgets the least
// recently used schedules, not all of them: a schedule in use stays while a clinic's other
// procedures come and go (a cache that started over when full missed on every read at once
// past 4,096 active procedures).
func TestScheduleCacheBounded(t *testing.T) {
	t.Parallel()
	var c scheduleCache
	c.put(uuid.New(), nil)
	if n := c.c.cache(maxCachedSchedules).Len(); n != 0 {
		t.Error("an empty schedule was kept")
	}
	hot := uuid.New()
	c.put(hot, []Timepoint{{Key: "hot"}})
	var first uuid.UUID
	misses := 0
	for i := range 3 * maxCachedSchedules {
		id := uuid.New()
		if i == 0 {
			first = id
		}
		c.put(id, []Timepoint{{Key: "k"}})
		if _, ok := c.get(hot); !ok { // in use all along
			misses++
		}
	}
	if n := c.c.cache(maxCachedSchedules).Len(); n > maxCachedSchedules {
		t.Errorf("%d schedules kept, at most %d allowed", n, maxCachedSchedules)
	}
	if misses > 0 {
		t.Errorf("the schedule in use was missed %d times while others came and went", misses)
	}
	if _, ok := c.get(first); ok {
		t.Error("the least recently used schedule is still kept past the bound")
	}
}
