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
	mu sync.Mutex
	m  map[uuid.UUID][]Timepoint
}

// maxCachedSchedules bounds the cache (a schedule is about 2 KB); past it the cache starts
// over rather than track use.
const maxCachedSchedules = 4096

// get returns a copy of procedure's schedule, which the caller may give states. The copies
// share each timepoint's Views, which nobody changes.
func (c *scheduleCache) get(procedure uuid.UUID) ([]Timepoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tps, ok := c.m[procedure]
	return slices.Clone(tps), ok
}

func (c *scheduleCache) put(procedure uuid.UUID, tps []Timepoint) {
	if len(tps) == 0 {
		return // not this clinic's procedure, or none: nothing to keep
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedSchedules {
		c.m = make(map[uuid.UUID][]Timepoint)
	}
	kept := slices.Clone(tps)
	for i := range kept { // nothing shared with the caller that read them
		kept[i].Views = slices.Clone(kept[i].Views)
	}
	c.m[procedure] = kept
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
