package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/dermfollow/dermfollow/followup"
)

const clinicUsage = `Usage:
  dermfollow clinic set -clinic NAME [-require-second-factor=true|false] [-allow-passwordless=true|false]

Changes a clinic's sign-in settings and prints them. -require-second-factor=false lets the
clinic's clinicians sign in with a password alone (for trials and tests; it is on for every
new clinic); admins and researchers always need a second factor. -allow-passwordless=true lets
the clinic's users sign in with a passkey alone. Every change is audited. Needs DATABASE_URL
and a migrated database (dermfollow migrate).
`

// runClinic dispatches `dermfollow clinic SUBCOMMAND`.
func runClinic(ctx context.Context, args []string, getenv env, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clinicUsage)
		return usageError{"clinic needs a subcommand: set"}
	}
	switch args[0] {
	case "set":
		return runClinicSet(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, clinicUsage)
		return errHelpShown
	}
	fmt.Fprint(stderr, clinicUsage)
	return usageError{fmt.Sprintf("unknown clinic command %q (set)", args[0])}
}

func runClinicSet(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clinic set", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clinicName := fs.String("clinic", "", "the clinic's name (required)")
	require := fs.Bool("require-second-factor", true, "whether the clinic's clinicians need a second factor")
	passwordless := fs.Bool("allow-passwordless", false, "whether the clinic's users may sign in with a passkey alone")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), clinicUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("clinic set takes no arguments, got %q", fs.Arg(0))}
	case strings.TrimSpace(*clinicName) == "":
		return usageError{"clinic set: -clinic is required"}
	case !set["require-second-factor"] && !set["allow-passwordless"]:
		return usageError{"clinic set: nothing to set (-require-second-factor=true|false, -allow-passwordless=true|false)"}
	}
	svc, acc, closeDB, err := openAccountService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	clinic, err := svc.ClinicByName(ctx, *clinicName)
	if err != nil {
		return accountError("clinic set", err)
	}
	// The CLI runs with database access: it acts as the system for the clinic.
	sys := followup.SystemActor(clinic.ID)
	if set["require-second-factor"] {
		if err := acc.SetClinicSecondFactor(ctx, sys, *require); err != nil {
			return accountError("clinic set", err)
		}
	}
	if set["allow-passwordless"] {
		if err := acc.SetClinicPasswordless(ctx, sys, *passwordless); err != nil {
			return accountError("clinic set", err)
		}
	}
	p, err := acc.ClinicSignInPolicy(ctx, sys)
	if err != nil {
		return accountError("clinic set", err)
	}
	fmt.Fprintf(stdout, "clinic %q: require-second-factor=%t allow-passwordless=%t\n", clinic.Name, p.RequireSecondFactor, p.AllowPasswordless)
	return nil
}
