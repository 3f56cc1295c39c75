// Command sizecheck enforces the project's size rules on its Go code (not tests, not
// generated code, not imagestore/internal/jpegscale, a copy of the standard library's
// decoder): no file over 450 lines and no function over 80, so that a reader finds their way.
// `make lint` runs it; it lists what is over and exits 1.
//
//	go run ./scripts/sizecheck [dir]
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	maxFileLines = 450
	maxFuncLines = 80
)

// exempt are paths the rules do not apply to, with why.
var exempt = map[string]string{
	"imagestore/internal/jpegscale": "a copy of Go's image/jpeg, kept close to it to be read against it",
	".tools":                        "tools built by the project",
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	problems, err := check(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sizecheck:", err)
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "sizecheck: %d over the size rules (files %d lines, functions %d)\n", len(problems), maxFileLines, maxFuncLines)
		os.Exit(1)
	}
}

// check lists the files and functions under root that break the rules.
func check(root string) ([]string, error) {
	var problems []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if _, ok := exempt[filepath.ToSlash(rel)]; ok || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "_templ.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		if n := fset.Position(f.End()).Line; n > maxFileLines {
			problems = append(problems, fmt.Sprintf("%s: %d lines (at most %d)", rel, n, maxFileLines))
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
			if n := end - start + 1; n > maxFuncLines {
				problems = append(problems, fmt.Sprintf("%s:%d: func %s: %d lines (at most %d)", rel, start, funcName(fn), n, maxFuncLines))
			}
		}
		return nil
	})
	sort.Strings(problems)
	return problems, err
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok {
		t = g.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
