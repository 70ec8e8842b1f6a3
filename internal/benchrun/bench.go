package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The row names; ratios and tests refer to rows by these.
const (
	rowAideInit    = "aide init"
	rowAideCheck   = "aide check"
	rowAgentInit   = "agent init (md5)"
	rowAgentCheck  = "agent check (md5)"
	rowAgentBLAKE3 = "agent init (blake3)"
	rowWalk        = "walk floor (find -printf)"
	rowMD5         = "md5 floor (md5sum)"
	rowB3          = "b3sum floor (b3sum)"

	rowSynthAgentInit  = "agent init (md5), synthetic"
	rowSynthAgentCheck = "agent check (md5), synthetic"
	rowSynthAideInit   = "aide init, synthetic"
	rowSynthAideCheck  = "aide check, synthetic"
)

// Acceptance thresholds of issue 3.
const (
	maxInitVsAide     = 0.4
	maxInitVsMD5      = 1.3
	maxCheckVsAide    = 0.2
	maxCheckVsMD5     = 1.5
	maxBLAKE3VsFloor  = 1.3
	maxRSSMiB         = 100
	maxSynthAnonMiB   = 150
	mib               = 1 << 20
	normalMD5Rule     = "p+u+g+s+md5"
	normalBLAKE3Rule  = "p+u+g+s+blake3"
	errFlagNotDefined = "flag provided but not defined"
)

// config is what one benchmark run measures.
type config struct {
	Agent      string    // agent binary
	Tree       string    // absolute path of the tree both tools scan
	Dir        string    // work dir: configs, state, logs, synthetic tree, bench.md
	Runs       int       // timed runs per row after one warm-up
	MFiles     int       // files in the synthetic tree; 0 skips it
	Workers    int       // agent --workers, aide num_workers, parallel md5sum/b3sum
	AideMFiles bool      // also run aide on the synthetic tree
	Log        io.Writer // progress lines

	// The package rows (packageBench) run when Pkg is set: PkgAdmin is
	// the dpkg admin dir copied into the root (/var/lib/dpkg), PkgHost
	// the host whose merged-/usr links the root copies (/), and the
	// upgrade touches the first PkgCount packages with PkgMinFiles
	// regular files under /usr.
	Pkg bool
	// Only runs one group of rows alone (BENCH_ONLY): "pkg", "posture"
	// or "watch"; "" runs everything.
	Only        string
	PkgAdmin    string
	PkgHost     string
	PkgCount    int
	PkgMinFiles int
}

// row is one measured command.
type row struct {
	Name    string
	Runs    []sample // timed runs
	Warm    *sample  // the warm-up run, nil when none
	Skip    string   // why the row was not run
	Err     error    // why it stopped
	Warn    []string // unexpected exit statuses (timings kept)
	Entries int64    // "Number of entries" of the last run; -1 when not printed
}

// median returns the median wall time of the timed runs.
func (r *row) median() time.Duration {
	if len(r.Runs) == 0 {
		return 0
	}
	d := make([]time.Duration, len(r.Runs))
	for i, s := range r.Runs {
		d[i] = s.Wall
	}
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// span returns the fastest and slowest timed run.
func (r *row) span() (lo, hi time.Duration) {
	for i, s := range r.Runs {
		if i == 0 || s.Wall < lo {
			lo = s.Wall
		}
		if s.Wall > hi {
			hi = s.Wall
		}
	}
	return lo, hi
}

// peaks returns the largest MaxRSS and RssAnon over all runs, warm-up
// included (RssAnon -1 when never sampled).
func (r *row) peaks() (rss, anon int64) {
	anon = -1
	all := r.Runs
	if r.Warm != nil {
		all = append([]sample{*r.Warm}, all...)
	}
	for _, s := range all {
		rss = max(rss, s.MaxRSS)
		anon = max(anon, s.RssAnon)
	}
	return rss, anon
}

// usable reports whether the row has timings to compare.
func (r *row) usable() bool { return r != nil && r.Skip == "" && r.Err == nil && len(r.Runs) > 0 }

// check is one acceptance criterion: a measured value against a maximum.
type check struct {
	Name    string
	Value   float64 // NaN when it could not be computed
	Max     float64
	Unit    string // "" for a ratio
	Missing string // why Value is NaN
}

// pass reports whether the value was measured and is within the maximum.
func (c check) pass() bool { return !math.IsNaN(c.Value) && c.Value <= c.Max }

// results is everything one run of the harness learnt.
type results struct {
	Config      config
	Started     time.Time
	Versions    []string // tool versions, one line each
	Entries     int64    // entries in the tree, root included
	Bytes       int64    // bytes in its regular files
	Rows        []*row
	Checks      []check
	MFilesTime  time.Duration // to create the synthetic tree
	Synth       []*row
	SynthChecks []check
	Pkg         *pkgRoot // nil when the package rows did not run
	PkgRows     []*row
	PkgChecks   []check
	PkgVerdict  *pkgVerdict // the JSON verification check; nil when it failed
	PkgNotes    []string
	PostRows    []*row // agent posture on a large temp dir (postureBench)
	PostChecks  []check
	PostNote    string
	WatchRows   []*row // check --incremental against check (watchBench)
	WatchChecks []check
	WatchNotes  []string
	Notes       []string
}

// row returns the named row, nil when absent.
func (r *results) row(name string) *row {
	for _, x := range append(append(append(append(slices.Clip(r.Rows), r.Synth...), r.PkgRows...), r.PostRows...), r.WatchRows...) {
		if x.Name == name {
			return x
		}
	}
	return nil
}

func (r *results) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// step is how to run one row.
type step struct {
	row    *row
	cmd    command
	before func() error // untimed preparation
	after  func() error // untimed follow-up (aide's database rename)
	// keep says whether a run with this exit status still counts; other
	// non-zero statuses are kept with a warning only when keep allows them.
	keep func(code int) bool
	// expect says whether a non-zero status is the expected outcome (the
	// package rows' changes), kept without a warning.
	expect func(code int) bool
}

// bench runs every row on cfg.Tree, then the synthetic tree, and computes
// the acceptance checks. Rows whose tool is missing are skipped with a note;
// an error is returned only when nothing sensible can be measured.
func bench(ctx context.Context, cfg config) (*results, error) {
	res := &results{Config: cfg, Started: time.Now()}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format+"\n", args...)
		}
	}
	if strings.ContainsAny(cfg.Tree+cfg.Dir, " \t\n\"") {
		return nil, fmt.Errorf("bench: paths with blanks or quotes are not supported in configs: %q, %q", cfg.Tree, cfg.Dir)
	}
	var err error
	if cfg.Only == "posture" {
		// No tree to count.
	} else if res.Entries, res.Bytes, err = treeStats(cfg.Tree); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	logf("tree %s: %d entries, %.2f GiB in regular files", cfg.Tree, res.Entries, float64(res.Bytes)/(1<<30))
	for _, d := range []string{"conf", "logs", "aide"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}

	have := func(tool string) bool { _, err := exec.LookPath(tool); return err == nil }
	hasAide, hasB3 := have("aide"), have("b3sum")
	if !hasAide {
		res.notef("aide is not installed (apt-get install aide): the aide rows and ratios are skipped")
	}
	if !hasB3 {
		res.notef("b3sum is not installed (apt-get install b3sum): the b3sum floor row is skipped; the blake3 ratio uses the walk floor alone")
	}
	res.Versions = versions(cfg.Agent, hasAide, hasB3)
	for _, t := range []string{"find", "xargs", "md5sum", "sh"} {
		if !have(t) {
			return nil, fmt.Errorf("bench: %s not found in PATH", t)
		}
	}

	agentArgs, err := agentFlags(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(agentArgs, "--no-nice") {
		res.notef("bin/agent has no --no-nice flag: it ran with nice=0 and ionice=none from its config instead")
	}

	if cfg.Only == "posture" {
		res.notef("BENCH_ONLY=posture: only the posture rows ran")
		if err := postureBench(ctx, cfg, res, logf); err != nil {
			return nil, err
		}
		return res, nil
	}
	if cfg.Only == "watch" {
		res.notef("BENCH_ONLY=watch: only the watch rows ran")
		if err := watchBench(ctx, cfg, res, agentArgs, logf); err != nil {
			return nil, err
		}
		return res, nil
	}
	if cfg.Only == "pkg" {
		res.notef("BENCH_ONLY=pkg: only the package rows ran")
		if err := packageBench(ctx, cfg, res, agentArgs, logf); err != nil {
			return nil, err
		}
		return res, nil
	}
	steps, err := treeSteps(cfg, agentArgs, hasAide, hasB3)
	if err != nil {
		return nil, err
	}
	for _, st := range steps {
		res.Rows = append(res.Rows, st.row)
	}
	if err := roundRobin(ctx, cfg, steps, logf); err != nil {
		return nil, err
	}
	for _, st := range steps {
		st.row.Entries = entriesOf(st.cmd.Stdout)
	}
	res.Checks = treeChecks(res)
	compareEntries(res, rowAideInit, rowAgentInit)
	compareEntries(res, rowAideCheck, rowAgentCheck)
	if r := res.row(rowAgentInit); r.usable() && r.Entries >= 0 && r.Entries != res.Entries {
		res.notef("%s counted %d entries, the tree has %d", rowAgentInit, r.Entries, res.Entries)
	}

	if cfg.Pkg {
		if err := packageBench(ctx, cfg, res, agentArgs, logf); err != nil {
			return nil, err
		}
	}
	if err := postureBench(ctx, cfg, res, logf); err != nil {
		return nil, err
	}
	if err := watchBench(ctx, cfg, res, agentArgs, logf); err != nil {
		return nil, err
	}
	if cfg.MFiles > 0 {
		if err := synthetic(ctx, cfg, res, agentArgs, hasAide, logf); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// roundRobin runs the steps: round 0 is the warm-up of every row, then
// cfg.Runs rounds time every row once each. A failing row stops; the
// others go on.
func roundRobin(ctx context.Context, cfg config, steps []*step, logf func(string, ...any)) error {
	// Round-robin: round 0 is the warm-up of every row, then each round
	// times every row once, so load from other users of the machine
	// spreads over all rows instead of skewing one ratio.
	for round := 0; round <= cfg.Runs; round++ {
		for _, st := range steps {
			if st.row.Skip != "" || st.row.Err != nil {
				continue
			}
			label := "warm-up"
			if round > 0 {
				label = fmt.Sprintf("run %d/%d", round, cfg.Runs)
			}
			s, err := runStep(ctx, st)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				st.row.Err = err
				logf("%-28s %s: %v", st.row.Name, label, err)
				continue
			}
			logf("%-28s %s: %6.2f s, peak RSS %6.1f MiB%s", st.row.Name, label, s.Wall.Seconds(), float64(s.MaxRSS)/mib, anonText(s.RssAnon))
			if round == 0 {
				st.row.Warm = &s
			} else {
				st.row.Runs = append(st.row.Runs, s)
			}
		}
	}
	return nil
}

// runStep runs one step with its preparation and follow-up; an exit status
// keep rejects is an error, one it accepts but is not 0 is a warning.
func runStep(ctx context.Context, st *step) (sample, error) {
	if st.before != nil {
		if err := st.before(); err != nil {
			return sample{}, err
		}
	}
	s, err := measure(ctx, st.cmd)
	if err != nil {
		return s, err
	}
	if s.Exit != 0 {
		msg := fmt.Sprintf("exit status %d%s", s.Exit, tail(st.cmd.Stderr))
		if !st.keep(s.Exit) {
			return s, errors.New(msg)
		}
		if st.expect == nil || !st.expect(s.Exit) {
			st.row.Warn = append(st.row.Warn, msg)
		}
	}
	if st.after != nil {
		if err := st.after(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// agentFlags returns the agent's global flags: --quiet, --workers and
// --no-nice when the binary knows it (an older one exits 15 with "flag
// provided but not defined"; then the config's nice=0/ionice=none apply).
func agentFlags(ctx context.Context, cfg config) ([]string, error) {
	probe := filepath.Join(cfg.Dir, "probe")
	if err := os.MkdirAll(filepath.Join(probe, "tree"), 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(probe)
	conf := filepath.Join(probe, "agent.conf")
	if err := writeAgentConf(conf, filepath.Join(probe, "tree"), normalMD5Rule, cfg.Workers); err != nil {
		return nil, err
	}
	base := []string{"--quiet", "--workers", strconv.Itoa(cfg.Workers)}
	for _, extra := range [][]string{{"--no-nice"}, nil} {
		args := append(append(slices.Clip(base), extra...), "--config", conf, "--state-dir", filepath.Join(probe, "state"), "init")
		cmd := exec.CommandContext(ctx, cfg.Agent, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			return append(base, extra...), nil
		}
		var ee *exec.ExitError
		if extra != nil && errors.As(err, &ee) && ee.ExitCode() == 15 && strings.Contains(stderr.String(), errFlagNotDefined) {
			continue
		}
		return nil, fmt.Errorf("bench: %s %s: %w: %s", cfg.Agent, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	panic("unreachable")
}

// treeSteps builds the rows on cfg.Tree, in the order they run in a round.
func treeSteps(cfg config, agentArgs []string, hasAide, hasB3 bool) ([]*step, error) {
	conf := func(name string) string { return filepath.Join(cfg.Dir, "conf", name) }
	logs := func(name string) (string, string) {
		p := filepath.Join(cfg.Dir, "logs", name)
		return p + ".out", p + ".err"
	}
	if err := writeAgentConf(conf("agent-md5.conf"), cfg.Tree, normalMD5Rule, cfg.Workers); err != nil {
		return nil, err
	}
	if err := writeAgentConf(conf("agent-blake3.conf"), cfg.Tree, normalBLAKE3Rule, cfg.Workers); err != nil {
		return nil, err
	}
	aideDB := filepath.Join(cfg.Dir, "aide", "aide.db")
	if err := writeAideConf(conf("aide.conf"), cfg.Tree, aideDB, cfg.Workers); err != nil {
		return nil, err
	}
	var steps []*step
	add := func(name string, argv []string, logName string, keepOut bool, keep func(int) bool) *step {
		out, errf := logs(logName)
		if !keepOut {
			out = ""
		}
		st := &step{row: &row{Name: name, Entries: -1},
			cmd:  command{Argv: argv, Stdout: out, Stderr: errf, Sample: keepOut},
			keep: keep}
		steps = append(steps, st)
		return st
	}
	// aide and the agent exit 1-7 for differences and 3 (agent) for
	// unreadable entries: timings still count, with a warning. The floors
	// must succeed.
	report := func(code int) bool { return code > 0 && code < 8 }
	exact := func(int) bool { return false }

	ai := add(rowAideInit, []string{"aide", "-c", conf("aide.conf"), "--init"}, "aide-init", true, report)
	ai.before = func() error { return removeIfExists(aideDB + ".new") }
	ai.after = func() error { return os.Rename(aideDB+".new", aideDB) }
	ac := add(rowAideCheck, []string{"aide", "-c", conf("aide.conf"), "--check"}, "aide-check", true, report)
	if !hasAide {
		ai.row.Skip, ac.row.Skip = "aide not installed", "aide not installed"
	}

	agent := func(confName, state, verb string) []string {
		return append(append([]string{cfg.Agent}, agentArgs...),
			"--config", conf(confName), "--state-dir", filepath.Join(cfg.Dir, state), verb)
	}
	// Each init starts from an empty state dir, as aide --init writes a
	// fresh database.
	gi := add(rowAgentInit, agent("agent-md5.conf", "state-md5", "init"), "agent-init-md5", true, report)
	gi.before = func() error { return os.RemoveAll(filepath.Join(cfg.Dir, "state-md5")) }
	add(rowAgentCheck, agent("agent-md5.conf", "state-md5", "check"), "agent-check-md5", true, report)
	gb := add(rowAgentBLAKE3, agent("agent-blake3.conf", "state-blake3", "init"), "agent-init-blake3", true, report)
	gb.before = func() error { return os.RemoveAll(filepath.Join(cfg.Dir, "state-blake3")) }

	// The floors' output is discarded; their stdout is not sampled (the
	// measured process is find or a shell, not the hasher).
	n := strconv.Itoa(cfg.Workers)
	q := shellQuote(cfg.Tree)
	add(rowWalk, []string{"find", cfg.Tree, "-printf", `%p %s %m %U %G\n`}, "walk", false, exact)
	add(rowMD5, []string{"sh", "-c", "find " + q + " -type f -print0 | xargs -0 -P " + n + " -n 256 md5sum >/dev/null"}, "md5", false, exact)
	b3 := add(rowB3, []string{"sh", "-c", "find " + q + " -type f -print0 | xargs -0 -P " + n + " -n 256 b3sum --num-threads 1 >/dev/null"}, "b3sum", false, exact)
	if !hasB3 {
		b3.row.Skip = "b3sum not installed"
	}
	return steps, nil
}

// synthetic creates the small-file tree and measures the agent (and, when
// asked, aide) on it once each.
func synthetic(ctx context.Context, cfg config, res *results, agentArgs []string, hasAide bool, logf func(string, ...any)) error {
	root := filepath.Join(cfg.Dir, "mfiles")
	logf("creating %d small files under %s", cfg.MFiles, root)
	start := time.Now()
	if err := makeSmallFiles(ctx, root, cfg.MFiles); err != nil {
		return fmt.Errorf("bench: synthetic tree: %w", err)
	}
	res.MFilesTime = time.Since(start)
	logf("created in %.1f s", res.MFilesTime.Seconds())

	conf := filepath.Join(cfg.Dir, "conf", "agent-mfiles.conf")
	if err := writeAgentConf(conf, root, normalMD5Rule, cfg.Workers); err != nil {
		return err
	}
	aideConf := filepath.Join(cfg.Dir, "conf", "aide-mfiles.conf")
	aideDB := filepath.Join(cfg.Dir, "aide", "mfiles.db")
	if err := writeAideConf(aideConf, root, aideDB, cfg.Workers); err != nil {
		return err
	}
	state := filepath.Join(cfg.Dir, "state-mfiles")
	agent := func(verb string) []string {
		return append(append([]string{cfg.Agent}, agentArgs...), "--config", conf, "--state-dir", state, verb)
	}
	report := func(code int) bool { return code > 0 && code < 8 }
	mk := func(name, logName string, argv []string) *step {
		p := filepath.Join(cfg.Dir, "logs", logName)
		return &step{row: &row{Name: name, Entries: -1}, keep: report,
			cmd: command{Argv: argv, Stdout: p + ".out", Stderr: p + ".err", Sample: true}}
	}
	steps := []*step{
		mk(rowSynthAgentInit, "mfiles-agent-init", agent("init")),
		mk(rowSynthAgentCheck, "mfiles-agent-check", agent("check")),
	}
	if cfg.AideMFiles {
		ai := mk(rowSynthAideInit, "mfiles-aide-init", []string{"aide", "-c", aideConf, "--init"})
		ai.before = func() error { return removeIfExists(aideDB + ".new") }
		ai.after = func() error { return os.Rename(aideDB+".new", aideDB) }
		ac := mk(rowSynthAideCheck, "mfiles-aide-check", []string{"aide", "-c", aideConf, "--check"})
		if !hasAide {
			ai.row.Skip, ac.row.Skip = "aide not installed", "aide not installed"
		}
		steps = append(steps, ai, ac)
	}
	for _, st := range steps {
		res.Synth = append(res.Synth, st.row)
		if st.row.Skip != "" {
			continue
		}
		s, err := runStep(ctx, st)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			st.row.Err = err
			logf("%-28s: %v", st.row.Name, err)
			continue
		}
		st.row.Runs = append(st.row.Runs, s)
		st.row.Entries = entriesOf(st.cmd.Stdout)
		logf("%-28s: %6.2f s, peak RSS %6.1f MiB%s", st.row.Name, s.Wall.Seconds(), float64(s.MaxRSS)/mib, anonText(s.RssAnon))
	}
	for _, name := range []string{rowSynthAgentInit, rowSynthAgentCheck} {
		c := check{Name: name + " peak RssAnon", Max: maxSynthAnonMiB, Unit: "MiB", Value: math.NaN()}
		if r := res.row(name); r.usable() {
			_, anon := r.peaks()
			c.Value = float64(anon) / mib
		} else {
			c.Missing = "not measured"
		}
		res.SynthChecks = append(res.SynthChecks, c)
	}
	compareEntries(res, rowSynthAideInit, rowSynthAgentInit)
	return nil
}

// treeChecks computes the acceptance ratios of the tree rows from medians.
func treeChecks(res *results) []check {
	med, ratio := res.med, res.ratio
	checks := []check{
		ratio("agent init / aide init", rowAgentInit, rowAideInit, maxInitVsAide),
		ratio("agent init / md5 floor", rowAgentInit, rowMD5, maxInitVsMD5),
		ratio("agent check / aide check", rowAgentCheck, rowAideCheck, maxCheckVsAide),
		ratio("agent check / md5 floor", rowAgentCheck, rowMD5, maxCheckVsMD5),
	}
	// The blake3 floor is the slower of stat-ing everything and hashing
	// everything; without b3sum only the walk is known.
	floor := rowWalk
	if w, _ := med(rowWalk); !math.IsNaN(w) {
		if b, _ := med(rowB3); !math.IsNaN(b) && b > w {
			floor = rowB3
		}
	}
	c := ratio("agent init (blake3) / max(walk, b3sum floor)", rowAgentBLAKE3, floor, maxBLAKE3VsFloor)
	if r := res.row(rowB3); r == nil || !r.usable() {
		c.Name = "agent init (blake3) / walk floor (no b3sum)"
	}
	checks = append(checks, c)
	for _, name := range []string{rowAgentInit, rowAgentCheck} {
		c := check{Name: name + " peak RSS", Max: maxRSSMiB, Unit: "MiB", Value: math.NaN()}
		if r := res.row(name); r.usable() {
			rss, _ := r.peaks()
			c.Value = float64(rss) / mib
		} else {
			c.Missing = name + " not measured"
		}
		checks = append(checks, c)
	}
	return checks
}

// compareEntries notes when aide and the agent counted different entries:
// then the configs are not equivalent and the ratios compare unlike work.
func compareEntries(res *results, aideRow, agentRow string) {
	a, g := res.row(aideRow), res.row(agentRow)
	if !a.usable() || !g.usable() || a.Entries < 0 || g.Entries < 0 {
		return
	}
	if a.Entries != g.Entries {
		res.notef("entry counts differ: %s %d, %s %d", aideRow, a.Entries, agentRow, g.Entries)
	}
}

var entriesRE = regexp.MustCompile(`(?m)^\s*(?:Total n|N)umber of entries:\s+(\d+)`)

// entriesOf returns the "Number of entries:" of a report file, -1 if none.
func entriesOf(path string) int64 {
	if path == "" {
		return -1
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	m := entriesRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// writeAgentConf writes an agent config selecting tree with NORMAL = rule,
// at normal priority (the benchmark runs every tool at the same priority).
func writeAgentConf(path, tree, rule string, workers int) error {
	text := fmt.Sprintf(`# Written by internal/benchrun: the same rules as aide.conf.
nice=0
ionice=none
num_workers=%d
NORMAL = %s
%s NORMAL
`, workers, rule, selectTree(tree))
	return os.WriteFile(path, []byte(text), 0o644)
}

// writeAideConf writes the aide config equivalent to writeAgentConf's.
func writeAideConf(path, tree, db string, workers int) error {
	text := fmt.Sprintf(`# Written by internal/benchrun: the same rules as agent-md5.conf.
database_in=file:%s
database_out=file:%s.new
gzip_dbout=no
report_url=stdout
num_workers=%d
NORMAL = %s
%s NORMAL
`, db, db, workers, normalMD5Rule, selectTree(tree))
	return os.WriteFile(path, []byte(text), 0o644)
}

// selectTree returns the selection regex for the tree: the path escaped,
// then "(/|$)", because the implicit ^ without an implicit $ would also
// select siblings such as /usr/share/doc-base for /usr/share/doc.
func selectTree(p string) string { return regexp.QuoteMeta(p) + "(/|$)" }

// shellQuote quotes s for sh -c.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail returns the last line of a log file, for error messages.
func tail(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if last := lines[len(lines)-1]; last != "" {
		return ": " + last
	}
	return ""
}

func anonText(anon int64) string {
	if anon < 0 {
		return ""
	}
	return fmt.Sprintf(", peak RssAnon %6.1f MiB", float64(anon)/mib)
}

// versions returns one line per tool version.
func versions(agent string, hasAide, hasB3 bool) []string {
	first := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil && len(out) == 0 {
			return name + ": " + err.Error()
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	v := []string{first(agent, "--version")}
	if hasAide {
		v = append(v, first("aide", "--version"))
	}
	if hasB3 {
		v = append(v, first("b3sum", "--version"))
	}
	v = append(v, first("md5sum", "--version"), first("find", "--version"))
	return v
}
