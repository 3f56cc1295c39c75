package main

import (
	"os"
	"testing"
)

func TestStatCPUSeconds(t *testing.T) {
	// A command name with spaces and a closing parenthesis, as a process may choose; utime
	// 1234 and stime 56 ticks (fields 14 and 15).
	stat := "4242 (min io) (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 12 0 100 2000000 3000 18446744073709551615\n"
	got, ok := statCPUSeconds([]byte(stat))
	if !ok || got != 12.90 {
		t.Fatalf("statCPUSeconds = %v, %v; want 12.90 s", got, ok)
	}
	for _, bad := range []string{"", "4242 (short) S 1 2", "no parenthesis at all 1 2 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if _, ok := statCPUSeconds([]byte(bad)); ok {
			t.Errorf("statCPUSeconds(%q) read a value", bad)
		}
	}
}

func TestStatCPUSecondsOfThisProcess(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := statCPUSeconds(b); !ok || s < 0 {
		t.Fatalf("statCPUSeconds(/proc/self/stat) = %v, %v", s, ok)
	}
}

func TestCPULineJiffies(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	busy, all := cpuLineJiffies("cpu  100 10 50 800 20 5 5 10 40 4")
	if busy != 180 || all != 1000 {
		t.Fatalf("busy %v of %v, want 180 of 1000 (idle and iowait not busy; guest already in user)", busy, all)
	}
	if b, a := cpuLineJiffies(""); b != 0 || a != 0 {
		t.Fatalf("empty line: %v, %v", b, a)
	}
}

func TestStatusKB(t *testing.T) {
	got := statusKB("Name:\tdermfollow\nVmPeak:\t  1300000 kB\nVmHWM:\t   112640 kB\nVmRSS:\t    30720 kB\nThreads:\t12\n")
	if got["VmHWM"] != 112640 || got["VmRSS"] != 30720 || len(got) != 3 {
		t.Fatalf("statusKB = %v", got)
	}
	if mb := kbToMB(got["VmHWM"]); mb < 115.3 || mb > 115.4 {
		t.Fatalf("kbToMB(112640) = %v, want 115.34 (MB of 10^6 bytes)", mb)
	}
}
