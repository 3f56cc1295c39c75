package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dermfollow/dermfollow/protocols"
)

func runProtocols(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("protocols", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lang := fs.String("lang", protocols.EN, "language of titles and texts: en or zh-CN")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage:
  dermfollow protocols list                 the shipped and the clinic's protocols (every version)
  dermfollow protocols show ID [VERSION]    a protocol's timeline as a table (latest version by default)
  dermfollow protocols validate FILE...     check protocol files; non-zero exit with the problems

Clinic protocols are read from DERMFOLLOW_PROTOCOL_DIR. Flags:`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *lang != protocols.EN && *lang != protocols.ZH {
		return usageError{"-lang must be en or zh-CN"}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usageError{"protocols needs list, show or validate"}
	}
	switch rest[0] {
	case "list":
		reg, err := protocols.LoadRegistry(getenv("DERMFOLLOW_PROTOCOL_DIR"))
		if err != nil {
			return err
		}
		return reg.WriteList(stdout, *lang)
	case "show":
		if len(rest) < 2 || len(rest) > 3 {
			return usageError{"usage: dermfollow protocols show ID [VERSION]"}
		}
		reg, err := protocols.LoadRegistry(getenv("DERMFOLLOW_PROTOCOL_DIR"))
		if err != nil {
			return err
		}
		var p *protocols.Protocol
		if len(rest) == 3 {
			var v int
			if _, err := fmt.Sscan(rest[2], &v); err != nil {
				return usageError{fmt.Sprintf("VERSION must be a number, not %q", rest[2])}
			}
			p, err = reg.Get(rest[1], v)
		} else {
			p, err = reg.Latest(rest[1])
		}
		if err != nil {
			return err
		}
		return p.WriteTable(stdout, *lang)
	case "validate":
		if len(rest) < 2 {
			return usageError{"usage: dermfollow protocols validate FILE..."}
		}
		failed := 0
		for _, name := range rest[1:] {
			data, err := os.ReadFile(name)
			if err == nil {
				_, err = protocols.ValidateFile(name, data)
			}
			if err != nil {
				fmt.Fprintln(stderr, err)
				failed++
				continue
			}
			fmt.Fprintf(stdout, "%s: ok\n", name)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d protocol files have problems", failed, len(rest)-1)
		}
		return nil
	}
	return usageError{fmt.Sprintf("unknown protocols command %q (list, show or validate)", rest[0])}
}
