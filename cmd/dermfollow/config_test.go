package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(mapEnv(map[string]string{"DATABASE_URL": "postgres://u@h/db", "DERMFOLLOW_SECRET_KEY": testSecret}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.BaseURL.String() != "http://127.0.0.1:8080" || c.S3.Bucket != "dermfollow" ||
		!c.S3.TLS || !c.S3.SSE || c.StoreDir != "./data/photos" || c.ShutdownTimeout.Seconds() != 30 || c.SMTPURL != nil {
		t.Errorf("defaults = %+v", c)
	}
	// /metrics is for the operators: by default only on loopback, never the public address.
	if c.MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("default metrics address = %q, want 127.0.0.1:9464 (loopback)", c.MetricsAddr)
	}
	off, err := loadConfig(mapEnv(map[string]string{"DATABASE_URL": "postgres://u@h/db", "DERMFOLLOW_SECRET_KEY": testSecret,
		"DERMFOLLOW_METRICS_ADDR": "off"}))
	if err != nil || off.MetricsAddr != "" {
		t.Errorf("DERMFOLLOW_METRICS_ADDR=off = %q, %v; want no metrics listener", off.MetricsAddr, err)
	}
}

// Every wrong value gets its own clear line, all at once.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"DATABASE_URL":                "mysql://x",
		"DERMFOLLOW_ADDR":             "8080",
		"DERMFOLLOW_BASE_URL":         "example.org/path",
		"DERMFOLLOW_S3_ENDPOINT":      "https://minio:9000",
		"DERMFOLLOW_S3_BUCKET":        "Bad_Bucket",
		"DERMFOLLOW_S3_TLS":           "yes please",
		"DERMFOLLOW_S3_SSE":           "maybe",
		"DERMFOLLOW_SMTP_URL":         "http://mail",
		"DERMFOLLOW_SECRET_KEY":       "c2hvcnQ=",
		"DERMFOLLOW_TRUSTED_PROXIES":  "10.0.0.0/8, not-a-cidr",
		"DERMFOLLOW_LOG_LEVEL":        "loud",
		"DERMFOLLOW_LOG_FORMAT":       "xml",
		"DERMFOLLOW_SHUTDOWN_TIMEOUT": "-1s",
	}
	_, err := loadConfig(mapEnv(bad))
	if err == nil {
		t.Fatal("loadConfig accepted bad values")
	}
	msg := err.Error()
	for name := range bad {
		if strings.Count(msg, "\n  "+name+" ") != 1 {
			t.Errorf("error does not have exactly one line for %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, "c2hvcnQ=") {
		t.Error("the error repeats the secret key's value")
	}
	_, err = loadConfig(mapEnv(map[string]string{"DERMFOLLOW_SECRET_KEY": testSecret}))
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is required") {
		t.Errorf("missing DATABASE_URL: %v", err)
	}
	_, err = loadConfig(mapEnv(map[string]string{"DATABASE_URL": "postgres://h/d", "DERMFOLLOW_SECRET_KEY": testSecret, "DERMFOLLOW_S3_ENDPOINT": "minio:9000"}))
	if err == nil || !strings.Contains(err.Error(), "DERMFOLLOW_S3_ACCESS_KEY") {
		t.Errorf("S3 endpoint without keys: %v", err)
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{
		"DATABASE_URL":             "postgres://app:pg-password-123@db:5432/dermfollow?sslpassword=q-secret",
		"DERMFOLLOW_SECRET_KEY":    testSecret,
		"DERMFOLLOW_S3_ACCESS_KEY": "ACCESS-abc",
		"DERMFOLLOW_S3_SECRET_KEY": "SECRET-xyz",
		"DERMFOLLOW_SMTP_URL":      "smtp://mailer:mail-pass@smtp:587",
	})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", redacted(env)...)
	out := buf.String()
	for _, secret := range []string{"pg-password-123", "q-secret", testSecret, "ACCESS-abc", "SECRET-xyz", "mail-pass"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted view shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "db:5432/dermfollow") || !strings.Contains(out, `"DERMFOLLOW_S3_SECRET_KEY":"[set]"`) {
		t.Errorf("redacted view should still say where the database is and which secrets are set:\n%s", out)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, mapEnv(nil), strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		help := out.String() + errOut.String()
		for _, v := range envVars() {
			if !strings.Contains(help, v.name) || (v.def != "" && !strings.Contains(help, v.def)) {
				t.Errorf("%v help lacks %s (default %q)", args, v.name, v.def)
			}
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"frobnicate"}, mapEnv(nil), strings.NewReader(""), io.Discard, io.Discard)
	if _, ok := err.(usageError); !ok {
		t.Errorf("unknown command: %v, want a usage error", err)
	}
	err = run(context.Background(), []string{"serve", "-bogus"}, mapEnv(nil), strings.NewReader(""), io.Discard, io.Discard)
	if _, ok := err.(usageError); !ok {
		t.Errorf("unknown flag: %v, want a usage error", err)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"serve"}, mapEnv(map[string]string{"DATABASE_URL": "postgres://h/d"}), strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DERMFOLLOW_SECRET_KEY is required") {
		t.Errorf("serve without a secret key: %v", err)
	}
}
