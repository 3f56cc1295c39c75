package main

import (
	"regexp"
	"strconv"
	"strings"
)

// Reading `go test -bench` output, in the Go benchmark data format (Go proposal 14313):
// configuration lines "key: value", and result
// lines "BenchmarkName-P  N  value unit  value unit ...". golang.org/x/perf/benchfmt reads the
// same format; for the few lines the report reads, this avoids two modules in the product's
// go.mod and benchfmt's unit normalisation (MB/s to B/s, ns/op to sec/op), which the report
// would only have to undo.

// benchResult is one result line.
type benchResult struct {
	name       string // with its sub-benchmarks, without the -GOMAXPROCS suffix
	iterations int
	values     map[string]float64 // by unit: "ns/op", "MB/s", "B/op", "allocs/op", or a custom one
}

// benchOutput is one `go test -bench` run: its configuration and its results in order.
type benchOutput struct {
	config  map[string]string // "goos", "goarch", "pkg", "cpu", ...
	results []benchResult
}

var (
	benchConfigLine = regexp.MustCompile(`^([a-z][^\s:]*):\s*(.*)$`)
	benchProcs      = regexp.MustCompile(`-\d+$`)
)

// parseBench reads every configuration and result line of the output and skips the rest
// (PASS, ok, logs). A result line needs a name, an iteration count and at least one
// value-unit pair; a pair whose value is not a number is skipped.
func parseBench(out string) benchOutput {
	o := benchOutput{config: map[string]string{}}
	for _, line := range strings.Split(out, "\n") {
		if m := benchConfigLine.FindStringSubmatch(line); m != nil {
			o.config[m[1]] = strings.TrimSpace(m[2])
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		it, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		r := benchResult{name: benchProcs.ReplaceAllString(f[0], ""), iterations: it, values: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.values[f[i+1]] = v
			}
		}
		o.results = append(o.results, r)
	}
	return o
}

// benchSub is a sub-benchmark of one parent, named without the parent.
type benchSub struct {
	sub string
	benchResult
}

// subs lists the sub-benchmarks of parent ("BenchmarkExport") in the order of the output.
func (o benchOutput) subs(parent string) []benchSub {
	var out []benchSub
	for _, r := range o.results {
		if sub, ok := strings.CutPrefix(r.name, parent+"/"); ok {
			out = append(out, benchSub{sub, r})
		}
	}
	return out
}

// subMap is subs by name; a sub-benchmark that appears twice (-count) keeps its last result.
func (o benchOutput) subMap(parent string) map[string]benchResult {
	m := map[string]benchResult{}
	for _, s := range o.subs(parent) {
		m[s.sub] = s.benchResult
	}
	return m
}
