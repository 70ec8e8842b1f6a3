package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchRig is a tmpfs of the test's own with a baseline of it, and a
// running agent watch whose stdout lines the test reads.
type watchRig struct {
	t          *testing.T
	dir, mnt   string
	conf       string
	cmd        *exec.Cmd
	mu         sync.Mutex
	lines      []string
	stderr     strings.Builder
	stderrDone chan struct{}
}

func newWatchRig(t *testing.T) *watchRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (fanotify, a tmpfs mount)")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("agent-watch-test", mnt, "tmpfs", 0, "size=64m,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	for _, d := range []string{"etc", "bin", "burst"} {
		os.Mkdir(filepath.Join(mnt, d), 0o755)
	}
	for _, f := range []string{"etc/a", "etc/b", "etc/c", "etc/d"} {
		if err := os.WriteFile(filepath.Join(mnt, f), []byte("content of "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "agent.conf")
	writeConf(t, conf, fmt.Sprintf("state_dir=%s/state\nreport_dir=%s/reports\npackage_check=no\nposture_in_report=no\n%s p+i+n+u+g+s+m+c+sha256\n", dir, dir, mnt))
	if r := agent(t, "--config", conf, "init"); r.code != 0 {
		t.Fatalf("init: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return &watchRig{t: t, dir: dir, mnt: mnt, conf: conf}
}

// start runs agent watch and waits until it has marked the file system.
func (w *watchRig) start(args ...string) {
	t := w.t
	t.Helper()
	w.cmd = agentCmd(append([]string{"--config", w.conf, "watch", "--quiet", "300ms", "--max-delay", "1s"}, args...)...)
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.stop() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	ready := make(chan struct{})
	w.stderrDone = make(chan struct{})
	go func() {
		defer close(w.stderrDone)
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			w.mu.Lock()
			w.stderr.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "agent: watching") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		w.mu.Lock()
		defer w.mu.Unlock()
		t.Fatalf("agent watch did not start:\n%s", w.stderr.String())
	}
}

func (w *watchRig) stop() {
	if w.cmd == nil || w.cmd.Process == nil || w.cmd.ProcessState != nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	w.cmd.Wait()
}

// waitLine waits up to 5 s for a line that ends in " PATH CLASS" and
// returns its change string.
func (w *watchRig) waitLine(path string) (string, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, l := range w.lines {
			// TIME CHANGE(18 characters, with blanks) PATH CLASS
			stamp, rest, ok := strings.Cut(l, " ")
			if !ok || len(stamp) != len("2006-01-02T15:04:05Z") || len(rest) < 20 {
				continue
			}
			change, rest := rest[:18], rest[19:]
			if i := strings.LastIndexByte(rest, ' '); i > 0 && rest[:i] == path {
				w.mu.Unlock()
				return change, true
			}
		}
		w.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	return "", false
}

// checkJSON runs agent check (args: --incremental or none) and returns the
// change string of each listed path and the notices.
func (w *watchRig) checkJSON(args ...string) (map[string]string, []string, string) {
	w.t.Helper()
	r := agent(w.t, append([]string{"--config", w.conf, "check", "--format", "json"}, args...)...)
	if r.code&^7 != 0 {
		w.t.Fatalf("check %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var doc struct {
		Added, Removed, Changed map[string]string
		Notices                 []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		w.t.Fatalf("check %v: %v\n%s", args, err, r.stdout)
	}
	all := map[string]string{}
	for _, m := range []map[string]string{doc.Added, doc.Removed, doc.Changed} {
		for p, s := range m {
			all[p] = s
		}
	}
	return all, doc.Notices, r.stderr
}

// TestWatch: each kind of change is reported within 5 s with the change
// string the check report gives it; a burst of 10,000 writes prints a
// bounded number of lines and journals every path; check --incremental
// finds what a full check finds.
func TestWatch(t *testing.T) {
	w := newWatchRig(t)
	w.start()
	// The journal vouches only for a baseline written while the watcher
	// ran: before the new one, check --incremental refuses.
	if _, notices, _ := w.checkJSON("--incremental"); !strings.Contains(strings.Join(notices, "\n"), "after the baseline was written") {
		t.Errorf("check --incremental with a baseline older than the watcher: %q", notices)
	}
	if r := agent(t, "--config", w.conf, "init"); r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	m := w.mnt
	if err := os.WriteFile(filepath.Join(m, "bin/evil"), []byte("#!/bin/sh\necho pwned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m, "etc/a"), []byte("modified\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(m, "etc/b"), filepath.Join(m, "etc/b2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(m, "etc/c")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(m, "etc/d"), 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{"bin/evil", "etc/a", "etc/b", "etc/b2", "etc/c", "etc/d"}
	got := map[string]string{}
	for _, p := range paths {
		s, ok := w.waitLine(filepath.Join(m, p))
		if !ok {
			w.mu.Lock()
			t.Fatalf("no finding for %s within 5 s; output:\n%s\nstderr:\n%s", p, strings.Join(w.lines, "\n"), w.stderr.String())
		}
		got[filepath.Join(m, p)] = s
	}
	full, _, _ := w.checkJSON()
	for p, s := range got {
		if full[p] != s {
			t.Errorf("%s: watch says %q, check says %q", p, s, full[p])
		}
	}
	inc, notices, _ := w.checkJSON("--incremental")
	if !strings.Contains(strings.Join(notices, "\n"), "incremental check: ") {
		t.Errorf("check --incremental did not run incrementally: %q", notices)
	}
	if fmt.Sprint(inc) != fmt.Sprint(full) {
		t.Errorf("incremental check found\n%v\nfull check found\n%v", inc, full)
	}

	// A burst: bounded output, every path journaled.
	w.mu.Lock()
	before := len(w.lines)
	w.mu.Unlock()
	for i := range 10000 {
		if err := os.WriteFile(filepath.Join(m, "burst", fmt.Sprintf("f%05d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	var ws watchStatus
	for time.Now().Before(deadline) {
		r := agent(t, "--config", w.conf, "status", "--json")
		var st struct{ Watch watchStatus }
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, r.stdout)
		}
		ws = st.Watch
		if ws.Paths >= 10000+len(paths) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !ws.Running || !ws.Complete || ws.Paths < 10000 {
		t.Fatalf("after the burst: %+v", ws)
	}
	time.Sleep(1500 * time.Millisecond)
	w.mu.Lock()
	burst := w.lines[before:]
	w.mu.Unlock()
	if len(burst) > 300 {
		t.Errorf("a burst of 10,000 writes printed %d lines", len(burst))
	}
	summary := false
	for _, l := range burst {
		if strings.Contains(l, "more changes in this burst") {
			summary = true
		}
	}
	if !summary {
		t.Errorf("no summary line for the burst:\n%s", strings.Join(burst, "\n"))
	}
	r := agent(t, "--config", w.conf, "status")
	if !strings.Contains(r.stdout, "watch: running") || !strings.Contains(r.stdout, "complete since") {
		t.Errorf("status:\n%s", r.stdout)
	}
	inc, _, _ = w.checkJSON("--incremental")
	full, _, _ = w.checkJSON()
	if fmt.Sprint(inc) != fmt.Sprint(full) || len(full) < 10000 {
		t.Errorf("after the burst the incremental check found %d changes, the full one %d", len(inc), len(full))
	}

	// Stopped: the journal is no longer trusted.
	w.stop()
	_, notices, stderr := w.checkJSON("--incremental")
	if !strings.Contains(stderr, "incremental check refused: agent watch is not running") ||
		!strings.Contains(strings.Join(notices, "\n"), "this is a full check") {
		t.Errorf("check --incremental without a watcher: %q %q", stderr, notices)
	}
}

// TestWatchIncremental: check --incremental, run at once after the
// changes (the watcher journals its queue when asked), finds what a full
// check finds, for directories created, removed, moved and replaced too;
// it gives way to a full check when the last one is full_check_every old
// and when the rules changed.
func TestWatchIncremental(t *testing.T) {
	w := newWatchRig(t)
	m := w.mnt
	for _, d := range []string{"tree/a/b", "gone/x/y", "moved/z"} {
		if err := os.MkdirAll(filepath.Join(m, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tree/a/b/f", "gone/x/y/f", "gone/g", "moved/z/f", "moved/m", "etc/hard"} {
		if err := os.WriteFile(filepath.Join(m, f), []byte(f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory the rules leave out, on the same file system.
	if err := os.Mkdir(filepath.Join(m, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(w.conf)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, w.conf, string(conf)+"!"+m+"/outside\n")
	w.start()
	if r := agent(t, "--config", w.conf, "init"); r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	var lastNotices string
	compare := func(step string) {
		t.Helper()
		inc, notices, stderr := w.checkJSON("--incremental")
		lastNotices = strings.Join(notices, "\n")
		if !strings.Contains(strings.Join(notices, "\n"), "incremental check: ") {
			t.Fatalf("%s: check --incremental did not run incrementally: %q %s", step, notices, stderr)
		}
		full, _, _ := w.checkJSON()
		if fmt.Sprint(inc) != fmt.Sprint(full) {
			t.Errorf("%s: incremental check found\n%v\nfull check found\n%v", step, inc, full)
		}
		if len(full) == 0 {
			t.Errorf("%s: no changes found", step)
		}
	}
	// No waiting between the change and the check.
	if err := os.WriteFile(filepath.Join(m, "etc/a"), []byte("changed just now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compare("a file changed just before the check")

	steps := []struct {
		name string
		do   func() error
	}{
		{"a new directory tree", func() error {
			if err := os.MkdirAll(filepath.Join(m, "new/deep/er"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(m, "new/deep/er/planted"), []byte("#!/bin/sh\n"), 0o755)
		}},
		{"a directory tree removed", func() error { return os.RemoveAll(filepath.Join(m, "gone")) }},
		{"a directory tree moved", func() error { return os.Rename(filepath.Join(m, "moved"), filepath.Join(m, "bin/moved")) }},
		{"a directory moved away, changed and moved back", func() error {
			if err := os.Rename(filepath.Join(m, "tree"), filepath.Join(m, "tree.tmp")); err != nil {
				return err
			}
			// Long enough for the watcher to name the change below
			// by the directory's passing name.
			time.Sleep(700 * time.Millisecond)
			if err := os.WriteFile(filepath.Join(m, "tree.tmp/a/b/f"), []byte("edited while away\n"), 0o644); err != nil {
				return err
			}
			time.Sleep(700 * time.Millisecond)
			return os.Rename(filepath.Join(m, "tree.tmp"), filepath.Join(m, "tree"))
		}},
		{"a directory replaced", func() error {
			if err := os.RemoveAll(filepath.Join(m, "tree/a")); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(m, "tree/a/b"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(m, "tree/a/b/f"), []byte("other\n"), 0o644)
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		compare(st.name)
	}
	// Hard links: the kernel reports the name used, not the file's other
	// names, whose link count, ctime or content changed with it; the
	// journal's inodes bring them in.
	link := func(from, to string) error { return os.Link(filepath.Join(m, from), filepath.Join(m, to)) }
	write := func(name string) error {
		f, err := os.OpenFile(filepath.Join(m, name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString("written through another name\n")
		return errors.Join(err, f.Close())
	}
	for _, st := range []struct {
		name string
		do   func() error
	}{
		{"a new hard link", func() error { return link("etc/hard", "bin/hard") }},
		{"a write through a second name", func() error { return write("bin/hard") }},
		{"a write through a name outside the scanned tree", func() error {
			if err := link("etc/d", "outside/d"); err != nil {
				return err
			}
			compare("a link outside the scanned tree")
			return write("outside/d")
		}},
		{"a hard link removed", func() error { return os.Remove(filepath.Join(m, "bin/hard")) }},
	} {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		compare(st.name)
		if !strings.Contains(lastNotices, "other names of files with several links") {
			t.Errorf("%s: the other names were not rescanned: %s", st.name, lastNotices)
		}
	}

	// A watcher restarted (a reboot) after the baseline: refused until a
	// full check it saw; then incremental again, carrying what differed
	// at that check.
	w.stop()
	w.start()
	if r := agent(t, "--config", w.conf, "status"); !strings.Contains(r.stdout, "watch: check --incremental: a full check instead: agent watch started at") {
		t.Errorf("status after the watcher restarted:\n%s", r.stdout)
	}
	if _, _, stderr := w.checkJSON("--incremental"); !strings.Contains(stderr, "incremental check refused: agent watch started at") {
		t.Errorf("check --incremental after the watcher restarted: %q", stderr)
	}
	if err := os.WriteFile(filepath.Join(m, "etc/a"), []byte("changed after the restart\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compare("after a restart and a full check")
	if r := agent(t, "--config", w.conf, "status"); !strings.Contains(r.stdout, "watch: check --incremental: possible, from the journal since") {
		t.Errorf("status after an anchoring full check:\n%s", r.stdout)
	}
	if !strings.Contains(lastNotices, "since the full check of") {
		t.Errorf("after a restart: not anchored at the full check: %s", lastNotices)
	}

	// The last full check is full_check_every old: a full check instead.
	b, err := os.ReadFile(filepath.Join(w.dir, "state", fullCheckName))
	if err != nil {
		t.Fatal(err)
	}
	var fc fullCheck
	if err := json.Unmarshal(b, &fc); err != nil {
		t.Fatalf("%s: %v\n%s", fullCheckName, err, b)
	}
	fc.Time = time.Now().Add(-8 * 24 * time.Hour)
	if b, err = json.Marshal(fc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "state", fullCheckName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, notices, stderr := w.checkJSON("--incremental")
	if !strings.Contains(stderr, "incremental check refused: the last full check was at") ||
		!strings.Contains(strings.Join(notices, "\n"), "this is a full check") {
		t.Errorf("check --incremental 8 days after a full check: %q %q", stderr, notices)
	}
	// That full check counts: the next one is incremental again.
	if _, notices, _ := w.checkJSON("--incremental"); !strings.Contains(strings.Join(notices, "\n"), "incremental check: ") {
		t.Errorf("check --incremental after a full check: %q", notices)
	}

	// An option that does not change what a scan records: still
	// incremental.
	conf, err = os.ReadFile(w.conf)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, w.conf, "mail_from=agent@example.org\nreport_quiet=yes\n"+string(conf))
	if err := os.WriteFile(filepath.Join(m, "etc/a"), []byte("changed after an option edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compare("after an option edit")

	// A partial update (--limit) keeps entries it did not read: no
	// anchor until the next full check.
	if r := agent(t, "--config", w.conf, "update", "--limit", m+"/etc"); r.code&^7 != 0 {
		t.Fatalf("update --limit: %d\n%s", r.code, r.stderr)
	}
	if _, _, stderr := w.checkJSON("--incremental"); !strings.Contains(stderr, "incremental check refused: the baseline was written by update --packages, update --limit or accept") {
		t.Errorf("check --incremental after update --limit: %q", stderr)
	}
	compare("after update --limit and a full check")

	// accept installs an older scan: the same, until a full check.
	if r := agent(t, "--config", w.conf, "accept"); r.code&^7 != 0 {
		t.Fatalf("accept: %d\n%s", r.code, r.stderr)
	}
	// (report_quiet: the clean check prints no report)
	if r := agent(t, "--config", w.conf, "check", "--incremental"); !strings.Contains(r.stderr, "incremental check refused: the baseline was written by update --packages, update --limit or accept") {
		t.Errorf("check --incremental after accept: %d %q", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(m, "etc/a"), []byte("changed after accept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	compare("after accept and a full check")

	// Other rules than the baseline's: a full check.
	writeConf(t, w.conf, strings.Replace(string(conf), "+sha256", "+sha512", 1))
	if _, _, stderr := w.checkJSON("--incremental"); !strings.Contains(stderr, "incremental check refused: the rules changed") {
		t.Errorf("check --incremental with other rules: %q", stderr)
	}
}

// TestWatchMail: watch_mail = immediate mails each burst's findings;
// digest collects them into one mail every watch_mail_every, and what is
// left when agent watch stops is mailed then. The server is a real SMTP
// server on 127.0.0.1.
func TestWatchMail(t *testing.T) {
	for _, mode := range []string{"immediate", "digest"} {
		t.Run(mode, func(t *testing.T) {
			w := newWatchRig(t)
			sink := startSink(t, "127.0.0.1:0")
			b, err := os.ReadFile(w.conf)
			if err != nil {
				t.Fatal(err)
			}
			writeConf(t, w.conf, fmt.Sprintf("mail_to=admin@example.org\nmail_from=agent@example.org\nsmtp_url=smtp://%s\nwatch_mail=%s\nwatch_mail_every=1h\n%s", sink.addr, mode, b))
			w.start()
			for _, name := range []string{"bin/one", "bin/two"} {
				if err := os.WriteFile(filepath.Join(w.mnt, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				if _, ok := w.waitLine(filepath.Join(w.mnt, name)); !ok {
					t.Fatalf("no finding for %s", name)
				}
			}
			if mode == "immediate" {
				if !waitUntil(5*time.Second, func() bool { return len(sink.received()) == 2 }) {
					t.Fatalf("immediate: %d mails for two bursts", len(sink.received()))
				}
			} else {
				time.Sleep(500 * time.Millisecond)
				if n := len(sink.received()); n != 0 {
					t.Fatalf("digest: %d mails before watch_mail_every", n)
				}
				// Stopping spools what was collected; the next flush
				// sends it.
				w.stop()
				if r := agent(t, "--config", w.conf, "mail", "flush"); r.code != 0 {
					t.Fatalf("mail flush: %d\n%s", r.code, r.stderr)
				}
				if n := len(sink.received()); n != 1 {
					t.Fatalf("digest: %d mails after agent watch stopped and the spool was flushed, want the one digest", n)
				}
			}
			all := string(bytes.Join(sink.received(), nil))
			for _, name := range []string{"bin/one", "bin/two"} {
				if !strings.Contains(all, "f+++++++++++++++++ "+filepath.Join(w.mnt, name)+" unexplained") {
					t.Errorf("%s: no finding line for %s in\n%s", mode, name, all)
				}
			}
			if !strings.Contains(all, "Subject: [agent] ") || !strings.Contains(all, ": watch: ") || !strings.Contains(all, " unexplained") {
				t.Errorf("%s: subject:\n%s", mode, all)
			}
		})
	}
}

// TestWatchOverflow stops the watcher while far more events than the
// kernel's queue holds happen: the next check --incremental falls back to
// a full check and says why.
func TestWatchOverflow(t *testing.T) {
	w := newWatchRig(t)
	w.start()
	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := range 20000 { // the default queue holds 16384 events
		if err := os.WriteFile(filepath.Join(w.mnt, "burst", fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.cmd.Process.Signal(syscall.SIGCONT)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		s := strings.Join(w.lines, "\n")
		w.mu.Unlock()
		if strings.Contains(s, "overflow: the kernel's event queue overflowed") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, notices, stderr := w.checkJSON("--incremental")
	if !strings.Contains(stderr, "incremental check refused: the event queue overflowed") ||
		!strings.Contains(strings.Join(notices, "\n"), "this is a full check") {
		w.mu.Lock()
		t.Errorf("after an overflow: stderr %q notices %q\nwatch output:\n%s", stderr, notices, strings.Join(w.lines, "\n"))
		w.mu.Unlock()
	}
	r := agent(t, "--config", w.conf, "status")
	if !strings.Contains(r.stdout, "incomplete: the event queue overflowed") {
		t.Errorf("status after an overflow:\n%s", r.stdout)
	}
}

// TestWatchUnavailable: without CAP_SYS_ADMIN agent watch exits 3 and
// says why.
func TestWatchUnavailable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as another user")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	os.Chown(state, 65534, 65534)
	conf := filepath.Join(dir, "agent.conf")
	writeConf(t, conf, fmt.Sprintf("state_dir=%s\nreport_dir=%s/reports\npackage_check=no\n%s p+sha256\n", state, state, dir))
	os.Chmod(conf, 0o644)
	// The test binary's directory is private: a copy nobody may run.
	bin := filepath.Join(dir, "agent")
	data, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", conf, "watch")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	r := runPrepared(t, cmd)
	if r.code != exitWatchUnavailable || !strings.Contains(r.stderr, "fanotify is not available") {
		t.Errorf("watch as nobody: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDaemonWatch: with watch=yes the daemon runs agent watch, logs its
// findings, restarts it when it dies and stops it with itself.
func TestDaemonWatch(t *testing.T) {
	w := newWatchRig(t)
	b, err := os.ReadFile(w.conf)
	if err != nil {
		t.Fatal(err)
	}
	writeConf(t, w.conf, "watch=yes\ncheck_mode=incremental\nschedule_check=@every 2s\nschedule_raid=@yearly\nposture_schedule=@yearly\naoe_config="+filepath.Join(w.dir, "vbladed.conf")+"\n"+string(b))
	// The baseline of this configuration (another one is refused too).
	if r := agent(t, "--config", w.conf, "init"); r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	d := startDaemon(t, nil, "--config", w.conf, "daemon")
	if !waitUntil(15*time.Second, func() bool { return strings.Contains(d.log.String(), "agent: watching") }) {
		t.Fatalf("the daemon did not start agent watch; output:\n%s", d.log)
	}
	// check_mode = incremental: the job runs check --incremental, which
	// refuses the baseline written before the watcher started.
	if !waitUntil(15*time.Second, func() bool {
		return strings.Contains(d.log.String(), "incremental check refused: agent watch started at")
	}) {
		t.Fatalf("the integrity job did not run check --incremental; output:\n%s", d.log)
	}
	// That full check, made while the watcher ran, anchors the next ones:
	// they are incremental (the notice of a kept report says so).
	if !waitUntil(15*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(w.dir, "reports", "check-*.json"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "incremental check: ") {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no incremental check after the first full one; output:\n%s", d.log)
	}
	planted := filepath.Join(w.mnt, "bin", "planted")
	if err := os.WriteFile(planted, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(5*time.Second, func() bool { return logLine(d.log.String(), planted, "unexplained") != "" }) {
		t.Fatalf("no finding for %s in the daemon's log within 5 s:\n%s", planted, d.log)
	}
	// A watcher that dies is restarted.
	// The child runs with the daemon's copy of the config and its
	// state_dir on the command line.
	pids := procsMentioning(t, filepath.Join(w.dir, "state"))
	var child int
	for _, p := range pids {
		if p != d.cmd.Process.Pid {
			child = p
		}
	}
	if child == 0 {
		t.Fatalf("no agent watch child among %v", pids)
	}
	syscall.Kill(child, syscall.SIGKILL)
	if !waitUntil(10*time.Second, func() bool { return strings.Count(d.log.String(), "agent: watching") >= 2 }) {
		t.Fatalf("agent watch was not restarted; output:\n%s", d.log)
	}
	d.stop(t)
	for _, p := range procsMentioning(t, filepath.Join(w.dir, "state")) {
		t.Errorf("pid %d still runs after the daemon stopped", p)
	}
}
