package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the clinic's secret, over the
// timestamp, a dot and the body ("1700000000.{...}"), so a captured request cannot be replayed
// with a new timestamp; receivers should refuse timestamps more than a few minutes old.
const (
	SignatureHeader = "X-Dermfollow-Signature" // "sha256=" + hex
	TimestampHeader = "X-Dermfollow-Timestamp" // Unix seconds
	DeliveryHeader  = "X-Dermfollow-Delivery"  // the reminder id: the same on every retry
)

// Webhook secret lengths accepted.
const (
	MinSecretLen = 32
	MaxSecretLen = 128
)

// Endpoint is a clinic's gateway: where to POST and the secret to sign with.
type Endpoint struct {
	URL    string
	Secret string
}

// CheckEndpoint validates a gateway configuration: an absolute https URL (http only to a
// loopback address, for a gateway on the same machine), no credentials in the URL, and a
// secret of at least MinSecretLen characters.
func CheckEndpoint(ep Endpoint) error {
	if len(ep.URL) > 2000 {
		return errors.New("the webhook URL is too long")
	}
	u, err := url.Parse(ep.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return errors.New("the webhook URL must be an absolute https:// URL")
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("the webhook URL must use https (http only for a gateway on this machine)")
		}
	default:
		return errors.New("the webhook URL must be an absolute https:// URL")
	}
	if u.User != nil {
		return errors.New("the webhook URL must not hold a user name or password; the secret signs each request")
	}
	if u.Fragment != "" {
		return errors.New("the webhook URL must not have a #fragment")
	}
	if len(ep.Secret) < MinSecretLen || len(ep.Secret) > MaxSecretLen {
		return fmt.Errorf("the webhook secret must be %d to %d characters", MinSecretLen, MaxSecretLen)
	}
	return nil
}

// Webhook posts reminders to clinics' SMS or messaging gateways.
type Webhook struct {
	client *http.Client
	now    func() time.Time
}

// NewWebhook returns a webhook channel using client (a client with a 30 s timeout when nil)
// and the clock now (time.Now when nil) for the timestamp header.
func NewWebhook(client *http.Client, now func() time.Time) *Webhook {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Webhook{client: client, now: now}
}

// WebhookBody is the JSON a gateway receives: whom to tell, in which language, the link and
// the dates, and a ready-made text. Nothing else about the child. A notice to the clinic
// (kind family-message) has no phone and no dates: its link is the procedure's page.
type WebhookBody struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Phone    string `json:"phone"`
	Language string `json:"language"`
	Link     string `json:"link"`
	DueOn    string `json:"due_on"`
	LastDay  string `json:"last_day"`
	Text     string `json:"text"`
}

// Sign returns the signature header value of body sent at timestamp ts (Unix seconds).
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a request's signature and that its timestamp is within maxAge of now; a
// gateway written in Go can use it as is.
func Verify(secret string, header http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	ts, err := strconv.ParseInt(header.Get(TimestampHeader), 10, 64)
	if err != nil {
		return errors.New("notify: missing or bad timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return errors.New("notify: timestamp too old or in the future")
	}
	if !hmac.Equal([]byte(header.Get(SignatureHeader)), []byte(Sign(secret, ts, body))) {
		return errors.New("notify: bad signature")
	}
	return nil
}

// SendWebhook posts m to the endpoint, signed. A 2xx answer is delivery; 408, 429 and 5xx are
// retried; other answers are permanent failures.
func (w *Webhook) SendWebhook(ctx context.Context, ep Endpoint, m Message) error {
	if err := CheckEndpoint(ep); err != nil {
		return &Error{Reason: err.Error(), Permanent: true, Err: err}
	}
	if m.To == "" && m.Kind != KindFamilyMessage {
		err := errors.New("no phone number")
		return &Error{Reason: "the guardian has no phone number", Permanent: true, Err: err}
	}
	body, err := json.Marshal(WebhookBody{ID: m.ID, Kind: m.Kind, Phone: m.To, Language: m.Language, Link: m.Link,
		DueOn: m.DueOn, LastDay: m.LastDay, Text: Text(m)})
	if err != nil {
		return &Error{Reason: "message could not be written", Permanent: true, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return &Error{Reason: "the webhook URL is not valid", Permanent: true, Err: err}
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Dermfollow-Reminders/1")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(ep.Secret, ts, body))
	if m.ID != "" {
		req.Header.Set(DeliveryHeader, m.ID)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL is the clinic's configuration, not patient data, but *url.Error repeats it
		// with its query; the reason says only what went wrong.
		return &Error{Reason: "the webhook could not be reached", Err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return &Error{Reason: fmt.Sprintf("the webhook answered %d", resp.StatusCode), Err: errors.New(resp.Status)}
	default:
		return &Error{Reason: fmt.Sprintf("the webhook refused the reminder (%d)", resp.StatusCode), Permanent: true, Err: errors.New(resp.Status)}
	}
}
