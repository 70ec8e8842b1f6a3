package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonProc is one `agent daemon` run as a subprocess. Its stdout and
// stderr go to log, which the test reads while it runs.
type daemonProc struct {
	cmd  *exec.Cmd
	log  *aoeLog
	done chan struct{} // closed once Wait returned
	code int           // exit code, valid after done
}

// startDaemon starts agentBin with args (and env, when not nil). The
// process is killed at the end of the test if it still runs.
func startDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: agentCmd(args...), log: &aoeLog{}, done: make(chan struct{})}
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.done)
	}()
	t.Cleanup(func() {
		if !d.exited() {
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// wait waits up to limit for the process to end and returns its exit code
// and how long it took; ok is false when it still runs.
func (d *daemonProc) wait(limit time.Duration) (code int, took time.Duration, ok bool) {
	start := time.Now()
	select {
	case <-d.done:
		return d.code, time.Since(start), true
	case <-time.After(limit):
		return 0, limit, false
	}
}

// stop sends SIGTERM and expects exit status 0 within 10 s.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	code, took, ok := d.wait(10 * time.Second)
	if !ok {
		t.Fatalf("daemon still runs 10 s after SIGTERM; output:\n%s", d.log)
	}
	if code != 0 {
		t.Errorf("daemon exited %d after SIGTERM (took %v), want 0; output:\n%s", code, took, d.log)
	} else {
		t.Logf("daemon stopped %v after SIGTERM; output:\n%s", took, d.log)
	}
}

// waitUntil polls cond every 100 ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// daemonJob is one job of `agent status --json`.
type daemonJob struct {
	Name       string    `json:"name"`
	Schedule   string    `json:"schedule"`
	Next       time.Time `json:"next"`
	LastStart  time.Time `json:"last_start"`
	LastEnd    time.Time `json:"last_end"`
	LastResult string    `json:"last_result"`
	Running    bool      `json:"running"`
	Runs       int       `json:"runs"`
	Skipped    int       `json:"skipped"`
}

// agentStatus runs `agent --state-dir S status --json` and returns whether
// a daemon runs and its jobs by name. It passes no --config: the config
// under test may be broken on purpose, and status needs only state_dir. A
// failing or unparsable status fails the test.
func agentStatus(t *testing.T, state string) (running bool, jobs map[string]daemonJob) {
	t.Helper()
	r := agent(t, "--state-dir", state, "status", "--json")
	if r.code != 0 {
		t.Fatalf("status --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var doc struct {
		Running bool `json:"running"`
		Daemon  *struct {
			Jobs []daemonJob `json:"jobs"`
		} `json:"daemon"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, r.stdout)
	}
	jobs = map[string]daemonJob{}
	if doc.Daemon != nil {
		for _, j := range doc.Daemon.Jobs {
			jobs[j.Name] = j
		}
	}
	return doc.Running, jobs
}

// jobStatusOf is the status of one job, zero when status has none.
func jobStatusOf(t *testing.T, state, name string) daemonJob {
	t.Helper()
	_, jobs := agentStatus(t, state)
	return jobs[name]
}

// mailSubjects returns the Subject of every message the sink received.
func mailSubjects(t *testing.T, sink *smtpSink) []string {
	t.Helper()
	var out []string
	for _, m := range sink.received() {
		msg, err := mail.ReadMessage(bytes.NewReader(m))
		if err != nil {
			t.Fatalf("mail does not parse: %v\n%s", err, m)
		}
		out = append(out, msg.Header.Get("Subject"))
	}
	return out
}

// countContaining counts the strings that contain any of subs.
func countContaining(list []string, subs ...string) int {
	n := 0
	for _, s := range list {
		for _, sub := range subs {
			if strings.Contains(s, sub) {
				n++
				break
			}
		}
	}
	return n
}

// procsMentioning returns the pids (other than ours) of live processes
// whose command line contains s.
func procsMentioning(t *testing.T, s string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		// A zombie's cmdline is empty, so only live processes match.
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// scanTemps lists the unfinished generations a running scan writes
// (baseline.db.tmp-*), not the daemon's own status temp file.
func scanTemps(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.db.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logLine returns the first line of log that contains every one of subs
// (case-insensitively), or "".
func logLine(log string, subs ...string) string {
	for _, line := range strings.Split(log, "\n") {
		l := strings.ToLower(line)
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, strings.ToLower(s))
		}
		if ok {
			return line
		}
	}
	return ""
}

// lastWord is the last blank-separated word of s: the exit status of a
// job result such as "exit 4".
func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func writeConf(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonEndToEnd runs `agent daemon` with @every 2s schedules on a
// small tree, a fake storcli64 reporting a degraded array and a real SMTP
// server: it mails the integrity report and one RAID alert (no repeat
// before raid_alert_repeat), `agent status` shows both jobs, a second
// daemon on the same state_dir is refused, and SIGTERM stops it cleanly.
func TestDaemonEndToEnd(t *testing.T) {
	if _, err := os.Stat(raidSamples); err != nil {
		t.Skipf("RAID samples not found: %v", err)
	}
	dir := t.TempDir()
	bin, proc, sys := raidDirs(t, dir)
	fakeCLI(t, bin, "storcli64", [][2]string{{"*show*all*[Jj]*", "sc-json"}, {"*show*all*", "sc-text"}})
	degraded := filepath.Join(dir, "degraded")
	scenario(t, degraded, map[string]string{"sc-text": "storcli/degraded-vd-dgrd-pd-offln.c0-show-all.txt"})
	useScenario(t, bin, degraded)

	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "etc/motd", kind: 'f', data: "hello\n"}, {path: "etc/hosts", kind: 'f', data: "127.0.0.1 localhost\n"}})
	sink := startSink(t, "127.0.0.1:0")
	conf := filepath.Join(dir, "agent.conf")
	writeConf(t, conf, "mail_to=admin@example.org\nmail_from=agent@example.org\nsmtp_url=smtp://"+sink.addr+"\n"+
		"schedule_check=@every 2s\nschedule_raid=@every 2s\nraid_alert_repeat=24h\n"+
		// A missing file: no AoE supervision, whatever this host has in /etc.
		"aoe_config="+filepath.Join(dir, "vbladed.conf")+"\n"+
		"NORMAL = p+u+g+s+md5\n"+tree+" NORMAL\n")
	state := filepath.Join(dir, "state")
	env := append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
	args := []string{"--config", conf, "--state-dir", state, "daemon", "--proc-root", proc, "--sys-root", sys}
	d := startDaemon(t, env, args...)

	integrity := []string{"integrity init", "integrity check"}
	got := waitUntil(15*time.Second, func() bool {
		s := mailSubjects(t, sink)
		return countContaining(s, integrity...) > 0 && countContaining(s, "RAID degraded") > 0
	})
	if !got {
		t.Fatalf("within 15 s the SMTP server got %q, want an integrity report and a RAID alert; daemon output:\n%s", mailSubjects(t, sink), d.log)
	}
	if d.exited() {
		t.Fatalf("daemon exited %d; output:\n%s", d.code, d.log)
	}

	// Two more ticks of each job: the array is still degraded, but the
	// alert is not repeated before raid_alert_repeat; the tree is
	// unchanged, so a clean check mails nothing (no mail_clean) and the
	// baseline is not initialised again.
	time.Sleep(5 * time.Second)
	s := mailSubjects(t, sink)
	if n := countContaining(s, "RAID degraded"); n != 1 {
		t.Errorf("RAID alerts after more ticks: %d, want exactly 1; subjects %q", n, s)
	}
	if n := countContaining(s, integrity...); n != 1 {
		t.Errorf("integrity mails after more ticks: %d, want exactly 1; subjects %q", n, s)
	}

	t.Run("status", func(t *testing.T) {
		running, jobs := agentStatus(t, state)
		if !running {
			t.Error("status --json: running is false while the daemon runs")
		}
		for _, name := range []string{"integrity", "raid"} {
			j, ok := jobs[name]
			switch {
			case !ok:
				t.Errorf("status --json has no job %s: %v", name, jobs)
				continue
			case j.Schedule != "@every 2s":
				t.Errorf("job %s: schedule %q, want %q", name, j.Schedule, "@every 2s")
			case j.Next.IsZero() || j.Next.Before(time.Now().Add(-3*time.Second)):
				t.Errorf("job %s: next run %v, want one about now", name, j.Next)
			case j.LastResult == "" || j.LastEnd.IsZero():
				t.Errorf("job %s: last result %q at %v, want one", name, j.LastResult, j.LastEnd)
			case j.Runs < 2:
				t.Errorf("job %s: %d runs, want at least 2", name, j.Runs)
			}
		}
		// The last RAID run found the array degraded: its exit status.
		if j := jobs["raid"]; lastWord(j.LastResult) != "2" {
			t.Errorf("raid last result %q, want the degraded exit status 2", j.LastResult)
		}
		if j := jobs["integrity"]; lastWord(j.LastResult) != "0" {
			t.Errorf("integrity last result %q, want exit status 0 of a clean check", j.LastResult)
		}
		r := agent(t, "--state-dir", state, "status")
		if r.code != 0 {
			t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"running", "integrity", "raid", "@every 2s"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("status output does not mention %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("second-daemon", func(t *testing.T) {
		second := startDaemon(t, env, args...)
		code, took, ok := second.wait(5 * time.Second)
		if !ok {
			t.Fatalf("a second daemon on the same state_dir still runs after 5 s; output:\n%s", second.log)
		}
		if code != exitLocked {
			t.Errorf("second daemon: exit %d after %v, want %d; output:\n%s", code, took, exitLocked, second.log)
		}
		if out := second.log.String(); !strings.Contains(out, "daemon") || !strings.Contains(out, "lock") {
			t.Errorf("second daemon: message does not mention the daemon and the lock: %q", out)
		}
		if d.exited() {
			t.Errorf("the first daemon exited (%d) when the second started", d.code)
		}
	})

	d.stop(t)
	if m := tempFiles(t, state); len(m) > 0 {
		t.Errorf("temp files left after SIGTERM: %v", m)
	}
	if p := procsMentioning(t, state); len(p) > 0 {
		t.Errorf("processes left after the daemon stopped: %v", p)
	}
}

// TestDaemonReload: SIGHUP with a broken config logs file:line and keeps
// the daemon running on the old config; SIGHUP with a good one applies it.
func TestDaemonReload(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "f", kind: 'f', data: "x\n"}})
	state := filepath.Join(dir, "state")
	conf := filepath.Join(dir, "agent.conf")
	config := func(lines ...string) string {
		return strings.Join(lines, "\n") + "\naoe_config=" + filepath.Join(dir, "vbladed.conf") + "\nNORMAL = p+u+g+s+md5\n" + tree + " NORMAL\n"
	}
	writeConf(t, conf, config("schedule_check=@every 1s", "schedule_raid=@daily"))
	d := startDaemon(t, nil, "--config", conf, "--state-dir", state, "daemon")

	// SIGHUP before the handler is installed would kill the daemon: wait
	// until it has run the integrity job once.
	if !waitUntil(10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(state, daemonStatusName))
		return err == nil && jobStatusOf(t, state, "integrity").Runs > 0
	}) {
		t.Fatalf("the integrity job did not run within 10 s; output:\n%s", d.log)
	}

	for _, tc := range []struct {
		name string
		body string
		want string // in the daemon's log
	}{
		{"unknown-option", config("schedule_check=@every 1s", "bogus_option=1"), conf + ":2:"},
		{"bad-schedule", config("schedule_raid=@daily", "mail_from=agent@example.org", "schedule_check=every second"), conf + ":3:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeConf(t, conf, tc.body)
			runs := jobStatusOf(t, state, "integrity").Runs
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			// The job subprocesses read the config too and fail on it, so
			// look for the daemon's own reload error.
			if !waitUntil(5*time.Second, func() bool { return logLine(d.log.String(), "reload", tc.want) != "" }) {
				t.Errorf("no reload error naming %q in the daemon's log:\n%s", tc.want, d.log)
			}
			time.Sleep(2 * time.Second)
			if d.exited() {
				t.Fatalf("daemon exited %d after SIGHUP with a bad config; output:\n%s", d.code, d.log)
			}
			// Still ticking on the old schedule.
			var j daemonJob
			if !waitUntil(5*time.Second, func() bool {
				j = jobStatusOf(t, state, "integrity")
				return j.Runs > runs
			}) {
				t.Errorf("integrity runs stayed at %d after the failed reload", runs)
			}
			if j.Schedule != "@every 1s" {
				t.Errorf("integrity schedule %q after a failed reload, want the old %q", j.Schedule, "@every 1s")
			}
		})
	}

	t.Run("good", func(t *testing.T) {
		writeConf(t, conf, config("schedule_check=@every 3s", "schedule_raid=@every 1h"))
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		var jobs map[string]daemonJob
		if !waitUntil(5*time.Second, func() bool {
			_, jobs = agentStatus(t, state)
			return jobs["integrity"].Schedule == "@every 3s"
		}) {
			t.Errorf("schedules after reload: integrity %q, raid %q; want @every 3s and @every 1h; output:\n%s",
				jobs["integrity"].Schedule, jobs["raid"].Schedule, d.log)
		}
		if s := jobs["raid"].Schedule; s != "@every 1h" {
			t.Errorf("raid schedule after reload %q, want %q", s, "@every 1h")
		}
		if d.exited() {
			t.Fatalf("daemon exited %d after a good reload; output:\n%s", d.code, d.log)
		}
	})

	d.stop(t)
}

// TestDaemonStopDuringScan: SIGTERM while the integrity job hashes a big
// file stops the daemon with exit 0 within 10 s, the baseline
// byte-identical, no temp files and no agent process left.
func TestDaemonStopDuringScan(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "a/one", kind: 'f', data: "1\n"}})
	state := filepath.Join(dir, "state")
	conf := filepath.Join(dir, "agent.conf")
	writeConf(t, conf, "schedule_check=@every 1s\naoe_config="+filepath.Join(dir, "vbladed.conf")+"\n"+
		"NORMAL = p+u+g+s+md5+sha256\n"+tree+" NORMAL\n")
	if r := agent(t, "--config", conf, "--state-dir", state, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	baseline := filepath.Join(state, baselineName)
	before, err := os.ReadFile(baseline)
	if err != nil {
		t.Fatal(err)
	}
	bigTree(t, tree)

	d := startDaemon(t, nil, "--config", conf, "--state-dir", state, "daemon")
	if !waitUntil(10*time.Second, func() bool {
		if len(scanTemps(t, state)) > 0 {
			return true
		}
		_, err := os.Stat(filepath.Join(state, daemonStatusName))
		return err == nil && jobStatusOf(t, state, "integrity").Running
	}) {
		t.Fatalf("no integrity scan started within 10 s; output:\n%s", d.log)
	}
	// Let the scan get into the big file.
	time.Sleep(300 * time.Millisecond)
	if d.exited() {
		t.Fatalf("daemon exited %d; output:\n%s", d.code, d.log)
	}
	child := procsMentioning(t, state)
	d.stop(t)

	after, err := os.ReadFile(baseline)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("baseline.db changed after SIGTERM during a scan")
	}
	if m := tempFiles(t, state); len(m) > 0 {
		t.Errorf("temp files left: %v", m)
	}
	if p := procsMentioning(t, state); len(p) > 0 {
		var desc []string
		for _, pid := range p {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			desc = append(desc, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
		t.Errorf("agent processes left after the daemon stopped (running before: %v):\n%s", child, strings.Join(desc, "\n"))
	}
}
