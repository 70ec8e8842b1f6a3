package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"opsagent/sshval"
)

// nobodyUID is the account the forced command runs as in these tests.
const nobodyUID = 65534

// syslogSink listens on /dev/log (which must not exist yet) and collects
// every datagram until stop.
type syslogSink struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func listenDevLog(t *testing.T) *syslogSink {
	t.Helper()
	if _, err := os.Stat("/dev/log"); err == nil {
		t.Skip("/dev/log exists: not replacing the host's syslog socket")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "/dev/log", Net: "unixgram"})
	if err != nil {
		t.Skipf("cannot listen on /dev/log: %v", err)
	}
	if err := os.Chmod("/dev/log", 0o666); err != nil {
		t.Fatal(err)
	}
	s := &syslogSink{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.stop(); os.Remove("/dev/log") })
	return s
}

func (s *syslogSink) stop() {
	s.conn.Close()
	<-s.done
}

// take returns the datagrams received so far and forgets them; it waits
// a moment for datagrams still in flight.
func (s *syslogSink) take() []string {
	time.Sleep(200 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.msgs
	s.msgs = nil
	return out
}

// TestSSHValCountersEvents runs the real forced command as a non-root
// login account (nobody): every decision, also of 20 concurrent
// connections, lands in the account's counter file; agent metrics (as
// root) writes agent_sshval_decisions_total by user and verdict and
// reports a counter file pre-created for another uid; every refusal is an
// sshval.refusal event on the syslog socket with user, from, command
// (escaped as in the JSON report), reason and rule, next to sshval's own
// log line; a counters directory with a wrong mode and an events file the
// account cannot write change no decision.
func TestSSHValCountersEvents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the forced command as another account")
	}
	sink := listenDevLog(t)
	dir, err := os.MkdirTemp("", "agent-sshval-metrics-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	agentExe := filepath.Join(dir, "agent")
	copyFile(t, agentBin, agentExe, 0o755)
	counters := filepath.Join(dir, "counters")
	conf := filepath.Join(dir, "sshval.conf")
	writeOwned(t, conf, fmt.Sprintf("counters %s\nevents syslog\ncommand up {\n\tfrom 127.0.0.0/8\n\trun /bin/true\n}\n", counters), 0o644, 0, 0)
	closed := filepath.Join(dir, "closed")
	mkdirOwned(t, closed, 0o700, 0, 0)
	conf2 := filepath.Join(dir, "sshval-file.conf")
	writeOwned(t, conf2, fmt.Sprintf("counters none\nevents file:%s/events.jsonl\ncommand up {\n\trun /bin/true\n}\n", closed), 0o644, 0, 0)

	// As nobody, run sshval with SSH_ORIGINAL_COMMAND = cmd (unset for
	// "-": an interactive login).
	run := func(rules, cmd string) result {
		c := exec.Command(agentExe, "sshval", "--rules", rules)
		c.Env = []string{"PATH=/usr/bin:/bin", "SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22"}
		if cmd != "-" {
			c.Env = append(c.Env, "SSH_ORIGINAL_COMMAND="+cmd)
		}
		c.Dir = "/"
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID}}
		return runPrepared(t, c)
	}

	// Counting is off while the directory does not exist: silently.
	if r := run(conf, "true"); r.code != 0 {
		t.Fatalf("allowed command without counters dir: exit %d: %s", r.code, r.stderr)
	}
	for _, m := range sink.take() {
		if strings.Contains(m, "not counted") {
			t.Errorf("a missing counters directory was logged: %q", m)
		}
	}
	if err := sshval.EnsureCountersDir(counters); err != nil {
		t.Fatal(err)
	}
	// A file nobody plants for uid 65533.
	writeOwned(t, filepath.Join(counters, "65533"), "allowed 1000\nrefused 0\n", 0o600, nobodyUID, nobodyUID)

	for _, cmd := range []string{"true", "true", "true"} {
		if r := run(conf, cmd); r.code != 0 {
			t.Fatalf("%q: exit %d: %s", cmd, r.code, r.stderr)
		}
	}
	const concurrent = 20
	var wg sync.WaitGroup
	codes := make(chan int, concurrent)
	for range concurrent {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- run(conf, "true").code }()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 0 {
			t.Fatalf("concurrent allowed command: exit %d", c)
		}
	}
	refused := []string{"rm -rf /x", "cat /etc/\xff", "-"}
	for _, cmd := range refused {
		if r := run(conf, cmd); r.code != exitRejected {
			t.Fatalf("%q: exit %d, want %d: %s", cmd, r.code, exitRejected, r.stderr)
		}
	}
	msgs := sink.take()
	var events []map[string]string
	logged := 0
	for _, m := range msgs {
		if strings.Contains(m, " sshval(") {
			if strings.Contains(m, "rejected from 127.0.0.1") {
				logged++
			}
			continue
		}
		i := strings.Index(m, "{")
		var ev map[string]string
		if i < 0 || json.Unmarshal([]byte(m[i:]), &ev) != nil {
			t.Errorf("datagram %q is neither a sshval log line nor a JSON event", m)
			continue
		}
		if !strings.HasPrefix(m, "<28>") {
			t.Errorf("event datagram %q: want facility daemon, severity warning", m)
		}
		events = append(events, ev)
	}
	if logged != len(refused) {
		t.Errorf("%d sshval log lines of refusals, want %d:\n%s", logged, len(refused), strings.Join(msgs, "\n"))
	}
	if len(events) != len(refused) {
		t.Fatalf("%d events, want %d:\n%s", len(events), len(refused), strings.Join(msgs, "\n"))
	}
	wantCmd := []string{"rm -rf /x", `cat /etc/\xff`, ""}
	for i, ev := range events {
		if ev["event"] != "sshval.refusal" || ev["user"] != "nobody" || ev["from"] != "127.0.0.1" ||
			ev["command"] != wantCmd[i] || ev["reason"] == "" || ev["rule"] != "" || ev["severity"] != "warning" {
			t.Errorf("event %d: %v", i, ev)
		}
	}
	if events[2]["interactive"] != "yes" {
		t.Errorf("interactive login event: %v", events[2])
	}

	// The counter file, then the metrics.
	b, err := os.ReadFile(filepath.Join(counters, fmt.Sprint(nobodyUID)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sshval.ParseCounts(b)
	if err != nil || c.Allowed != 3+concurrent || c.Refused != uint64(len(refused)) {
		t.Errorf("counter file %q: %+v %v", b, c, err)
	}
	metricsDir := filepath.Join(dir, "metrics")
	mkdirOwned(t, metricsDir, 0o755, 0, 0)
	agentConf := filepath.Join(dir, "agent.conf")
	writeOwned(t, agentConf, fmt.Sprintf("state_dir=%s/state\nmetrics_dir=%s\nsshval_counters=%s\n/x R\n", dir, metricsDir, counters), 0o600, 0, 0)
	r := agent(t, "--config", agentConf, "metrics")
	for _, want := range []string{
		fmt.Sprintf(`agent_sshval_decisions_total{user="nobody",verdict="allowed"} %d`, 3+concurrent),
		fmt.Sprintf(`agent_sshval_decisions_total{user="nobody",verdict="refused"} %d`, len(refused)),
		"agent_sshval_counter_files 1", "agent_sshval_counter_errors 1",
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("agent metrics lacks %s:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 || !strings.Contains(r.stderr, "65533: owned by uid 65534") || strings.Contains(r.stdout, `user="65533"`) {
		t.Errorf("agent metrics: exit %d, want 0 and the planted file reported and ignored:\n%s\n%s", r.code, r.stderr, r.stdout)
	}
	if r := agent(t, "--config", agentConf, "metrics", "--check"); r.code != 0 {
		t.Errorf("metrics --check: exit %d: %s", r.code, r.stderr)
	}

	// An events file nobody cannot open: the refusal is still a plain
	// refusal, and nothing is written.
	if r := run(conf2, "rm -rf /x"); r.code != exitRejected || !strings.Contains(r.stderr, "sshval: rejected: ") {
		t.Errorf("refusal with an unwritable events file: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(closed, "events.jsonl")); err == nil {
		t.Error("events file created")
	}
	if r := run(conf2, "true"); r.code != 0 {
		t.Errorf("allowed with an unwritable events file: exit %d: %s", r.code, r.stderr)
	}

	// A counters directory with a wrong mode: the command still runs, and
	// the log says counting is off.
	sink.take()
	if err := os.Chmod(counters, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if r := run(conf, "true"); r.code != 0 {
		t.Errorf("allowed command with a bad counters dir: exit %d: %s", r.code, r.stderr)
	}
	found := false
	for _, m := range sink.take() {
		found = found || strings.Contains(m, "decision not counted (counting is off)") && strings.Contains(m, "want 1733")
	}
	if !found {
		t.Error("no log line says the decision was not counted")
	}
	if r := agent(t, "--config", agentConf, "metrics"); !strings.Contains(r.stdout, "agent_sshval_counter_errors 1\n") ||
		!strings.Contains(r.stdout, `agent_sshval_decisions_total{user="nobody",verdict="allowed"}`) {
		t.Errorf("agent metrics with a bad counters dir keeps the series and counts the error:\n%s\n%s", r.stdout, r.stderr)
	}
}
