package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"opsagent/posture"
)

// postureConf writes a config whose posture_tmp_dirs are dirs.
func postureConf(t *testing.T, dirs ...string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "agent.conf")
	text := fmt.Sprintf("state_dir = %s\nposture_tmp_dirs = %s\n/nonexistent-root p\n", t.TempDir(), strings.Join(dirs, " "))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

func decodePosture(t *testing.T, r result) *posture.Report {
	t.Helper()
	var rep posture.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("posture --json: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	if rep.Format != 1 {
		t.Errorf("format %d, want 1", rep.Format)
	}
	return &rep
}

// TestPostureMounts mounts tmpfs with and without noexec,nosuid,nodev and
// two bind mounts in a private mount namespace, and runs agent posture
// there (it reads /proc/self/mountinfo).
func TestPostureMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting needs root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs util-linux unshare")
	}
	base := t.TempDir()
	// plain lies in a tmpfs mounted exec,suid,dev (not on the file system
	// of the test's temp dir, whose options vary from host to host).
	outer := base + "/outer"
	good, bad, bindGood, bindBad, plain := base+"/good", base+"/bad", base+"/bind-good", base+"/bind-bad", outer+"/plain"
	for _, d := range []string{good, bad, bindGood, bindBad, outer} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(base, "agent.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("state_dir = %s/state\nposture_tmp_dirs = %s %s %s %s %s\n/nonexistent-root p\n",
		base, good, bad, bindGood, bindBad, plain)), 0o644)
	// The script gets every path as an argument, never in its text.
	script := `set -e
mount -t tmpfs -o noexec,nosuid,nodev,size=4m tmpfs "$1"
mount -t tmpfs -o size=4m,mode=1777 tmpfs "$2"
mkdir "$1/vt"
mount --bind "$1/vt" "$3"
mount --bind "$2" "$4"
mount -t tmpfs -o size=4m,mode=0755,exec,suid,dev tmpfs "$7"
mkdir "$7/plain"
exec "$5" --config "$6" posture --json`
	r := runCmd(t, unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", good, bad, bindGood, bindBad, agentBin, conf, outer)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (findings)\nstderr: %s", r.code, r.stderr)
	}
	rep := decodePosture(t, r)
	got := map[string]posture.MountCheck{}
	for _, m := range rep.Mounts {
		got[m.Dir] = m
	}
	type want struct {
		separate bool
		bindOf   string
		missing  string
		fix      []string
	}
	wants := map[string]want{
		good:     {separate: true},
		bindGood: {separate: true, bindOf: good + "/vt"},
		bad: {separate: true, missing: "noexec nosuid nodev", fix: []string{
			"/etc/fstab: tmpfs " + bad + " tmpfs defaults,size=4096k,noexec,nosuid,nodev 0 0",
			"or systemd: /etc/systemd/system/" + strings.TrimPrefix(strings.ReplaceAll(bad, "/", "-"), "-") + ".mount.d/hardening.conf:",
			"[Mount]", "Options=size=4096k,noexec,nosuid,nodev",
			"now: mount -o remount,noexec,nosuid,nodev " + bad}},
		bindBad: {separate: true, bindOf: bad, missing: "noexec nosuid nodev", fix: []string{
			"/etc/fstab: " + bad + " " + bindBad + " none bind,noexec,nosuid,nodev 0 0", "Options=bind,noexec,nosuid,nodev"}},
		plain: {missing: "separate noexec nosuid nodev", fix: []string{
			"/etc/fstab: tmpfs " + plain + " tmpfs defaults,noexec,nosuid,nodev,mode=1777,size=1G 0 0"}},
	}
	for dir, w := range wants {
		m, ok := got[dir]
		if !ok {
			t.Errorf("%s: not checked; got %+v", dir, rep.Mounts)
			continue
		}
		if m.Separate != w.separate || m.BindOf != w.bindOf || strings.Join(m.Missing, " ") != w.missing {
			t.Errorf("%s: got separate %v bind_of %q missing %q, want %v %q %q", dir, m.Separate, m.BindOf, m.Missing, w.separate, w.bindOf, w.missing)
		}
		lines := strings.Split(m.Fix, "\n")
		for _, l := range w.fix {
			if !containsLine(lines, l) {
				t.Errorf("%s: fix lacks %q:\n%s", dir, l, m.Fix)
			}
		}
	}
	if got[good].Fix != "" || got[bindGood].Fix != "" {
		t.Errorf("a protected mount got a fix: %q", got[good].Fix)
	}
	if rep.Findings < 3+3+4 {
		t.Errorf("findings %d, want at least 10", rep.Findings)
	}
}

func containsLine(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// dropperSource listens on 127.0.0.1, prints the port and sleeps: the
// IRC bot of a web host compromise, minus the bot.
const dropperSource = `package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	time.Sleep(time.Hour)
}
`

// startDropper builds the dropper into dir and runs it (as cred when not
// nil); it returns the process and its port.
func startDropper(t *testing.T, dir string, cred *syscall.Credential) (*exec.Cmd, int) {
	t.Helper()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "main.go"), []byte(dropperSource), 0o644)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module dropper\n\ngo 1.21\n"), 0o644)
	exe := filepath.Join(dir, "dropper")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the dropper: %v\n%s", err, out)
	}
	cmd := exec.Command(exe)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var port int
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, err2 := fmt.Sscan(line, &port); err != nil || err2 != nil {
		t.Fatalf("dropper port: %q %v %v", line, err, err2)
	}
	return cmd, port
}

func findProcess(rep *posture.Report, pid int) *posture.Process {
	for i := range rep.Processes {
		if rep.Processes[i].PID == pid {
			return &rep.Processes[i]
		}
	}
	return nil
}

// executablesUnder returns the listed executables below dir.
func executablesUnder(rep *posture.Report, dir string) []posture.Executable {
	var out []posture.Executable
	for _, e := range rep.Executables {
		if strings.HasPrefix(e.Path, dir+"/") {
			out = append(out, e)
		}
	}
	return out
}

func hasListen(p *posture.Process, port int) bool {
	for _, s := range p.Sockets {
		if s.Proto == "tcp" && s.State == "LISTEN" && s.Local == fmt.Sprintf("127.0.0.1:%d", port) {
			return true
		}
	}
	return false
}

// TestPostureDropper plants a real ELF in a temp dir, runs it with a TCP
// socket listening on 127.0.0.1, and checks that agent posture reports
// the file and the process with its socket, then, once the file is
// deleted, the deleted-exe case.
func TestPostureDropper(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the dropper")
	}
	dir := t.TempDir()
	cmd, port := startDropper(t, dir, nil)
	conf := postureConf(t, dir)
	rep := decodePosture(t, agent(t, "--config", conf, "posture", "--json"))
	exe := filepath.Join(dir, "dropper")
	var found bool
	for _, e := range rep.Executables {
		if e.Path == exe {
			found = true
			if e.Kind != "elf" || e.ELFClass == "" || len(e.BLAKE3) != 64 {
				t.Errorf("dropper file: %+v", e)
			}
		}
	}
	if !found {
		t.Errorf("dropper file not listed: %+v", rep.Executables)
	}
	p := findProcess(rep, cmd.Process.Pid)
	if p == nil {
		t.Fatalf("dropper process %d not listed: %+v", cmd.Process.Pid, rep.Processes)
	}
	if p.Exe != exe || p.Deleted || !hasListen(p, port) || p.Start.IsZero() || len(p.Cmdline) != 1 {
		t.Errorf("dropper process: %+v", p)
	}
	if time.Since(p.Start) > time.Hour || time.Since(p.Start) < -time.Minute {
		t.Errorf("start time %v is not about now", p.Start)
	}

	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	r := agent(t, "--config", conf, "posture", "--json")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	rep = decodePosture(t, r)
	// Only the test's own dir: where /tmp is a world-writable mount of
	// its own (a fresh CI root), everything in it is scanned too.
	if under := executablesUnder(rep, dir); len(under) != 0 {
		t.Errorf("deleted file still listed: %+v", under)
	}
	p = findProcess(rep, cmd.Process.Pid)
	if p == nil || !p.Deleted || p.Exe != exe || p.Reason != "runs from a deleted file" || !hasListen(p, port) {
		t.Errorf("deleted dropper: %+v", p)
	}
	text := agent(t, "--config", conf, "posture")
	if !strings.Contains(text.stdout, exe+" (deleted)") || !strings.Contains(text.stdout, fmt.Sprintf("tcp LISTEN 127.0.0.1:%d", port)) {
		t.Errorf("text report:\n%s", text.stdout)
	}
}

// TestPostureUnprivileged runs the dropper and agent posture as nobody:
// the agent sees its own user's process and says once how many others it
// could not inspect.
func TestPostureUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as nobody")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the dropper")
	}
	const nobody = 65534
	cred := &syscall.Credential{Uid: nobody, Gid: nobody}
	dir, err := os.MkdirTemp("", "posture-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777|os.ModeSticky)
	bin := filepath.Join(dir, "agent")
	data, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	drop := filepath.Join(dir, "www")
	os.Mkdir(drop, 0o777)
	os.Chmod(drop, 0o777)
	cmd, port := startDropper(t, drop, cred)
	conf := filepath.Join(dir, "agent.conf")
	os.WriteFile(conf, []byte("state_dir = "+dir+"/state\nposture_tmp_dirs = "+drop+"\n/nonexistent-root p\n"), 0o644)
	ac := exec.Command(bin, "--config", conf, "posture", "--json")
	ac.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	r := runPrepared(t, ac)
	if r.code != 1 {
		t.Errorf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	rep := decodePosture(t, r)
	p := findProcess(rep, cmd.Process.Pid)
	if p == nil || p.UID != nobody || !hasListen(p, port) {
		t.Errorf("own process as nobody: %+v", p)
	}
	var said int
	for _, s := range rep.Incomplete {
		if strings.HasSuffix(s, " processes could not be inspected: permission denied") {
			said++
		}
	}
	if said != 1 || rep.Procs.Denied == 0 {
		t.Errorf("want one line on the processes it could not read (denied %d): %q", rep.Procs.Denied, rep.Incomplete)
	}
}

func TestPostureConfigError(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(conf, []byte("/etc p\nposture_allow = /tmp/(\n"), 0o644)
	r := agent(t, "--config", conf, "posture")
	if r.code != exitConfig || !strings.Contains(r.stderr, "agent.conf:2") {
		t.Errorf("exit %d, stderr %q; want %d naming agent.conf:2", r.code, r.stderr, exitConfig)
	}
}

// TestPostureWaived: a finding a posture_allow regex matches is counted as
// waived, still listed, and alone it does not make the exit status 1.
func TestPostureWaived(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tool.sh"), []byte("#!/bin/sh\n"), 0o755)
	conf := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("posture_tmp_dirs = %s\nposture_allow = %s/tool\\.sh %s\n/nonexistent-root p\n", dir, dir, dir)), 0o644)
	r := agent(t, "--config", conf, "posture", "--json")
	rep := decodePosture(t, r)
	if under := executablesUnder(rep, dir); len(under) != 1 || !under[0].Waived || rep.Waived == 0 {
		t.Errorf("got %+v, waived %d", under, rep.Waived)
	}
	for _, m := range rep.Mounts {
		if m.Dir == dir && !m.Waived {
			t.Errorf("mount finding of %s not waived", dir)
		}
	}
}

// TestPostureMail: with --mail, findings go to mail_to (kept in the report
// history too); with every finding waived, no mail goes out, and --quiet
// prints nothing.
func TestPostureMail(t *testing.T) {
	sink := startSink(t, "127.0.0.1:0")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dropper"), []byte("#!/bin/sh\nflood\n"), 0o755)
	state := t.TempDir()
	conf := filepath.Join(t.TempDir(), "agent.conf")
	base := fmt.Sprintf("mail_to=admin@example.org\nsmtp_url=smtp://%s\nposture_tmp_dirs = %s\n", sink.addr, dir)
	os.WriteFile(conf, []byte(base+"/nonexistent-root p\n"), 0o600)
	r := agent(t, "--config", conf, "--state-dir", state, "--quiet", "posture", "--mail")
	if r.code != 1 {
		t.Fatalf("posture --mail: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	msgs := sink.received()
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte("posture: ")) || !bytes.Contains(msgs[0], []byte(filepath.Join(dir, "dropper"))) {
		t.Fatalf("%d mails; first:\n%s", len(msgs), msgs)
	}
	if l := agent(t, "--config", conf, "--state-dir", state, "report", "list"); !strings.Contains(l.stdout, "posture") {
		t.Errorf("posture report not kept:\n%s", l.stdout)
	}
	// This host has its own findings (its /dev/shm, its sandbox's
	// processes): waive everything.
	os.WriteFile(conf, []byte(base+"posture_allow = .*\n/nonexistent-root p\n"), 0o600)
	r = agent(t, "--config", conf, "--state-dir", state, "--quiet", "posture", "--mail")
	// 3: this sandbox hides a process even from root; then the report
	// prints, saying what it could not check.
	if r.code == 0 && r.stdout != "" || r.code != 0 && r.code != 3 {
		t.Errorf("all waived: exit %d, stdout %q", r.code, r.stdout)
	}
	if n := len(sink.received()); n != 1 {
		t.Errorf("%d mails after an all-waived run, want still 1", n)
	}
}

// TestPostureInIntegrityReport: a check after a set-uid file was planted
// lists it apart, in the text and JSON reports and the subject; the
// posture findings are those of the newest kept agent posture report.
func TestPostureInIntegrityReport(t *testing.T) {
	dir := t.TempDir()
	tree, drop, state := filepath.Join(dir, "tree"), filepath.Join(dir, "drop"), filepath.Join(dir, "state")
	buildTree(t, tree, []treeFile{{path: "bin/ok", kind: 'f', data: "ok\n"}, {path: "www/up/keep", kind: 'f', data: "k\n"}})
	if err := os.MkdirAll(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	// A world-writable upload dir inside the scanned tree: the baseline
	// records it, agent posture then looks into it.
	upload := filepath.Join(tree, "www/up")
	if err := os.Chmod(upload, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.conf")
	body := fmt.Sprintf("state_dir = %s\npackage_check = no\nposture_tmp_dirs = %s\nNORMAL = p+u+g+s+md5\n%s NORMAL\n", state, drop, tree)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := agent(t, "--config", conf, "init"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	suid := filepath.Join(tree, "bin/su2")
	if err := os.WriteFile(suid, []byte("x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	r := agent(t, "--config", conf, "check")
	// Exit 1 (added), or 5 where /tmp is a tmpfs: bin's size moved too.
	if r.code&1 == 0 || r.code&^5 != 0 || !strings.Contains(r.stdout, "agent posture has not run") ||
		!strings.Contains(r.stdout, "added set-uid, mode 4755, uid 0, gid 0: "+suid) {
		t.Fatalf("check: exit %d\n%s", r.code, r.stdout)
	}

	// A planted script in the posture dir, found by agent posture and
	// quoted by the next check.
	if err := os.WriteFile(filepath.Join(drop, "bot.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upload, "shell"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p := agent(t, "--config", conf, "posture"); p.code != 1 {
		t.Fatalf("posture: exit %d: %s", p.code, p.stderr)
	}
	r = agent(t, "--config", conf, "check", "--format", "json")
	var doc struct {
		Posture struct {
			Findings      int
			NewPrivileged []struct{ Path string } `json:"new_privileged"`
			Report        posture.Report
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if doc.Posture.Findings == 0 || len(doc.Posture.NewPrivileged) != 1 || doc.Posture.NewPrivileged[0].Path != suid ||
		len(executablesUnder(&doc.Posture.Report, drop)) != 1 || len(executablesUnder(&doc.Posture.Report, upload)) != 1 {
		t.Errorf("posture in the JSON report: %+v", doc.Posture)
	}
	text := agent(t, "--config", conf, "report", "show", "latest-check")
	if !strings.Contains(text.stdout, filepath.Join(drop, "bot.sh")) {
		t.Errorf("the text report does not quote the posture finding:\n%s", text.stdout)
	}
}

// TestPostureMetricsAndEvents: agent posture writes its metrics file and
// one event per finding, like the other jobs.
func TestPostureMetricsAndEvents(t *testing.T) {
	dir := t.TempDir()
	drop, metrics, events := filepath.Join(dir, "drop"), filepath.Join(dir, "metrics"), filepath.Join(dir, "events.json")
	for _, d := range []string{drop, metrics} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bot := filepath.Join(drop, "bot.sh")
	if err := os.WriteFile(bot, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.conf")
	body := fmt.Sprintf("state_dir = %s\nposture_tmp_dirs = %s\nmetrics_dir = %s\nevents = file:%s\n/nonexistent-root p\n", filepath.Join(dir, "state"), drop, metrics, events)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := agent(t, "--config", conf, "posture"); r.code != 1 {
		t.Fatalf("posture: exit %d: %s", r.code, r.stderr)
	}
	prom, err := os.ReadFile(filepath.Join(metrics, "agent_posture.prom"))
	if err != nil {
		t.Fatal(err)
	}
	// The script, and four mount findings for the drop dir (no mount of
	// its own); more of both where the host has world-writable mounts (a
	// fresh root's /tmp holds other tests' files).
	if !strings.Contains(string(prom), "agent_posture_waived 0\n") {
		t.Errorf("agent_posture.prom lacks the waived count:\n%s", prom)
	}
	for kind, least := range map[string]int{"executable": 1, "mount": 4} {
		m := regexp.MustCompile(`agent_posture_findings\{kind="` + kind + `"\} (\d+)\n`).FindStringSubmatch(string(prom))
		if n := 0; m == nil {
			t.Errorf("no %s findings series:\n%s", kind, prom)
		} else if n, _ = strconv.Atoi(m[1]); n < least {
			t.Errorf("%d %s findings, want at least %d:\n%s", n, kind, least, prom)
		}
	}
	if r := agent(t, "--config", conf, "metrics", "--check"); r.code != 0 {
		t.Errorf("metrics --check: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	ev, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range strings.Split(strings.TrimSpace(string(ev)), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("event line %q: %v", l, err)
		}
		if e["event"] == "posture.finding" && e["path"] == bot {
			found = true
		}
	}
	if !found {
		t.Errorf("no posture.finding event for %s:\n%s", bot, ev)
	}
}
