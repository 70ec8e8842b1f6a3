package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"opsagent/internal/aoetest"
)

// aoeLog collects the supervisor's output while the test reads it.
type aoeLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *aoeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *aoeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits up to limit for the log to hold s.
func (l *aoeLog) waitFor(s string, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(l.String(), s) {
			return true
		}
	}
	return strings.Contains(l.String(), s)
}

// aoeRig is one run of the AoE integration test: the agent and its vblade
// in namespace A on veth-a, the Go client in namespace B on veth-b.
type aoeRig struct {
	pair   *aoetest.Pair
	conf   string
	runDir string
	client *aoetest.Client
	log    *aoeLog // the supervisor's stdout and stderr
}

const (
	aoeShelf  = 7
	aoeSlot   = 3
	aoeMarker = "OPSAGENT-AOE-TEST sector 0"
	// aoeQuiet is how long the client waits before it calls a target
	// silent. vblade answers a veth in well under a millisecond.
	aoeQuiet = 500 * time.Millisecond
)

// agent runs `agent aoe SUB --exports CONF --run-dir DIR [ALIAS]` inside
// namespace A, where the exports' interface exists (the config is validated
// on every command). The flags go before the alias: urfave/cli stops
// parsing flags at the first argument.
func (r *aoeRig) agent(t *testing.T, sub string, args ...string) result {
	t.Helper()
	argv := append([]string{"aoe", sub, "--exports", r.conf, "--run-dir", r.runDir}, args...)
	return runPrepared(t, aoetest.Command(r.pair.A, agentBin, argv...))
}

// status returns the apollo line of `agent aoe status --json`.
func (r *aoeRig) status(t *testing.T) aoeStatusLine {
	t.Helper()
	res := r.agent(t, "status", "--json")
	if res.code != 0 {
		t.Fatalf("aoe status: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var lines []aoeStatusLine
	if err := json.Unmarshal([]byte(res.stdout), &lines); err != nil {
		t.Fatalf("aoe status --json: %v\n%s", err, res.stdout)
	}
	for _, l := range lines {
		if l.Alias == "apollo" {
			return l
		}
	}
	t.Fatalf("aoe status --json has no apollo:\n%s", res.stdout)
	return aoeStatusLine{}
}

// aoeStatusLine is one export of `agent aoe status --json`.
type aoeStatusLine struct {
	Alias     string    `json:"alias"`
	Shelf     int       `json:"shelf"`
	Slot      int       `json:"slot"`
	PID       int       `json:"pid"`
	State     string    `json:"state"`
	Restarts  int       `json:"restarts"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error"`
}

// read reads sector 0 of 7.3 once.
func (r *aoeRig) read() ([]byte, error) {
	return r.client.ReadSector(nil, aoeShelf, aoeSlot, 0, false, aoeQuiet)
}

// waitRead polls sector 0 until it holds the marker or limit passes, and
// returns how long it took.
func (r *aoeRig) waitRead(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		data, err := r.client.ReadSector(nil, aoeShelf, aoeSlot, 0, false, 100*time.Millisecond)
		if err == nil {
			if !bytes.HasPrefix(data, []byte(aoeMarker)) {
				t.Fatalf("sector 0 starts %q, want %q", data[:len(aoeMarker)], aoeMarker)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("no read of sector 0 within %v: %v\nsupervisor output:\n%s", limit, err, r.log)
		}
	}
}

// silent checks that 7.3 answers neither Query Config nor a read.
func (r *aoeRig) silent(t *testing.T) {
	t.Helper()
	if _, f, err := r.client.QueryConfig(nil, aoeShelf, aoeSlot, aoeQuiet); !errors.Is(err, aoetest.ErrNoAnswer) {
		t.Errorf("query config: got %v (from %s), want no answer", err, f.Src)
	}
	if _, err := r.read(); !errors.Is(err, aoetest.ErrNoAnswer) {
		t.Errorf("read: got %v, want no answer", err)
	}
}

// isVblade reports whether pid is a live vblade (not a zombie).
func isVblade(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "vblade" {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised comm: "PID (vblade) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return false
}

// waitGone waits up to limit for pid to stop being a live vblade.
func waitGone(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !isVblade(pid) {
			return true
		}
	}
	return !isVblade(pid)
}

// TestAOEIntegration runs `agent aoe supervise` with a real vblade in one
// network namespace and talks AoE to it from another through a veth pair:
// the Query Config answer, sector 0, the -m filter, a restart after kill -9,
// stop (and staying stopped), start, and a clean exit on SIGTERM. The
// namespaces, every process in them and the files are removed even when it
// fails (aoetest.NewPair and t.TempDir cleanups).
func TestAOEIntegration(t *testing.T) {
	if err := aoetest.Supported("vblade"); err != nil {
		t.Skipf("AoE integration test: %v", err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "apollo.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 20); err != nil { // sparse 8 MiB
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(aoeMarker), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// After t.TempDir, so the namespaces' processes die before the files go.
	pair := aoetest.NewPair(t)
	r := &aoeRig{pair: pair, conf: filepath.Join(dir, "vbladed.conf"), runDir: filepath.Join(dir, "run"), log: &aoeLog{}}
	conf := fmt.Sprintf("# AoE integration test\nSHELF=\"%d\"\n%d %s %s %s apollo\n", aoeShelf, aoeSlot, img, pair.MACB, pair.IfaceA)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := r.agent(t, "check"); res.code != 0 {
		t.Fatalf("aoe check: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	sup := aoetest.Command(pair.A, agentBin, "aoe", "supervise", "--exports", r.conf, "--run-dir", r.runDir)
	sup.Stdout, sup.Stderr = r.log, r.log
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Wait() }()
	supExited := false
	t.Cleanup(func() {
		if !supExited {
			_ = sup.Process.Kill()
			<-supDone
		}
		if t.Failed() {
			t.Logf("supervisor output:\n%s", r.log)
		}
	})

	r.client, err = aoetest.DialNamespace(pair.B, pair.IfaceB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.client.Close() })

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"query config answers for 7.3", func(t *testing.T) {
			var cfg aoetest.Config
			var fr aoetest.Frame
			var err error
			for deadline := time.Now().Add(5 * time.Second); ; {
				cfg, fr, err = r.client.QueryConfig(nil, aoeShelf, aoeSlot, 200*time.Millisecond)
				if err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("no Query Config answer within 5 s of starting the supervisor: %v", err)
			}
			if fr.Shelf != aoeShelf || fr.Slot != aoeSlot || !bytes.Equal(fr.Src, pair.MACA) {
				t.Errorf("answer from %d.%d at %s, want %d.%d at %s", fr.Shelf, fr.Slot, fr.Src, aoeShelf, aoeSlot, pair.MACA)
			}
			if cfg.Version != aoetest.Version || cfg.SectorCount == 0 {
				t.Errorf("config %+v: want AoE version 1 and a sector count", cfg)
			}
			// The supervisor prints the line after vblade starts, so
			// vblade may answer before it reaches the log.
			if !r.log.waitFor("started vblade for apollo (pid:", 5*time.Second) {
				t.Errorf("supervisor did not log the start line:\n%s", r.log)
			}
		}},
		{"sector 0 holds the marker", func(t *testing.T) {
			for _, ext := range []bool{false, true} {
				data, err := r.client.ReadSector(pair.MACA, aoeShelf, aoeSlot, 0, ext, time.Second)
				if err != nil {
					t.Fatalf("read (lba48 %v): %v", ext, err)
				}
				if !bytes.HasPrefix(data, []byte(aoeMarker)) {
					t.Errorf("read (lba48 %v): sector 0 starts %q, want %q", ext, data[:len(aoeMarker)], aoeMarker)
				}
			}
		}},
		{"a MAC outside -m gets no answer", func(t *testing.T) {
			r.client.Source = net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0xee}
			defer func() { r.client.Source = r.client.HardwareAddr() }()
			r.silent(t)
		}},
		{"kill -9 of vblade is restarted within 3 s", func(t *testing.T) {
			before := r.status(t)
			if before.State != "running" && before.State != "starting" || before.PID <= 0 {
				t.Fatalf("status before kill: %+v, want a running vblade", before)
			}
			if before.Shelf != aoeShelf || before.Slot != aoeSlot {
				t.Errorf("status shows %d.%d, want %d.%d", before.Shelf, before.Slot, aoeShelf, aoeSlot)
			}
			if !isVblade(before.PID) {
				t.Fatalf("status pid %d is not a vblade", before.PID)
			}
			if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			took := r.waitRead(t, 3*time.Second)
			t.Logf("read again %v after kill -9", took.Round(time.Millisecond))
			after := r.status(t)
			if after.PID == before.PID || after.PID <= 0 || !isVblade(after.PID) {
				t.Errorf("status after restart: %+v, want a new vblade (old pid %d)", after, before.PID)
			}
			if after.Restarts < before.Restarts+1 {
				t.Errorf("restarts %d after the kill, want at least %d", after.Restarts, before.Restarts+1)
			}
		}},
		{"stop silences the export and it stays down", func(t *testing.T) {
			before := r.status(t)
			res := r.agent(t, "stop", "apollo")
			if res.code != 0 {
				t.Fatalf("aoe stop apollo: exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			if before.PID > 0 && !waitGone(before.PID, 2*time.Second) {
				t.Errorf("vblade %d still runs after stop", before.PID)
			}
			r.silent(t)
			time.Sleep(2 * time.Second)
			r.silent(t)
			if st := r.status(t); st.State != "stopped" || isVblade(st.PID) {
				t.Errorf("status 2 s after stop: %+v, want stopped and no vblade", st)
			}
		}},
		{"start brings it back", func(t *testing.T) {
			res := r.agent(t, "start", "apollo")
			if res.code != 0 {
				t.Fatalf("aoe start apollo: exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			if strings.Contains(res.stdout, "unsupervised") {
				t.Errorf("start with a supervisor running says %q", res.stdout)
			}
			r.waitRead(t, 5*time.Second)
			if _, _, err := r.client.QueryConfig(nil, aoeShelf, aoeSlot, time.Second); err != nil {
				t.Errorf("query config after start: %v", err)
			}
		}},
		{"SIGTERM stops the supervisor and its vblade", func(t *testing.T) {
			last := r.status(t)
			if err := sup.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-supDone:
				supExited = true
				if err != nil {
					t.Errorf("supervisor after SIGTERM: %v, want exit 0", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("supervisor still running 15 s after SIGTERM")
			}
			if last.PID > 0 && !waitGone(last.PID, 2*time.Second) {
				t.Errorf("vblade %d survived the supervisor", last.PID)
			}
			pids, err := aoetest.Pids(pair.A)
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) > 0 {
				var names []string
				for _, p := range pids {
					comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
					names = append(names, strconv.Itoa(p)+":"+strings.TrimSpace(string(comm)))
				}
				t.Errorf("processes left in %s after SIGTERM: %v", pair.A, names)
			}
			r.silent(t)
		}},
	}
	for _, s := range steps {
		// Each step needs the state the previous one left.
		if !t.Run(s.name, s.run) {
			return
		}
	}
}
