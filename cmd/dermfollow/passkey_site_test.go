package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup/accounts"
)

// Passkeys follow DERMFOLLOW_BASE_URL: its host is the relying party, and an IP address (the
// default 127.0.0.1) turns them off rather than failing the start.
func TestPasskeySite(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none") // never connected
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for raw, want := range map[string]string{
		"http://127.0.0.1:8080":             "",
		"http://[::1]:8080":                 "",
		"http://localhost:8080":             "localhost",
		"https://followup.example.org":      "followup.example.org",
		"https://followup.example.org:8443": "followup.example.org",
		"https://Followup.Example.ORG":      "followup.example.org",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		rpID, origins := passkeySite(u)
		if rpID != want || (want == "") != (len(origins) == 0) || want != "" && origins[0] != strings.ToLower(raw) {
			t.Errorf("%s: %q %q, want %q", raw, rpID, origins, want)
			continue
		}
		if _, err := accounts.New(accounts.Config{Pool: pool, RPID: rpID, RPOrigins: origins}); err != nil {
			t.Errorf("%s: accounts refuse the site: %v", raw, err)
		}
	}
}
