package followup

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
)

// ConfigurePool prepares a pool's connections for the service: ids (github.com/google/uuid)
// go to and from PostgreSQL's uuid type in binary. Without it pgx passes a uuid.UUID through
// its driver.Valuer as text, after first building an error it throws away, and reads every id
// back by formatting it as text for uuid.UUID's Scan to parse: on the timeline page that was
// a hundred ids a request.
func ConfigurePool(pc *pgxpool.Config) {
	next := pc.AfterConnect
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		if next != nil {
			return next(ctx, c)
		}
		return nil
	}
}
