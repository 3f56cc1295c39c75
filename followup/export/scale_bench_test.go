package export

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/reminders"
	"github.com/dermfollow/dermfollow/followup/sweep"
	"github.com/dermfollow/dermfollow/followup/thumbnails"
	"github.com/dermfollow/dermfollow/followup/worklist"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

// BenchmarkScaleQueries explains the statements the seeded-scale benchmark follows, each
// with EXPLAIN (ANALYZE, BUFFERS), on the databases that scripts/scalegen filled at each size:
// the background work (reminder due-scan, thumbnail claim, pending-object sweep, export items)
// and, for the plans behind the page loads, the worklist's, the patient page's and the API
// lists'. The statements are the service's own: each operation runs through the service with
// a tracer on the pool that records its statements (and, for those that would write, cancels
// the first before it is sent), so a change to a query changes what is measured.
//
// Each statement is prepared as the service's statement cache prepares it and explained seven
// times (after one untimed run) with PostgreSQL's custom plan and with its generic plan (the
// one a cached statement may switch to after five runs), with JIT off (the service's setting)
// and, for the JIT decision, on; and which of the two the plan cache keeps. The runs go in turn, size after size and plan after plan, so
// that what else the machine does falls on all of them alike. Statements that lock rows run in
// a transaction that is rolled back. It also measures the audit table (bytes per row, per
// photo view and per day).
//
// make bench-scale (scripts/bench_scale.sh) runs it with DERMFOLLOW_SCALE_DATABASES ("small=URL
// large=URL") and DERMFOLLOW_SCALE_RESULTS, the folder of scalegen's summary-SIZE.json, where it
// writes queries-SIZE.json:
//
//	go test -run '^$' -bench BenchmarkScaleQueries -benchtime 1x ./followup/export/
//
// It lives with the export because it measures the core's, the reminders' and the export's
// statements, and only here can it reach the export's photo selection (exportItems) without
// exporting it; the core's and the reminders' it reaches through their exported methods.
func BenchmarkScaleQueries(b *testing.B) {
	dbs, dir := strings.Fields(os.Getenv("DERMFOLLOW_SCALE_DATABASES")), os.Getenv("DERMFOLLOW_SCALE_RESULTS")
	if len(dbs) == 0 || dir == "" {
		b.Fatal("BenchmarkScaleQueries runs under make bench-scale, which sets DERMFOLLOW_SCALE_DATABASES and DERMFOLLOW_SCALE_RESULTS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var sides []*scaleSide
	for _, spec := range dbs {
		size, url, ok := strings.Cut(spec, "=")
		if !ok {
			b.Fatalf("DERMFOLLOW_SCALE_DATABASES: %q is not SIZE=URL", spec)
		}
		side, err := newScaleSide(ctx, b, size, url, filepath.Join(dir, "summary-"+size+".json"))
		if err != nil {
			b.Fatalf("%s: %v", size, err)
		}
		defer side.close()
		sides = append(sides, side)
	}
	for b.Loop() {
		for _, side := range sides {
			side.res = scaleQueries{}
		}
		for i, o := range sides[0].ops {
			stmts := make([][]capturedStmt, len(sides))
			for k, side := range sides {
				var err error
				if stmts[k], err = side.tracer.statements(ctx, side.ops[i].abort, side.ops[i].run); err != nil {
					b.Fatalf("%s, %s: %v", side.size, o.name, err)
				}
				if len(stmts[k]) != len(stmts[0]) {
					b.Fatalf("%s: %d statements at one size, %d at another", o.name, len(stmts[0]), len(stmts[k]))
				}
			}
			for j := range stmts[0] {
				name := o.name
				if len(stmts[0]) > 1 {
					name = fmt.Sprintf("%s (%d of %d)", o.name, j+1, len(stmts[0]))
				}
				qs := make([]scaleQuery, len(sides))
				for k := range sides {
					qs[k] = scaleQuery{Name: name, What: o.what, SQL: stmts[k][j].sql}
				}
				for _, m := range []struct {
					mode string
					jit  bool
					dst  func(q *scaleQuery) *explained
				}{
					{"force_custom_plan", false, func(q *scaleQuery) *explained { return &q.Custom }},
					{"force_generic_plan", false, func(q *scaleQuery) *explained { return &q.Generic }},
					{"force_custom_plan", true, func(q *scaleQuery) *explained { return &q.JITOn }},
				} {
					runs := make([][]explained, len(sides))
					executes := make([]string, len(sides))
					for k, side := range sides {
						var err error
						if executes[k], err = prepareExplain(ctx, side.explainer, stmts[k][j]); err != nil {
							b.Fatalf("%s, %s: prepare: %v\n%s", side.size, name, err, stmts[k][j].sql)
						}
					}
					for r := range scaleRuns + 1 {
						for k, side := range sides {
							e, err := explainOnce(ctx, side.explainer, executes[k], side.ops[i].setup, m.mode, m.jit)
							if err != nil {
								b.Fatalf("%s, %s: explain: %v\n%s", side.size, name, err, stmts[k][j].sql)
							}
							if r > 0 { // the first run is untimed
								runs[k] = append(runs[k], e)
							}
						}
					}
					for k, side := range sides {
						e, err := medianExplained(ctx, side.explainer, runs[k])
						if err != nil {
							b.Fatal(err)
						}
						*m.dst(&qs[k]) = e
					}
				}
				for k, side := range sides {
					var err error
					if qs[k].Kept, err = keptPlan(ctx, side.explainer, stmts[k][j], side.ops[i].setup); err != nil {
						b.Fatalf("%s, %s: the plan kept: %v", side.size, name, err)
					}
				}
				for k, side := range sides {
					side.res.Queries = append(side.res.Queries, qs[k])
					b.Logf("%s, %s: %.2f ms custom, %.2f ms generic, %.2f ms with JIT (JIT %.1f ms); %d rows; seq scans %v", side.size,
						name, qs[k].Custom.MS, qs[k].Generic.MS, qs[k].JITOn.MS, qs[k].JITOn.JITMS, qs[k].Custom.Rows, qs[k].Custom.SeqScans)
				}
			}
		}
		for _, side := range sides {
			var err error
			if side.res.Audit, err = measureAudit(ctx, side.explainer, side.clinic); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, side := range sides {
		out, err := json.MarshalIndent(side.res, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "queries-"+side.size+".json"), append(out, '\n'), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// scaleRuns is how many timed runs each statement gets per plan and size.
const scaleRuns = 7

// scaleOp is an operation of the service whose statements the benchmark explains.
type scaleOp struct {
	name, what string
	abort      bool   // the operation would write: capture its first statement only
	setup      string // run in the explaining transaction first
	run        func(ctx context.Context) error
}

// scaleSide is one size's database: a service over it whose pool records the statements it
// sends, the operations, and a connection of its own that explains them.
type scaleSide struct {
	size      string
	pool      *pgxpool.Pool
	tracer    *stmtCapture
	explainer *pgx.Conn
	clinic    uuid.UUID
	ops       []scaleOp
	res       scaleQueries
}

func (s *scaleSide) close() {
	s.explainer.Close(context.Background())
	s.pool.Close()
}

func newScaleSide(ctx context.Context, b *testing.B, size, dbURL, summaryPath string) (*scaleSide, error) {
	var sum struct {
		ClinicID   uuid.UUID `json:"clinic_id"`
		Patient    uuid.UUID `json:"patient"`
		SearchTerm string    `json:"search_term"`
	}
	raw, err := os.ReadFile(summaryPath)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, err
	}
	side := &scaleSide{size: size, tracer: &stmtCapture{}, clinic: sum.ClinicID}
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	followup.ConfigurePool(pc)
	pc.ConnConfig.Tracer = side.tracer
	if side.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		return nil, err
	}
	if side.explainer, err = pgx.Connect(ctx, dbURL); err != nil {
		side.pool.Close()
		return nil, err
	}
	pgxuuid.Register(side.explainer.TypeMap())
	store, err := imagestore.NewLocalStore(b.TempDir())
	if err != nil {
		return nil, err
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		return nil, err
	}
	svc, err := followup.New(followup.Config{Pool: side.pool, Store: store, Protocols: reg})
	if err != nil {
		return nil, err
	}
	rem, err := reminders.New(reminders.Config{Pool: side.pool})
	if err != nil {
		return nil, err
	}
	remind, err := reminders.NewWorkers(rem, reminders.WorkerConfig{ScanInterval: -1})
	if err != nil {
		return nil, err
	}
	clinic, err := svc.Clinic(ctx, sum.ClinicID)
	if err != nil {
		return nil, err
	}
	var clinicianID, adminID uuid.UUID
	if err := side.pool.QueryRow(ctx, `select (select id from users where clinic_id = $1 and role = 'clinician' order by email limit 1),
		(select id from users where clinic_id = $1 and role = 'admin' order by email limit 1)`, clinic.ID).Scan(&clinicianID, &adminID); err != nil {
		return nil, err
	}
	clinician := followup.Actor{Kind: followup.ActorUser, ID: clinicianID, ClinicID: clinic.ID, Role: followup.RoleClinician}
	admin := followup.Actor{Kind: followup.ActorUser, ID: adminID, ClinicID: clinic.ID, Role: followup.RoleAdmin}
	now := time.Now()
	exp, err := New(Config{Core: svc, Pool: side.pool})
	if err != nil {
		return nil, err
	}
	thumbs, err := thumbnails.New(thumbnails.Config{Core: svc, Pool: side.pool})
	if err != nil {
		return nil, err
	}
	sweeper, err := sweep.New(sweep.Config{Core: svc, Pool: side.pool})
	if err != nil {
		return nil, err
	}
	job := exportJob{clinic: clinic.ID, protocol: "pws-hemoporfin-pdt", views: exp.protocolViews("pws-hemoporfin-pdt")}
	lastYear := job
	lastYear.from = protocols.DateOf(now.AddDate(-1, 0, 0), clinic.Location)
	key := make([]byte, 32)
	wl := worklist.New(svc, side.pool)
	first, err := wl.ClinicWorklist(ctx, clinician, worklist.Filter{})
	if err != nil {
		return nil, err
	}
	page := func(f worklist.Filter) func(context.Context) error {
		return func(ctx context.Context) error { _, err := wl.ClinicWorklist(ctx, clinician, f); return err }
	}
	side.ops = []scaleOp{
		{name: "reminder due-scan", what: "reminders.Workers.Scan: the open reminding windows of every clinic", abort: true,
			run: func(ctx context.Context) error { _, err := remind.Scan(ctx); return err }},
		{name: "thumbnail claim", what: "thumbnails.Thumbnailer.makeOne's claim (thumbnailQueue), with the 20 newest photos waiting", abort: true,
			setup: `update photos set thumbnails_at = null where id in (select id from photos order by received_at desc limit 20)`,
			run:   func(ctx context.Context) error { _, err := thumbs.Make(ctx, 1); return err }},
		{name: "pending-object sweep", what: "sweep.Sweeper.Pending: the notes of uploads older than the grace", abort: true,
			run: func(ctx context.Context) error { _, err := sweeper.Pending(ctx, svc.PendingGrace()); return err }},
		{name: "export items, whole protocol", what: "exportItems: every consenting PWS photo of the clinic", abort: true,
			run: func(ctx context.Context) error { _, err := exp.exportItems(ctx, job, clinic.Location, key); return err }},
		{name: "export items, last 12 months", what: "exportItems with a from date a year ago", abort: true,
			run: func(ctx context.Context) error {
				_, err := exp.exportItems(ctx, lastYear, clinic.Location, key)
				return err
			}},
		{name: "worklist", what: "ClinicWorklist, first page: the page and the counts", run: page(worklist.Filter{})},
		{name: "worklist, next page", what: "ClinicWorklist after the first page's cursor", run: page(worklist.Filter{After: first.Next})},
		{name: "worklist, overdue only", what: "ClinicWorklist of the overdue state", run: page(worklist.Filter{State: worklist.Overdue})},
		{name: "worklist search", what: "ClinicWorklist with the search term", run: page(worklist.Filter{Search: sum.SearchTerm})},
		{name: "patient page", what: "ListProcedures of one patient",
			run: func(ctx context.Context) error {
				_, err := svc.ListProcedures(ctx, clinician, followup.ProcedureFilter{PatientID: sum.Patient})
				return err
			}},
		{name: "API procedures", what: "ProcedureList, first page of 50",
			run: func(ctx context.Context) error {
				_, err := svc.ProcedureList(ctx, clinician, followup.ProcedureListFilter{})
				return err
			}},
		{name: "API procedures, active, changed this week", what: "ProcedureList with state and updated_since",
			run: func(ctx context.Context) error {
				_, err := svc.ProcedureList(ctx, clinician, followup.ProcedureListFilter{State: followup.StatusActive, UpdatedSince: now.AddDate(0, 0, -7)})
				return err
			}},
		{name: "API patients search", what: "PatientList with the search term",
			run: func(ctx context.Context) error {
				_, err := svc.PatientList(ctx, clinician, followup.PatientListFilter{Search: sum.SearchTerm})
				return err
			}},
		{name: "patient audit page", what: "PatientAuditPage, the newest 500 events of the patient",
			run: func(ctx context.Context) error {
				_, err := svc.PatientAuditPage(ctx, admin, sum.Patient, "", 0)
				return err
			}},
	}
	return side, nil
}

// scaleQueries is what BenchmarkScaleQueries writes (scripts/loadtest reads it).
type scaleQueries struct {
	Queries []scaleQuery `json:"queries"`
	Audit   auditGrowth  `json:"audit"`
}

type scaleQuery struct {
	Name    string    `json:"name"`
	What    string    `json:"what"`
	SQL     string    `json:"sql"`
	Custom  explained `json:"custom"`
	Generic explained `json:"generic"`
	JITOn   explained `json:"jit_on"` // custom plan, jit = on (PostgreSQL's default thresholds)
	// Kept is the plan PostgreSQL's plan cache keeps for the statement as the service runs it
	// (plan_cache_mode auto, after its first five runs): "generic", planned once, or "custom",
	// planned anew on every call.
	Kept string `json:"kept"`
}

// explained is the median of several EXPLAIN ANALYZE runs of one statement.
type explained struct {
	MS         float64  `json:"ms"` // planning + execution, median
	PlanMS     float64  `json:"plan_ms"`
	ExecMS     float64  `json:"exec_ms"`
	JITMS      float64  `json:"jit_ms,omitempty"` // JIT's own time, when it ran
	Rows       int64    `json:"rows"`
	SharedHit  int64    `json:"shared_hit"`
	SharedRead int64    `json:"shared_read"`
	SeqScans   []string `json:"seq_scans"` // tables read by a sequential scan
	Indexes    []string `json:"indexes"`   // indexes the plan reads
	TotalCost  float64  `json:"total_cost"`
	// SeqScanPages is the size in pages (8 KB) of each table read sequentially.
	SeqScanPages map[string]int64 `json:"seq_scan_pages"`
}

// prepareExplain prepares the statement as the service's statement cache does (the
// parameters' types inferred), with its arguments bound as literals of those types for
// explainOnce: EXECUTE takes its arguments as expressions, not as bound parameters.
func prepareExplain(ctx context.Context, conn *pgx.Conn, st capturedStmt) (string, error) {
	var prepared bool
	if err := conn.QueryRow(ctx, `select exists (select 1 from pg_prepared_statements where name = 'scale_q')`).Scan(&prepared); err != nil {
		return "", err
	}
	if prepared {
		if _, err := conn.Exec(ctx, `deallocate scale_q`); err != nil {
			return "", err
		}
	}
	if _, err := conn.Exec(ctx, `prepare scale_q as `+st.sql); err != nil {
		return "", err
	}
	var types []string
	if err := conn.QueryRow(ctx, `select parameter_types::text[] from pg_prepared_statements where name = 'scale_q'`).Scan(&types); err != nil {
		return "", err
	}
	if len(types) != len(st.args) {
		return "", fmt.Errorf("%d parameters, %d arguments", len(types), len(st.args))
	}
	literals := make([]string, len(st.args))
	for i, t := range types {
		if err := conn.QueryRow(ctx, `select quote_literal(($1::`+t+`)::text) || '::`+t+`'`, st.args[i]).Scan(&literals[i]); err != nil {
			return "", fmt.Errorf("argument %d (%s): %w", i+1, t, err)
		}
	}
	execute := `explain (analyze, buffers, format json) execute scale_q`
	if len(literals) > 0 {
		execute += `(` + strings.Join(literals, ", ") + `)`
	}
	return execute, nil
}

// planCacheRuns is how many runs PostgreSQL's plan cache plans a prepared statement custom
// before it weighs the generic plan against their average cost (plancache.c).
const planCacheRuns = 5

// keptPlan prepares the statement afresh and runs it past the plan cache's custom runs, JIT
// off, as the service's cached statement runs, and says which plan the cache then used.
func keptPlan(ctx context.Context, conn *pgx.Conn, st capturedStmt, setup string) (string, error) {
	execute, err := prepareExplain(ctx, conn, st)
	if err != nil {
		return "", err
	}
	for range planCacheRuns + 1 {
		if _, err := explainOnce(ctx, conn, execute, setup, "auto", false); err != nil {
			return "", err
		}
	}
	var generic int64
	if err := conn.QueryRow(ctx, `select generic_plans from pg_prepared_statements where name = 'scale_q'`).Scan(&generic); err != nil {
		return "", err
	}
	if generic > 0 {
		return "generic", nil
	}
	return "custom", nil
}

// explainOnce explains one execution of the prepared statement in a transaction that is
// rolled back, with the plan cache mode (plan_cache_mode) and JIT setting asked for.
func explainOnce(ctx context.Context, conn *pgx.Conn, execute, setup, mode string, jit bool) (explained, error) {
	jitSetting := "off"
	if jit {
		jitSetting = "on"
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return explained{}, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `set local plan_cache_mode = `+mode+`; set local jit = `+jitSetting); err != nil {
		return explained{}, err
	}
	if setup != "" {
		if _, err := tx.Exec(ctx, setup); err != nil {
			return explained{}, err
		}
	}
	var raw []byte
	if err := tx.QueryRow(ctx, execute).Scan(&raw); err != nil {
		return explained{}, err
	}
	return parseExplain(raw)
}

// medianExplained is the run of median time, with the size of each table it read
// sequentially.
func medianExplained(ctx context.Context, conn *pgx.Conn, runs []explained) (explained, error) {
	slices.SortFunc(runs, func(a, b explained) int { return cmp.Compare(a.MS, b.MS) })
	e := runs[len(runs)/2]
	e.SeqScanPages = map[string]int64{}
	for _, rel := range e.SeqScans {
		var pages int64
		if err := conn.QueryRow(ctx, `select relpages from pg_class where oid = $1::regclass`, rel).Scan(&pages); err != nil {
			return explained{}, err
		}
		e.SeqScanPages[rel] = pages
	}
	return e, nil
}

// parseExplain reads EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON).
func parseExplain(raw []byte) (explained, error) {
	var doc []struct {
		Plan     planNode `json:"Plan"`
		Planning float64  `json:"Planning Time"`
		Exec     float64  `json:"Execution Time"`
		JIT      *struct {
			Timing struct {
				Total float64 `json:"Total"`
			} `json:"Timing"`
		} `json:"JIT"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc) != 1 {
		return explained{}, fmt.Errorf("explain output: %v", err)
	}
	d := doc[0]
	e := explained{MS: d.Planning + d.Exec, PlanMS: d.Planning, ExecMS: d.Exec, Rows: d.Plan.ActualRows,
		SharedHit: d.Plan.SharedHit, SharedRead: d.Plan.SharedRead, TotalCost: d.Plan.TotalCost, SeqScans: []string{}, Indexes: []string{}}
	if d.JIT != nil {
		e.JITMS = d.JIT.Timing.Total
	}
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.NodeType == "Seq Scan" && !slices.Contains(e.SeqScans, n.Relation) {
			e.SeqScans = append(e.SeqScans, n.Relation)
		}
		if n.Index != "" && !slices.Contains(e.Indexes, n.Index) {
			e.Indexes = append(e.Indexes, n.Index)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(d.Plan)
	return e, nil
}

type planNode struct {
	NodeType   string     `json:"Node Type"`
	Relation   string     `json:"Relation Name"`
	Index      string     `json:"Index Name"`
	ActualRows int64      `json:"Actual Rows"`
	SharedHit  int64      `json:"Shared Hit Blocks"`
	SharedRead int64      `json:"Shared Read Blocks"`
	TotalCost  float64    `json:"Total Cost"`
	Plans      []planNode `json:"Plans"`
}

// auditGrowth is what the audit table costs at this size.
type auditGrowth struct {
	Rows            int64   `json:"rows"`
	TableBytes      int64   `json:"table_bytes"` // heap, TOAST included
	IndexBytes      int64   `json:"index_bytes"`
	BytesPerRow     float64 `json:"bytes_per_row"`       // heap and indexes
	PhotoViewBytes  float64 `json:"photo_view_bytes"`    // one photo_viewed row: its heap tuple, item pointer and index entries
	PhotoViews      int64   `json:"photo_views"`         // photo_viewed rows
	RowsPerDay      float64 `json:"rows_per_day"`        // every clinic, the last 30 days
	ClinicRowsDay   float64 `json:"clinic_rows_per_day"` // the measured clinic, the last 30 days
	Days            float64 `json:"days"`                // from the first event to the last
	DatabaseBytes   int64   `json:"database_bytes"`
	PhotoViewsShare float64 `json:"photo_views_share"` // of all rows
}

// measureAudit sizes the audit table and its growth: bytes per row (heap and indexes), the
// bytes one photo view adds, and rows per day over the last 30 days.
func measureAudit(ctx context.Context, conn *pgx.Conn, clinic uuid.UUID) (auditGrowth, error) {
	var a auditGrowth
	err := conn.QueryRow(ctx, `select count(*), pg_table_size('audit_events'), pg_indexes_size('audit_events'),
			count(*) filter (where action = 'photo_viewed'),
			count(*) filter (where at >= (select max(at) from audit_events) - interval '30 days') / 30.0,
			count(*) filter (where at >= (select max(at) from audit_events) - interval '30 days' and clinic_id = $1) / 30.0,
			extract(epoch from max(at) - min(at)) / 86400, pg_database_size(current_database())
		from audit_events`, clinic).Scan(&a.Rows, &a.TableBytes, &a.IndexBytes, &a.PhotoViews, &a.RowsPerDay, &a.ClinicRowsDay,
		&a.Days, &a.DatabaseBytes)
	if err != nil {
		return a, err
	}
	if a.Rows == 0 {
		return a, errors.New("the audit table is empty")
	}
	// A photo view's row: its tuple and its item pointer, with its share of the heap's page
	// headers and free space (the table's size over the sum of its tuples), plus its entries
	// in the indexes, (clinic_id, at) and target_id (the indexes' size per row).
	var tupleSum float64
	var viewTuple *float64
	if err := conn.QueryRow(ctx, `select sum(pg_column_size(e.*) + 4)::float8,
			(avg(pg_column_size(e.*) + 4) filter (where action = 'photo_viewed'))::float8
		from audit_events e`).Scan(&tupleSum, &viewTuple); err != nil {
		return a, err
	}
	if viewTuple != nil && tupleSum > 0 {
		a.PhotoViewBytes = *viewTuple*float64(a.TableBytes)/tupleSum + float64(a.IndexBytes)/float64(a.Rows)
	}
	a.BytesPerRow = float64(a.TableBytes+a.IndexBytes) / float64(a.Rows)
	a.PhotoViewsShare = float64(a.PhotoViews) / float64(a.Rows)
	return a, nil
}

// stmtCapture is a pgx tracer that records the statements an operation sends and, for one
// that would write, cancels the first before it is sent.
type stmtCapture struct {
	mu     sync.Mutex
	armed  bool
	abort  bool
	cancel context.CancelFunc
	got    []capturedStmt
}

type capturedStmt struct {
	sql  string
	args []any
}

// statements runs fn with the tracer armed and returns what it sent (with abort, the first
// statement only, which is not run: fn's error is then expected and dropped).
func (c *stmtCapture) statements(ctx context.Context, abort bool, fn func(context.Context) error) ([]capturedStmt, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.armed, c.abort, c.cancel, c.got = true, abort, cancel, nil
	c.mu.Unlock()
	err := fn(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed = false
	if abort {
		err = nil
	}
	if len(c.got) == 0 && err == nil {
		err = errors.New("no statement was sent")
	}
	return c.got, err
}

func (c *stmtCapture) record(sql string, args []any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return
	}
	switch strings.ToLower(strings.TrimSpace(sql)) {
	case "begin", "commit", "rollback", "begin isolation level read committed":
		return
	}
	c.got = append(c.got, capturedStmt{sql, args})
	if c.abort {
		c.armed = false
		c.cancel()
	}
}

func (c *stmtCapture) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.record(d.SQL, d.Args)
	return ctx
}

func (c *stmtCapture) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *stmtCapture) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *stmtCapture) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.record(d.SQL, d.Args)
}

func (c *stmtCapture) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
