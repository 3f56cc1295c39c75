package main

import (
	"slices"
	"testing"
)

const benchOut = `goos: linux
goarch: amd64
pkg: github.com/dermfollow/dermfollow/imagestore
cpu: Oxide Virtual Turin-like Processor
BenchmarkSanitizeJPEG12MP/bytes-2         	     373	   3183577 ns/op	1298.03 MB/s	 4191301 B/op	     357 allocs/op
    bench_test.go:40: photo: 4000x3000, 4130000 bytes
BenchmarkSanitizeJPEG12MP/stream-2        	    1670	    710122 ns/op	5851.01 MB/s	   77009 B/op	     365 allocs/op
BenchmarkThumbnail12MP/all-sizes-one-decode-2 	       3	 441660000 ns/op
BenchmarkExport/plain-read-parallel-2     	       2	2326260000 ns/op	 396.70 MB/s	         3.000 readers
BenchmarkExport/export-2                  	       2	7363210000 ns/op	 125.50 MB/s	        65.90 peak-heap-MB
BenchmarkBroken-2                         	    many	       1 ns/op
BenchmarkNameOnly-2
BenchmarkExport/export-2                  	       1	7000000000 ns/op	 132.00 MB/s	   bad peak-heap-MB
--- FAIL: BenchmarkOther
PASS
ok  	github.com/dermfollow/dermfollow/imagestore	25.1s
`

func TestParseBench(t *testing.T) {
	o := parseBench(benchOut)
	if o.config["cpu"] != "Oxide Virtual Turin-like Processor" || o.config["goos"] != "linux" ||
		o.config["pkg"] != "github.com/dermfollow/dermfollow/imagestore" {
		t.Errorf("config = %v", o.config)
	}
	var names []string
	for _, r := range o.results {
		names = append(names, r.name)
	}
	want := []string{"BenchmarkSanitizeJPEG12MP/bytes", "BenchmarkSanitizeJPEG12MP/stream",
		"BenchmarkThumbnail12MP/all-sizes-one-decode", "BenchmarkExport/plain-read-parallel",
		"BenchmarkExport/export", "BenchmarkExport/export"}
	if !slices.Equal(names, want) {
		t.Fatalf("results %q, want %q", names, want)
	}
	b := o.results[0]
	if b.iterations != 373 || b.values["ns/op"] != 3183577 || b.values["MB/s"] != 1298.03 ||
		b.values["B/op"] != 4191301 || b.values["allocs/op"] != 357 {
		t.Errorf("bytes = %+v", b)
	}
	if v := o.results[3].values["readers"]; v != 3 {
		t.Errorf("custom unit readers = %v, want 3", v)
	}
	if _, ok := o.results[5].values["peak-heap-MB"]; ok {
		t.Errorf("a value that is not a number was read: %v", o.results[5].values)
	}
}

func TestBenchSubs(t *testing.T) {
	o := parseBench(benchOut)
	var subs []string
	for _, s := range o.subs("BenchmarkSanitizeJPEG12MP") {
		subs = append(subs, s.sub)
	}
	if !slices.Equal(subs, []string{"bytes", "stream"}) {
		t.Errorf("subs = %q", subs)
	}
	m := o.subMap("BenchmarkExport")
	if len(m) != 2 {
		t.Fatalf("subMap = %v", m)
	}
	// -count repeats a sub-benchmark: the last result is the one kept.
	if e := m["export"]; e.iterations != 1 || e.values["MB/s"] != 132 {
		t.Errorf("export = %+v, want the last of the two lines", e)
	}
	if len(o.subs("BenchmarkExpor")) != 0 {
		t.Error("a parent matched by a prefix of its name")
	}
}

// A sub-benchmark name with a hyphen and digits in it keeps them; only the -GOMAXPROCS suffix goes.
func TestParseBenchSuffix(t *testing.T) {
	o := parseBench("BenchmarkA/size-320-2 \t 10\t 5 ns/op\nBenchmarkB/q-95 \t 10\t 5 ns/op\n")
	if o.results[0].name != "BenchmarkA/size-320" {
		t.Errorf("name = %q", o.results[0].name)
	}
	// Without the suffix (GOMAXPROCS=1 prints none) a trailing -95 is taken for it, as
	// benchfmt does too: sub-benchmarks here are named without a trailing number.
	if o.results[1].name != "BenchmarkB/q" {
		t.Errorf("name = %q", o.results[1].name)
	}
}
