package followup

import (
	"slices"
	"sync"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
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
	tps, ok := c.c.load(procedure, maxCachedSchedules)
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

// procedureCache keeps a value per procedure for this process, at most limit of them, the
// least recently used going first: a hospital has thousands of active procedures, and a cache
// that started over when full would miss on all of them at once. The values are never changed
// once stored: what they share with callers, and what callers get, is up to the type that
// uses it.
type procedureCache[T any] struct {
	once sync.Once
	lru  *lru.Cache[uuid.UUID, T]
}

func (c *procedureCache[T]) cache(limit int) *lru.Cache[uuid.UUID, T] {
	c.once.Do(func() { c.lru, _ = lru.New[uuid.UUID, T](limit) }) // fails only for limit <= 0
	return c.lru
}

func (c *procedureCache[T]) load(procedure uuid.UUID, limit int) (T, bool) {
	return c.cache(limit).Get(procedure)
}

func (c *procedureCache[T]) store(procedure uuid.UUID, v T, limit int) {
	c.cache(limit).Add(procedure, v)
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
