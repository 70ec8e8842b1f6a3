package main

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"opsagent/db"
)

// faultEnv is a small tree, its config and a state_dir with a baseline.
type faultEnv struct {
	dir, tree, conf, state string
}

func newFaultEnv(t *testing.T, state string) *faultEnv {
	t.Helper()
	dir := t.TempDir()
	e := &faultEnv{dir: dir, tree: filepath.Join(dir, "tree"), state: state}
	if e.state == "" {
		e.state = filepath.Join(dir, "state")
	}
	var files []treeFile
	for i := range 40 {
		files = append(files, treeFile{path: fmt.Sprintf("d%d/f%d", i%4, i), kind: 'f', data: strings.Repeat("x", i) + "\n"})
	}
	buildTree(t, e.tree, files)
	// Directories are checked without their size, which on tmpfs grows
	// and shrinks with every entry and would add a change to each fault.
	e.conf = filepath.Join(dir, "agent.conf")
	body := "NORMAL = p+u+g+s+md5+sha256\nDIR = p+u+g\n" + e.tree + " d DIR\n" + e.tree + " f NORMAL\n"
	if err := os.WriteFile(e.conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *faultEnv) run(t *testing.T, args ...string) result {
	t.Helper()
	return agent(t, append([]string{"--config", e.conf, "--state-dir", e.state}, args...)...)
}

func (e *faultEnv) baseline() string { return filepath.Join(e.state, "baseline.db") }

func (e *faultEnv) mustInit(t *testing.T) {
	t.Helper()
	if r := e.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// mountTmpfs mounts a tmpfs with opts on a new directory and unmounts it at
// the end of the test.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	needRoot(t, "mounts a small tmpfs to fill it")
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// readmeExitCodes returns the codes of README.md's exit-code table.
func readmeExitCodes(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "### Exit codes")
	if !ok {
		t.Fatal("README.md has no '### Exit codes' section")
	}
	rest, _, _ = strings.Cut(rest, "\n#")
	var codes []int
	row := regexp.MustCompile(`(?m)^\| ([0-9][0-9, ]*)(?: \(bits\))? \|`)
	for _, m := range row.FindAllStringSubmatch(rest, -1) {
		for _, f := range strings.Split(m[1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("README exit code row %q: %v", m[0], err)
			}
			codes = append(codes, n)
		}
	}
	if len(codes) < 10 {
		t.Fatalf("README exit code table: only %v", codes)
	}
	return codes
}

// TestExitCodeTable produces every exit code of README.md's table with the
// fault that stands for it, so the table and the program cannot drift.
func TestExitCodeTable(t *testing.T) {
	cases := map[int]func(t *testing.T) result{
		0: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			return e.run(t, "check")
		},
		1: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			os.WriteFile(filepath.Join(e.tree, "d0/new"), []byte("n\n"), 0o644)
			return e.run(t, "check")
		},
		2: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			os.Remove(filepath.Join(e.tree, "d1/f1"))
			return e.run(t, "check")
		},
		4: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			os.WriteFile(filepath.Join(e.tree, "d2/f2"), []byte("changed\n"), 0o644)
			return e.run(t, "check")
		},
		3: unreadableRun,
		14: func(t *testing.T) result {
			e := newFaultEnv(t, mountTmpfs(t, "size=16k"))
			return e.run(t, "init")
		},
		15: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			return e.run(t, "compare", "only-one.db")
		},
		17: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			os.WriteFile(e.conf, []byte("NORMAL = p+u+md6\n"), 0o600)
			return e.run(t, "check")
		},
		18: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			return e.run(t, "check")
		},
		19: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			futureFormat(t, e.baseline())
			return e.run(t, "check")
		},
		21: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			if err := os.MkdirAll(e.state, 0o700); err != nil {
				t.Fatal(err)
			}
			l, err := db.Lock(e.state)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			return e.run(t, "init")
		},
		24: func(t *testing.T) result {
			e := newFaultEnv(t, "")
			e.mustInit(t)
			os.WriteFile(e.baseline(), bytes.Repeat([]byte{0x5a}, 5000), 0o600)
			return e.run(t, "check")
		},
		25: interruptedRun,
	}
	for _, code := range readmeExitCodes(t) {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			produce, ok := cases[code]
			if !ok {
				t.Fatalf("README documents exit code %d but this test has no fault that produces it", code)
			}
			r := produce(t)
			if r.code != code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
			}
			if code >= 8 && strings.TrimSpace(r.stderr) == "" {
				t.Errorf("exit %d with nothing on stderr", code)
			}
		})
	}
}

// futureFormat rewrites the format version in a baseline's meta to one this
// agent does not know. bbolt leaf pages store a key and its value side by
// side and carry no checksum, so the byte can be patched in place.
func futureFormat(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := []byte("format\x01")
	if bytes.Count(b, old) != 1 {
		t.Fatalf("format key found %d times in %s", bytes.Count(b, old), path)
	}
	b = bytes.Replace(b, old, []byte("format\x7f"), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// unreadableRun runs a check in which one file cannot be read: as an
// unprivileged user (nobody, when the test runs as root) on a 0000 file.
func unreadableRun(t *testing.T) result {
	t.Helper()
	base, err := os.MkdirTemp("", "agent-unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	e := &faultEnv{dir: base, tree: filepath.Join(base, "tree"), state: filepath.Join(base, "state")}
	buildTree(t, e.tree, []treeFile{{path: "a/ok", kind: 'f', data: "ok\n"}, {path: "a/secret", kind: 'f', data: "s\n"}})
	os.Chmod(filepath.Join(e.tree, "a/secret"), 0)
	e.conf = simpleConfig(t, base, e.tree)
	cmd := agentCmd("--config", e.conf, "--state-dir", e.state, "init")
	if os.Geteuid() == 0 {
		const nobody = 65534
		for _, p := range []string{base, e.tree, filepath.Join(e.tree, "a"), e.conf} {
			os.Lchown(p, nobody, nobody)
		}
		os.Chmod(filepath.Dir(agentBin), 0o755)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	return runPrepared(t, cmd)
}

// interruptedRun sends SIGTERM to an init in the middle of its scan.
func interruptedRun(t *testing.T) result {
	t.Helper()
	e := newFaultEnv(t, "")
	bigTree(t, e.tree)
	cmd := agentCmd("--config", e.conf, "--state-dir", e.state, "init")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(tempFiles(t, e.state)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// TestUnusableBaseline: a baseline path that is a symlink (to a good
// baseline, to a device, dangling), a directory or a FIFO is refused by
// every command with exit 24 and a message that says what to do, and is
// left as it was.
func TestUnusableBaseline(t *testing.T) {
	kinds := []struct {
		name string
		make func(t *testing.T, e *faultEnv, path string)
	}{
		{"symlink-to-baseline", func(t *testing.T, e *faultEnv, path string) {
			os.Rename(path, path+".real")
			os.Symlink(path+".real", path)
		}},
		{"symlink-to-device", func(t *testing.T, e *faultEnv, path string) {
			os.Remove(path)
			os.Symlink("/dev/zero", path)
		}},
		{"dangling-symlink", func(t *testing.T, e *faultEnv, path string) {
			os.Remove(path)
			os.Symlink(filepath.Join(e.dir, "nonexistent.db"), path)
		}},
		{"directory", func(t *testing.T, e *faultEnv, path string) {
			os.Remove(path)
			os.Mkdir(path, 0o700)
		}},
		{"fifo", func(t *testing.T, e *faultEnv, path string) {
			os.Remove(path)
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, k := range kinds {
		for _, cmd := range []string{"init", "check", "update", "accept"} {
			t.Run(k.name+"/"+cmd, func(t *testing.T) {
				e := newFaultEnv(t, "")
				e.mustInit(t)
				if r := e.run(t, "check"); r.code != 0 {
					t.Fatalf("check: exit %d: %s", r.code, r.stderr)
				}
				k.make(t, e, e.baseline())
				before, _ := os.Lstat(e.baseline())
				r := e.run(t, cmd)
				if r.code != exitCorrupt {
					t.Errorf("exit %d, want %d; stderr: %s", r.code, exitCorrupt, r.stderr)
				}
				if !strings.Contains(r.stderr, "not a regular file") || !strings.Contains(r.stderr, "move it away") {
					t.Errorf("stderr does not say what is wrong and what to do: %q", r.stderr)
				}
				after, err := os.Lstat(e.baseline())
				if err != nil || after.Mode() != before.Mode() || !os.SameFile(before, after) {
					t.Errorf("baseline path changed: %v -> %v (%v)", before.Mode(), after, err)
				}
			})
		}
	}
}

// TestInitOverCorruptBaseline: init replaces an unreadable baseline, keeps
// it byte for byte and says so on stderr (even with --quiet) and in the
// report.
func TestInitOverCorruptBaseline(t *testing.T) {
	e := newFaultEnv(t, "")
	e.mustInit(t)
	junk := bytes.Repeat([]byte("not a baseline "), 400)
	if err := os.WriteFile(e.baseline(), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, "--quiet", "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	m := regexp.MustCompile(`unreadable .*kept unchanged as (\S+baseline-\d{8}-\d{6}(?:-\d+)?\.db)`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no notice naming the kept file on stderr: %q", r.stderr)
	}
	kept, err := os.ReadFile(m[1])
	if err != nil || !bytes.Equal(kept, junk) {
		t.Errorf("kept file %s is not the old content (%v)", m[1], err)
	}
	rep := e.run(t, "report", "show", "latest-init")
	if !strings.Contains(rep.stdout, "Notice: the previous baseline was unreadable") || !strings.Contains(rep.stdout, m[1]) {
		t.Errorf("kept report lacks the notice:\n%s", rep.stdout)
	}
	js := e.run(t, "report", "show", "--json", "latest-init")
	if !strings.Contains(js.stdout, `"notices"`) {
		t.Errorf("JSON report lacks notices:\n%s", js.stdout)
	}
	if r := e.run(t, "check"); r.code != 0 {
		t.Errorf("check after init: exit %d: %s", r.code, r.stderr)
	}
}

// TestReportNotKept: the baseline fits on disk but the report does not.
// The run exits 14 and says so on stderr even with --quiet, and the mail
// carries the report with a notice that it was not kept.
func TestReportNotKept(t *testing.T) {
	full := mountTmpfs(t, "size=8k")
	// Leave no room at all in the report file system.
	filler, _ := os.Create(filepath.Join(full, "filler"))
	filler.Write(make([]byte, 64<<10))
	filler.Close()
	sink := startSink(t, "127.0.0.1:0")
	e := newFaultEnv(t, "")
	conf := mailConf(t, e.dir, e.tree, sink.addr, "report_dir="+filepath.Join(full, "reports")+"\n")
	os.MkdirAll(filepath.Join(full, "reports"), 0o700)
	r := agent(t, "--config", conf, "--state-dir", e.state, "--quiet", "init", "--mail")
	if r.code != exitWrite {
		t.Fatalf("init: exit %d, want %d; stderr: %s", r.code, exitWrite, r.stderr)
	}
	if !strings.Contains(r.stderr, "report could not be kept") || !strings.Contains(r.stderr, "no space left") {
		t.Errorf("stderr does not name the failure: %q", r.stderr)
	}
	if _, err := db.Open(e.baseline()); err != nil {
		t.Errorf("the baseline was not installed: %v", err)
	}
	msgs := sink.received()
	if len(msgs) != 1 {
		t.Fatalf("%d mails, want 1 (the report, no second error mail)", len(msgs))
	}
	if !bytes.Contains(msgs[0], []byte("Notice: this report could not be kept")) {
		t.Errorf("the mailed report does not say it was not kept:\n%s", msgs[0])
	}
	if !strings.Contains(r.stdout, "Notice: this report could not be kept") {
		t.Errorf("the printed report does not say it was not kept:\n%s", r.stdout)
	}
}

// TestReportListIncomplete: a report file left half-written by a killed
// run is shown by `report list`.
func TestReportListIncomplete(t *testing.T) {
	e := newFaultEnv(t, "")
	e.mustInit(t)
	reports := filepath.Join(e.state, "reports")
	partial := "check-20261203-101500.txt.tmp-123456"
	os.WriteFile(filepath.Join(reports, partial), []byte("half"), 0o600)
	r := e.run(t, "report", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "incomplete: "+partial) {
		t.Errorf("report list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestENOSPCEveryStep fills the state file system so that init and update
// run out of space at each of their write steps in turn: the temporary
// generation, the copy that update installs, the kept previous generation
// (a hard link, which takes an inode slot on tmpfs), the report's temporary
// files and their names in the history. Every run either succeeds or exits
// 14; on failure before the install the baseline is byte-identical, and no
// temporary generation is ever left.
func TestENOSPCEveryStep(t *testing.T) {
	for _, cmd := range []string{"init", "update"} {
		t.Run(cmd, func(t *testing.T) {
			t.Run("inodes", func(t *testing.T) {
				steps := enospcSweep(t, cmd, "size=64m,nr_inodes=256", func(fsDir, fillDir string, round int) bool {
					return fillInodes(t, fsDir, fillDir, int64(12-round))
				})
				// The history's no-clobber link falls back to a rename
				// when it meets ENOSPC, and update's copy reuses the inode
				// its rename over last-check.db freed: neither fails here.
				for _, w := range []string{"generation", "keep", "ok", "report"} {
					if !steps[w] {
						t.Errorf("no run ran out of inodes at step %q (saw %v)", w, slices.Sorted(maps.Keys(steps)))
					}
				}
			})
			t.Run("blocks", func(t *testing.T) {
				steps := enospcSweep(t, cmd, "size=2m", func(fsDir, fillDir string, round int) bool {
					return fillBlocks(t, fsDir, fillDir, int64(256<<10)-int64(round)*4096)
				})
				for _, w := range []string{"generation", "ok"} {
					if !steps[w] {
						t.Errorf("no run ended at step %q (saw %v)", w, slices.Sorted(maps.Keys(steps)))
					}
				}
			})
		})
	}
}

// enospcSweep runs cmd once per round after fill has left less room each
// round, until fill says there is nothing left to take, and returns the
// steps at which runs stopped ("ok" for a run that succeeded).
func enospcSweep(t *testing.T, cmd, opts string, fill func(fsDir, fillDir string, round int) bool) map[string]bool {
	t.Helper()
	fsDir := mountTmpfs(t, opts)
	e := newFaultEnv(t, filepath.Join(fsDir, "state"))
	e.mustInit(t)
	fillDir := filepath.Join(fsDir, "fill")
	steps := map[string]bool{}
	for round := 0; ; round++ {
		os.RemoveAll(fillDir)
		if err := os.Mkdir(fillDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if !fill(fsDir, fillDir, round) {
			break
		}
		os.WriteFile(filepath.Join(e.tree, "d3/f3"), []byte(fmt.Sprintf("round %d\n", round)), 0o644)
		before, err := os.ReadFile(e.baseline())
		if err != nil {
			t.Fatal(err)
		}
		r := e.run(t, cmd)
		switch {
		case r.code == 0, cmd == "update" && r.code == 4:
			steps["ok"] = true
		case r.code == exitWrite:
			step := enospcStep(r.stderr)
			steps[step] = true
			if step == "report" || step == "history" {
				break // the baseline was written; only the report is missing
			}
			after, err := os.ReadFile(e.baseline())
			if err != nil || !bytes.Equal(before, after) {
				t.Fatalf("round %d: %s exited 14 and changed the baseline (%v); stderr: %s", round, cmd, err, r.stderr)
			}
		default:
			t.Fatalf("round %d: %s exit %d, want 0 or 14; stderr: %s", round, cmd, r.code, r.stderr)
		}
		if m := tempFiles(t, e.state); len(m) > 0 {
			t.Fatalf("round %d: temp files left: %v", round, m)
		}
		b, err := db.Open(e.baseline())
		if err != nil {
			t.Fatalf("round %d: baseline unreadable after %s: %v", round, cmd, err)
		}
		b.Close()
	}
	t.Logf("%s %s: %v", cmd, opts, slices.Sorted(maps.Keys(steps)))
	return steps
}

// enospcStep names the write step an exit-14 message is about.
func enospcStep(stderr string) string {
	switch {
	case strings.Contains(stderr, "report could not be kept") && strings.Contains(stderr, "link "):
		return "history"
	case strings.Contains(stderr, "report could not be kept"):
		return "report"
	case strings.Contains(stderr, "keep previous"):
		return "keep"
	case strings.Contains(stderr, "install "):
		return "install"
	}
	return "generation"
}

// fillBlocks writes a file into fillDir so that about leave bytes stay free
// in the file system of fsDir; false when leave is below zero.
func fillBlocks(t *testing.T, fsDir, fillDir string, leave int64) bool {
	t.Helper()
	if leave < 0 {
		return false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(fsDir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - leave
	if n <= 0 {
		return true
	}
	f, err := os.Create(filepath.Join(fillDir, "filler"))
	if err != nil {
		return true // no room even for the filler: the run will meet that too
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for ; n > 0; n -= int64(len(buf)) {
		if int64(len(buf)) > n {
			buf = buf[:n]
		}
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	return true
}

// fillInodes creates empty files in fillDir until leave inodes are free;
// false when leave is below zero.
func fillInodes(t *testing.T, fsDir, fillDir string, leave int64) bool {
	t.Helper()
	if leave < 0 {
		return false
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(fsDir, &st); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < int64(st.Ffree)-leave; i++ {
		f, err := os.Create(filepath.Join(fillDir, strconv.FormatInt(i, 10)))
		if err != nil {
			break
		}
		f.Close()
	}
	return true
}

// TestPseudoFSReport: a selection under /proc (here the test process's
// pagemap, which reports size 0 but reads for ever) finishes at once, and
// the report says how many entries were recorded by metadata only.
func TestPseudoFSReport(t *testing.T) {
	dir := t.TempDir()
	pid := strconv.Itoa(os.Getpid())
	conf := filepath.Join(dir, "agent.conf")
	body := "NORMAL = p+u+g+s+md5\n/proc/" + pid + "/pagemap$ NORMAL\n/proc/" + pid + "/status$ NORMAL\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "state"), "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("init took %v", d)
	}
	if !strings.Contains(r.stdout, "metadata only:\t2") && !strings.Contains(r.stdout, "metadata only: 2") {
		t.Errorf("report does not count the 2 metadata-only entries:\n%s", r.stdout)
	}
}
