package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dermfollow/dermfollow/followup"
	"github.com/dermfollow/dermfollow/followup/accounts"
	"github.com/dermfollow/dermfollow/imagestore"
	"github.com/dermfollow/dermfollow/protocols"
)

const userUsage = `Usage:
  dermfollow user add -clinic NAME -email EMAIL -role ROLE [-name NAME] [-time-zone ZONE]
  dermfollow user reset-2fa -email EMAIL

Adds a clinic user. ROLE is clinician, researcher or admin. The clinic is created if no clinic
has that name, in -time-zone (an IANA zone such as Asia/Shanghai; default UTC), which is the
zone schedules and due dates are computed in; an existing clinic keeps its zone.

The password is the first line of standard input when that is not a terminal, e.g.
  printenv NEW_PASSWORD | dermfollow user add ...
Otherwise (a terminal, or empty input such as </dev/null) a random password is generated and
printed once.

reset-2fa removes every second factor of the user (authenticator app, recovery codes,
passkeys) and ends the user's sessions, for a lost phone or key: the user sets up a new one at
the next sign-in. It is audited.

Both need DATABASE_URL and a migrated database (dermfollow migrate).
`

// runUser dispatches `dermfollow user SUBCOMMAND`.
func runUser(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return usageError{"user needs a subcommand: add, reset-2fa"}
	}
	switch args[0] {
	case "add":
		return runUserAdd(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "reset-2fa":
		return runUserReset2FA(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, userUsage)
		return errHelpShown
	}
	fmt.Fprint(stderr, userUsage)
	return usageError{fmt.Sprintf("unknown user command %q (add, reset-2fa)", args[0])}
}

func runUserAdd(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clinicName := fs.String("clinic", "", "clinic name (required; created if missing)")
	email := fs.String("email", "", "the user's email, which is the login (required)")
	role := fs.String("role", "", "clinician, researcher or admin (required)")
	name := fs.String("name", "", "the user's display name (default: the part of the email before @)")
	zone := fs.String("time-zone", "UTC", "IANA time zone of a clinic created by this command")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), userUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("user add takes no arguments, got %q", fs.Arg(0))}
	case strings.TrimSpace(*clinicName) == "":
		return usageError{"user add: -clinic is required"}
	case strings.TrimSpace(*email) == "":
		return usageError{"user add: -email is required"}
	case *role != followup.RoleClinician && *role != followup.RoleResearcher && *role != followup.RoleAdmin:
		return usageError{fmt.Sprintf("user add: -role must be clinician, researcher or admin, not %q", *role)}
	}
	zoneSet := false
	fs.Visit(func(f *flag.Flag) { zoneSet = zoneSet || f.Name == "time-zone" })

	password, generated, err := readUserPassword(stdin)
	if err != nil {
		return err
	}
	svc, acc, closeDB, err := openAccountService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()

	clinic, err := svc.ClinicByName(ctx, *clinicName)
	if followup.ErrorCode(err) == followup.ENOTFOUND {
		clinic, err = svc.CreateClinic(ctx, *clinicName, *zone)
		if followup.ErrorCode(err) == followup.ECONFLICT { // made by someone else meanwhile
			clinic, err = svc.ClinicByName(ctx, *clinicName)
		} else if err == nil {
			fmt.Fprintf(stdout, "created clinic %q (time zone %s)\n", clinic.Name, clinic.TimeZone)
		}
	} else if err == nil && zoneSet && *zone != clinic.TimeZone {
		fmt.Fprintf(stderr, "note: clinic %q exists with time zone %s; -time-zone %s was not applied\n", clinic.Name, clinic.TimeZone, *zone)
	}
	if err != nil {
		return accountError("user add", err)
	}

	u, err := acc.CreateUser(ctx, followup.SystemActor(clinic.ID), accounts.NewUser{
		ClinicID: clinic.ID, Email: *email, Name: *name, Role: *role, Password: password,
	})
	if err != nil {
		return accountError("user add", err)
	}
	fmt.Fprintf(stdout, "created %s %s (%s) in clinic %q, id %s\n", u.Role, u.Email, u.Name, clinic.Name, u.ID)
	if generated {
		fmt.Fprintf(stdout, "password (shown only now; store it safely): %s\n", password)
	}
	return nil
}

// readUserPassword takes the first line of stdin unless stdin is a terminal or empty, in which
// case it generates one. A password typed on a terminal would echo, so terminals are never read.
func readUserPassword(stdin io.Reader) (password string, generated bool, err error) {
	if stdin != nil && !stdinIsTerminal(stdin) {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, fmt.Errorf("read password from standard input: %w", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line != "" {
			return line, false, nil
		}
	}
	return generateUserPassword(), true, nil
}

func stdinIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// userPasswordAlphabet leaves out look-alikes (0 O o 1 l I) so a printed password can be typed.
const userPasswordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

// generateUserPassword returns 24 characters from userPasswordAlphabet (about 139 bits).
func generateUserPassword() string {
	var b strings.Builder
	buf := make([]byte, 1)
	// Rejection sampling keeps every character equally likely.
	limit := byte(256 - 256%len(userPasswordAlphabet))
	for b.Len() < 24 {
		rand.Read(buf)
		if buf[0] < limit {
			b.WriteByte(userPasswordAlphabet[int(buf[0])%len(userPasswordAlphabet)])
		}
	}
	return b.String()
}

const tokenUsage = `Usage:
  dermfollow token create -email EMAIL [-name NAME] [-days N]

Creates an API token for the user and prints it once on standard output; only its SHA-256
is stored. Send it as "Authorization: Bearer TOKEN" to /api/v1. The token acts with the
user's role and expires after -days (default 90, at most 365); -name says what it is for in
the user's list of tokens. Needs DATABASE_URL and a migrated database (dermfollow migrate).
`

// runToken dispatches `dermfollow token SUBCOMMAND`.
func runToken(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return usageError{"token needs a subcommand: create"}
	}
	switch args[0] {
	case "create":
		return runTokenCreate(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return errHelpShown
	}
	fmt.Fprint(stderr, tokenUsage)
	return usageError{fmt.Sprintf("unknown token command %q (create)", args[0])}
}

func runTokenCreate(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the email of the user the token acts as (required)")
	name := fs.String("name", accounts.DefaultTokenName, "what the token is for, shown in the user's list of tokens")
	days := fs.Int("days", int(accounts.DefaultTokenLifetime/(24*time.Hour)), "days until the token expires (1 to 365)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tokenUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("token create takes no arguments, got %q", fs.Arg(0))}
	}
	if strings.TrimSpace(*email) == "" {
		return usageError{"token create: -email is required"}
	}
	if *days < 1 || *days > int(accounts.MaxTokenLifetime/(24*time.Hour)) {
		return usageError{fmt.Sprintf("token create: -days must be 1 to %d, not %d", int(accounts.MaxTokenLifetime/(24*time.Hour)), *days)}
	}
	_, acc, closeDB, err := openAccountService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	// The CLI runs with database access, so it acts as the system for every clinic.
	t, token, err := acc.IssueToken(ctx, followup.SystemActor(uuid.Nil), accounts.NewToken{Email: *email, Name: *name,
		Lifetime: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		return accountError("token create", err)
	}
	fmt.Fprintf(stderr, "created API token %q for %s as %s, expiring %s; it is shown only now (send it as Authorization: Bearer TOKEN):\n",
		t.Name, strings.ToLower(strings.TrimSpace(*email)), t.Role, t.ExpiresAt.UTC().Format(time.RFC3339))
	fmt.Fprintln(stdout, token)
	return nil
}

// openAccountService connects to DATABASE_URL, checks that it is migrated, and returns the
// core (for clinics) and the accounts. These commands never touch photos, so the core's store
// is a placeholder that panics if used.
func openAccountService(ctx context.Context, getenv env) (*followup.Service, *accounts.Service, func(), error) {
	url, err := databaseURL(getenv)
	if err != nil {
		return nil, nil, nil, err
	}
	pool, err := openPool(ctx, url)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := requireAccountTables(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	reg, err := protocols.LoadRegistry("")
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	svc, err := followup.New(followup.Config{Pool: pool, Store: accountNoStore{}, Protocols: reg})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	acc, err := accounts.New(accounts.Config{Pool: pool})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	return svc, acc, pool.Close, nil
}

// accountNoStore stands in for the object store where none is needed; any call panics (nil
// embedded interface), which would be a bug in the command.
type accountNoStore struct{ imagestore.Store }

func requireAccountTables(ctx context.Context, pool *pgxpool.Pool) error {
	var ok bool
	// The newest of these (second factors, named tokens) come from migrations 00017 and 00018.
	err := pool.QueryRow(ctx, `select to_regclass('clinics') is not null and to_regclass('users') is not null
		and to_regclass('api_tokens') is not null and to_regclass('audit_events') is not null
		and to_regclass('user_totp') is not null and to_regclass('passkeys') is not null
		and exists (select 1 from information_schema.columns
			where table_schema = current_schema() and table_name = 'api_tokens' and column_name = 'name')`).Scan(&ok)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if !ok {
		return errors.New("the database lacks Dermfollow's tables or their newest changes: run dermfollow migrate first")
	}
	return nil
}

// accountError turns an application error into its user-facing message (keeping the chain for
// errors.Is/As); internal errors keep their detail, which on a CLI is for the operator.
func accountError(cmd string, err error) error {
	if c := followup.ErrorCode(err); c != followup.EINTERNAL && c != followup.EUNAVAILABLE {
		return accountMessageError{msg: cmd + ": " + followup.ErrorMessage(err), err: err}
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

type accountMessageError struct {
	msg string
	err error
}

func (e accountMessageError) Error() string { return e.msg }
func (e accountMessageError) Unwrap() error { return e.err }
