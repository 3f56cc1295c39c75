package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Email sends reminders through an SMTP server. It is safe for concurrent use: every send
// opens its own connection (reminders are few; a pool would only hold idle connections).
type Email struct {
	host     string
	opts     []gomail.Option
	from     string
	msgIDDom string
}

// NewEmail configures email from an smtp:// or smtps:// URL (user and password in the URL
// mean authentication) and a From address such as "Dermfollow <noreply@clinic.example>".
// smtps:// is implicit TLS; smtp:// requires STARTTLS, except to a loopback server (a local
// relay or a test server) or with ?tls=opportunistic.
func NewEmail(u *url.URL, from string) (*Email, error) {
	if u == nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("notify: the SMTP URL must be smtp:// or smtps:// with a host")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("notify: the From address %q is not an email address: %w", from, err)
	}
	e := &Email{host: u.Hostname(), from: addr.String(), msgIDDom: "dermfollow.invalid"}
	if _, dom, ok := cut(addr.Address); ok {
		e.msgIDDom = dom
	}
	e.opts = append(e.opts, gomail.WithTimeout(30*time.Second))
	port := 587
	if u.Scheme == "smtps" {
		port = 465
		e.opts = append(e.opts, gomail.WithSSL())
	} else {
		policy := gomail.TLSMandatory
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) || u.Query().Get("tls") == "opportunistic" {
			policy = gomail.TLSOpportunistic
		}
		e.opts = append(e.opts, gomail.WithTLSPortPolicy(policy))
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, errors.New("notify: the SMTP URL has a bad port")
		}
	}
	e.opts = append(e.opts, gomail.WithPort(port))
	if u.User != nil && u.User.Username() != "" {
		pass, _ := u.User.Password()
		e.opts = append(e.opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	if _, err := gomail.NewClient(e.host, e.opts...); err != nil {
		return nil, fmt.Errorf("notify: SMTP client: %w", err)
	}
	return e, nil
}

func cut(address string) (local, domain string, ok bool) {
	for i := len(address) - 1; i >= 0; i-- {
		if address[i] == '@' {
			return address[:i], address[i+1:], true
		}
	}
	return "", "", false
}

// SendEmail sends m to m.To with a text and an HTML body in m.Language. The Message-ID is
// derived from m.ID, so a receiving system can recognise a retried message.
//
// ctx bounds connecting only (go-mail honours it while dialling): once connected, the
// session is bounded by the 30 s timeout of each exchange, and a message the server accepts
// after ctx has ended is reported sent. A caller that records the outcome must not do so
// under ctx.
func (e *Email) SendEmail(ctx context.Context, m Message) error {
	badAddress := "the guardian's email address is not valid"
	if m.Kind == KindFamilyMessage {
		badAddress = "the clinic's inbox address is not valid"
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return &Error{Reason: badAddress, Permanent: true, Err: err}
	}
	r, err := render(m)
	if err != nil {
		return &Error{Reason: "message could not be written", Permanent: true, Err: err}
	}
	msg := gomail.NewMsg()
	if err := msg.From(e.from); err != nil {
		return &Error{Reason: "bad From address", Permanent: true, Err: err}
	}
	if err := msg.To(m.To); err != nil {
		return &Error{Reason: badAddress, Permanent: true, Err: err}
	}
	msg.Subject(r.Subject)
	msg.SetDate()
	if m.ID != "" {
		prefix := "reminder-"
		if m.Kind == KindFamilyMessage {
			prefix = "notice-"
		}
		msg.SetMessageIDWithValue(prefix + m.ID + "@" + e.msgIDDom)
	} else {
		msg.SetMessageID()
	}
	msg.SetBodyString(gomail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	c, err := gomail.NewClient(e.host, e.opts...)
	if err != nil {
		return &Error{Reason: "SMTP client could not be set up", Err: err}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.IsTemp() {
			return &Error{Reason: "the mail server refused the message for now", Err: err}
		}
		if errors.As(err, &se) {
			return &Error{Reason: fmt.Sprintf("the mail server did not accept the message (%s)", se.Reason), Err: err}
		}
		return &Error{Reason: "the mail server could not be reached", Err: err}
	}
	return nil
}
