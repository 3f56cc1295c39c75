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
//
// It also turns PostgreSQL's JIT compiler off for the service's sessions (unless the URL
// sets jit itself). JIT pays off for long analytical queries; the service's are short
// index-driven ones whose cost estimates still cross jit_above_cost on a large database, and
// compiling them cost more than it saved: make bench-scale measures each background query
// with JIT on and off (docs/PERFORMANCE.md).
func ConfigurePool(pc *pgxpool.Config) {
	if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
		pc.ConnConfig.RuntimeParams["jit"] = "off"
	}
	next := pc.AfterConnect
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		if next != nil {
			return next(ctx, c)
		}
		return nil
	}
}
