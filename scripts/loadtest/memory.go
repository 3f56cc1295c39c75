package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Upload memory: bench.sh runs `loadtest ingest -kind memory -pid PID` against a
// fresh server (VmHWM cannot be reset); this is its section of the report.

func (rp *report) memory() {
	const name = "Upload memory, 16 x 20 MB"
	var m loadResult
	if err := readJSON(filepath.Join(rp.dir, "memory.json"), &m); err != nil {
		rp.fail(name, err.Error())
		return
	}
	var after struct {
		HWMKB         int64   `json:"hwm_kb"`
		ThumbsPending int     `json:"thumbs_pending"`
		WaitedS       float64 `json:"waited_s"`
	}
	_ = readJSON(filepath.Join(rp.dir, "memory-after.json"), &after)
	logs := countLog(filepath.Join(rp.dir, "server-memory.log"))
	peak := kbToMB(m.HWMKB)
	res := verdict(peak < targetUploadPeakMB)
	errNote := ""
	if m.Failed > 0 || m.OK == 0 {
		rp.errors++
		res = "ERROR"
		errNote = fmt.Sprintf("\n**Errors**: %d of %d uploads failed: %s\n", m.Failed, m.Requests, strings.Join(m.Errors, "; "))
	}
	rp.rows = append(rp.rows, row{name, fmt.Sprintf("peak %.0f MB", peak), fmt.Sprintf("idle %.0f MB", kbToMB(m.IdleRSSKB)),
		fmt.Sprintf("+%.0f MB", peak-kbToMB(m.IdleRSSKB)), "< 300 MB", res})
	afterLine := "not measured"
	if after.HWMKB > 0 {
		afterLine = fmt.Sprintf("%.0f MB after the background thumbnailer had worked %.0f s on the new photos (%d still pending)",
			kbToMB(after.HWMKB), after.WaitedS, after.ThumbsPending)
	}
	rp.sections = append(rp.sections, fmt.Sprintf(memoryText, m.Requests, float64(m.FileBytes)/mb, m.OK, m.Requests, m.Seconds,
		m.P50MS, m.MaxMS, kbToMB(m.IdleRSSKB), kbToMB(m.PeakRSSKB), peak, afterLine, res, logs, errNote))
}

const memoryText = `## 4. Upload memory (issue 5)

A fresh server process (its demo data seeded by the CLI before it started), then %d concurrent uploads of one
%.1f MB JPEG (6000x4500, quality 100, noise) through ` + "`POST /p/{token}/photos`" + `; the server's upload limit is
its default, 30 MiB. Peak resident memory is the process's VmHWM from /proc (it cannot be reset, hence the
fresh process); the baseline is its VmRSS at rest just before the uploads.
Target: peak under 300 MB.

| figure | value |
|---|---|
| uploads ok/sent | %d/%d in %.1f s (p50 %.0f ms, max %.0f ms) |
| idle RSS (baseline) | %.0f MB |
| highest RSS sampled every 20 ms | %.0f MB |
| peak RSS (VmHWM) when the last upload was answered | **%.0f MB** |
| peak RSS including background thumbnails | %s |

Result: **%s**. Server log (level warn): %s.
%s`
