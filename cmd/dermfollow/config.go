package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/imagestore"
)

// config is everything the server reads from the environment. Only cmd reads the environment.
type config struct {
	DatabaseURL     string
	Addr            string
	MetricsAddr     string
	BaseURL         *url.URL
	S3              imagestore.S3Config
	StoreDir        string
	SMTPURL         *url.URL
	SMTPFrom        string
	SecretKey       []byte
	ProtocolDir     string
	TrustedProxies  []*net.IPNet
	LogLevel        slog.Level
	LogFormat       string
	ShutdownTimeout time.Duration
	DrainDelay      time.Duration
	StoreTimeout    time.Duration
	PhotoQuota      followup.PhotoQuota
}

// envVar documents one setting; the table below is the single source for parsing, `-h` and
// the README.
type envVar struct {
	name, def, help string
	secret          bool
	set             func(c *config, v string) error
}

func envVars() []envVar {
	return slices.Concat(serverVars(), storeVars(), mailVars(), securityVars(), operationVars())
}

// serverVars are the settings of the database and the addresses.
func serverVars() []envVar {
	return []envVar{
		{name: "DATABASE_URL", help: "PostgreSQL URL, e.g. postgres://user:pass@host:5432/dermfollow (required)", secret: true,
			set: func(c *config, v string) error {
				if v == "" {
					return fmt.Errorf("is required (a PostgreSQL URL such as postgres://user:pass@host:5432/dermfollow)")
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
					return fmt.Errorf("must be a postgres:// URL")
				}
				c.DatabaseURL = v
				return nil
			}},
		{name: "DERMFOLLOW_ADDR", def: "127.0.0.1:8080", help: "address to listen on (host:port)",
			set: func(c *config, v string) error {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("must be host:port, e.g. 127.0.0.1:8080 or :8080")
				}
				c.Addr = v
				return nil
			}},
		{name: "DERMFOLLOW_METRICS_ADDR", def: "127.0.0.1:9464", help: "address of the Prometheus /metrics listener, kept off the public address; \"off\" for none",
			set: func(c *config, v string) error {
				if v == "off" {
					return nil
				}
				if _, _, err := net.SplitHostPort(v); err != nil {
					return fmt.Errorf("must be host:port, e.g. 127.0.0.1:9464, or off")
				}
				c.MetricsAddr = v
				return nil
			}},
		{name: "DERMFOLLOW_BASE_URL", def: "http://127.0.0.1:8080", help: "public URL of the service, used in parent links and emails; its host is the passkeys' site (off for an IP address)",
			set: func(c *config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
					return fmt.Errorf("must be an absolute http(s) URL without a path, e.g. https://followup.example.org")
				}
				u.Path = ""
				c.BaseURL = u
				return nil
			}},
	}
}

// storeVars are the settings of where photos are stored.
func storeVars() []envVar {
	return []envVar{
		{name: "DERMFOLLOW_S3_ENDPOINT", help: "S3/MinIO host:port; empty stores photos in DERMFOLLOW_STORE_DIR",
			set: func(c *config, v string) error {
				if v != "" && strings.Contains(v, "://") {
					return fmt.Errorf("must be host:port without a scheme (use DERMFOLLOW_S3_TLS for https)")
				}
				c.S3.Endpoint = v
				return nil
			}},
		{name: "DERMFOLLOW_S3_ACCESS_KEY", help: "S3 access key", secret: true,
			set: func(c *config, v string) error { c.S3.AccessKey = v; return nil }},
		{name: "DERMFOLLOW_S3_SECRET_KEY", help: "S3 secret key", secret: true,
			set: func(c *config, v string) error { c.S3.SecretKey = v; return nil }},
		{name: "DERMFOLLOW_S3_BUCKET", def: "dermfollow", help: "S3 bucket (created if missing)",
			set: func(c *config, v string) error {
				if len(v) < 3 || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
					return fmt.Errorf("must be a bucket name: 3-63 lowercase letters, digits, dots and hyphens")
				}
				c.S3.Bucket = v
				return nil
			}},
		{name: "DERMFOLLOW_S3_TLS", def: "true", help: "use https to reach S3",
			set: func(c *config, v string) (err error) { c.S3.TLS, err = parseBool(v); return err }},
		{name: "DERMFOLLOW_S3_SSE", def: "true", help: "ask S3 to encrypt every object at rest (SSE-S3; MinIO needs a KMS key)",
			set: func(c *config, v string) (err error) { c.S3.SSE, err = parseBool(v); return err }},
		{name: "DERMFOLLOW_STORE_DIR", def: "./data/photos", help: "directory for photos when no S3 endpoint is set",
			set: func(c *config, v string) error {
				if v == "" {
					return fmt.Errorf("must not be empty")
				}
				c.StoreDir = v
				return nil
			}},
	}
}

// mailVars are the settings of reminder email.
func mailVars() []envVar {
	return []envVar{
		{name: "DERMFOLLOW_SMTP_URL", help: "SMTP server for reminders, e.g. smtp://user:pass@mail:587 or smtps://...; empty: no email", secret: true,
			set: func(c *config, v string) error {
				if v == "" {
					return nil
				}
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
					return fmt.Errorf("must be an smtp:// or smtps:// URL with a host")
				}
				c.SMTPURL = u
				return nil
			}},
		{name: "DERMFOLLOW_SMTP_FROM", def: "Dermfollow <noreply@localhost>", help: "From address of reminder emails, e.g. Clinic <noreply@clinic.example>",
			set: func(c *config, v string) error {
				if _, err := mail.ParseAddress(v); err != nil {
					return fmt.Errorf("must be an email address, e.g. Clinic <noreply@clinic.example>")
				}
				c.SMTPFrom = v
				return nil
			}},
	}
}

// securityVars are the settings of keys, the clinic's protocols and trusted proxies.
func securityVars() []envVar {
	return []envVar{
		{name: "DERMFOLLOW_SECRET_KEY", help: "at least 32 random bytes, base64 (openssl rand -base64 32); keys sessions, links, export pseudonyms and sealed authenticator-app secrets (required)", secret: true,
			set: func(c *config, v string) error {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					b, err = base64.RawStdEncoding.DecodeString(v)
				}
				if v == "" || err != nil || len(b) < 32 {
					return fmt.Errorf("is required: at least 32 random bytes in base64 (make one with: openssl rand -base64 32)")
				}
				c.SecretKey = b
				return nil
			}},
		{name: "DERMFOLLOW_PROTOCOL_DIR", help: "directory of the clinic's own protocol files, loaded next to the shipped ones",
			set: func(c *config, v string) error { c.ProtocolDir = v; return nil }},
		{name: "DERMFOLLOW_TRUSTED_PROXIES", help: "comma-separated CIDRs of load balancers whose X-Forwarded-For is trusted",
			set: func(c *config, v string) error {
				c.TrustedProxies = nil
				for _, s := range strings.Split(v, ",") {
					if s = strings.TrimSpace(s); s == "" {
						continue
					}
					_, n, err := net.ParseCIDR(s)
					if err != nil {
						return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
					}
					c.TrustedProxies = append(c.TrustedProxies, n)
				}
				return nil
			}},
	}
}

// operationVars are the settings of logs, shutdown, deadlines and quotas.
func operationVars() []envVar {
	return []envVar{
		{name: "DERMFOLLOW_LOG_LEVEL", def: "info", help: "debug, info, warn or error",
			set: func(c *config, v string) error {
				if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
					return fmt.Errorf("must be debug, info, warn or error")
				}
				return nil
			}},
		{name: "DERMFOLLOW_LOG_FORMAT", def: "auto", help: "json, text, or auto (text on a terminal, JSON otherwise)",
			set: func(c *config, v string) error {
				switch v {
				case "json", "text", "auto":
					c.LogFormat = v
					return nil
				}
				return fmt.Errorf("must be json, text or auto")
			}},
		{name: "DERMFOLLOW_SHUTDOWN_TIMEOUT", def: "30s", help: "how long a stopping server lets in-flight requests (uploads) finish",
			set: func(c *config, v string) error {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return fmt.Errorf("must be a positive duration such as 30s")
				}
				c.ShutdownTimeout = d
				return nil
			}},
		{name: "DERMFOLLOW_DRAIN_DELAY", def: "5s", help: "how long a stopping server answers /readyz 503 while still serving, so load balancers stop sending it requests",
			set: func(c *config, v string) (err error) { c.DrainDelay, err = parseDuration(v, true); return err }},
		{name: "DERMFOLLOW_PHOTO_QUOTA", def: "link-per-minute=30,link-photos=300,link-bytes=3221225472,step-photos=60,step-bytes=1073741824",
			help: "what one parent link may send (per minute, in all, bytes) and one step of a follow-up may hold",
			set:  func(c *config, v string) (err error) { c.PhotoQuota, err = parseQuota(v); return err }},
		{name: "DERMFOLLOW_STORE_TIMEOUT", def: "60s", help: "how long storing one received photo may take before its upload answers 503",
			set: func(c *config, v string) (err error) { c.StoreTimeout, err = parseDuration(v, false); return err }},
	}
}

// parseQuota parses "key=N,..." of the keys link-per-minute, link-photos, link-bytes,
// step-photos and step-bytes; a key left out keeps its default.
func parseQuota(v string) (followup.PhotoQuota, error) {
	var q followup.PhotoQuota
	fields := map[string]*int64{"link-per-minute": &q.LinkPerMinute, "link-photos": &q.LinkPhotos, "link-bytes": &q.LinkBytes,
		"step-photos": &q.StepPhotos, "step-bytes": &q.StepBytes}
	for _, kv := range strings.Split(v, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, n, ok := strings.Cut(kv, "=")
		dst, known := fields[strings.TrimSpace(k)]
		val, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if !ok || !known || err != nil || val <= 0 {
			return q, fmt.Errorf("must be key=number pairs of link-per-minute, link-photos, link-bytes, step-photos and step-bytes, e.g. link-per-minute=30,step-photos=60")
		}
		*dst = val
	}
	return q, nil
}

// parseDuration parses a setting's duration: positive, or zero too where zeroOK.
func parseDuration(v string, zeroOK bool) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d == 0 && !zeroOK {
		return 0, fmt.Errorf("must be a duration such as 30s")
	}
	return d, nil
}

// loadConfig reads every variable, reporting every wrong value at once, one per line.
func loadConfig(getenv env) (*config, error) {
	c := &config{}
	var problems []string
	for _, v := range envVars() {
		val := getenv(v.name)
		if val == "" {
			val = v.def
		}
		if err := v.set(c, val); err != nil {
			problems = append(problems, fmt.Sprintf("%s %s", v.name, err))
		}
	}
	if c.S3.Endpoint != "" && (c.S3.AccessKey == "" || c.S3.SecretKey == "") {
		problems = append(problems, "DERMFOLLOW_S3_ACCESS_KEY and DERMFOLLOW_S3_SECRET_KEY are required with DERMFOLLOW_S3_ENDPOINT")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

// redacted lists the settings for the start-up log line: secrets show only whether they are
// set, and the database URL loses its password.
func redacted(getenv env) []any {
	var out []any
	for _, v := range envVars() {
		val := getenv(v.name)
		if val == "" {
			val = v.def
		}
		switch {
		case v.name == "DATABASE_URL" && val != "":
			if u, err := url.Parse(val); err == nil {
				if _, has := u.User.Password(); has {
					u.User = url.UserPassword(u.User.Username(), "redacted")
				}
				u.RawQuery = ""
				val = u.Redacted()
			} else {
				val = "[unparseable]"
			}
		case v.secret && val != "":
			val = "[set]"
		}
		out = append(out, slog.String(v.name, val))
	}
	return out
}

func printEnvHelp(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range envVars() {
		def := v.def
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.name, def, v.help)
	}
	tw.Flush()
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("must be true or false")
	}
	return b, nil
}
