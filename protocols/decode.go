package protocols

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one thing wrong in a protocol or scale file.
type Problem struct {
	File    string
	Line    int    // 1-based; 0 when no line applies
	Field   string // path of the field, such as timepoints[2].views[0]
	Message string
}

// String formats the problem as file:line: field: message, the shape editors and CI logs link.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Message)
	return b.String()
}

// ValidationError lists every problem found, so an author fixes a file in one pass.
type ValidationError struct {
	Problems []Problem
}

// Error lists one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxFileSize bounds what the parser is asked to read; real protocols are a few kilobytes.
const maxFileSize = 256 << 10

// decoder turns a YAML syntax tree into values by hand: walking the tree is what lets it report
// every problem with its line instead of stopping at the first one.
type decoder struct {
	file     string
	problems []Problem
	lines    map[string]int // field path -> line where it was written
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}}
}

func (d *decoder) problem(line int, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Field: oneLine(field), Message: oneLine(fmt.Sprintf(format, args...))})
}

// oneLine keeps a problem on one line whatever a key or value in the file contains.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// lineOf returns the line of field, or of its nearest written ancestor when it is missing.
func (d *decoder) lineOf(field string) int {
	for field != "" {
		if l, ok := d.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return d.lines[""]
}

// err returns the collected problems sorted by line, or nil.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	ps := slices.Clone(d.problems)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return &ValidationError{Problems: ps}
}

// parse reads the single YAML document of a file. The parser is third-party code fed by clinic
// files, so a panic inside it becomes a problem rather than a crash.
func (d *decoder) parse(data []byte) (body ast.Node) {
	d.lines[""] = 1
	if len(data) > maxFileSize {
		d.problem(0, "", "file is larger than %d KiB; a protocol is a few kilobytes", maxFileSize>>10)
		return nil
	}
	if tooDeep(data) {
		d.problem(0, "", "nested more than %d levels deep; a protocol needs only a few", maxDepth)
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			d.problem(0, "", "cannot read YAML: parser failed: %v", r)
			body = nil
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) {
			line := 0
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				line = tk.Position.Line
			}
			d.problem(line, "", "invalid YAML: %s", ye.GetMessage())
		} else {
			d.problem(0, "", "invalid YAML: %v", err)
		}
		return nil
	}
	var docs []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc.Body)
		}
	}
	switch len(docs) {
	case 0:
		d.problem(0, "", "file is empty")
		return nil
	case 1:
		return docs[0]
	default:
		d.problem(nodeLine(docs[1]), "", "found %d YAML documents; write one per file", len(docs))
		return nil
	}
}

// maxDepth bounds nesting before the parser sees it: the parser slows down sharply on deeply
// nested input, and a protocol is never more than four levels deep.
const maxDepth = 64

// tooDeep is a rough scan for runaway nesting: brackets and braces (even inside quotes, which
// only makes it stricter than needed) and sequence dashes stacked on one line.
func tooDeep(data []byte) bool {
	depth := 0
	for _, line := range strings.Split(string(data), "\n") {
		dashes := 0
		for _, f := range strings.Fields(line) {
			if f != "-" {
				break
			}
			dashes++
		}
		if dashes > maxDepth {
			return true
		}
		for _, c := range line {
			switch c {
			case '[', '{':
				depth++
				if depth > maxDepth {
					return true
				}
			case ']', '}':
				depth = max(depth-1, 0)
			}
		}
	}
	return false
}

func nodeLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line
	}
	return 0
}

// entry is a value found in the file with the line it was written on.
type entry struct {
	line int
	node ast.Node
}

// object is a decoded mapping: its fields by name, each with its line.
type object struct {
	path   string
	line   int
	fields map[string]entry
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// plain rejects YAML features the format does not use: they make a file harder to review and
// would let one edit silently change several timepoints.
func (d *decoder) plain(e entry, field string) (ast.Node, bool) {
	switch e.node.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode, *ast.MergeKeyNode:
		d.problem(e.line, field, "anchors, aliases, tags and merge keys are not supported; write the value out")
		return nil, false
	}
	return e.node, true
}

// object decodes a mapping whose allowed field names are known; every unknown key is reported.
func (d *decoder) object(e entry, path string, known ...string) (object, bool) {
	return d.objectOf(e, path, "unknown field; known fields are "+strings.Join(known, ", "), known)
}

func (d *decoder) objectOf(e entry, path, unknown string, known []string) (object, bool) {
	obj := object{path: path, line: e.line, fields: map[string]entry{}}
	n, ok := d.plain(e, path)
	if !ok {
		return obj, false
	}
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.problem(e.line, path, "must be a mapping of fields (%s), not %s", strings.Join(known, ", "), describe(n))
		return obj, false
	}
	for _, kv := range pairs {
		line := nodeLine(kv.Key)
		name, ok := keyName(kv.Key)
		if !ok {
			d.problem(line, path, "field names must be plain words")
			continue
		}
		field := join(path, name)
		if !slices.Contains(known, name) {
			d.problem(line, field, "%s", unknown)
			continue
		}
		if _, dup := obj.fields[name]; dup { // the parser rejects most duplicates; be sure
			d.problem(line, field, "written twice")
			continue
		}
		// Report problems with a value at its key: that is where an author looks.
		obj.fields[name] = entry{line: line, node: kv.Value}
		d.lines[field] = line
	}
	return obj, true
}

func keyName(k ast.MapKeyNode) (string, bool) {
	switch k := k.(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return k.GetToken().Value, true
	}
	return "", false
}

// get returns a field that must be present and non-null.
func (d *decoder) get(o object, name string) (entry, bool) {
	e, ok := o.fields[name]
	if !ok {
		d.problem(o.line, join(o.path, name), "missing")
		return e, false
	}
	if _, null := e.node.(*ast.NullNode); null || e.node == nil {
		d.problem(e.line, join(o.path, name), "is empty")
		return e, false
	}
	return e, true
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode, nil:
		return "nothing"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode, *ast.BoolNode, *ast.StringNode:
		return fmt.Sprintf("%q", n.GetToken().Value)
	}
	return "text"
}

func (d *decoder) str(e entry, field string) (string, bool) {
	n, ok := d.plain(e, field)
	if !ok {
		return "", false
	}
	var s string
	switch v := n.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		if v.Value != nil {
			s = v.Value.Value
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		s = v.GetToken().Value // a label such as 2024 is still text
	default:
		d.problem(e.line, field, "must be text, not %s", describe(n))
		return "", false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		d.problem(e.line, field, "is empty")
		return "", false
	}
	return s, true
}

func (d *decoder) integer(e entry, field string) (int, bool) {
	n, ok := d.plain(e, field)
	if !ok {
		return 0, false
	}
	v, isInt := n.(*ast.IntegerNode)
	if !isInt {
		d.problem(e.line, field, "must be a whole number, not %s", describe(n))
		return 0, false
	}
	switch x := v.Value.(type) {
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int(x), true
		}
	case uint64:
		if x <= math.MaxInt32 {
			return int(x), true
		}
	}
	d.problem(e.line, field, "number %s is out of range", v.GetToken().Value)
	return 0, false
}

func (d *decoder) boolean(e entry, field string) (bool, bool) {
	n, ok := d.plain(e, field)
	if !ok {
		return false, false
	}
	v, isBool := n.(*ast.BoolNode)
	if !isBool {
		d.problem(e.line, field, "must be true or false, not %s", describe(n))
		return false, false
	}
	return v.Value, true
}

// list returns the items of a sequence, each with its own line.
func (d *decoder) list(e entry, field string) ([]entry, bool) {
	n, ok := d.plain(e, field)
	if !ok {
		return nil, false
	}
	seq, isSeq := n.(*ast.SequenceNode)
	if !isSeq {
		d.problem(e.line, field, "must be a list, not %s", describe(n))
		return nil, false
	}
	items := make([]entry, 0, len(seq.Values))
	for i, v := range seq.Values {
		line := nodeLine(v)
		if line == 0 {
			line = e.line
		}
		d.lines[fmt.Sprintf("%s[%d]", field, i)] = line
		items = append(items, entry{line: line, node: v})
	}
	return items, true
}

// text decodes a mapping of language to text and insists on every language: a parent reading
// Chinese must never be left with a gap.
func (d *decoder) text(e entry, field string) Text {
	langs := Langs()
	o, ok := d.objectOf(e, field, "unknown language; write "+strings.Join(langs, " and "), langs)
	if !ok {
		return nil
	}
	t := Text{}
	for _, lang := range langs {
		le, present := o.fields[lang]
		if !present {
			d.problem(o.line, join(field, lang), "missing %s text", langName(lang))
			continue
		}
		if s, ok := d.str(le, join(field, lang)); ok {
			t[lang] = s
		}
	}
	return t
}

func langName(lang string) string {
	switch lang {
	case EN:
		return "English (en)"
	case ZH:
		return "Simplified Chinese (zh-CN)"
	}
	return lang
}

func (d *decoder) slug(e entry, field, what string) (string, bool) {
	s, ok := d.str(e, field)
	if !ok {
		return "", false
	}
	if !slugPattern.MatchString(s) {
		d.problem(e.line, field, "%s %q must be lower-case letters and digits joined by single hyphens, like week-1", what, s)
		return "", false
	}
	return s, true
}
