package main

import (
	"regexp"
	"strconv"
	"strings"
)

// Reading `go test -bench` output.

type goBench struct {
	name                    string
	nsPerOp, mbPerS, bPerOp float64
	allocsPerOp             float64
	iterations              int
}

// parseGoBench reads `go test -bench -benchmem` lines: name-P  N  v unit  v unit ...
func parseGoBench(out string) []goBench {
	var res []goBench
	procs := regexp.MustCompile(`-\d+$`)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		it, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		gb := goBench{name: procs.ReplaceAllString(f[0], ""), iterations: it}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				gb.nsPerOp = v
			case "MB/s":
				gb.mbPerS = v
			case "B/op":
				gb.bPerOp = v
			case "allocs/op":
				gb.allocsPerOp = v
			}
		}
		res = append(res, gb)
	}
	return res
}
