package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CPU time and memory from /proc: where the cores and the memory went during a load.

type cpuAccount struct {
	pids      map[string]int
	procs     map[string]float64
	busy, all float64
}

func startCPUAccount(spec string) (*cpuAccount, error) {
	a := &cpuAccount{pids: map[string]int{"loadtest": os.Getpid()}}
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		name, p, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("-cpu %q: want name=pid", kv)
		}
		a.pids[name] = pid
	}
	a.procs = a.sample()
	a.busy, a.all = machineCPU()
	return a, nil
}

// stop returns the CPU seconds each process used since the start, and the machine's busy share.
func (a *cpuAccount) stop() (map[string]float64, float64) {
	now := a.sample()
	out := map[string]float64{}
	for name, s := range now {
		if was, ok := a.procs[name]; ok {
			out[name] = math.Round((s-was)*100) / 100
		}
	}
	busy, all := machineCPU()
	pct := 0.0
	if all > a.all {
		pct = math.Round(100*(busy-a.busy)/(all-a.all)*10) / 10
	}
	return out, pct
}

func (a *cpuAccount) sample() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range a.pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if s, ok := statCPUSeconds(b); ok {
			out[name] = s
		}
	}
	return out
}

// statCPUSeconds is utime + stime of a /proc/PID/stat line, in seconds.
func statCPUSeconds(stat []byte) (float64, bool) {
	// Fields after the command name, which may hold spaces and parentheses: state is field 3,
	// utime 14, stime 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks, true
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports in practice.
const clockTicks = 100

// machineCPU returns busy and total jiffies of all cores from /proc/stat.
func machineCPU() (busy, all float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return cpuLineJiffies(line)
}

// cpuLineJiffies reads the "cpu" line of /proc/stat: busy and total jiffies.
func cpuLineJiffies(line string) (busy, all float64) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, 0
	}
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		all += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, all
}

type rssSampler struct {
	pid  int
	idle int64
	peak atomic.Int64
	done chan struct{}
	wg   sync.WaitGroup
}

func startRSSSampler(pid int) (*rssSampler, error) {
	st, err := procStatus(pid)
	if err != nil {
		return nil, err
	}
	s := &rssSampler{pid: pid, idle: st["VmRSS"], done: make(chan struct{})}
	s.peak.Store(st["VmRSS"])
	s.wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
			}
			if st, err := procStatus(pid); err == nil && st["VmRSS"] > s.peak.Load() {
				s.peak.Store(st["VmRSS"])
			}
		}
	})
	return s, nil
}

func (s *rssSampler) stop() (peakKB, hwmKB int64) {
	close(s.done)
	s.wg.Wait()
	st, _ := procStatus(s.pid)
	return s.peak.Load(), st["VmHWM"]
}

// procStatus reads the kB fields of /proc/PID/status (VmRSS, VmHWM, ...).
func procStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("server process %d: %w", pid, err)
	}
	return statusKB(string(b)), nil
}

// statusKB picks the "Name:  N kB" lines of a /proc/PID/status text.
func statusKB(text string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return out
}

func kbToMB(kb int64) float64 { return float64(kb) * 1024 / mb }
