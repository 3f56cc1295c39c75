package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dermfollow/dermfollow/migrations"
)

func runMigrate(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.Bool("status", false, "print the current and latest schema versions and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: dermfollow migrate [-status]\n\nApplies pending migrations to DATABASE_URL (safe to run from several servers at once).")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	url, err := databaseURL(getenv)
	if err != nil {
		return err
	}
	if *status {
		cur, latest, err := migrations.Version(ctx, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d, latest %d\n", cur, latest)
		return nil
	}
	n, err := migrations.Up(ctx, url, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migrations\n", n)
	return nil
}

// databaseURL reads and checks only DATABASE_URL, for commands that need nothing else.
func databaseURL(getenv env) (string, error) {
	for _, v := range envVars() {
		if v.name == "DATABASE_URL" {
			var c config
			if err := v.set(&c, getenv(v.name)); err != nil {
				return "", fmt.Errorf("configuration: DATABASE_URL %s", err)
			}
			return c.DatabaseURL, nil
		}
	}
	panic("DATABASE_URL missing from envVars")
}
