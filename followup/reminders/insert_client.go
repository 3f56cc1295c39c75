package reminders

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// Requests that queue a reminder (Service.Send) insert its River job in their own
// transaction, through an insert-only River client. River sets up a whole client for that
// (its configuration, maintenance services, elector), so each Service builds one, on its
// first use, and keeps it (Service.inserter).
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
	c := &s.inserter
	c.once.Do(func() {
		if c.client, c.err = newInsertClient(s.pool, s.log); c.err != nil {
			c.err = fmt.Errorf("reminders: river client: %w", c.err)
		}
	})
	return c.client, c.err
}
