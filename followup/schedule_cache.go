package followup

import (
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A procedure's schedule (its timepoints) is written once, at enrolment, and never changed,
// so each process keeps the schedules it has read: the timeline page and the upload path then
// send one query fewer. Only the schedule is kept, never who may see it: every read that
// takes a schedule from here queues its procedure's scoped read (queueProcedure or the
// record's head) in the same batch, and fails as a whole when that finds nothing.
type scheduleCache struct {
	c procedureCache[[]Timepoint]
}

// maxCachedSchedules bounds the cache (a schedule is about 2 KB).
const maxCachedSchedules = 4096

// get returns a copy of procedure's schedule, which the caller may give states. The copies
// share each timepoint's Views, which nobody changes.
func (c *scheduleCache) get(procedure uuid.UUID) ([]Timepoint, bool) {
	tps, ok := c.c.load(procedure)
	return slices.Clone(tps), ok
}

func (c *scheduleCache) put(procedure uuid.UUID, tps []Timepoint) {
	if len(tps) == 0 {
		return // not this clinic's procedure, or none: nothing to keep
	}
	kept := slices.Clone(tps)
	for i := range kept { // nothing shared with the caller that read them
		kept[i].Views = slices.Clone(kept[i].Views)
	}
	c.c.store(procedure, kept, maxCachedSchedules)
}

// procedureCache keeps a value per procedure for this process, at most a given number of them;
// past that it starts over rather than track use. The values are never changed once stored:
// what they share with callers, and what callers get, is up to the type that uses it.
type procedureCache[T any] struct {
	mu sync.Mutex
	m  map[uuid.UUID]T
}

func (c *procedureCache[T]) load(procedure uuid.UUID) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[procedure]
	return v, ok
}

func (c *procedureCache[T]) store(procedure uuid.UUID, v T, limit int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= limit {
		c.m = make(map[uuid.UUID]T)
	}
	c.m[procedure] = v
}

// queueSchedule is queueTimepoints through the schedule cache: nothing is queued for a
// schedule this process has read before. The caller queues the procedure's scoped read too.
func (s *Service) queueSchedule(b *pgx.Batch, clinic, procedure uuid.UUID, dst *[]Timepoint) {
	if tps, ok := s.schedules.get(procedure); ok {
		*dst = tps
		return
	}
	b.Queue(timepointsSQL, procedure, clinic).Query(func(rows pgx.Rows) error {
		out, err := pgx.CollectRows(rows, scanTimepoint)
		if err != nil {
			return unavailable(err)
		}
		*dst = out
		s.schedules.put(procedure, out)
		return nil
	})
}
