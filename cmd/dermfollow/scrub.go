package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dermfollow/dermfollow/imagestore"
)

// runScrub applies exactly the sanitizer that uploads go through to one file.
func runScrub(ctx context.Context, args []string, getenv env, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scrub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "print what was removed (kinds and byte counts, never values)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: dermfollow scrub [-v] IN OUT

Removes every identifying metadata field from the JPEG, PNG or WebP photo IN, losslessly (the
image data is kept byte for byte), and writes the clean file to OUT. Exits 0 with a clean
file, or non-zero with one line saying why, leaving OUT untouched.`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return usageError{"scrub needs IN and OUT"}
	}
	in, out := fs.Arg(0), fs.Arg(1)
	clean, err := scrubFile(in, out)
	if err != nil {
		var re *imagestore.RejectError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: refused (%s): %s", in, re.Reason, re.Message("en"))
		}
		return err
	}
	if *verbose {
		m := clean.Meta
		fmt.Fprintf(stdout, "%s: %s %dx%d, orientation %d, %d bytes written\n", out, clean.Format, m.Width, m.Height, m.Orientation, clean.Size())
		if len(clean.Removed) == 0 {
			fmt.Fprintln(stdout, "removed nothing: the file was already clean")
		}
		for _, r := range clean.Removed {
			fmt.Fprintf(stdout, "removed %s %d bytes\n", r.Kind, r.Bytes)
		}
	}
	return nil
}

// scrubFile sanitizes in into out atomically: a refused or failed run leaves out as it was.
func scrubFile(in, out string) (*imagestore.Clean, error) {
	src, err := os.Open(in)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", in)
	}
	clean, err := imagestore.Sanitize(src, st.Size(), imagestore.DefaultLimits())
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".scrub-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, clean.NewReader()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, err
	}
	return clean, os.Rename(tmp.Name(), out)
}
