package aoe

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stopAtCleanup makes sure a vblade the test started without a supervisor
// does not outlive it.
func stopAtCleanup(t *testing.T, g *rig, alias string) {
	t.Cleanup(func() {
		if err := Stop(g.runDir, alias); err != nil && !errors.Is(err, ErrStalePID) {
			t.Errorf("cleanup Stop(%s): %v", alias, err)
		}
	})
}

func TestStartUnsupervised(t *testing.T) {
	g := newRig(t)
	stopAtCleanup(t, g, "apollo")
	if err := Stop(g.runDir, "apollo"); err != nil {
		t.Fatal(err)
	}
	unsup, pid, err := Start(g.runDir, "apollo", g.config(), g.vblade)
	if err != nil || !unsup || pid <= 0 {
		t.Fatalf("Start = %v, %d, %v; want unsupervised with a pid", unsup, pid, err)
	}
	if marked(aoeDir(g.runDir), "apollo") {
		t.Errorf("stop mark left after Start")
	}
	// Detached: a session of its own.
	if sid, err := sessionOf(pid); err != nil || sid != pid {
		t.Errorf("session of %d = %d, %v; want its own session", pid, sid, err)
	}
	st := g.state("apollo")
	want := g.wantArgv("apollo", rigExports[0].macs)
	if st.State != StateRunning || st.PID != pid || st.Supervised || !slices.Equal(st.Argv, want) {
		t.Errorf("state = %+v, want running pid %d unsupervised argv %q", st, pid, want)
	}
	if recs := g.starts(1); len(recs) != 1 || !slices.Equal(recs[0].Argv, want) {
		t.Errorf("vblade runs = %+v, want one with %q", recs, want)
	}
	// Its output goes to the log file.
	logPath := filepath.Join(aoeDir(g.runDir), "apollo"+logSuffix)
	waitFor(t, 5*time.Second, "vblade output in "+logPath, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "fake")
	})
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != fileMode {
		t.Errorf("log file: %v, %v; want mode 0600", fi.Mode().Perm(), err)
	}
	// Starting it again is no error and starts nothing.
	unsup, again, err := Start(g.runDir, "apollo", g.config(), g.vblade)
	if err != nil || !unsup || again != pid || len(g.starts(1)) != 1 {
		t.Errorf("second Start = %v, %d, %v (%d runs); want the same pid", unsup, again, err, len(g.starts(1)))
	}
	sts, err := Status(g.runDir, g.config())
	if err != nil || sts[0].State != StateRunning || sts[0].PID != pid || sts[1].State != StateStopped {
		t.Errorf("Status = %+v, %v; want apollo running, hermes stopped", sts, err)
	}
	if err := Stop(g.runDir, "apollo"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(pid) {
		t.Errorf("pid %d runs after Stop", pid)
	}
	if st := g.state("apollo"); st.State != StateStopped || st.PID != 0 {
		t.Errorf("state after Stop = %s pid %d, want stopped", st.State, st.PID)
	}
	if !marked(aoeDir(g.runDir), "apollo") {
		t.Errorf("no stop mark after Stop")
	}
}

func TestStartUnsupervisedExitsAtOnce(t *testing.T) {
	g := newRig(t)
	g.setMode(1, "exit")
	unsup, pid, err := Start(g.runDir, "apollo", g.config(), g.vblade)
	if !errors.Is(err, ErrNotStarted) || pid != 0 {
		t.Errorf("Start = %v, %d, %v; want ErrNotStarted", unsup, pid, err)
	}
	if st := g.state("apollo"); st.State != StateStopped || !strings.Contains(st.LastError, "start failure") {
		t.Errorf("state = %+v, want stopped with the start failure", st)
	}
	b, _ := os.ReadFile(filepath.Join(aoeDir(g.runDir), "apollo"+logSuffix))
	if !strings.Contains(string(b), "cannot open device") {
		t.Errorf("log file lacks vblade's message:\n%s", b)
	}
}

func TestStartErrors(t *testing.T) {
	g := newRig(t)
	cfg := g.config()
	tests := []struct {
		name, alias, vblade string
		want                error
	}{
		{"unknown alias", "zeus", g.vblade, ErrUnknownAlias},
		{"alias with a slash", "../x", g.vblade, ErrAliasName},
		{"no vblade", "apollo", filepath.Join(g.dir, "missing", "vblade"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Start(g.runDir, tt.alias, cfg, tt.vblade); !errors.Is(err, tt.want) {
				t.Errorf("Start(%q) = %v, want %v", tt.alias, err, tt.want)
			}
			if err := Restart(g.runDir, tt.alias, cfg, tt.vblade); !errors.Is(err, tt.want) {
				t.Errorf("Restart(%q) = %v, want %v", tt.alias, err, tt.want)
			}
		})
	}
	if err := Stop(g.runDir, ".."); !errors.Is(err, ErrAliasName) {
		t.Errorf("Stop(..) = %v, want ErrAliasName", err)
	}
}

func TestRestartUnsupervised(t *testing.T) {
	g := newRig(t)
	stopAtCleanup(t, g, "apollo")
	_, old, err := Start(g.runDir, "apollo", g.config(), g.vblade)
	if err != nil {
		t.Fatal(err)
	}
	const newMACs = "02:00:00:00:00:09"
	g.writeConf(map[string]string{"apollo": newMACs})
	if err := Restart(g.runDir, "apollo", g.config(), g.vblade); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	st := g.state("apollo")
	want := g.wantArgv("apollo", newMACs)
	if st.State != StateRunning || st.PID == old || !slices.Equal(st.Argv, want) {
		t.Errorf("after Restart: %+v, want running with a new pid and argv %q", st, want)
	}
	if alive(old) {
		t.Errorf("old pid %d still runs", old)
	}
	if marked(aoeDir(g.runDir), "apollo") {
		t.Errorf("Restart left a stop mark")
	}
}

// sessionOf reads the session id of pid (field 6 of /proc/PID/stat).
func sessionOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return strconv.Atoi(f[3])
}

// startSleep runs a real process that is not vblade and returns its pid.
func startSleep(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until /proc shows the exec'd sleep: on a loaded machine the
	// identity read right after Start can still be incomplete.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
		if err == nil && string(b) == "sleep\x0060\x00" {
			if id, err := readIdentity(cmd.Process.Pid); err == nil && len(id.Cmdline) == 2 && id.Exe != "" {
				break
			}
		}
	}
	return cmd.Process.Pid
}

func TestStopRefusesStalePID(t *testing.T) {
	g := newRig(t)
	pid := startSleep(t)
	real, err := readIdentity(pid)
	if err != nil {
		t.Fatal(err)
	}
	vbladeArgv := g.wantArgv("apollo", rigExports[0].macs)
	tests := []struct {
		name string
		pid  int
		id   identity
	}{
		{"other command line", pid, identity{Exe: real.Exe, Cmdline: vbladeArgv, StartTime: real.StartTime}},
		{"other executable", pid, identity{Exe: "/usr/sbin/vblade", Cmdline: real.Cmdline, StartTime: real.StartTime}},
		{"pid reused", pid, identity{Exe: real.Exe, Cmdline: real.Cmdline, StartTime: real.StartTime + 1}},
		{"no identity recorded", pid, identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := aoeDir(g.runDir)
			if err := ensureDir(dir); err != nil {
				t.Fatal(err)
			}
			st := &stateFile{Alias: "apollo", Shelf: 7, Slot: 1, PID: tt.pid, State: StateRunning, Since: time.Now(), Argv: vbladeArgv, identity: tt.id}
			if err := writeState(dir, st); err != nil {
				t.Fatal(err)
			}
			if err := Stop(g.runDir, "apollo"); !errors.Is(err, ErrStalePID) {
				t.Errorf("Stop = %v, want ErrStalePID", err)
			}
			time.Sleep(50 * time.Millisecond)
			if !alive(pid) {
				t.Fatalf("Stop signalled pid %d, which is not that vblade", pid)
			}
			if !marked(dir, "apollo") {
				t.Errorf("no stop mark")
			}
			if got := g.state("apollo"); got.State != StateStopped {
				t.Errorf("state after a stale Stop = %s, want stopped", got.State)
			}
		})
	}
	// The same check passes for the real identity: the guard is not
	// refusing everything.
	if ok, why, err := verify(pid, real); !ok || err != nil {
		t.Errorf("verify(own identity) = %v %s %v, want true", ok, why, err)
	}
}

func TestStopWithoutState(t *testing.T) {
	g := newRig(t)
	if err := Stop(g.runDir, "apollo"); err != nil {
		t.Errorf("Stop of a never started export = %v, want nil", err)
	}
	if !marked(aoeDir(g.runDir), "apollo") {
		t.Errorf("no stop mark")
	}
}

func TestStatus(t *testing.T) {
	g := newRig(t)
	cfg := g.config()
	pid := startSleep(t)
	real, err := readIdentity(pid)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		alias  string
		state  *stateFile // nil: no state file
		raw    string     // a state file written as is
		mark   bool
		want   ExportStatus
		inConf bool
	}{
		{
			name: "never started", alias: "apollo", inConf: true,
			want: ExportStatus{Alias: "apollo", Shelf: 7, Slot: 1, State: StateStopped},
		},
		{
			name: "running", alias: "apollo", inConf: true,
			state: &stateFile{Shelf: 7, Slot: 1, PID: pid, State: StateRunning, Restarts: 2, Since: since, identity: real},
			want:  ExportStatus{Alias: "apollo", Shelf: 7, Slot: 1, PID: pid, State: StateRunning, Restarts: 2, Since: since},
		},
		{
			name: "running but pid is another program", alias: "apollo", inConf: true,
			state: &stateFile{Shelf: 7, Slot: 1, PID: pid, State: StateRunning, Since: since, identity: identity{Exe: real.Exe, Cmdline: []string{"vblade"}}},
			want:  ExportStatus{Alias: "apollo", Shelf: 7, Slot: 1, PID: pid, State: StateDead, Since: since, LastError: `pid ` + strconv.Itoa(pid) + ` has command line ["sleep" "60"], not ["vblade"]`},
		},
		{
			name: "running but dead and marked", alias: "apollo", inConf: true, mark: true,
			state: &stateFile{Shelf: 7, Slot: 1, PID: 0, State: StateRunning, Since: since},
			want:  ExportStatus{Alias: "apollo", Shelf: 7, Slot: 1, State: StateStopped, Since: since, LastError: "pid 0 is not running"},
		},
		{
			name: "backoff with no supervisor", alias: "hermes", inConf: true,
			state: &stateFile{Shelf: 7, Slot: 2, State: StateBackoff, Restarts: 5, Since: since, LastError: "flapping: x"},
			want:  ExportStatus{Alias: "hermes", Shelf: 7, Slot: 2, State: StateDead, Restarts: 5, Since: since, LastError: "flapping: x"},
		},
		{
			name: "alias no longer in the config", alias: "zeus",
			state: &stateFile{Shelf: 7, Slot: 9, State: StateStopped, Since: since},
			want:  ExportStatus{Alias: "zeus", Shelf: 7, Slot: 9, State: StateStopped, Since: since},
		},
		{
			name: "unreadable state file", alias: "hermes", inConf: true, raw: "{not json",
			want: ExportStatus{Alias: "hermes", Shelf: 7, Slot: 2, State: StateUnknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runDir := filepath.Join(t.TempDir(), "run")
			dir := aoeDir(runDir)
			if err := ensureDir(dir); err != nil {
				t.Fatal(err)
			}
			if tt.state != nil {
				tt.state.Alias = tt.alias
				if err := writeState(dir, tt.state); err != nil {
					t.Fatal(err)
				}
			}
			if tt.raw != "" {
				if err := os.WriteFile(filepath.Join(dir, tt.alias+stateSuffix), []byte(tt.raw), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mark {
				if err := os.WriteFile(filepath.Join(dir, tt.alias+markSuffix), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Status(runDir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			wantN := len(cfg.Exports)
			if !tt.inConf {
				wantN++
			}
			if len(got) != wantN {
				t.Fatalf("Status gave %d entries, want %d: %+v", len(got), wantN, got)
			}
			var e ExportStatus
			for _, x := range got {
				if x.Alias == tt.alias {
					e = x
				}
			}
			if tt.want.State == StateUnknown {
				if e.State != StateUnknown || e.LastError == "" {
					t.Errorf("Status(%s) = %+v, want unknown with the read error", tt.alias, e)
				}
				return
			}
			if !e.Since.Equal(tt.want.Since) {
				t.Errorf("Since = %v, want %v", e.Since, tt.want.Since)
			}
			e.Since, tt.want.Since = time.Time{}, time.Time{}
			if e != tt.want {
				t.Errorf("Status(%s) =\n%+v\nwant\n%+v", tt.alias, e, tt.want)
			}
		})
	}
}

func TestExportStatusJSON(t *testing.T) {
	b, err := json.Marshal(ExportStatus{Alias: "apollo", Shelf: 7, Slot: 1, PID: 42, State: StateRunning, Restarts: 3,
		Since: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), LastError: "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"alias":"apollo","shelf":7,"slot":1,"pid":42,"state":"running","restarts":3,"since":"2026-11-21T10:00:00Z","last_error":"x"}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestCheckAliasName(t *testing.T) {
	tests := []struct {
		alias string
		ok    bool
	}{
		{"apollo", true},
		{"hera.backup", true},
		{"a-1_b.c", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"a/b", false},
		{"a\x00b", false},
		{strings.Repeat("a", 300), false},
	}
	for _, tt := range tests {
		t.Run(tt.alias, func(t *testing.T) {
			err := checkAliasName(tt.alias)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrAliasName)) {
				t.Errorf("checkAliasName(%q) = %v, want ok=%v", tt.alias, err, tt.ok)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, line string
		state      string
		start      uint64
		ok         bool
	}{
		{"vblade", "30482 (vblade) S 1 30482 30482 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 5151290 2465792 172 18446744073709551615", "S", 5151290, true},
		{"name with spaces and parens", "7 (a) b) c) Z 1 7 7 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 99 0 0", "Z", 99, true},
		{"short", "7 (x) S 1 2 3", "", 0, false},
		{"no parens", "7 x S 1 7 7 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 99", "", 0, false},
		{"bad start time", "7 (x) S 1 7 7 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 -5 0", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, start, err := parseStat([]byte(tt.line))
			if (err == nil) != tt.ok || state != tt.state || start != tt.start {
				t.Errorf("parseStat = %q, %d, %v; want %q, %d, ok=%v", state, start, err, tt.state, tt.start, tt.ok)
			}
		})
	}
	// The start time of this process, read twice, is the same.
	a, err1 := readIdentity(os.Getpid())
	b, err2 := readIdentity(os.Getpid())
	if err1 != nil || err2 != nil || a.StartTime == 0 || a.StartTime != b.StartTime || !slices.Equal(a.Cmdline, os.Args) {
		t.Errorf("readIdentity(self) = %+v %v / %+v %v", a, err1, b, err2)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("30482 (vblade) S 1 30482 30482 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 5151290 2465792 172"))
	f.Add([]byte("7 (a) b) c) Z 1 7 7 0 -1 4194560 105 0 0 0 0 0 0 0 20 0 1 0 99 0 0"))
	f.Add([]byte(")"))
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		state, _, err := parseStat(b)
		if err == nil && state == "" {
			t.Errorf("parseStat(%q) accepted a line without a state", b)
		}
		words := splitCmdline(b)
		if len(b) > 0 && len(words) > 0 && strings.Join(words, "\x00") != strings.TrimSuffix(string(b), "\x00") {
			t.Errorf("splitCmdline(%q) = %q does not join back", b, words)
		}
	})
}
