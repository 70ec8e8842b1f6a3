package posture

import (
	"os"
	"path/filepath"
	"testing"
)

// TestScanProcessesOwned: with package records, a process whose exe no
// package owns is listed; one whose exe a package owns is not.
func TestScanProcessesOwned(t *testing.T) {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc/self/exe:", err)
	}
	self = filepath.Clean(self)
	find := func(owned func(string) bool) *Process {
		procs, _, err := ScanProcesses(ProcOptions{Owned: owned})
		if err != nil {
			t.Fatal(err)
		}
		for i := range procs {
			if procs[i].PID == os.Getpid() {
				return &procs[i]
			}
		}
		return nil
	}
	if p := find(func(p string) bool { return p != self }); p == nil || p.Reason != "runs a file no package owns" {
		t.Errorf("unowned test binary: %+v", p)
	}
	if p := find(func(string) bool { return true }); p != nil && p.Reason == "runs a file no package owns" {
		t.Errorf("owned exe listed: %+v", p)
	}
}
