package reminders

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/notify"
)

// Settings are a clinic's reminder channels and quiet hours.
type Settings struct {
	// WebhookURL and WebhookSecret configure an SMS or messaging gateway; both empty: none.
	WebhookURL    string `json:"webhook_url"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// QuietStart and QuietEnd are local times "HH:MM"; no messages from start to end.
	QuietStart string `json:"quiet_start"`
	QuietEnd   string `json:"quiet_end"`
	// WebhookConfigured says, to everyone who may read the settings, whether a gateway is set.
	WebhookConfigured bool `json:"webhook_configured"`
}

// ClinicSettings returns the actor's clinic's reminder settings, without the
// webhook secret (write-only). The gateway's URL may carry a key (in its query, or as user
// information): admins, who set it, see it with those parts masked; other users only whether
// one is set.
func (s *Service) ClinicSettings(ctx context.Context, a followup.Actor) (Settings, error) {
	if err := a.RequireClinical(); err != nil {
		return Settings{}, err
	}
	out := Settings{QuietStart: "21:00", QuietEnd: "08:00"}
	err := s.pool.QueryRow(ctx, `select webhook_url, to_char(quiet_start, 'HH24:MI'), to_char(quiet_end, 'HH24:MI')
		from reminder_settings where clinic_id = $1`, a.ClinicID).Scan(&out.WebhookURL, &out.QuietStart, &out.QuietEnd)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Settings{}, wrap(followup.Unavailable(err), "reminder settings")
	}
	out.WebhookConfigured = out.WebhookURL != ""
	if a.IsUser(followup.RoleAdmin) {
		out.WebhookURL = maskURL(out.WebhookURL)
	} else {
		out.WebhookURL = ""
	}
	return out, nil
}

// maskURL shows where a URL goes without the secrets it may carry: user information and
// query values become "***".
func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "***"
	}
	if u.User != nil {
		u.User = url.User("***")
	}
	q := u.Query()
	for k := range q {
		q[k] = []string{"***"}
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String()
}

// SetSettings changes a clinic's reminder settings (admins only). A gateway URL must
// be https and the secret long enough, or the change is refused with the reason.
func (s *Service) SetSettings(ctx context.Context, a followup.Actor, in Settings) (Settings, error) {
	if !a.IsUser(followup.RoleAdmin) {
		if a.Kind != followup.ActorUser {
			return Settings{}, followup.Errorf(followup.EUNAUTHORIZED, "sign in first")
		}
		return Settings{}, followup.Errorf(followup.EFORBIDDEN, "only an admin can change reminder settings")
	}
	if in.WebhookURL != "" || in.WebhookSecret != "" {
		if err := notify.CheckEndpoint(notify.Endpoint{URL: in.WebhookURL, Secret: in.WebhookSecret}); err != nil {
			return Settings{}, &followup.Error{Code: followup.EINVALID, Message: err.Error()}
		}
	}
	if in.QuietStart == "" && in.QuietEnd == "" {
		in.QuietStart, in.QuietEnd = "21:00", "08:00"
	}
	for i, v := range []string{in.QuietStart, in.QuietEnd} {
		if _, err := time.Parse("15:04", v); err != nil {
			return Settings{}, followup.InvalidField([]string{"quiet_start", "quiet_end"}[i], "must be a time of day as HH:MM")
		}
	}
	sealed := ""
	if in.WebhookSecret != "" {
		var err error
		if sealed, err = s.sealWebhookSecret(a.ClinicID, in.WebhookSecret); err != nil {
			return Settings{}, wrap(err, "reminder settings")
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `insert into reminder_settings (clinic_id, webhook_url, webhook_secret, quiet_start, quiet_end)
			values ($1, $2, $3, $4, $5)
			on conflict (clinic_id) do update set webhook_url = $2, webhook_secret = $3, quiet_start = $4, quiet_end = $5,
				updated_at = now()`, a.ClinicID, in.WebhookURL, sealed, in.QuietStart, in.QuietEnd)
		if err != nil {
			return followup.Unavailable(err)
		}
		return followup.Audit(ctx, tx, a, followup.AuditEvent{Action: AuditReminderSettings, TargetKind: "clinic", TargetID: a.ClinicID,
			Detail: map[string]any{"webhook": in.WebhookURL != "", "quiet_start": in.QuietStart, "quiet_end": in.QuietEnd}})
	})
	if err != nil {
		return Settings{}, wrap(err, "reminder settings")
	}
	in.WebhookSecret = "" // write-only
	return in, nil
}

// Webhook secrets are kept sealed (AES-256-GCM under a key derived from the server's secret
// key, bound to the clinic), so a copy of the database alone cannot sign gateway requests.
const webhookSecretInfo = "dermfollow reminder webhook secret v1"

func (s *Service) webhookAEAD() (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, s.secretKey, nil, webhookSecretInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (s *Service) sealWebhookSecret(clinic uuid.UUID, secret string) (string, error) {
	aead, err := s.webhookAEAD()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(secret), clinic[:])), nil
}

func (s *Service) openWebhookSecret(clinic uuid.UUID, sealed string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	aead, err := s.webhookAEAD()
	if err != nil {
		return "", err
	}
	if len(raw) < aead.NonceSize() {
		return "", errors.New("sealed secret too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], clinic[:])
	return string(plain), err
}
