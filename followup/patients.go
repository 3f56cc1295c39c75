package followup

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/protocols"
)

// Patient is a child (or adult patient) followed by a clinic.
type Patient struct {
	ID                uuid.UUID      `json:"id"`
	DisplayName       string         `json:"display_name"`
	BirthDate         protocols.Date `json:"birth_date"`
	MRN               string         `json:"mrn,omitempty"`
	GuardianEmail     string         `json:"guardian_email,omitempty"`
	GuardianPhone     string         `json:"guardian_phone,omitempty"`
	PreferredLanguage string         `json:"preferred_language"`
	ResearchConsent   bool           `json:"research_consent"`
	ResearchConsentAt *time.Time     `json:"research_consent_at,omitempty"`
	CreatedAt         time.Time      `json:"created_at"`
}

// FirstName is what the parent's page shows: the first word of the display name only.
func (p Patient) FirstName() string {
	if f := strings.Fields(p.DisplayName); len(f) > 0 {
		return f[0]
	}
	return ""
}

// NewPatient is the input of CreatePatient.
type NewPatient struct {
	DisplayName       string `json:"display_name"`
	BirthDate         string `json:"birth_date"`
	MRN               string `json:"mrn"`
	GuardianEmail     string `json:"guardian_email"`
	GuardianPhone     string `json:"guardian_phone"`
	PreferredLanguage string `json:"preferred_language"`
	ResearchConsent   bool   `json:"research_consent"`
}

// Field errors name the JSON field so a form or a client can point at it.
func invalidField(field, format string, args ...any) *Error {
	e := Errorf(EINVALID, format, args...)
	e.Message = field + ": " + e.Message
	return e
}

func (in *NewPatient) normalize(today protocols.Date) (protocols.Date, error) {
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	in.MRN = strings.TrimSpace(in.MRN)
	in.GuardianEmail = strings.ToLower(strings.TrimSpace(in.GuardianEmail))
	in.GuardianPhone = strings.TrimSpace(in.GuardianPhone)
	if in.PreferredLanguage == "" {
		in.PreferredLanguage = protocols.EN
	}
	n := utf8.RuneCountInString(in.DisplayName)
	if n == 0 || n > 200 {
		return protocols.Date{}, invalidField("display_name", "is required (at most 200 characters)")
	}
	birth, err := protocols.ParseDate(in.BirthDate)
	if err != nil {
		return protocols.Date{}, invalidField("birth_date", "must be a date as YYYY-MM-DD")
	}
	if birth.After(today) || birth.Year < 1900 {
		return protocols.Date{}, invalidField("birth_date", "must be a real date in the past")
	}
	if len(in.MRN) > 64 {
		return protocols.Date{}, invalidField("mrn", "must be at most 64 characters")
	}
	if in.GuardianEmail != "" {
		if a, err := mail.ParseAddress(in.GuardianEmail); err != nil || a.Address != in.GuardianEmail || len(in.GuardianEmail) > 254 {
			return protocols.Date{}, invalidField("guardian_email", "is not an email address")
		}
	}
	if in.GuardianPhone != "" && !validPhone(in.GuardianPhone) {
		return protocols.Date{}, invalidField("guardian_phone", "must be a phone number: digits, spaces, +, - and parentheses, at most 32")
	}
	if in.GuardianEmail == "" && in.GuardianPhone == "" {
		return protocols.Date{}, invalidField("guardian_email", "a guardian email or phone is required, so the family can be reminded")
	}
	if in.PreferredLanguage != protocols.EN && in.PreferredLanguage != protocols.ZH {
		return protocols.Date{}, invalidField("preferred_language", "must be en or zh-CN")
	}
	return birth, nil
}

func validPhone(p string) bool {
	if len(p) > 32 {
		return false
	}
	digits := 0
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '+' || r == '-' || r == '(' || r == ')':
		default:
			return false
		}
	}
	return digits >= 5
}

// CreatePatient adds a patient to the actor's clinic.
func (s *Service) CreatePatient(ctx context.Context, a Actor, in NewPatient) (Patient, error) {
	if err := a.requireClinical(); err != nil {
		return Patient{}, err
	}
	clinic, err := s.Clinic(ctx, a.ClinicID)
	if err != nil {
		return Patient{}, err
	}
	now := s.now()
	birth, err := in.normalize(protocols.DateOf(now, clinic.Location))
	if err != nil {
		return Patient{}, err
	}
	var consentAt *time.Time
	if in.ResearchConsent {
		consentAt = &now
	}
	var mrn any
	if in.MRN != "" {
		mrn = in.MRN
	}
	p := Patient{DisplayName: in.DisplayName, BirthDate: birth, MRN: in.MRN, GuardianEmail: in.GuardianEmail,
		GuardianPhone: in.GuardianPhone, PreferredLanguage: in.PreferredLanguage, ResearchConsent: in.ResearchConsent,
		ResearchConsentAt: consentAt}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `insert into patients (clinic_id, display_name, birth_date, mrn, guardian_email, guardian_phone,
				preferred_language, research_consent_at, created_by)
			values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			on conflict do nothing returning id, created_at`,
			a.ClinicID, p.DisplayName, birth.Start(time.UTC), mrn, p.GuardianEmail, p.GuardianPhone, p.PreferredLanguage,
			consentAt, a.ID).Scan(&p.ID, &p.CreatedAt)
		// A duplicate MRN is found without an error in PostgreSQL's log, which would name the
		// MRN ("Key (clinic_id, mrn)=(…)"): the only unique key a new patient can hit.
		if errors.Is(err, pgx.ErrNoRows) {
			return invalidField("mrn", "another patient of this clinic has this MRN").withCode(ECONFLICT)
		}
		if err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditPatientCreated, TargetKind: "patient", TargetID: p.ID})
	})
	if err != nil {
		return Patient{}, wrap(err, "create patient")
	}
	return p, nil
}

func (e *Error) withCode(code string) *Error { e.Code = code; return e }

// Patient returns a patient of the actor's clinic.
func (s *Service) Patient(ctx context.Context, a Actor, id uuid.UUID) (Patient, error) {
	if err := a.requireClinical(); err != nil {
		return Patient{}, err
	}
	return s.patient(ctx, a.ClinicID, id)
}

func (s *Service) patient(ctx context.Context, clinic, id uuid.UUID) (Patient, error) {
	p, err := scanPatient(s.pool.QueryRow(ctx, patientSQL+` where id = $1 and clinic_id = $2`, id, clinic))
	if err != nil {
		return Patient{}, wrap(notFound(err, "patient"), "patient %s", id)
	}
	return p, nil
}

// patientColumns are scanned by patientRow.dest.
const (
	patientColumns = `id, display_name, birth_date, mrn, guardian_email, guardian_phone, preferred_language,
		research_consent_at, created_at`
	patientSQL = `select ` + patientColumns + ` from patients`
)

// patientRow is a patients row being scanned: patient gives the Patient once it is.
type patientRow struct {
	p     Patient
	birth time.Time
	mrn   *string
}

func (r *patientRow) dest() []any {
	return []any{&r.p.ID, &r.p.DisplayName, &r.birth, &r.mrn, &r.p.GuardianEmail, &r.p.GuardianPhone,
		&r.p.PreferredLanguage, &r.p.ResearchConsentAt, &r.p.CreatedAt}
}

func (r *patientRow) patient() Patient {
	p := r.p
	p.BirthDate = protocols.DateOf(r.birth, time.UTC)
	if r.mrn != nil {
		p.MRN = *r.mrn
	}
	p.ResearchConsent = p.ResearchConsentAt != nil
	return p
}

func scanPatient(row pgx.Row) (Patient, error) {
	var r patientRow
	err := row.Scan(r.dest()...)
	return r.patient(), err
}

// PatientListFilter narrows PatientList and says which page.
type PatientListFilter struct {
	Search string // part of the name (case-insensitive), or the whole MRN; "": every patient
	Limit  int    // 0: ListPageSize; at most ProcedureListMax
	Cursor string // a PatientListPage.Next: the page after it
}

// PatientListPage is one page of the patient list; Next is "" on the last.
type PatientListPage struct {
	Patients []Patient `json:"patients"`
	Next     string    `json:"next"`
}

// PatientList pages through the patients of the actor's clinic, oldest first, by keyset on
// (created_at, id). A search reads the clinic's trigram index of names and its MRN index
// (migrations/00013_patient_search.sql).
func (s *Service) PatientList(ctx context.Context, a Actor, f PatientListFilter) (PatientListPage, error) {
	if err := a.requireClinical(); err != nil {
		return PatientListPage{}, err
	}
	limit, err := listLimit(f.Limit)
	if err != nil {
		return PatientListPage{}, err
	}
	var w where
	w.add("clinic_id = %", a.ClinicID)
	if search := strings.TrimSpace(f.Search); search != "" {
		w.add2("(lower(display_name) like % or mrn = %)", ContainsPattern(search), search)
	}
	if f.Cursor != "" {
		c, err := ParseCursor(f.Cursor)
		if err != nil {
			return PatientListPage{}, err
		}
		w.add2("(created_at, id) > (%::timestamptz, %::uuid)", c.At, c.ID)
	}
	rows, err := s.pool.Query(ctx, patientSQL+` where `+w.sql()+` order by created_at, id`+limitOf(limit+1), w.args...)
	if err != nil {
		return PatientListPage{}, wrap(unavailable(err), "list patients")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Patient, error) { return scanPatient(r) })
	if err != nil {
		return PatientListPage{}, wrap(unavailable(err), "list patients")
	}
	page := PatientListPage{Patients: list}
	if len(list) > limit {
		page.Patients = list[:limit]
		last := page.Patients[limit-1]
		page.Next = Cursor{At: last.CreatedAt, ID: last.ID}.String()
	}
	if page.Patients == nil {
		page.Patients = []Patient{}
	}
	return page, nil
}
