package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// The ingest section of the report: the comparison of the server's upload path with a plain
// PutObject, in two setups, each against its own baseline taken in that setup.

// ingestSetup names the result files of one setup and its target.
type ingestSetup struct {
	label  string  // in the tables
	row    string  // name of the summary row
	suffix string  // of the result files: put<suffix>.json, ingest<suffix>.json, ingest<suffix>-after.json
	log    string  // the server's log
	target float64 // ingest MB/s over PutObject MB/s, at least
}

var ingestSetups = []ingestSetup{
	{label: "shared cores", row: "Ingest vs PutObject, shared cores", log: "server-ingest.log", target: targetIngestRatio},
	{label: "MinIO on its own core", row: "Ingest vs PutObject, MinIO on its own core", suffix: "-pinned",
		log: "server-pinned.log", target: targetIngestPinnedRatio},
}

// ingestAfter is what bench.sh records about a setup after its loads.
type ingestAfter struct {
	ThumbsPending int    `json:"thumbs_pending"`
	Photos        int    `json:"photos"`
	Skipped       string `json:"skipped,omitempty"` // why the setup did not run
	MinIOCPUs     string `json:"minio_cpus,omitempty"`
	ServerCPUs    string `json:"server_cpus,omitempty"`
	PGBackends    int    `json:"pg_backends_pinned,omitempty"`
}

// ingestRun is one setup's figures.
type ingestRun struct {
	ingestSetup
	in, put loadResult
	after   ingestAfter
	ratio   float64
	result  string
	logs    string
}

func (rp *report) ingest() {
	var runs []ingestRun
	var notes []string
	for _, s := range ingestSetups {
		if r, note := rp.ingestRun(s); note == "" {
			runs = append(runs, r)
		} else {
			notes = append(notes, note)
		}
	}
	var sec strings.Builder
	if len(runs) == 0 {
		rp.sections = append(rp.sections, "## 3. Ingest vs PutObject (issues 5 and 15)\n\n"+strings.Join(notes, "\n\n")+"\n")
		return
	}
	in := runs[0].in
	fmt.Fprintf(&sec, ingestText, in.Concurrency, in.Files, float64(in.FileBytes)/mb, max(in.Rounds, 1), in.MaxRequests, fmtSeconds(in.MaxSeconds),
		in.Warmup, targetIngestRatio, targetIngestPinnedRatio)
	for _, r := range runs {
		sec.WriteString(ingestLine(r.label, "ingest (server)", r.in) + "\n" + ingestLine(r.label, "PutObject (baseline)", r.put) + "\n")
	}
	sec.WriteString(ingestCPUText)
	for _, r := range runs {
		sec.WriteString(ingestCPULine(r.label, "ingest (server)", r.in) + "\n" + ingestCPULine(r.label, "PutObject (baseline)", r.put) + "\n")
	}
	sec.WriteString("\n")
	for _, r := range runs {
		fmt.Fprintf(&sec, "%s: ratio %.2f (target %.1f): **%s**. %d of %d photos still had no thumbnails when the run ended. "+
			"Server log (level warn): %s.%s\n\n", capitalize(r.label), r.ratio, r.target, r.result,
			r.after.ThumbsPending, r.after.Photos, r.logs, pinnedNote(r.after))
	}
	for _, n := range notes {
		sec.WriteString(n + "\n\n")
	}
	for _, r := range runs {
		if r.result == "ERROR" {
			fmt.Fprintf(&sec, "**Errors (%s)**: %d of %d uploads and %d of %d puts failed: %s\n\n", r.label,
				r.in.Failed, r.in.Requests, r.put.Failed, r.put.Requests, strings.Join(append(r.in.Errors, r.put.Errors...), "; "))
		}
	}
	rp.sections = append(rp.sections, strings.TrimRight(sec.String(), "\n")+"\n")
}

// ingestRun reads one setup's results and adds its summary row. Without figures to show (a
// setup that was skipped, or whose results are missing: an error) it returns a note saying why.
func (rp *report) ingestRun(s ingestSetup) (ingestRun, string) {
	r := ingestRun{ingestSetup: s}
	_ = readJSON(filepath.Join(rp.dir, "ingest"+s.suffix+"-after.json"), &r.after)
	if r.after.Skipped != "" {
		rp.rows = append(rp.rows, row{s.row, "-", "-", "-", fmt.Sprintf("≥ %.1f", s.target), "SKIPPED"})
		return r, fmt.Sprintf("%s: skipped: %s.", capitalize(s.label), r.after.Skipped)
	}
	for _, f := range []struct {
		file string
		into *loadResult
	}{{"put" + s.suffix + ".json", &r.put}, {"ingest" + s.suffix + ".json", &r.in}} {
		if err := readJSON(filepath.Join(rp.dir, f.file), f.into); err != nil {
			rp.errors++
			rp.rows = append(rp.rows, row{s.row, "-", "-", "-", "-", "ERROR"})
			return r, fmt.Sprintf("%s: ERROR: %s: %v", capitalize(s.label), f.file, err)
		}
	}
	r.logs = countLog(filepath.Join(rp.dir, s.log))
	r.ratio = ratio(r.in.MBPerS, r.put.MBPerS)
	r.result = verdict(r.ratio >= s.target)
	if r.in.Failed > 0 || r.put.Failed > 0 || r.in.OK == 0 || r.put.OK == 0 {
		rp.errors++
		r.result = "ERROR"
	}
	rp.rows = append(rp.rows, row{s.row,
		fmt.Sprintf("%.1f MB/s; CPU per photo: server %s, MinIO %s", r.in.MBPerS, cpuPerRequest(r.in, "server"), cpuPerRequest(r.in, "minio")),
		fmt.Sprintf("%.1f MB/s; MinIO %s per photo", r.put.MBPerS, cpuPerRequest(r.put, "minio")),
		fmt.Sprintf("%.2f", r.ratio), fmt.Sprintf("≥ %.1f", s.target), r.result})
	return r, ""
}

func pinnedNote(a ingestAfter) string {
	if a.MinIOCPUs == "" {
		return ""
	}
	return fmt.Sprintf(" MinIO ran on CPU %s; the server, the load generator and %d PostgreSQL backends of the bench database on CPU %s.",
		a.MinIOCPUs, a.PGBackends, a.ServerCPUs)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func ingestLine(setup, label string, r loadResult) string {
	stop := ""
	if r.StoppedBy == "time" {
		stop = " (time limit)"
	}
	return fmt.Sprintf("| %s | %s | %d/%d | %.1f s%s | %.2f | %.1f | %.0f ms | %.0f ms | %.0f ms |",
		setup, label, r.OK, r.Requests, r.Seconds, stop, r.PhotosPerS, r.MBPerS, r.P50MS, r.P95MS, r.MaxMS)
}

// ingestCPULine is where the CPU went during one timed load, and the CPU per photo of the
// server and of MinIO.
func ingestCPULine(setup, label string, r loadResult) string {
	cell := func(name string) string {
		if v, ok := r.CPUSeconds[name]; ok {
			return fmt.Sprintf("%.1f s", v)
		}
		return "-"
	}
	others := r.MachineBusyPct / 100 * float64(runtime.NumCPU()) * r.Seconds
	for _, v := range r.CPUSeconds {
		others -= v
	}
	return fmt.Sprintf("| %s | %s | %.0f%% of %d cores | %s | %s | %s | %.1f s | %s | %s |", setup, label, r.MachineBusyPct,
		runtime.NumCPU(), cell("server"), cell("minio"), cell("loadtest"), max(others, 0), cpuPerRequest(r, "server"), cpuPerRequest(r, "minio"))
}

const ingestText = `## 3. Ingest vs PutObject (issues 5 and 15)

%d concurrent clients send %d distinct photographic JPEGs (%.2f MB each on average, 2400x1800, quality 95) in turn.
Each path runs in %d rounds, the two paths in turn in each round and which goes first alternating, each round up to
%d timed requests or %s, whichever comes first, after %d untimed warm-up requests; a path's figures are over its rounds
(bytes and seconds summed, each latency the median of the rounds'), so that a drift of the machine during the run
(the page cache, other work) falls on both paths alike. Before the rounds, an untimed round of PutObject: the first
puts into an empty MinIO cost it less CPU than later ones, and a store in use is never empty.
Ingest: ` + "`POST /p/{token}/photos`" + ` (multipart) to the real server binary, which holds the upload in memory
(chunks of a 64 MiB budget; beyond it, a temp file), sanitizes it, streams it to MinIO with SSE-S3 while hashing
it, and commits the row and an audit event. Baseline, same bytes and concurrency: one minio-go ` + "`PutObject`" + ` per photo straight to
the same MinIO with exactly the server's options, through the server's own store code (` + "`imagestore.S3Store.Put`" + `:
SSE-S3, a 32 MiB part size so a photo is one PUT, and a trailing CRC32C of the bytes that MinIO verifies
instead of minio-go's SHA-256 payload signing over plain HTTP). The MinIO is a private one that bench.sh starts
for each setup on an empty data folder (same binary, same disk and KMS key as the test MinIO), so that no other
work on the machine talks to it and its CPU time is known. The server's background thumbnailer runs too, as in
production, but gives uploads the CPU first: it starts a photo only after 500 ms without upload work, or once a
photo has waited 30 s. MB/s counts photo bytes acknowledged (201 or stored).

Two setups, each with its own baseline:

- **shared cores**: client, server, MinIO and PostgreSQL share the 2 cores, as on the development and CI
  machine; when they are busy the ratio is mostly the ratio of CPU spent per byte on each path.
  Target: ingest MB/s at least %.1f of PutObject's.
- **MinIO on its own core**: MinIO runs under ` + "`taskset`" + ` on one core, and the server, the load generator and the
  PostgreSQL backends serving the bench database (pinned as they appear) on the other: what a store on its own
  machine looks like. A Go program sees one CPU there (GOMAXPROCS 1, MinIO included). PostgreSQL's shared
  background processes, and the rest of the machine's work, stay on both cores.
  Target: ingest MB/s at least %.1f of PutObject's.

| setup | path | ok/sent | time | photos/s | MB/s | p50 | p95 | max |
|---|---|---|---|---|---|---|---|---|
`

const ingestCPUText = `
Where the CPU went during each timed part (CPU seconds from /proc/PID/stat, utime + stime before and after;
the server's include its thumbnailer; "the rest" is PostgreSQL and whatever else ran on the machine):

| setup | path | machine busy | server | MinIO | load generator | PostgreSQL and the rest | server CPU per photo | MinIO CPU per photo |
|---|---|---|---|---|---|---|---|---|
`
