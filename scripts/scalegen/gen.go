package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/dermfollow/dermfollow/protocols"
)

// Config is the shape of a generated database.
type Config struct {
	Clinics            int     // clinics in all; the first is the measured one
	Procedures         int     // procedures in all clinics
	MeasuredProcedures int     // of which in the measured clinic
	Years              float64 // procedures were performed over this many years before Now
	Batch              int     // procedures per COPY batch
	Seed               uint64
	Now                time.Time
	// Triggers loads with every trigger firing (foreign keys checked, the worklist and the
	// rows versions kept row by row): slow, for the tests that compare it with a bulk load.
	Triggers bool
}

// Sizes are the two sizes of make bench-scale.
var Sizes = map[string]Config{
	"small": {Clinics: 2, Procedures: 1100, MeasuredProcedures: 1000, Years: 2, Batch: 550},
	"large": {Clinics: 50, Procedures: 100_000, MeasuredProcedures: 8000, Years: 2, Batch: 2000},
}

// SearchTerm is the family name the generator gives every SearchEvery-th patient of a clinic
// (SearchShare of them, 3%), and no other name contains: the worklist search of the benchmark.
const (
	SearchTerm  = "ouyang"
	SearchEvery = 33
	SearchShare = 1.0 / SearchEvery
)

// The behaviour the data follow. Shares are per timepoint whose window has opened, unless
// said otherwise.
const (
	familyComplete = 0.55 // every view of a family timepoint arrives
	familyPartial  = 0.15 // some views only (the rest: none)
	clinicComplete = 0.90 // the clinic's own photos (baseline, after treatment)
	latePhoto      = 0.15 // a photo arrives after its window closed, within the grace days
	retakeShare    = 0.04 // a photo the clinician asks to be taken again
	gradedShare    = 0.65 // a timepoint with photos gets a grade
	noteShare      = 0.05 // a procedure gets a note to the family
	deliveryFails  = 0.05 // a reminder attempt the channel refuses
	repeatPatient  = 0.20 // a patient treated again, 8 to 12 weeks later
	consentShare   = 0.60
	emailShare     = 0.85 // guardians with an email address (the others a phone only)
	webhookClinics = 0.30 // clinics with an SMS gateway (and so webhook reminders)
	// After the follow-up ends a procedure is closed, withdrawn, or (clinicians being busy)
	// left active.
	closedAfter    = 0.55
	withdrawnAfter = 0.05
)

// Summary is what the benchmark needs to know about a generated database.
type Summary struct {
	Size            string           `json:"size,omitempty"`
	Seed            uint64           `json:"seed"`
	Now             time.Time        `json:"now"`
	Seconds         float64          `json:"seconds"`
	ClinicID        uuid.UUID        `json:"clinic_id"`
	ClinicName      string           `json:"clinic_name"`
	TimeZone        string           `json:"time_zone"`
	TimelineProc    uuid.UUID        `json:"timeline_procedure"`
	TimelinePhotos  int              `json:"timeline_photos"`
	Patient         uuid.UUID        `json:"patient"`
	SearchTerm      string           `json:"search_term"`
	SearchMatches   int              `json:"search_matches"`
	ClinicPatients  int              `json:"clinic_patients"`
	ClinicProcs     int              `json:"clinic_procedures"`
	ClinicActive    int              `json:"clinic_active"`
	Counts          map[string]int64 `json:"counts"`
	ReminderStatus  map[string]int64 `json:"reminder_status"`
	DatabaseBytes   int64            `json:"database_bytes"`
	AuditBytes      int64            `json:"audit_bytes"`
	AuditPhotoViews int64            `json:"audit_photo_views"`
}

// Generate fills the empty database conn is connected to and describes it.
func Generate(ctx context.Context, conn *pgx.Conn, cfg Config, progress func(string, ...any)) (Summary, error) {
	started := time.Now()
	if cfg.Clinics < 1 || cfg.MeasuredProcedures < 1 || cfg.Procedures < cfg.MeasuredProcedures || cfg.Batch < 1 {
		return Summary{}, errors.New("scalegen: a config needs clinics, procedures (measured ones included) and a batch size")
	}
	if cfg.Clinics == 1 && cfg.Procedures != cfg.MeasuredProcedures {
		return Summary{}, errors.New("scalegen: with one clinic every procedure is the measured clinic's")
	}
	pgxuuid.Register(conn.TypeMap())
	var n int
	if err := conn.QueryRow(ctx, `select count(*) from clinics`).Scan(&n); err != nil {
		return Summary{}, fmt.Errorf("scalegen: is the database migrated? %w", err)
	}
	if n > 0 {
		return Summary{}, errors.New("scalegen: the database already has clinics; give it an empty, migrated one")
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		return Summary{}, err
	}
	if !cfg.Triggers {
		if _, err := conn.Exec(ctx, `set session_replication_role = replica`); err != nil {
			return Summary{}, fmt.Errorf("scalegen: the bulk load needs a superuser: %w", err)
		}
	}
	w := &writer{conn: conn}
	sum := Summary{Seed: cfg.Seed, Now: cfg.Now, SearchTerm: SearchTerm}
	others := cfg.Procedures - cfg.MeasuredProcedures
	for i := range cfg.Clinics {
		procs := cfg.MeasuredProcedures
		if i > 0 {
			procs = others / (cfg.Clinics - 1)
			if i <= others%(cfg.Clinics-1) {
				procs++
			}
		}
		c := newClinicGen(cfg, reg, i)
		if i == 0 {
			sum.ClinicID, sum.ClinicName, sum.TimeZone = c.id, c.name, c.zone
		}
		if err := c.generate(ctx, w, procs); err != nil {
			return Summary{}, fmt.Errorf("scalegen: clinic %d: %w", i, err)
		}
		if i == 0 || (i+1)%10 == 0 || i == cfg.Clinics-1 {
			progress("clinic %d of %d written (%d procedures so far)", i+1, cfg.Clinics, w.procedures)
		}
	}
	// A few uploads in flight: their objects are noted before they are stored.
	if _, err := conn.Exec(ctx, `insert into pending_objects (object_key, created_at)
		select 'photos/' || left(md5(g::text), 2) || '/' || md5(g::text), $1::timestamptz - make_interval(secs => g * 6)
		from generate_series(1, 20) g`, cfg.Now); err != nil {
		return Summary{}, err
	}
	if !cfg.Triggers {
		// What the triggers keep, rebuilt once from the rows, planned with their sizes.
		if _, err := conn.Exec(ctx, `analyze`); err != nil {
			return Summary{}, err
		}
		if _, err := conn.Exec(ctx, `insert into procedure_row_versions (procedure_id, version)
			select id, gen_random_uuid() from procedures`); err != nil {
			return Summary{}, err
		}
		if _, err := conn.Exec(ctx, `select worklist_refill()`); err != nil {
			return Summary{}, fmt.Errorf("scalegen: worklist_refill: %w", err)
		}
		progress("worklist and rows versions rebuilt")
		if _, err := conn.Exec(ctx, `reset session_replication_role`); err != nil {
			return Summary{}, err
		}
	}
	if _, err := conn.Exec(ctx, `vacuum (analyze)`); err != nil {
		return Summary{}, err
	}
	progress("vacuumed and analyzed")
	if err := summarize(ctx, conn, &sum); err != nil {
		return Summary{}, err
	}
	sum.Seconds = time.Since(started).Seconds()
	return sum, nil
}

func summarize(ctx context.Context, conn *pgx.Conn, sum *Summary) error {
	sum.Counts = map[string]int64{}
	for _, t := range []string{"clinics", "users", "patients", "procedures", "timepoints", "parent_links", "photos",
		"assessments", "messages", "reminders", "audit_events", "exports", "pending_objects", "worklist_entries", "worklist_gaps"} {
		var n int64
		if err := conn.QueryRow(ctx, `select count(*) from `+t).Scan(&n); err != nil {
			return err
		}
		sum.Counts[t] = n
	}
	sum.ReminderStatus = map[string]int64{}
	rows, err := conn.Query(ctx, `select status, count(*) from reminders group by status`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return err
		}
		sum.ReminderStatus[st] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	err = conn.QueryRow(ctx, `select
			(select count(*) from patients where clinic_id = $1),
			(select count(*) from patients where clinic_id = $1 and lower(display_name) like '%' || $2 || '%'),
			(select count(*) from procedures where clinic_id = $1),
			(select count(*) from procedures where clinic_id = $1 and status = 'active'),
			pg_database_size(current_database()), pg_total_relation_size('audit_events'),
			(select count(*) from audit_events where action = 'photo_viewed')`, sum.ClinicID, SearchTerm).
		Scan(&sum.ClinicPatients, &sum.SearchMatches, &sum.ClinicProcs, &sum.ClinicActive, &sum.DatabaseBytes, &sum.AuditBytes,
			&sum.AuditPhotoViews)
	if err != nil {
		return err
	}
	// The timeline of the benchmark: the measured clinic's active procedure with the most
	// photos; the patient page: its patient with the most procedures.
	err = conn.QueryRow(ctx, `select pr.id, count(*)::integer from procedures pr join photos ph on ph.procedure_id = pr.id
		where pr.clinic_id = $1 and pr.status = 'active' group by pr.id order by count(*) desc, pr.id limit 1`, sum.ClinicID).
		Scan(&sum.TimelineProc, &sum.TimelinePhotos)
	if err != nil {
		return fmt.Errorf("scalegen: no timeline to measure: %w", err)
	}
	return conn.QueryRow(ctx, `select patient_id from procedures where clinic_id = $1 group by patient_id
		order by count(*) desc, patient_id limit 1`, sum.ClinicID).Scan(&sum.Patient)
}

// writer copies the rows of a batch, parents before children, and counts them.
type writer struct {
	conn       *pgx.Conn
	procedures int
}

// table is the rows of one table in a batch.
type table struct {
	name    string
	columns []string
	rows    [][]any
}

func (t *table) add(values ...any) { t.rows = append(t.rows, values) }

func (w *writer) copy(ctx context.Context, tables ...*table) error {
	for _, t := range tables {
		if len(t.rows) == 0 {
			continue
		}
		if _, err := w.conn.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", t.name, err)
		}
		t.rows = t.rows[:0]
	}
	return nil
}

// batch is one batch's rows of every table, in the order the foreign keys want.
type batch struct {
	patients, procedures, timepoints, links, photos, messages, assessments, reminders, audit table
}

func newBatch() *batch {
	return &batch{
		patients: table{name: "patients", columns: []string{"id", "clinic_id", "display_name", "birth_date", "mrn", "guardian_email",
			"guardian_phone", "preferred_language", "research_consent_at", "created_by", "created_at"}},
		procedures: table{name: "procedures", columns: []string{"id", "clinic_id", "patient_id", "kind", "body_site", "performed_at",
			"protocol_id", "protocol_version", "clinician_id", "status", "status_changed_at", "reminders_enabled", "created_at"}},
		timepoints: table{name: "timepoints", columns: []string{"procedure_id", "key", "position", "due_at", "due_on", "window_start",
			"window_end", "opens_at", "closes_at", "grace_ends_at", "views", "who", "remind"}},
		links: table{name: "parent_links", columns: []string{"id", "clinic_id", "procedure_id", "token_hash", "created_by", "created_at",
			"expires_at", "revoked_at"}},
		photos: table{name: "photos", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "view", "upload_id",
			"object_key", "content_type", "size_bytes", "sha256", "width", "height", "orientation", "captured_at", "received_at", "source",
			"parent_link_id", "uploaded_by", "removed", "thumbnails_at"}},
		messages: table{name: "messages", columns: []string{"id", "clinic_id", "procedure_id", "kind", "timepoint_key", "photo_id",
			"body", "author_id", "created_at"}},
		assessments: table{name: "assessments", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "scale_id",
			"level", "note", "grader_id", "created_at"}},
		reminders: table{name: "reminders", columns: []string{"id", "clinic_id", "procedure_id", "timepoint_key", "kind", "channel",
			"status", "attempts", "last_error", "send_after", "parent_link_id", "created_at", "updated_at", "sent_at"}},
		audit: table{name: "audit_events", columns: []string{"at", "clinic_id", "actor_kind", "actor_id", "action", "target_kind",
			"target_id", "client_addr", "detail"}},
	}
}

func (b *batch) tables() []*table {
	return []*table{&b.patients, &b.procedures, &b.timepoints, &b.links, &b.photos, &b.messages, &b.assessments, &b.reminders, &b.audit}
}

// clinicGen generates one clinic from its own random stream.
type clinicGen struct {
	cfg                  Config
	reg                  *protocols.Registry
	rng                  *rand.Rand
	index                int
	id                   uuid.UUID
	name, zone           string
	loc                  *time.Location
	clinicians           []uuid.UUID
	admin, researcher    uuid.UUID
	webhook              bool
	quietStart, quietEnd time.Duration
	seq                  int
	b                    *batch
}

var zones = []string{"Asia/Shanghai", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Singapore", "Europe/Berlin", "Europe/London",
	"America/New_York", "America/Sao_Paulo", "Australia/Sydney", "Africa/Lagos"}

func newClinicGen(cfg Config, reg *protocols.Registry, i int) *clinicGen {
	c := &clinicGen{cfg: cfg, reg: reg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)), index: i,
		quietStart: 21 * time.Hour, quietEnd: 8 * time.Hour, b: newBatch()}
	c.id = c.uuid()
	c.name = fmt.Sprintf("Scale clinic %02d", i)
	c.zone = zones[i%len(zones)]
	if i == 0 {
		c.name, c.zone = "Scale clinic 00 (measured)", "Asia/Shanghai"
	}
	c.loc, _ = time.LoadLocation(c.zone)
	c.webhook = c.rng.Float64() < webhookClinics
	return c
}

// uuid is a version 4 id from the clinic's stream.
func (c *clinicGen) uuid() uuid.UUID {
	var id uuid.UUID
	for i := 0; i < 16; i += 8 {
		v := c.rng.Uint64()
		for j := range 8 {
			id[i+j] = byte(v >> (8 * j))
		}
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func (c *clinicGen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(c.rng.Uint32())
	}
	return b
}

func (c *clinicGen) chance(p float64) bool { return c.rng.Float64() < p }

// between is a uniformly random instant in [a, b), to the microsecond.
func (c *clinicGen) between(a, b time.Time) time.Time {
	if !b.After(a) {
		return a
	}
	return a.Add(time.Duration(c.rng.Int64N(int64(b.Sub(a))))).Truncate(time.Microsecond)
}

// after is t plus an exponentially distributed delay of the given mean.
func (c *clinicGen) after(t time.Time, mean time.Duration) time.Time {
	return t.Add(time.Duration(c.rng.ExpFloat64() * float64(mean))).Truncate(time.Microsecond)
}

func (c *clinicGen) addr() netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(c.index), byte(c.rng.IntN(256)), byte(1 + c.rng.IntN(254))})
}

func (c *clinicGen) audit(at time.Time, actorKind string, actor any, action, targetKind string, target uuid.UUID, detail string) {
	var addr any
	if actorKind == "user" {
		addr = c.addr()
	}
	if detail == "" {
		detail = "{}"
	}
	c.b.audit.add(at, c.id, actorKind, actor, action, targetKind, target, addr, []byte(detail))
}

// generate writes the clinic, its staff and settings, then its procedures in batches, then
// the logins of its staff and its exports.
func (c *clinicGen) generate(ctx context.Context, w *writer, procedures int) error {
	start := c.cfg.Now.Add(-time.Duration(c.cfg.Years * 365 * 24 * float64(time.Hour)))
	opened := start.Add(-30 * 24 * time.Hour)
	if _, err := w.conn.Exec(ctx, `insert into clinics (id, name, time_zone, created_at) values ($1, $2, $3, $4)`,
		c.id, c.name, c.zone, opened); err != nil {
		return err
	}
	users := &table{name: "users", columns: []string{"id", "clinic_id", "email", "name", "role", "password_hash", "created_at"}}
	staff := func(role string, n int) uuid.UUID {
		id := c.uuid()
		// No password: the benchmark signs in as a user it adds with the CLI.
		users.add(id, c.id, fmt.Sprintf("%s%d-%02d@scale.invalid", role, n, c.index), fmt.Sprintf("Dr %s %d", role, n), role, "!", opened)
		return id
	}
	for n := range 3 {
		c.clinicians = append(c.clinicians, staff("clinician", n))
	}
	c.admin, c.researcher = staff("admin", 0), staff("researcher", 0)
	if err := w.copy(ctx, users); err != nil {
		return err
	}
	if c.webhook {
		if _, err := w.conn.Exec(ctx, `insert into reminder_settings (clinic_id, webhook_url, webhook_secret) values ($1, $2, $3)`,
			c.id, "https://sms-gateway.invalid/dermfollow", "sealed-by-scalegen"); err != nil {
			return err
		}
	}
	span := c.cfg.Now.Sub(start)
	for done := 0; done < procedures; {
		for end := min(done+c.cfg.Batch, procedures); done < end; {
			// Evenly over the span, jittered: batches stay in date order, like a real history.
			at := start.Add(time.Duration(float64(span) * (float64(done) + c.rng.Float64()) / float64(procedures)))
			n := c.patient(at, end-done)
			done += n
			w.procedures += n
		}
		if err := w.copy(ctx, c.b.tables()...); err != nil {
			return err
		}
	}
	c.logins(start)
	if err := c.exports(ctx, w, start); err != nil {
		return err
	}
	return w.copy(ctx, c.b.tables()...)
}

// Names: family names with their weights (SearchTerm among them, at SearchShare); given
// names. None contains SearchTerm but that one.
var (
	families = []struct {
		name   string
		weight float64
	}{
		{"Wang", 7}, {"Li", 7}, {"Zhang", 6}, {"Liu", 5}, {"Chen", 5}, {"Yang", 3}, {"Huang", 3}, {"Zhao", 3}, {"Wu", 3},
		{"Zhou", 3}, {"Xu", 2}, {"Sun", 2}, {"Ma", 2}, {"Zhu", 2}, {"Hu", 2}, {"Guo", 2}, {"He", 2}, {"Lin", 2}, {"Gao", 2},
		{"Luo", 2}, {"Zheng", 1.5}, {"Liang", 1.5}, {"Xie", 1}, {"Song", 1}, {"Tang", 1}, {"Han", 1}, {"Feng", 1}, {"Deng", 1},
		{"Cao", 1}, {"Peng", 1}, {"Zeng", 1}, {"Xiao", 1}, {"Tian", 1}, {"Dong", 1}, {"Pan", 1}, {"Yuan", 1}, {"Cai", 1},
		{"Jiang", 1}, {"Du", 1}, {"Ye", 1}, {"Cheng", 1}, {"Wei", 1}, {"Su", 1}, {"Lü", 0.5}, {"Smith", 0.5}, {"Garcia", 0.5},
		{"Nguyen", 0.5}, {"Kim", 0.5}, {"Müller", 0.5}, {"Sato", 0.5}, {"Okafor", 0.5}, {"Silva", 0.5},
	}
	givens = []string{"Xiaoming", "Yiran", "Zihan", "Haoran", "Yuxuan", "Muchen", "Ruoxi", "Jiayi", "Xinyi", "Zimo", "Yutong",
		"Anran", "Chenxi", "Mingze", "Sihan", "Tianyu", "Yichen", "Zhiyu", "Emma", "Noah", "Lucas", "Mia", "Sofia", "Leo",
		"Amara", "Kenji", "Lina", "Bo", "Jun", "Mei"}
	familyTotal = func() float64 {
		t := 0.0
		for _, f := range families {
			t += f.weight
		}
		return t
	}()
)

// displayName is a patient's name. Every SearchEvery-th patient of a clinic is an Ouyang, so
// that the search term matches the same share of patients at every size.
func (c *clinicGen) displayName() string {
	family := ""
	if c.seq%SearchEvery == SearchEvery/2 {
		family = "Ouyang"
	} else {
		x := c.rng.Float64() * familyTotal
		for _, f := range families {
			if x -= f.weight; x < 0 {
				family = f.name
				break
			}
		}
		if family == "" {
			family = families[0].name
		}
	}
	given := givens[c.rng.IntN(len(givens))]
	if c.chance(0.5) {
		return family + " " + given
	}
	return given + " " + family
}

// patient writes a patient with a first procedure at first and, for some, a second session
// 8 to 12 weeks later (if there is room, left, in the clinic's count); it returns how many
// procedures it wrote.
func (c *clinicGen) patient(first time.Time, left int) int {
	id := c.uuid()
	first = c.workingHours(first)
	created := first.Add(-time.Duration(1+c.rng.IntN(30)) * 24 * time.Hour)
	email, phone := "", fmt.Sprintf("+86 1%02d %04d %04d", 30+c.rng.IntN(60), c.rng.IntN(10000), c.rng.IntN(10000))
	if c.chance(emailShare) {
		email = fmt.Sprintf("guardian-%s@example.invalid", hex.EncodeToString(c.bytes(5)))
	}
	lang := "zh-CN"
	if c.chance(0.3) {
		lang = "en"
	}
	var consent any
	if c.chance(consentShare) {
		consent = created
	}
	clinician := c.clinicians[c.rng.IntN(len(c.clinicians))]
	c.b.patients.add(id, c.id, c.displayName(), time.Date(2010+c.rng.IntN(16), time.Month(1+c.rng.IntN(12)), 1+c.rng.IntN(28), 0, 0, 0, 0, time.UTC),
		fmt.Sprintf("MRN-%02d-%07d", c.index, c.seq), email, phone, lang, consent, clinician, created)
	c.seq++
	c.audit(created, "user", clinician, "patient_created", "patient", id, "")
	proto := c.protocol()
	n := 1
	c.procedure(id, proto, first, clinician, email, phone)
	if left > 1 && c.chance(repeatPatient) {
		second := c.workingHours(first.Add(time.Duration(56+c.rng.IntN(28)) * 24 * time.Hour))
		if second.Before(c.cfg.Now) {
			c.procedure(id, proto, second, clinician, email, phone)
			n++
		}
	}
	return n
}

// workingHours moves t to a weekday between 08:00 and 17:00 in the clinic's zone.
func (c *clinicGen) workingHours(t time.Time) time.Time {
	l := t.In(c.loc)
	for l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
		l = l.Add(-24 * time.Hour)
	}
	y, m, d := l.Date()
	return time.Date(y, m, d, 8+c.rng.IntN(9), c.rng.IntN(60), 0, 0, c.loc).UTC()
}

func (c *clinicGen) protocol() *protocols.Protocol {
	id := "pws-hemoporfin-pdt"
	switch x := c.rng.Float64(); {
	case x < 0.3:
		id = "pdl-vascular-laser"
	case x < 0.5:
		id = "surgical-wound"
	}
	p, err := c.reg.Latest(id)
	if err != nil {
		panic(err) // the shipped protocols are embedded
	}
	return p
}

var bodySites = []string{"face", "face", "face", "neck", "scalp", "chest", "back", "upper-arm", "forearm", "hand", "thigh", "lower-leg"}

// procGen is what a procedure's timepoints need to know about it.
type procGen struct {
	id, patient, clinician, link uuid.UUID
	performed                    time.Time
	email, phone                 string
	active                       func(t time.Time) bool // whether it is active at t
	photos                       []uuid.UUID            // all of it, for the audit of views
}

// procedure writes a procedure with its schedule, its enrolment link, its photos, grades,
// messages and reminders, and their audit events.
func (c *clinicGen) procedure(patient uuid.UUID, proto *protocols.Protocol, performed time.Time, clinician uuid.UUID, email, phone string) {
	p := &procGen{id: c.uuid(), patient: patient, clinician: clinician, performed: performed, email: email, phone: phone}
	created := performed.Add(-time.Duration(30+c.rng.IntN(180)) * time.Minute)
	dues := proto.Schedule(performed, c.loc)
	end := dues[len(dues)-1].GraceEnds
	status, changed := "active", (*time.Time)(nil)
	if end.Before(c.cfg.Now) {
		at := c.between(end, c.cfg.Now)
		switch x := c.rng.Float64(); {
		case x < closedAfter:
			status, changed = "closed", &at
		case x < closedAfter+withdrawnAfter:
			status, changed = "withdrawn", &at
		}
	} else if c.chance(0.03) {
		at := c.between(created, c.cfg.Now)
		status, changed = "withdrawn", &at
	}
	p.active = func(t time.Time) bool { return changed == nil || t.Before(*changed) }
	kind := proto.Kinds[c.rng.IntN(len(proto.Kinds))]
	c.b.procedures.add(p.id, c.id, patient, kind, bodySites[c.rng.IntN(len(bodySites))], performed, proto.ID, proto.Version,
		clinician, status, changed, true, created)
	c.audit(created, "user", clinician, "procedure_enrolled", "procedure", p.id, fmt.Sprintf(`{"protocol": %q, "version": %d}`, proto.ID, proto.Version))
	if changed != nil {
		c.audit(*changed, "user", clinician, "procedure_status", "procedure", p.id, fmt.Sprintf(`{"from": "active", "to": %q}`, status))
	}
	// The family's link, made right after enrolment, valid until a month after the last
	// grace period.
	p.link = c.uuid()
	linkAt := created.Add(time.Duration(1+c.rng.IntN(20)) * time.Minute)
	c.b.links.add(p.link, c.id, p.id, c.bytes(32), clinician, linkAt, end.Add(30*24*time.Hour), nil)
	c.audit(linkAt, "user", clinician, "link_created", "parent_link", p.link, fmt.Sprintf(`{"procedure": %q}`, p.id))
	for i, d := range dues {
		c.b.timepoints.add(p.id, d.Key, i, d.At, dateOf(d.DueOn), dateOf(d.WindowStart), dateOf(d.WindowEnd), d.Opens, d.Closes,
			d.GraceEnds, d.Views, d.Who, d.Remind)
	}
	for _, d := range dues {
		arrived := c.timepoint(p, d)
		if len(arrived) > 0 && c.chance(gradedShare) {
			at := c.after(slices.MaxFunc(arrived, time.Time.Compare), 48*time.Hour)
			if at.Before(c.cfg.Now) {
				c.grade(p, proto, d.Key, at)
			}
		}
	}
	if c.chance(noteShare) {
		at := c.between(created, minTime(end, c.cfg.Now))
		c.b.messages.add(c.uuid(), c.id, p.id, "note", nil, nil, "Please keep the area out of the sun this week.", clinician, at)
		c.audit(at, "user", clinician, "message_added", "procedure", p.id, `{"kind": "note", "timepoint": ""}`)
	}
}

func dateOf(d protocols.Date) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// timepoint writes the photos of one timepoint that arrived before now, a retake now and
// then, and its reminders; it returns when its photos arrived.
func (c *clinicGen) timepoint(p *procGen, d protocols.Due) []time.Time {
	if !d.Opens.Before(c.cfg.Now) {
		return nil // not open yet: nothing has happened
	}
	complete, partial := familyComplete, familyPartial
	if d.Who == "clinic" {
		complete, partial = clinicComplete, 0.05
	}
	var views []string
	switch x := c.rng.Float64(); {
	case x < complete:
		views = d.Views
	case x < complete+partial && len(d.Views) > 1:
		views = d.Views[:1+c.rng.IntN(len(d.Views)-1)]
	}
	var arrived []time.Time
	last := time.Time{}
	for _, v := range views {
		at := c.between(d.Opens, d.Closes)
		if c.chance(latePhoto) && d.Who == "family" {
			at = c.between(d.Closes, d.GraceEnds)
		}
		if !at.Before(c.cfg.Now) || !p.active(at) {
			continue
		}
		c.photo(p, d, v, at)
		arrived = append(arrived, at)
		if at.After(last) {
			last = at
		}
		if c.chance(retakeShare) {
			// The clinician asks for it again; the family sends a new one a day or two later.
			ask := c.after(at, 12*time.Hour)
			again := c.after(ask, 36*time.Hour)
			if again.Before(c.cfg.Now) {
				old := p.photos[len(p.photos)-1]
				c.b.messages.add(c.uuid(), c.id, p.id, "retake", d.Key, old, "The photo is blurred; please take it again in daylight.", p.clinician, ask)
				c.audit(ask, "user", p.clinician, "message_added", "procedure", p.id, fmt.Sprintf(`{"kind": "retake", "timepoint": %q}`, d.Key))
				c.photo(p, d, v, again)
				arrived = append(arrived, again)
				if again.After(last) {
					last = again
				}
			}
		}
	}
	if d.Who == "family" && d.Remind {
		complete := len(views) == len(d.Views)
		c.reminders(p, d, complete, last)
	}
	return arrived
}

// photo writes one stored photo as an upload writes it, with its audit event.
func (c *clinicGen) photo(p *procGen, d protocols.Due, view string, at time.Time) {
	id := c.uuid()
	sum := c.bytes(32)
	key := hex.EncodeToString(c.bytes(16))
	size := int64(900_000 + c.rng.IntN(3_500_000))
	source, link, uploader := "family", any(p.link), any(nil)
	actorKind, actor := "parent", any(p.link)
	if d.Who == "clinic" {
		source, link, uploader, actorKind, actor = "clinic", nil, p.clinician, "user", p.clinician
	}
	var captured any
	if c.chance(0.6) {
		captured = at.Add(-time.Duration(1+c.rng.IntN(600)) * time.Second)
	}
	w, h := 4032, 3024
	if c.chance(0.4) {
		w, h = 3024, 4032
	}
	removed := fmt.Sprintf(`[{"kind": "exif", "bytes": %d}, {"kind": "xmp", "bytes": %d}]`, 8000+c.rng.IntN(40000), 2000+c.rng.IntN(9000))
	c.b.photos.add(id, c.id, p.id, d.Key, view, hex.EncodeToString(c.bytes(12)), "photos/"+key[:2]+"/"+key, "image/jpeg", size, sum,
		w, h, 1+5*c.rng.IntN(2), captured, at, source, link, uploader, []byte(removed), at.Add(time.Duration(2+c.rng.IntN(20))*time.Second))
	c.audit(at, actorKind, actor, "photo_uploaded", "photo", id, fmt.Sprintf(
		`{"procedure": %q, "timepoint": %q, "view": %q, "bytes": %d, "removed": %s, "had_gps": %t, "had_serial": true, "had_thumbnail": true, "had_trailer": false}`,
		p.id, d.Key, view, size, removed, c.chance(0.3)))
	p.photos = append(p.photos, id)
}

// grade writes an assessment of a timepoint and the views of the photos the clinician looked
// at to make it: the timeline's latest thumbnails, and a large photo now and then.
func (c *clinicGen) grade(p *procGen, proto *protocols.Protocol, key string, at time.Time) {
	scale, err := c.reg.Scale(proto.Scale)
	if err != nil {
		panic(err)
	}
	level := scale.Levels[c.rng.IntN(len(scale.Levels))].Key
	grader := c.clinicians[c.rng.IntN(len(c.clinicians))]
	c.b.assessments.add(c.uuid(), c.id, p.id, key, scale.ID, level, "", grader, at)
	c.audit(at, "user", grader, "assessment_added", "procedure", p.id, fmt.Sprintf(`{"timepoint": %q, "scale": %q, "level": %q}`, key, scale.ID, level))
	// The timeline shows the photos so far as thumbnails, and viewing one records it: the
	// clinician looks at the latest few (about two views per photo over a follow-up).
	seen := p.photos
	if len(seen) > 5 {
		seen = seen[len(seen)-5:]
	}
	for _, ph := range seen {
		c.audit(at.Add(-time.Duration(c.rng.IntN(300))*time.Second), "user", grader, "photo_viewed", "photo", ph, `{"variant": "small"}`)
	}
	if len(seen) > 0 && c.chance(0.3) {
		c.audit(at.Add(-time.Minute), "user", grader, "photo_viewed", "photo", seen[c.rng.IntN(len(seen))], `{"variant": "large"}`)
	}
}

// reminders writes what the reminder scan and its jobs would have: a window-open reminder on
// every channel the family has, once the window opens (after the quiet hours), and a
// closing-soon one if the photos are still missing when the window is about to close; each
// sent, skipped (the photos came first) or failed, with the fresh link of each attempt.
func (c *clinicGen) reminders(p *procGen, d protocols.Due, complete bool, lastPhoto time.Time) {
	var channels []string
	if p.email != "" {
		channels = append(channels, "email")
	}
	if c.webhook && p.phone != "" {
		channels = append(channels, "webhook")
	}
	closingSoon := closingSoonAt(d, c.loc)
	for _, kind := range []string{"window-open", "closing-soon"} {
		at := c.quietNext(d.Opens.Add(time.Duration(c.rng.IntN(60)) * time.Second))
		if kind == "closing-soon" {
			at = c.quietNext(closingSoon.Add(time.Duration(c.rng.IntN(60)) * time.Second))
		}
		if kind == "window-open" && !at.Before(closingSoon) {
			continue // too late for it: the scan queues closing-soon instead
		}
		if !at.Before(d.Closes) || !at.Before(c.cfg.Now) || !p.active(at) {
			continue
		}
		if complete && !lastPhoto.After(at) {
			continue // every photo was in before the scan looked: nothing to remind of
		}
		for _, ch := range channels {
			// Most are sent within a minute; some only on a later attempt, hours on (the
			// channel was down), by when the photos may have come.
			sendAt, attempts := at.Add(time.Duration(5+c.rng.IntN(60))*time.Second), 1
			if c.chance(0.2) {
				sendAt, attempts = at.Add(time.Duration(1+c.rng.IntN(8*60))*time.Minute), 2+c.rng.IntN(3)
			}
			if !sendAt.Before(c.cfg.Now) {
				sendAt, attempts = at.Add(time.Second), 1
			}
			id := c.uuid()
			status, lastError, link, sent := "sent", "", any(nil), any(nil)
			switch {
			case complete && !lastPhoto.After(sendAt):
				status, lastError = "skipped", "the photos have arrived"
			case c.chance(deliveryFails):
				status, lastError = "failed", map[string]string{"email": "smtp: 550 mailbox unavailable", "webhook": "webhook: the gateway answered 503"}[ch]
			}
			if status != "skipped" {
				l := c.uuid()
				link = l
				var revoked any
				if status == "failed" {
					revoked = sendAt
				}
				c.b.links.add(l, c.id, p.id, c.bytes(32), nil, sendAt, d.GraceEnds.Add(30*24*time.Hour), revoked)
				c.audit(sendAt, "system", nil, "link_created", "parent_link", l, fmt.Sprintf(`{"procedure": %q, "reminder": %q}`, p.id, id))
				if status == "failed" {
					c.audit(sendAt, "system", nil, "link_revoked", "parent_link", l, fmt.Sprintf(`{"procedure": %q, "reminder": %q, "unsent": true}`, p.id, id))
				} else {
					sent = sendAt
				}
			}
			c.b.reminders.add(id, c.id, p.id, d.Key, kind, ch, status, attempts, lastError, at, link, at, sendAt, sent)
		}
	}
}

// closingSoonAt is followup's: the start of the window's last local day, or half way through
// a window of a day or less.
func closingSoonAt(d protocols.Due, loc *time.Location) time.Time {
	lastDay := d.WindowEnd.Start(loc)
	half := d.Opens.Add(d.Closes.Sub(d.Opens) / 2)
	if lastDay.After(half) {
		return lastDay
	}
	return half
}

// quietNext is t, or the end of the clinic's quiet hours t falls in.
func (c *clinicGen) quietNext(t time.Time) time.Time {
	l := t.In(c.loc)
	tod := time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute
	if tod < c.quietStart && tod >= c.quietEnd {
		return t
	}
	y, m, d := l.Date()
	end := time.Date(y, m, d, 0, 0, 0, 0, c.loc).Add(c.quietEnd)
	if !end.After(t) {
		end = time.Date(y, m, d+1, 0, 0, 0, 0, c.loc).Add(c.quietEnd)
	}
	return end
}

// logins writes a sign-in of each clinician on most working days.
func (c *clinicGen) logins(start time.Time) {
	for day := start; day.Before(c.cfg.Now); day = day.Add(24 * time.Hour) {
		if wd := day.In(c.loc).Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for _, u := range append([]uuid.UUID{c.admin}, c.clinicians...) {
			if c.chance(0.8) {
				at := c.workingHours(day)
				if at.Before(c.cfg.Now) {
					c.audit(at, "user", u, "login", "user", u, `{"method": "password"}`)
				}
			}
		}
	}
}

// exports writes about one research export a month, all long expired.
func (c *clinicGen) exports(ctx context.Context, w *writer, start time.Time) error {
	t := &table{name: "exports", columns: []string{"id", "clinic_id", "requested_by", "protocol_id", "views", "status",
		"progress_done", "progress_total", "subjects", "photos", "created_at", "started_at", "finished_at", "expires_at"}}
	for at := start.Add(20 * 24 * time.Hour); at.Before(c.cfg.Now.Add(-8 * 24 * time.Hour)); at = at.Add(time.Duration(20+c.rng.IntN(20)) * 24 * time.Hour) {
		id := c.uuid()
		n := 200 + c.rng.IntN(3000)
		t.add(id, c.id, c.researcher, "pws-hemoporfin-pdt", []string{"front", "left-oblique", "right-oblique", "close-up"}, "expired",
			n, n, n/12, n, at, at.Add(time.Second), at.Add(time.Duration(n)*30*time.Millisecond), at.Add(7*24*time.Hour))
		c.audit(at, "user", c.researcher, "export_started", "export", id, `{"protocol": "pws-hemoporfin-pdt"}`)
	}
	return w.copy(ctx, t)
}
