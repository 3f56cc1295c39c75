// Package notify delivers reminders to families: email through an SMTP server (go-mail) and a
// signed JSON POST to a clinic's SMS or messaging gateway. A reminder says that a photo is due
// and carries the link; nothing else about the child travels (no name, no condition, no photo).
// The conversation's notices go the same ways and say as little: to the family, that the
// clinic has answered (KindAnswered); to the clinic's inbox and gateway, that a family wrote
// (KindFamilyMessage), with the procedure page's link, never the message.
//
//	email, err := notify.NewEmail(smtpURL, "Dermfollow <noreply@clinic.example>")
//	err = email.SendEmail(ctx, notify.Message{To: "parent@example.org", Language: "en",
//		Link: link, DueOn: "2026-05-05", Kind: notify.KindWindowOpen})
package notify

import (
	"errors"
	"fmt"
)

// Reminder kinds: the window of a timepoint has opened, it is about to close with photos
// missing, or a clinician sent one by hand.
const (
	KindWindowOpen  = "window-open"
	KindClosingSoon = "closing-soon"
	KindManual      = "manual"
	// KindAnswered tells the family that the clinic answered (a reply, a note, a retake
	// request): open your link.
	KindAnswered = "answered"
	// KindFamilyMessage tells the clinic that a family wrote; To is the clinic's inbox (no
	// phone on the webhook) and Link the procedure's page.
	KindFamilyMessage = "family-message"
)

// Message is everything a reminder may say. It deliberately has no field for the child.
type Message struct {
	// ID identifies the reminder; gateways and mail servers may use it to drop duplicates.
	ID string
	// To is the guardian's email address or phone number, depending on the channel (for
	// KindFamilyMessage, the clinic's inbox).
	To       string
	Language string // "en" or "zh-CN"
	Link     string
	DueOn    string // YYYY-MM-DD, the clinic's calendar date the photo is due on
	LastDay  string // YYYY-MM-DD, the last day of the timepoint's window
	Kind     string
}

// Error is a failed delivery. Reason is short and safe to store and show to clinicians: it
// never holds the message, the link or the recipient.
type Error struct {
	Reason string
	// Permanent failures (a malformed address, a 4xx from a gateway) are not worth retrying.
	Permanent bool
	Err       error
}

func (e *Error) Error() string { return fmt.Sprintf("notify: %s: %v", e.Reason, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Reason returns the safe reason of a delivery error, or a generic one.
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "delivery failed"
}

// IsPermanent reports whether retrying err cannot help.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}
