package notify

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"opsagent/raidcheck"
	"opsagent/report"
)

// TestFamilies: every declared family has a valid, unique name with the
// agent_<job>_ prefix of a known job, counters end in _total and gauges
// do not, and each job's registry takes all of its families.
func TestFamilies(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Families {
		if seen[f.Name] {
			t.Errorf("%s declared twice", f.Name)
		}
		seen[f.Name] = true
		known := false
		for _, j := range Jobs {
			known = known || f.Job() == j
		}
		if !known {
			t.Errorf("%s: no job %q", f.Name, f.Job())
		}
		if f.Counter != strings.HasSuffix(f.Name, "_total") {
			t.Errorf("%s: counter=%v but the name says otherwise", f.Name, f.Counter)
		}
		if f.Help == "" {
			t.Errorf("%s has no help", f.Name)
		}
	}
	for _, j := range Jobs {
		NewSet(j) // panics on an invalid or clashing family
	}
}

// TestSetErrors: wrong names and label counts are errors, not panics.
func TestSetErrors(t *testing.T) {
	s := NewSet(JobRAID)
	s.Set("agent_raid_array_verdict", 1, "only-one-label")
	if err := s.Encode(&bytes.Buffer{}); err == nil {
		t.Error("Encode accepted a wrong label count")
	}
	s = NewSet(JobMail)
	s.Set("agent_raid_verdict", 1, "ok")
	if err := s.Encode(&bytes.Buffer{}); err == nil {
		t.Error("Encode accepted a family of another job")
	}
}

// TestUpdateKeepsLastSuccess: a failed run keeps the last success of the
// previous file; the file is 0644 and parses.
func TestUpdateKeepsLastSuccess(t *testing.T) {
	m := Metrics{Dir: t.TempDir()}
	t0 := time.Unix(1_700_000_000, 0)
	ok := IntegrityRun{Kind: "check", Start: t0, End: t0.Add(time.Minute), ExitCode: 4,
		Report: &report.Report{Changed: 1, Total: 10}}
	bad := IntegrityRun{Kind: "check", Start: t0.Add(time.Hour), End: t0.Add(time.Hour + time.Second), ExitCode: 18}
	for _, r := range []IntegrityRun{ok, bad} {
		if err := m.Update(JobIntegrity, func(prev map[string]*dtoFamilies) *Set { return IntegritySet(r, prev) }); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := ReadFile(m.Path(JobIntegrity))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Value(mfs, "agent_integrity_last_success_timestamp_seconds"); v != float64(t0.Add(time.Minute).Unix()) {
		t.Errorf("last success %v, want %d", v, t0.Add(time.Minute).Unix())
	}
	if v, _ := Value(mfs, "agent_integrity_exit_code"); v != 18 {
		t.Errorf("exit code %v, want 18", v)
	}
	fi, err := os.Stat(m.Path(JobIntegrity))
	if err != nil || fi.Mode().Perm() != FileMode {
		t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, FileMode)
	}
}

// TestRAIDVanishedController: a controller seen in one probe and missing
// from the next is written as a probe error with verdict unknown, its
// arrays unknown, and the host's verdict is unknown.
func TestRAIDVanishedController(t *testing.T) {
	seen := &RAIDSeen{Format: 1, Controllers: map[string]*SeenCtrl{}}
	res := &raidcheck.Result{Tool: "storcli", Controllers: []*raidcheck.Controller{{ID: "c0",
		Arrays: []*raidcheck.Array{{ID: "0/0", State: "Optl"}}}}}
	res.Finish()
	rep := raidcheck.NewReport("h", time.Unix(1, 0), []*raidcheck.Result{res})
	if _, ch := RAIDSet(rep, time.Second, seen); len(ch) != 2 {
		t.Errorf("first probe: %d changes, want 2 (controller and array seen)", len(ch))
	}
	rep = raidcheck.NewReport("h", time.Unix(2, 0), nil)
	s, ch := RAIDSet(rep, time.Second, seen)
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		t.Fatal(err)
	}
	mfs, err := Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"agent_raid_controller_probe_error", []string{"tool", "storcli", "controller", "c0"}, 1},
		{"agent_raid_controller_verdict", []string{"tool", "storcli", "controller", "c0", "verdict", "unknown"}, 1},
		{"agent_raid_array_verdict", []string{"tool", "storcli", "controller", "c0", "array", "0/0", "verdict", "unknown"}, 1},
		{"agent_raid_array_verdict", []string{"tool", "storcli", "controller", "c0", "array", "0/0", "verdict", "ok"}, 0},
		{"agent_raid_verdict", []string{"verdict", "unknown"}, 1},
		{"agent_raid_tool_probe_error", []string{"tool", "storcli"}, 1},
	} {
		if v, ok := Value(mfs, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if len(ch) != 1 || ch[0].New != raidcheck.Unknown || !ch[0].Known {
		t.Errorf("changes %+v, want the controller ok -> unknown", ch)
	}
}

// TestEventsFloodLimit: 100,000 changes give events_max events and one
// summary that counts the rest; the file stays small.
func TestEventsFloodLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	ev, err := OpenEvents("file:"+path, 100, "host1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		p := "/etc/f" + strings.Repeat("x", i%7) + "\n\xff"
		if err := ev.Emit(Event{Kind: EventIntegrityChange, Severity: report.SeverityWarning, Path: p,
			Message: "changed", Fields: map[string]string{"class": "unexplained"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("events file mode %v, want 0600", fi.Mode().Perm())
	}
	var lines []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v: %s", len(lines)+1, err, sc.Bytes())
		}
		lines = append(lines, m)
	}
	if len(lines) != 101 {
		t.Fatalf("%d lines, want 100 events and 1 summary", len(lines))
	}
	first := lines[0]
	if first["event"] != EventIntegrityChange || first["host"] != "host1" || first["class"] != "unexplained" ||
		first["path"] != report.EscapeJSONPath("/etc/f\n\xff") || first["severity"] != "warning" {
		t.Errorf("first event %v", first)
	}
	last := lines[100]
	if last["event"] != EventSuppressed || last["suppressed"] != "99900" || last["suppressed_integrity_change"] != "99900" {
		t.Errorf("summary %v, want 99900 suppressed", last)
	}
	if fi.Size() > 1<<20 {
		t.Errorf("events file %d bytes", fi.Size())
	}
}

// TestEventsSpec: the events option's values.
func TestEventsSpec(t *testing.T) {
	for _, s := range []string{"", "none", "syslog", "journal", "file:/var/log/agent-events.jsonl"} {
		if err := CheckEventsSpec(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"file:", "file:relative", "stdout", "journald"} {
		if err := CheckEventsSpec(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestEventsJournal sends an event through the native journal protocol and
// reads it back with journalctl -o json from the host's journald.
func TestEventsJournal(t *testing.T) {
	if !journal.Enabled() {
		t.Skip("no journald socket at /run/systemd/journal/socket")
	}
	if _, err := execLookPath("journalctl"); err != nil {
		t.Skip("journalctl not installed")
	}
	id := "agent-test-" + time.Now().Format("150405.000000000")
	ev, err := OpenEvents("journal", 0, "h")
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Emit(Event{Kind: EventRAIDVerdict, Severity: report.SeverityWarning, Path: "/dev/md0",
		Message: id, Fields: map[string]string{"verdict": "degraded", "test_id": id}}); err != nil {
		t.Fatal(err)
	}
	ev.Close()
	var got map[string]any
	for range 50 {
		out, _ := execOutput("journalctl", "-o", "json", "--no-pager", "AGENT_TEST_ID="+id)
		if line, _, _ := bytes.Cut(out, []byte("\n")); len(line) > 0 {
			if err := json.Unmarshal(line, &got); err == nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got == nil {
		t.Fatal("event not found in the journal")
	}
	for k, want := range map[string]string{"SYSLOG_IDENTIFIER": "agent", "AGENT_EVENT": EventRAIDVerdict,
		"PRIORITY": "4", "AGENT_PATH": "/dev/md0", "AGENT_VERDICT": "degraded"} {
		if got[k] != want {
			t.Errorf("%s = %v, want %q", k, got[k], want)
		}
	}
	var msg map[string]string
	if err := json.Unmarshal([]byte(got["MESSAGE"].(string)), &msg); err != nil || msg["event"] != EventRAIDVerdict {
		t.Errorf("MESSAGE %v is not the JSON event (%v)", got["MESSAGE"], err)
	}
}

// TestEventsSyslog: syslog events are JSON lines on the socket.
func TestEventsSyslog(t *testing.T) {
	if _, err := os.Stat("/dev/log"); err == nil {
		t.Skip("/dev/log exists: not replacing the host's syslog socket")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create /dev/log")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "/dev/log", Net: "unixgram"})
	if err != nil {
		t.Skipf("cannot listen on /dev/log: %v", err)
	}
	defer os.Remove("/dev/log")
	defer conn.Close()
	ev, err := OpenEvents("syslog", 0, "h")
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Emit(Event{Kind: EventAOERestart, Severity: report.SeverityWarning, Message: "m", Fields: map[string]string{"alias": "a"}}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	pkt := string(buf[:n])
	i := strings.Index(pkt, "{")
	if !strings.HasPrefix(pkt, "<28>") || i < 0 {
		t.Fatalf("datagram %q", pkt)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(pkt[i:]), &m); err != nil || m["event"] != EventAOERestart || m["alias"] != "a" {
		t.Errorf("payload %q: %v", pkt[i:], err)
	}
}

// TestSSHValSet: the counters become decisions_total by user and verdict;
// with no counter file the file still holds files 0 and errors 0; an
// account whose file could not be read keeps its series of the last file.
func TestSSHValSet(t *testing.T) {
	m := Metrics{Dir: t.TempDir()}
	t0 := time.Unix(1_700_000_000, 0)
	write := func(c SSHValCollect) map[string]*dtoFamilies {
		t.Helper()
		if err := m.Update(JobSSHVal, func(prev map[string]*dtoFamilies) *Set { return SSHValSet(c, prev) }); err != nil {
			t.Fatal(err)
		}
		mfs, err := ReadFile(m.Path(JobSSHVal))
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	mfs := write(SSHValCollect{Time: t0})
	for _, n := range []string{"agent_sshval_counter_files", "agent_sshval_counter_errors"} {
		if v, ok := Value(mfs, n); !ok || v != 0 {
			t.Errorf("no sshval run: %s = %v %v, want 0", n, v, ok)
		}
	}
	mfs = write(SSHValCollect{Time: t0, Users: []SSHValUser{{User: "backup", Allowed: 5, Refused: 2, Last: t0}, {User: "1234", Refused: 1}}})
	for _, c := range []struct {
		user, verdict string
		want          float64
	}{{"backup", "allowed", 5}, {"backup", "refused", 2}, {"1234", "allowed", 0}, {"1234", "refused", 1}} {
		if v, ok := Value(mfs, "agent_sshval_decisions_total", "user", c.user, "verdict", c.verdict); !ok || v != c.want {
			t.Errorf("%s %s = %v %v, want %v", c.user, c.verdict, v, ok, c.want)
		}
	}
	if mfs["agent_sshval_decisions_total"].GetType().String() != "COUNTER" {
		t.Errorf("type %v", mfs["agent_sshval_decisions_total"].GetType())
	}
	mfs = write(SSHValCollect{Time: t0.Add(time.Minute), Errors: 1, Keep: []string{"backup"}})
	if v, ok := Value(mfs, "agent_sshval_decisions_total", "user", "backup", "verdict", "refused"); !ok || v != 2 {
		t.Errorf("kept backup refused = %v %v, want 2", v, ok)
	}
	if v, ok := Value(mfs, "agent_sshval_last_decision_timestamp_seconds", "user", "backup"); !ok || v != float64(t0.Unix()) {
		t.Errorf("kept last decision = %v %v", v, ok)
	}
	if _, ok := Value(mfs, "agent_sshval_decisions_total", "user", "1234", "verdict", "refused"); ok {
		t.Error("an account not kept still has series")
	}
	if v, _ := Value(mfs, "agent_sshval_counter_errors"); v != 1 {
		t.Errorf("errors %v", v)
	}
}
