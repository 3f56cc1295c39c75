package followup

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AuditClinicCreated records a new clinic.
const AuditClinicCreated = "clinic_created"

// Clinic is one clinic: every user, patient and photo belongs to exactly one.
type Clinic struct {
	ID           uuid.UUID
	Name         string
	TimeZone     string // IANA name, e.g. Asia/Shanghai
	ContactPhone string
	ContactEmail string
	Hours        string // when the clinic reads the families' messages (ContactSettings)
	// Location is TimeZone loaded; schedules and "today" are computed in it.
	Location *time.Location
}

// CreateClinic adds a clinic. timeZone is an IANA name such as "Europe/Berlin" or "UTC".
func (s *Service) CreateClinic(ctx context.Context, name, timeZone string) (Clinic, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return Clinic{}, Errorf(EINVALID, "name: is required (at most 200 characters)")
	}
	timeZone = strings.TrimSpace(timeZone)
	loc, err := loadZone(timeZone)
	if err != nil {
		return Clinic{}, err
	}
	c := Clinic{Name: name, TimeZone: timeZone, Location: loc}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into clinics (name, time_zone) values ($1, $2) returning id`, name, timeZone).Scan(&c.ID)
		if pgCode(err) == pgUniqueViolation {
			return &Error{Code: ECONFLICT, Message: "a clinic named " + strconv.Quote(name) + " already exists", Err: err}
		}
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, SystemActor(c.ID), AuditEvent{Action: AuditClinicCreated, TargetKind: "clinic", TargetID: c.ID,
			Detail: map[string]any{"time_zone": timeZone}})
	})
	if err != nil {
		return Clinic{}, wrap(err, "create clinic")
	}
	return c, nil
}

// zones memoizes time.LoadLocation, which reads and parses the zone's tzdata file on every call
// (about 80 µs): every page that shows a clinic time needs the clinic's zone. Zones are
// immutable for the life of the process, and a failed lookup is not kept.
var zones sync.Map // zone name -> *time.Location

func zone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// loadZone accepts IANA zone names only: not "" or "Local", which mean the server's zone.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, Errorf(EINVALID, "time_zone: must be an IANA time zone such as Asia/Shanghai or UTC")
	}
	loc, err := zone(name)
	if err != nil {
		return nil, &Error{Code: EINVALID, Message: "time_zone: " + strconv.Quote(name) + " is not an IANA time zone such as Asia/Shanghai or UTC", Err: err}
	}
	return loc, nil
}

// ClinicByName returns the clinic with exactly this name (surrounding spaces ignored).
func (s *Service) ClinicByName(ctx context.Context, name string) (Clinic, error) {
	c, err := s.clinicWhere(ctx, "name = $1", strings.TrimSpace(name))
	return c, wrap(err, "clinic by name")
}

// Clinic returns the clinic with the id.
func (s *Service) Clinic(ctx context.Context, id uuid.UUID) (Clinic, error) {
	c, err := s.clinicWhere(ctx, "id = $1", id)
	return c, wrap(err, "clinic %s", id)
}

func (s *Service) clinicWhere(ctx context.Context, where string, arg any) (Clinic, error) {
	c, err := scanClinic(s.pool.QueryRow(ctx, clinicSQL+where, arg))
	if err != nil {
		return Clinic{}, notFound(err, "clinic")
	}
	return c, nil
}

// clinicColumns are scanned by Clinic.dest.
const (
	clinicColumns = `id, name, time_zone, contact_phone, contact_email, clinic_hours`
	clinicSQL     = `select ` + clinicColumns + ` from clinics where `
)

func (c *Clinic) dest() []any {
	return []any{&c.ID, &c.Name, &c.TimeZone, &c.ContactPhone, &c.ContactEmail, &c.Hours}
}

// locate sets Location from TimeZone.
func (c *Clinic) locate() error {
	loc, err := zone(c.TimeZone)
	if err != nil {
		// The zone was valid when stored; a server without that tzdata entry must not guess.
		return fmt.Errorf("clinic %s: time zone %q: %w", c.ID, c.TimeZone, err)
	}
	c.Location = loc
	return nil
}

func scanClinic(row pgx.Row) (Clinic, error) {
	var c Clinic
	if err := row.Scan(c.dest()...); err != nil {
		return Clinic{}, err
	}
	return c, c.locate()
}
