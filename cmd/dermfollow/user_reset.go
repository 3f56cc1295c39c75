package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/dermfollow/dermfollow/followup"
)

// runUserReset2FA is `dermfollow user reset-2fa`: the operator's recovery for a user who lost
// their phone or passkey, audited as the system.
func runUserReset2FA(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user reset-2fa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user's email (required)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), userUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("user reset-2fa takes no arguments, got %q", fs.Arg(0))}
	case strings.TrimSpace(*email) == "":
		return usageError{"user reset-2fa: -email is required"}
	}
	_, acc, closeDB, err := openAccountService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	// The CLI runs with database access, so it acts as the system for every clinic.
	removed, err := acc.ResetSecondFactor(ctx, followup.SystemActor(uuid.Nil), *email)
	if err != nil {
		return accountError("user reset-2fa", err)
	}
	fmt.Fprintf(stdout, "removed the second factors of %s (authenticator app: %d, passkeys: %d, recovery codes: %d) and ended their sessions;\n"+
		"they set up a new one at their next sign-in\n", strings.ToLower(strings.TrimSpace(*email)), removed.TOTP, removed.Passkeys, removed.RecoveryCodes)
	return nil
}
