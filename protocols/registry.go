package protocols

import (
	"cmp"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// The protocols and scales that ship in the binary.
//
//go:embed shipped/*.yaml scales/*.yaml
var embedded embed.FS

// ErrNotFound is returned (wrapped) for an unknown protocol id, version or scale.
var ErrNotFound = errors.New("not found")

// shippedScales parses the embedded scales once; the result is never modified.
var shippedScales = sync.OnceValues(func() (map[string]*Scale, error) {
	names, err := fs.Glob(embedded, "scales/*.yaml")
	if err != nil {
		return nil, err
	}
	scales := map[string]*Scale{}
	var problems []Problem
	for _, name := range names {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("protocols: read %s: %w", name, err)
		}
		s, err := decodeScale(name, data)
		if err != nil {
			problems = append(problems, problemsOf(err, name)...)
			continue
		}
		if _, dup := scales[s.ID]; dup {
			problems = append(problems, Problem{File: name, Line: 1, Field: "id", Message: fmt.Sprintf("scale %q is defined twice", s.ID)})
			continue
		}
		scales[s.ID] = s
	}
	if problems != nil {
		return nil, &ValidationError{Problems: problems}
	}
	return scales, nil
})

// Registry holds every version of every protocol, so a procedure keeps the version it was
// enrolled with, and the grading scales. It is read-only after LoadRegistry and safe for
// concurrent use.
type Registry struct {
	versions map[string][]*Protocol // by id, in increasing version
	scales   map[string]*Scale
}

// LoadRegistry loads the shipped protocols and, when dir is not "", the clinic's own protocol
// files (*.yaml and *.yml directly in dir). Every file is validated; a clinic file may add a
// protocol or a newer version of a shipped one, but never reuse an id and version that exists.
// Validation failures come back as one *ValidationError listing the problems of all files.
func LoadRegistry(dir string) (*Registry, error) {
	scales, err := shippedScales()
	if err != nil {
		return nil, err
	}
	r := &Registry{versions: map[string][]*Protocol{}, scales: scales}
	var problems []Problem
	add := func(name string, data []byte) {
		p, err := decodeProtocol(name, data, scales)
		if err != nil {
			problems = append(problems, problemsOf(err, name)...)
			return
		}
		if prev, err := r.Get(p.ID, p.Version); err == nil {
			problems = append(problems, Problem{File: name, Line: p.versionLine, Field: "version", Message: fmt.Sprintf(
				"protocol %s version %d is already defined in %s; give this one a higher version (or its own id)",
				p.ID, p.Version, prev.Source)})
			return
		}
		vs := append(r.versions[p.ID], p)
		slices.SortFunc(vs, func(a, b *Protocol) int { return cmp.Compare(a.Version, b.Version) })
		r.versions[p.ID] = vs
	}

	shipped, err := fs.Glob(embedded, "shipped/*.yaml")
	if err != nil {
		return nil, err
	}
	for _, name := range shipped {
		data, err := embedded.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("protocols: read %s: %w", name, err)
		}
		add(name, data)
	}

	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("protocols: read protocol dir: %w", err)
		}
		for _, e := range entries { // ReadDir sorts by name, so messages come in a stable order
			name := e.Name()
			ext := strings.ToLower(path.Ext(name))
			if e.IsDir() || strings.HasPrefix(name, ".") || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			file := filepath.Join(dir, name)
			if info, err := e.Info(); err == nil && info.Size() > maxFileSize {
				problems = append(problems, Problem{File: file, Message: fmt.Sprintf("file is larger than %d KiB; a protocol is a few kilobytes", maxFileSize>>10)})
				continue
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, fmt.Errorf("protocols: read protocol file: %w", err)
			}
			add(file, data)
		}
	}
	if problems != nil {
		return nil, &ValidationError{Problems: problems}
	}
	return r, nil
}

// problemsOf turns a decode error into problems; anything else becomes one problem of the file.
func problemsOf(err error, file string) []Problem {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	return []Problem{{File: file, Message: err.Error()}}
}

// Protocols returns every version of every protocol, by id and then version.
func (r *Registry) Protocols() []*Protocol {
	var out []*Protocol
	for _, id := range slices.Sorted(maps.Keys(r.versions)) {
		out = append(out, r.versions[id]...)
	}
	return out
}

// Get returns one version of a protocol: the one a procedure was enrolled with.
func (r *Registry) Get(id string, version int) (*Protocol, error) {
	for _, p := range r.versions[id] {
		if p.Version == version {
			return p, nil
		}
	}
	return nil, fmt.Errorf("protocols: protocol %q version %d: %w", id, version, ErrNotFound)
}

// Latest returns the highest version of a protocol: the one new procedures are enrolled with.
func (r *Registry) Latest(id string) (*Protocol, error) {
	vs := r.versions[id]
	if len(vs) == 0 {
		return nil, fmt.Errorf("protocols: protocol %q: %w", id, ErrNotFound)
	}
	return vs[len(vs)-1], nil
}

// Scale returns a grading scale by id.
func (r *Registry) Scale(id string) (*Scale, error) {
	s, ok := r.scales[id]
	if !ok {
		return nil, fmt.Errorf("protocols: grading scale %q: %w", id, ErrNotFound)
	}
	return s, nil
}

// Scales returns every grading scale, by id.
func (r *Registry) Scales() []*Scale {
	var out []*Scale
	for _, id := range slices.Sorted(maps.Keys(r.scales)) {
		out = append(out, r.scales[id])
	}
	return out
}
