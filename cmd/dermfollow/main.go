// Command dermfollow is the one Dermfollow binary: the server and its maintenance commands.
//
// Run `dermfollow -h` for the commands and `dermfollow serve -h` for every environment
// variable with its default.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(os.Stderr, "dermfollow:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "dermfollow:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// env is how commands read the environment; tests pass a map.
type env func(string) string

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP server (migrates the database first unless -no-migrate)", runServe},
		{"migrate", "apply pending database migrations and exit", runMigrate},
		{"scrub", "remove identifying metadata from a photo, exactly as uploads are (scrub IN OUT)", runScrub},
		{"protocols", "list, show or validate follow-up protocols", runProtocols},
		{"user", "add clinic users, reset their second factors (user add|reset-2fa)", runUser},
		{"clinic", "change a clinic's sign-in settings (clinic set)", runClinic},
		{"token", "create API tokens (token create)", runToken},
		{"demo", "seed demo data and print a clinician login and a parent link", runDemo},
	}
}

// run is the whole program, callable in-process by tests.
func run(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usageError{"a command is required"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], getenv, stdin, stdout, stderr)
			if errors.Is(err, errHelpShown) {
				return nil
			}
			return err
		}
	}
	printUsage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Dermfollow: photo follow-up after dermatology procedures.")
	fmt.Fprintln(w, "\nUsage: dermfollow COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration comes from environment variables:")
	printEnvHelp(w)
}
