package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/protocols"
)

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
