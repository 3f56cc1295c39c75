package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// htmlStringAllowed is the short list of Go strings in web/ that may hold a tag, by
// "file: the literal": none today. A page is a templ component, escaped by context.
var htmlStringAllowed = map[string]bool{}

// tagInString finds an HTML tag (opening or closing) in a string.
var tagInString = regexp.MustCompile(`<\s*/?\s*[a-zA-Z][a-zA-Z0-9-]*(\s|>|/>)`)

// TestNoHTMLBuiltFromStrings: outside templ's generated code, no Go file of the web package
// writes HTML: no tag in a string literal, no html/template, and none of the conversions that
// mark a string as safe HTML (template.HTML, templ.Raw). One forgotten escape in hand-built
// HTML is a stored XSS in a clinical record.
func TestNoHTMLBuiltFromStrings(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_templ.go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "html/template" || p == "text/template" {
				t.Errorf("%s imports %s: pages are templ components", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(n.Value)
				if err == nil && tagInString.MatchString(s) && !htmlStringAllowed[name+": "+s] {
					t.Errorf("%s: a string holds HTML: %.60q", fset.Position(n.Pos()), s)
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && (x.Name == "template" && n.Sel.Name == "HTML" ||
					x.Name == "templ" && (n.Sel.Name == "Raw" || n.Sel.Name == "SafeURL" || n.Sel.Name == "ComponentFunc")) {
					t.Errorf("%s: %s.%s marks text as safe markup or writes HTML by hand", fset.Position(n.Pos()), x.Name, n.Sel.Name)
				}
			}
			return true
		})
	}
	if checked < 20 {
		t.Fatalf("checked %d files: the test no longer finds the package's sources", checked)
	}
	// The check itself: it finds what it is for.
	for _, s := range []string{"<p>", "</div>", `<a href="x">`, "<br/>", "< script >"} {
		if !tagInString.MatchString(s) {
			t.Errorf("the tag pattern misses %q", s)
		}
	}
	for _, s := range []string{"a < b", "3<4", "<-chan", "x <= y"} {
		if tagInString.MatchString(s) {
			t.Errorf("the tag pattern takes %q for a tag", s)
		}
	}
}
