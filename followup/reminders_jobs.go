package followup

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"weak"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Requests that queue a reminder (SendReminder) insert its River job in their own
// transaction, through an insert-only River client. River sets up a whole client for that
// (its configuration, maintenance services, elector), so each Service builds one, on its
// first use, and keeps it.
//
// The client belongs in a field of Service. Until the reminders have a package (and a type)
// of their own to hold it, it is kept here, by a weak pointer to its Service, and dropped
// when that Service is garbage collected, so that tests, which make a Service each, leave
// nothing behind.
var insertClients sync.Map // weak.Pointer[Service] -> *onceInsertClient

type onceInsertClient struct {
	once   sync.Once
	client *river.Client[pgx.Tx]
	err    error
}

// newInsertClient builds an insert-only River client over pool (a variable so that a test
// can count the clients built).
var newInsertClient = func(pool *pgxpool.Pool, log *slog.Logger) (*river.Client[pgx.Tx], error) {
	return river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: log})
}

// insertClient returns the service's insert-only River client, building it on first use.
func (s *Service) insertClient() (*river.Client[pgx.Tx], error) {
	key := weak.Make(s)
	v, ok := insertClients.Load(key)
	if !ok {
		var loaded bool
		if v, loaded = insertClients.LoadOrStore(key, new(onceInsertClient)); !loaded {
			runtime.AddCleanup(s, func(k weak.Pointer[Service]) { insertClients.Delete(k) }, key)
		}
	}
	c := v.(*onceInsertClient)
	c.once.Do(func() {
		if c.client, c.err = newInsertClient(s.pool, s.log); c.err != nil {
			c.err = fmt.Errorf("followup: river client: %w", c.err)
		}
	})
	return c.client, c.err
}
