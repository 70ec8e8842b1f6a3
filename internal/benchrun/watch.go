package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The watch rows of issue 18: on the benchmark tree with 50 changed files
// and agent watch running since before the baseline, check --incremental
// against a full check; then what agent watch costs while 10,000 files
// are written.
const (
	rowWatchFull = "agent check (full, watch rules)"
	rowWatchInc  = "agent check --incremental"

	watchChanged     = 50
	watchBurst       = 10_000
	maxIncVsFull     = 0.05 // at least 20× faster
	watchRule        = "p+i+n+u+g+s+m+c+md5"
	watchStartWithin = 15 * time.Second
)

// watchBench needs a tree the harness owns (it changes files in it), root
// and fanotify; otherwise it says why in a note and returns.
func watchBench(ctx context.Context, cfg config, res *results, agentArgs []string, logf func(string, ...any)) error {
	if !strings.HasPrefix(cfg.Tree, cfg.Dir+"/") {
		res.notef("watch rows skipped: BENCH_TREE=%s is not a copy the harness owns, and they change files in it", cfg.Tree)
		return nil
	}
	if os.Geteuid() != 0 {
		res.notef("watch rows skipped: agent watch needs root")
		return nil
	}
	conf := filepath.Join(cfg.Dir, "conf", "agent-watch.conf")
	state := filepath.Join(cfg.Dir, "state-watch")
	text := fmt.Sprintf("# Written by internal/benchrun: the watch rows.\nnice=0\nionice=none\nnum_workers=%d\npackage_check=no\nposture_in_report=no\nreport_dir=%s/reports\nWATCHED = %s\n%s WATCHED\n",
		cfg.Workers, state, watchRule, selectTree(cfg.Tree))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	agent := func(verb ...string) []string {
		return append(append(append([]string{cfg.Agent}, agentArgs...), "--config", conf, "--state-dir", state), verb...)
	}
	logf("watch rows: agent watch on the file system of %s", cfg.Tree)
	watcher := exec.CommandContext(ctx, cfg.Agent, "--config", conf, "--state-dir", state, "watch")
	errp, err := watcher.StderrPipe()
	if err != nil {
		return err
	}
	if err := watcher.Start(); err != nil {
		return err
	}
	defer func() {
		watcher.Process.Signal(syscall.SIGTERM)
		watcher.Wait()
	}()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errp)
		var all strings.Builder
		for sc.Scan() {
			all.WriteString(sc.Text() + "; ")
			if strings.HasPrefix(sc.Text(), "agent: watching") {
				ready <- ""
			}
		}
		ready <- "agent watch ended: " + all.String()
	}()
	select {
	case why := <-ready:
		if why != "" {
			res.notef("watch rows skipped: %s", why)
			return nil
		}
	case <-time.After(watchStartWithin):
		res.notef("watch rows skipped: agent watch did not start within %s", watchStartWithin)
		return nil
	}
	initCmd := command{Argv: agent("init"), Stderr: filepath.Join(cfg.Dir, "logs", "watch-init.err")}
	if s, err := measure(ctx, initCmd); err != nil || s.Exit != 0 {
		return fmt.Errorf("bench: watch baseline: exit %d, %v%s", s.Exit, err, tail(initCmd.Stderr))
	}
	changed, err := touchFiles(cfg.Tree, watchChanged)
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // the watcher's burst delay, with room
	var steps []*step
	four := func(code int) bool { return code == 4 }
	for _, r := range []struct {
		name string
		verb []string
	}{{rowWatchFull, []string{"check"}}, {rowWatchInc, []string{"check", "--incremental"}}} {
		p := filepath.Join(cfg.Dir, "logs", strings.ReplaceAll(strings.Join(r.verb, ""), "-", ""))
		st := &step{row: &row{Name: r.name, Entries: -1}, keep: four, expect: four,
			cmd: command{Argv: agent(append(r.verb, "--format", "json")...), Stdout: p + ".json", Stderr: p + ".err", Sample: true}}
		steps = append(steps, st)
		res.WatchRows = append(res.WatchRows, st.row)
	}
	if err := roundRobin(ctx, cfg, steps, logf); err != nil {
		return err
	}
	full, fullNotes, err1 := reportChanges(steps[0].cmd.Stdout)
	inc, incNotes, err2 := reportChanges(steps[1].cmd.Stdout)
	switch {
	case err1 != nil || err2 != nil:
		res.notef("watch rows: cannot compare the reports: %v %v", err1, err2)
	case !strings.Contains(strings.Join(incNotes, " "), "incremental check: "):
		res.notef("watch rows: check --incremental ran a full check: %s", strings.Join(incNotes, "; "))
	case fmt.Sprint(full) != fmt.Sprint(inc):
		res.notef("watch rows: the findings DIFFER: full check %d changes, incremental %d", len(full), len(inc))
	default:
		res.WatchNotes = append(res.WatchNotes, fmt.Sprintf("%d files changed (one byte appended each) after the baseline, agent watch running since before it; both checks report the same %d changes; %s",
			len(changed), len(full), noticeWith(incNotes, "incremental check: ")))
	}
	_ = fullNotes
	res.WatchChecks = []check{res.ratio("check --incremental / check", rowWatchInc, rowWatchFull, maxIncVsFull)}

	// The watcher's cost while 10,000 files are written into one directory.
	cpu0, _ := procCPU(watcher.Process.Pid)
	burst := filepath.Join(cfg.Tree, "watch-burst")
	if err := os.Mkdir(burst, 0o755); err != nil {
		return err
	}
	start := time.Now()
	for i := range watchBurst {
		if err := os.WriteFile(filepath.Join(burst, fmt.Sprintf("f%05d", i)), []byte("x\n"), 0o644); err != nil {
			return err
		}
	}
	wrote := time.Since(start)
	time.Sleep(5 * time.Second)
	cpu1, _ := procCPU(watcher.Process.Pid)
	hwm := procStatusKiB(watcher.Process.Pid, "VmHWM")
	res.WatchNotes = append(res.WatchNotes, fmt.Sprintf("agent watch while %d files were written in %.2f s (and for 5 s after, its bursts rescanned and compared): %.2f s CPU, peak RSS %.1f MiB",
		watchBurst, wrote.Seconds(), cpu1-cpu0, float64(hwm)/1024))
	return os.RemoveAll(burst)
}

// touchFiles appends a byte to n regular files spread over tree and
// returns their paths.
func touchFiles(tree string, n int) ([]string, error) {
	var all []string
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			all = append(all, p)
		}
		return nil
	})
	if err != nil || len(all) < n {
		return nil, fmt.Errorf("bench: %s has %d regular files, the watch rows change %d: %v", tree, len(all), n, err)
	}
	var out []string
	for i := range n {
		p := all[i*len(all)/n]
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		_, err = f.Write([]byte{'\n'})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// reportChanges reads a JSON report: every listed path with its change
// string, and the notices.
func reportChanges(path string) (map[string]string, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Added, Removed, Changed map[string]string
		Notices                 []string
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	all := map[string]string{}
	for _, m := range []map[string]string{doc.Added, doc.Removed, doc.Changed} {
		for p, s := range m {
			all[p] = s
		}
	}
	return all, doc.Notices, nil
}

func noticeWith(notices []string, prefix string) string {
	for _, n := range notices {
		if strings.HasPrefix(n, prefix) {
			return n
		}
	}
	return ""
}

// procCPU is the user+system CPU seconds of pid so far.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which may hold blanks.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ
}

// procStatusKiB is one "kB" field of /proc/PID/status, 0 when absent.
func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
