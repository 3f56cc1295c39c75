package followup

import (
	"context"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AuditContactSettings records a change of a clinic's contact settings.
const AuditContactSettings = "contact_settings_changed"

// MaxClinicHours is the longest clinic hours text, in characters: a line such as
// "Mon-Fri 8:00-17:00, Sat 9:00-12:00", not a page.
const MaxClinicHours = 120

// ContactSettings are what an admin sets of how the clinic is reached: where the notices of
// new family messages go (MessageInbox, an email address), the phone number for anything
// urgent and the hours in which messages are read, both shown to families. Empty: none.
type ContactSettings struct {
	MessageInbox string `json:"message_inbox"`
	Phone        string `json:"contact_phone"`
	Hours        string `json:"clinic_hours"`
}

// ContactSettings returns the contact settings of the actor's clinic, for its clinicians and
// admins.
func (s *Service) ContactSettings(ctx context.Context, a Actor) (ContactSettings, error) {
	if err := a.requireClinical(); err != nil {
		return ContactSettings{}, err
	}
	var out ContactSettings
	err := s.pool.QueryRow(ctx, `select message_inbox, contact_phone, clinic_hours from clinics where id = $1`, a.ClinicID).
		Scan(&out.MessageInbox, &out.Phone, &out.Hours)
	if err != nil {
		return ContactSettings{}, wrap(notFound(err, "clinic"), "contact settings")
	}
	return out, nil
}

// normalize trims the settings and checks them, naming the field that is wrong.
func (in *ContactSettings) normalize() error {
	in.MessageInbox = strings.ToLower(strings.TrimSpace(in.MessageInbox))
	in.Phone = strings.TrimSpace(in.Phone)
	in.Hours = strings.TrimSpace(in.Hours)
	if in.MessageInbox != "" {
		if a, err := mail.ParseAddress(in.MessageInbox); err != nil || a.Address != in.MessageInbox || len(in.MessageInbox) > 254 {
			return invalidField("message_inbox", "is not an email address")
		}
	}
	if in.Phone != "" && !validPhone(in.Phone) {
		return invalidField("contact_phone", "must be a phone number: digits, spaces, +, - and parentheses, at most 32")
	}
	if utf8.RuneCountInString(in.Hours) > MaxClinicHours {
		return invalidField("clinic_hours", "must be at most %d characters", MaxClinicHours)
	}
	if strings.ContainsFunc(in.Hours, unicode.IsControl) || !utf8.ValidString(in.Hours) {
		return invalidField("clinic_hours", "must be one line of text")
	}
	return nil
}

// SetContactSettings changes the contact settings of the actor's clinic (its admins, or the
// system acting for it: the demo's seed); the change is audited (which fields changed, never
// their values: the phone and the inbox are the clinic's, but the audit log is read by more
// people than the settings page).
func (s *Service) SetContactSettings(ctx context.Context, a Actor, in ContactSettings) (ContactSettings, error) {
	if !a.IsUser(RoleAdmin) && (a.Kind != ActorSystem || a.ClinicID == uuid.Nil) {
		if a.Kind != ActorUser {
			return ContactSettings{}, Errorf(EUNAUTHORIZED, "sign in first")
		}
		return ContactSettings{}, Errorf(EFORBIDDEN, "only an admin can change the clinic's contact settings")
	}
	if err := in.normalize(); err != nil {
		return ContactSettings{}, err
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var old ContactSettings
		err := tx.QueryRow(ctx, `select message_inbox, contact_phone, clinic_hours from clinics where id = $1 for update`, a.ClinicID).
			Scan(&old.MessageInbox, &old.Phone, &old.Hours)
		if err != nil {
			return notFound(err, "clinic")
		}
		if old == in {
			return nil
		}
		if _, err := tx.Exec(ctx, `update clinics set message_inbox = $2, contact_phone = $3, clinic_hours = $4 where id = $1`,
			a.ClinicID, in.MessageInbox, in.Phone, in.Hours); err != nil {
			return unavailable(err)
		}
		return audit(ctx, tx, a, AuditEvent{Action: AuditContactSettings, TargetKind: "clinic", TargetID: a.ClinicID,
			Detail: map[string]any{"message_inbox": old.MessageInbox != in.MessageInbox, "contact_phone": old.Phone != in.Phone,
				"clinic_hours": old.Hours != in.Hours}})
	})
	if err != nil {
		return ContactSettings{}, wrap(err, "contact settings")
	}
	return in, nil
}
