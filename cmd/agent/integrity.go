package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/zeebo/blake3"

	"opsagent/db"
	"opsagent/pkgdb"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
)

// File names under state_dir.
const (
	baselineName  = "baseline.db"
	lastCheckName = "last-check.db"
)

func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Usage: "report format: plain or json (default: report_format)"}
}

func mailFlag() cli.Flag {
	return &cli.BoolFlag{Name: "mail", Usage: "mail the report to mail_to (a clean check only with mail_clean=yes); undeliverable mail is spooled"}
}

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "scan and install a new baseline (the previous one is kept as baseline-YYYYMMDD-HHMMSS.db)",
		Flags: []cli.Flag{formatFlag(), mailFlag()},
		Action: func(c *cli.Context) error {
			return withRun(c, func(r *integrityRun) error { return r.initBaseline() })
		},
	}
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "scan and report differences from the baseline (exit bits: 1 added, 2 removed, 4 changed)",
		Flags: []cli.Flag{formatFlag(), mailFlag(), &cli.BoolFlag{Name: "incremental",
			Usage: "rehash only the paths agent watch journaled and the files whose stat moved, stat the rest; a full check, saying why, when the journal cannot be trusted"}},
		Action: func(c *cli.Context) error {
			return withRun(c, func(r *integrityRun) error { return r.check(false) })
		},
	}
}

func updateCommand() *cli.Command {
	return &cli.Command{
		Name:  "update",
		Usage: "check, then install the scan as the new baseline (--packages: only what packages explain)",
		Flags: []cli.Flag{formatFlag(), mailFlag(), &cli.BoolFlag{Name: "packages",
			Usage: "accept only the changes package operations explain (package, package-script); unexplained changes and package mismatches keep their baseline state and show again. Rescans only the paths of the packages run since the baseline and the changed directories where packages write"},
			&cli.BoolFlag{Name: "rescan-all", Usage: "with --packages: stat every path of the tree (rehashing the moved files) instead of only the packages' paths and changed directories"}},
		Action: func(c *cli.Context) error {
			return withRun(c, func(r *integrityRun) error { return r.check(true) })
		},
	}
}

func acceptCommand() *cli.Command {
	return &cli.Command{
		Name:  "accept",
		Usage: "install the last check's scan (last-check.db) as the baseline without rescanning",
		Flags: []cli.Flag{formatFlag(), mailFlag()},
		Action: func(c *cli.Context) error {
			return withRun(c, func(r *integrityRun) error { return r.accept() })
		},
	}
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "report the differences between two baseline files",
		ArgsUsage: "OLD.db NEW.db",
		Flags:     []cli.Flag{formatFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return fmt.Errorf("%w: compare takes two database files", errUsage)
			}
			pol, err := loadPolicy(c)
			if err != nil {
				return err
			}
			r := newRun(c, pol)
			if err := r.parseLevel(); err != nil {
				return err
			}
			return r.compare(c.Args().Get(0), c.Args().Get(1))
		},
	}
}

// integrityRun is one init/check/update/accept/compare invocation.
type integrityRun struct {
	c      *cli.Context
	ctx    context.Context
	pol    *rules.Policy
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	start  time.Time
	host   string
	limit  *regexp.Regexp
	level  report.Level
	// reportID is the history ID of the report this run kept, if any.
	reportID string
	// reuse makes the scan keep the baseline's entry of every file that did
	// not move (update --packages); reused counts them.
	reuse  bool
	reused int
	// The package records for provenance, opened once (packageDB).
	pkgDB  pkgdb.DB
	pkgWhy string
	// obs is what the metrics and events of the run need (metrics.go).
	obs runObs
}

func newRun(c *cli.Context, pol *rules.Policy) *integrityRun {
	host, _ := os.Hostname()
	r := &integrityRun{
		c: c, ctx: c.Context, pol: pol,
		stdout: c.App.Writer, stderr: c.App.ErrWriter,
		start: time.Now(), host: host,
	}
	level := slog.LevelInfo
	if c.Bool("quiet") {
		level = slog.LevelError
	}
	r.log = slog.New(slog.NewTextHandler(r.stderr, &slog.HandlerOptions{Level: level}))
	if l := c.String("limit"); l != "" {
		// Validated by loadPolicy; AIDE's --limit matches at the first position.
		r.limit, _ = regexp.Compile("^(?:" + l + ")")
	}
	return r
}

// withRun loads the config, creates and locks state_dir, removes temp files a
// killed run left, and runs fn.
func withRun(c *cli.Context, fn func(*integrityRun) error) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	notices(c, pol, c.App.ErrWriter)
	r := newRun(c, pol)
	if err := r.parseLevel(); err != nil {
		return err
	}
	dir := pol.Options.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create state_dir: %w", errWrite, err)
	}
	lock, err := db.Lock(dir)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := db.CleanTemp(dir); err != nil {
		return err
	}
	if err := checkStateFiles(dir); err != nil {
		return err
	}
	createOwn(pol.Options)
	err = fn(r)
	r.observe(err)
	var ee *exitError
	if err != nil && !errors.As(err, &ee) && c.Bool("mail") {
		r.mailError(c.Command.Name, err)
	}
	return err
}

// checkStateFiles refuses to go on when baseline.db or last-check.db is
// anything but a regular file: every command treats such a baseline alike
// (exit 24), none follows, reads or replaces it.
func checkStateFiles(dir string) error {
	for _, name := range []string{baselineName, lastCheckName} {
		if err := db.CheckRegular(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w; the agent never follows, reads or replaces it: move it away (keep it if it may be evidence), then run 'agent init'", err)
		}
	}
	return nil
}

// parseLevel reads the report_level option.
func (r *integrityRun) parseLevel() error {
	l, err := report.ParseLevel(r.pol.Options.ReportLevel)
	if err != nil {
		return fmt.Errorf("%w: report_level: %w", errConfig, err)
	}
	r.level = l
	return nil
}

func (r *integrityRun) path(name string) string {
	return filepath.Join(r.pol.Options.StateDir, name)
}

func (r *integrityRun) meta(kind string) db.Meta {
	return db.Meta{
		AgentVersion: version, Host: r.host, Kind: kind, Created: r.start,
		RulesDigest: r.pol.Digest, Root: r.pol.Options.RootPrefix,
	}
}

func (r *integrityRun) scanOptions() scanner.Options {
	o := scanner.Options{Workers: r.pol.Options.NumWorkers, Root: r.pol.Options.RootPrefix, Logger: r.log}
	if pct := r.pol.Options.NumWorkersPercent; pct > 0 {
		// num_workers=N%: that share of the CPUs, at least one (aide).
		o.Workers = max(1, runtime.NumCPU()*pct/100)
	}
	if w := r.c.Int("workers"); w > 0 {
		o.Workers = w
	}
	if r.limit != nil {
		o.Limit = func(p string) bool { return r.limit.MatchString(p) }
	}
	return o
}

// scanInto scans the file system into a new generation and returns the
// uncommitted writer and the per-entry problems.
//
// With a baseline, files whose rule has "growing" are also hashed up to their
// baseline size, so that an append is told apart from a rewrite (as aide does).
func (r *integrityRun) scanInto(kind string, baseline *db.Baseline) (*db.Writer, []report.Problem, scanner.Stats, error) {
	w, err := db.Create(r.pol.Options.StateDir, r.meta(kind))
	if err != nil {
		return nil, nil, scanner.Stats{}, err
	}
	opts := r.scanOptions()
	if baseline != nil {
		opts.Uncompress = true
		opts.BaselineSize = func(p string) (int64, bool) {
			e, err := baseline.Get(p)
			if err != nil {
				return 0, false
			}
			return e.Size, true
		}
	}
	var expected uint64
	if baseline != nil {
		expected = baseline.Meta().Entries
	} else if prev, err := db.Open(r.path(baselineName)); err == nil {
		expected = prev.Meta().Entries
		prev.Close()
	}
	if !r.c.Bool("no-nice") {
		if err := lowerPriority(r.pol.Options.Nice, r.pol.Options.IONice); err != nil {
			r.log.Warn("cannot lower the scan's priority", "err", err)
		}
	}
	bar := newProgress(r.stderr, r.c.Bool("quiet"), kind, expected)
	if bar != nil {
		opts.Progress = bar.update
	}
	if r.reuse && baseline != nil {
		// update --packages: a file whose inode, size, mtime and ctime
		// did not move keeps its baseline entry unread. Nothing new is
		// accepted that way: the next full check rehashes it.
		opts.Reuse = func(e *scanner.Entry) bool {
			old, err := baseline.Get(e.Path)
			return err == nil && old.Err == "" && old.Type == e.Type && old.Inode == e.Inode && old.Dev == e.Dev &&
				old.Size == e.Size && old.Mtime == e.Mtime && old.Ctime == e.Ctime && old.Mode == e.Mode
		}
	}
	var problems []report.Problem
	stats, err := scanner.Scan(r.ctx, r.pol, opts, func(e *scanner.Entry) error {
		if e.Reused {
			old, err := baseline.Get(e.Path)
			if err != nil {
				return err
			}
			r.reused++
			return w.Put(old)
		}
		if e.Err != "" {
			problems = append(problems, report.Problem{Path: e.Path, Err: e.Err})
		}
		return w.Put(e)
	})
	bar.finish()
	r.obs.stats = stats
	if err != nil {
		w.Abort()
		if r.ctx.Err() != nil {
			return nil, nil, stats, fmt.Errorf("%w: scan stopped, the baseline is unchanged", errInterrupted)
		}
		return nil, nil, stats, err
	}
	return w, problems, stats, nil
}

func (r *integrityRun) initBaseline() error {
	dst := r.path(baselineName)
	// A previous baseline that cannot be read is kept like any other (it
	// may be evidence), but never silently: the notice names it.
	var prevErr error
	if prev, err := db.Open(dst); err == nil {
		prev.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		prevErr = err
	}
	w, problems, stats, err := r.scanInto("init", nil)
	if err != nil {
		return err
	}
	if r.ctx.Err() != nil {
		w.Abort()
		return fmt.Errorf("%w: the baseline is unchanged", errInterrupted)
	}
	kept, err := w.Commit(dst, db.CommitOptions{KeepPrevious: true, Now: r.start})
	if err != nil {
		w.Abort()
		return err
	}
	r.writeFullCheck(r.start, r.start, nil)
	rep := r.newReport("init")
	if prevErr != nil {
		n := fmt.Sprintf("the previous baseline was unreadable (%v); it is kept unchanged as %s", prevErr, kept)
		rep.Notices = append(rep.Notices, n)
		r.alert("%s", n)
	}
	rep.NewBaseline = dst
	rep.NewBaselineDigest = r.digest(dst)
	rep.Total = int(stats.Entries)
	rep.MetadataOnly = int(stats.MetadataOnly)
	rep.Problems = problems
	if err := r.emitReport(rep); err != nil {
		return err
	}
	if len(problems) > 0 {
		return &exitError{code: exitIncomplete}
	}
	return nil
}

// check scans, writes last-check.db, diffs it against the baseline and
// reports. With update, the scan becomes the baseline.
func (r *integrityRun) check(update bool) error {
	base := r.path(baselineName)
	old, err := db.Open(base)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no baseline at %s: run 'agent init' first: %w", base, err)
		}
		return err
	}
	defer old.Close()
	kind := "check"
	if update {
		kind = "update"
	}
	r.reuse = update && r.c.Bool("packages")
	if r.reuse && r.limit != nil {
		return fmt.Errorf("%w: update --packages and --limit do not go together", errUsage)
	}
	if r.c.Bool("rescan-all") && !r.reuse {
		return fmt.Errorf("%w: --rescan-all goes with update --packages only", errUsage)
	}
	if r.reuse && !r.c.Bool("rescan-all") {
		return r.updatePackages(old)
	}
	var incremental string
	if r.c.Bool("incremental") {
		if update {
			return fmt.Errorf("%w: --incremental goes with check only", errUsage)
		}
		view, why := r.journalTrust(old)
		if why == "" {
			return r.incrementalCheck(old, view)
		}
		incremental = "incremental check refused: " + why + "; this is a full check"
		fmt.Fprintf(r.stderr, "agent: %s\n", incremental)
	}
	w, problems, stats, err := r.scanInto(kind, old)
	if err != nil {
		return err
	}
	if r.ctx.Err() != nil {
		w.Abort()
		return fmt.Errorf("%w: the baseline is unchanged", errInterrupted)
	}
	last := r.path(lastCheckName)
	if _, err := w.Commit(last, db.CommitOptions{}); err != nil {
		w.Abort()
		return err
	}
	cur, err := db.Open(last)
	if err != nil {
		return err
	}
	defer cur.Close()
	rep := r.newReport(kind)
	rep.Baseline = base
	rep.BaselineDigest = r.digest(base)
	rep.MetadataOnly = int(stats.MetadataOnly)
	rep.Problems = problems
	if incremental != "" {
		rep.Notices = append(rep.Notices, incremental)
	}
	differing, err := r.diff(old, cur, rep, true)
	if err != nil {
		return err
	}
	if r.limit == nil && !r.reuse && !update {
		// A full read of the tree: these paths differ from the baseline.
		r.writeFullCheck(r.start, old.Meta().Created, differing)
	}
	if update && r.c.Bool("packages") {
		if err := r.markPartial(r.start); err != nil {
			return err
		}
		if err := r.mergePackages(old, cur, rep); err != nil {
			return err
		}
		rep.NewBaseline = base
		rep.NewBaselineDigest = r.digest(base)
	} else if update {
		if r.limit != nil {
			// Entries outside --limit keep their baseline values.
			if err := r.markPartial(r.start); err != nil {
				return err
			}
			if err := r.mergeLimited(old, cur); err != nil {
				return err
			}
		} else if _, err := db.Install(last, base, db.CommitOptions{KeepPrevious: true, Now: r.start}); err != nil {
			return err
		} else {
			// The new baseline is this full read of the tree.
			r.writeFullCheck(r.start, r.start, nil)
		}
		rep.NewBaseline = base
		rep.NewBaselineDigest = r.digest(base)
	}
	r.addPosture(rep)
	if err := r.emitReport(rep); err != nil {
		return err
	}
	return r.outcome(rep)
}

// mergePackages installs a baseline that takes the scan's state for every
// path whose change packages explain (package, package-script) or that did
// not change, and keeps the old baseline's state for every unexplained or
// mismatched one, so those show again in the next check. It refuses to run
// without package records: accepting nothing would look like success.
func (r *integrityRun) mergePackages(old, cur *db.Baseline, rep *report.Report) error {
	prov := rep.Provenance
	if len(rep.Changes) > 0 && (prov == nil || prov.Backend == "") {
		why := "package_check = no" // the only way changes go unclassified
		if prov != nil {
			why = prov.Note
		}
		return fmt.Errorf("%w: update --packages needs the package records (%s); the baseline is unchanged", errUsage, why)
	}
	w, err := db.Create(r.pol.Options.StateDir, r.meta("update"))
	if err != nil {
		return err
	}
	var accepted, kept int
	err = db.Join(old, cur, func(o, n *scanner.Entry) error {
		p := ""
		if n != nil {
			p = n.Path
		} else {
			p = o.Path
		}
		take := n
		if prov != nil {
			if v, ok := prov.ByPath[p]; ok {
				if v.Class == report.ClassPackage || v.Class == report.ClassScript {
					accepted++
				} else {
					take = o
					kept++
				}
			}
		}
		if take == nil {
			return nil
		}
		return w.Put(take)
	})
	if err != nil {
		w.Abort()
		return err
	}
	if _, err := w.Commit(r.path(baselineName), db.CommitOptions{KeepPrevious: true, Now: r.start}); err != nil {
		w.Abort()
		return err
	}
	rep.Notices = append(rep.Notices, fmt.Sprintf("update --packages: %d entries, %d of them rescanned (%d unmoved files kept from the baseline unread), %d explained changes accepted, %d unexplained or mismatched entries kept as in the old baseline",
		rep.Total, rep.Total-r.reused, r.reused, accepted, kept))
	return nil
}

// mergeLimited installs a baseline made of the scanned entries inside
// --limit and the old baseline's entries outside it.
func (r *integrityRun) mergeLimited(old, cur *db.Baseline) error {
	w, err := db.Create(r.pol.Options.StateDir, r.meta("update"))
	if err != nil {
		return err
	}
	err = db.Join(old, cur, func(o, n *scanner.Entry) error {
		switch {
		case n != nil:
			return w.Put(n)
		case o != nil && !r.limit.MatchString(o.Path):
			return w.Put(o)
		}
		return nil
	})
	if err != nil {
		w.Abort()
		return err
	}
	if _, err := w.Commit(r.path(baselineName), db.CommitOptions{KeepPrevious: true, Now: r.start}); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// diff merge-joins two generations and fills rep with the changes, following
// AIDE: moves (I, compressed) are not reported, ANF hides added entries, ARF
// removed ones, report_ignore_changed_attrs hides attribute changes, and
// --limit restricts the comparison (see scanner.Changes).
func (r *integrityRun) diff(old, cur *db.Baseline, rep *report.Report, live bool) ([]string, error) {
	var total int
	var pairs []scanner.Pair
	err := db.Join(old, cur, func(a, b *scanner.Entry) error {
		if b != nil {
			total++
		}
		if r.limit != nil {
			p := ""
			if a != nil {
				p = a.Path
			} else {
				p = b.Path
			}
			if !r.limit.MatchString(p) {
				return nil
			}
		}
		if r.ctx.Err() != nil {
			return fmt.Errorf("%w: the baseline is unchanged", errInterrupted)
		}
		if scanner.Differ(a, b) {
			pairs = append(pairs, scanner.Pair{Old: a, New: b})
		}
		return nil
	})
	rep.Total = total
	if err != nil {
		return nil, err
	}
	r.addChanges(rep, pairs, old.Meta().Created, live)
	differing := make([]string, len(pairs))
	for i, p := range pairs {
		differing[i] = pairPath(p)
	}
	return differing, nil
}

// addChanges fills rep with the changes of the differing pairs (see
// scanner.Changes) and classifies them against the package runs since.
// The report's detail lines are prepared (report.Prepare) while the
// changes are classified: they depend on the changes alone.
func (r *integrityRun) addChanges(rep *report.Report, pairs []scanner.Pair, since time.Time, live bool) {
	for _, ch := range scanner.Changes(pairs, r.pol.Options.ReportIgnoreChangedAttrs) {
		switch ch.Kind {
		case scanner.Added:
			rep.Added++
		case scanner.Removed:
			rep.Removed++
		case scanner.Changed:
			rep.Changed++
		}
		rep.Changes = append(rep.Changes, ch)
	}
	if len(rep.Changes) > 0 {
		rep.Prepare()
		r.classify(rep, since, live)
	}
}

// outcome is the exit status of check/update/compare: the AIDE bits, or 3
// when nothing changed but some entries could not be read.
func (r *integrityRun) outcome(rep *report.Report) error {
	code := 0
	if rep.Added > 0 {
		code |= 1
	}
	if rep.Removed > 0 {
		code |= 2
	}
	if rep.Changed > 0 {
		code |= 4
	}
	if code == 0 && len(rep.Problems) > 0 {
		code = exitIncomplete
	}
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// accept installs last-check.db as the baseline. Its report lists what was
// accepted: the differences between the old baseline and that scan.
func (r *integrityRun) accept() error {
	last := r.path(lastCheckName)
	cur, err := db.Open(last)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("nothing to accept: no %s (run 'agent check' first): %w", last, err)
		}
		return err
	}
	defer cur.Close()
	m := cur.Meta()
	if fc, _ := r.lastFullCheck(); !r.withScan(m, fc.Time, fc.Scan) {
		r.warn("%s was scanned with other rules than the current config", last)
	}
	base := r.path(baselineName)
	rep := r.newReport(string(report.KindUpdate))
	rep.Baseline = base
	if old, err := db.Open(base); err == nil {
		rep.BaselineDigest = r.digest(base)
		_, err = r.diff(old, cur, rep, false)
		old.Close()
		if err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// An older scan (the journal since it may be pruned), or one made with
	// --limit: no anchor for check --incremental until a full check.
	if err := r.markPartial(m.Created); err != nil {
		return err
	}
	if _, err := db.Install(last, base, db.CommitOptions{KeepPrevious: true, Now: r.start}); err != nil {
		return err
	}
	rep.NewBaseline = base
	rep.NewBaselineDigest = r.digest(base)
	return r.emitReportAs("accept", rep)
}

func (r *integrityRun) compare(a, b string) error {
	old, err := db.Open(a)
	if err != nil {
		return err
	}
	defer old.Close()
	cur, err := db.Open(b)
	if err != nil {
		return err
	}
	defer cur.Close()
	rep := r.newReport("compare")
	rep.Baseline = a
	rep.BaselineDigest = r.digest(a)
	rep.NewBaseline = b
	rep.NewBaselineDigest = r.digest(b)
	if _, err := r.diff(old, cur, rep, false); err != nil {
		return err
	}
	if err := r.emitReport(rep); err != nil {
		return err
	}
	return r.outcome(rep)
}

// digestLater starts digest(path) in the background (the baseline's is
// printed in the report, and reading it need not wait for the scan) and
// returns the function that waits for it.
func (r *integrityRun) digestLater(path string) func() [32]byte {
	ch := make(chan [32]byte, 1)
	go func() { ch <- r.digest(path) }()
	return func() [32]byte { return <-ch }
}

// digestOpen opens the database file at path at once and returns a
// function giving its BLAKE3, computed on a goroutine of its own once
// start is closed (nil: at once): for a file about to be renamed (a new
// baseline in Commit's Sealed hook, the old one by the Commit that keeps
// it under its generation's name), read when the CPU has room. The rename
// changes the file's ctime, so the file is read to its end rather than
// checked against its stat as digest does. A start never closed leaves
// the goroutine waiting.
func (r *integrityRun) digestOpen(path string, start <-chan struct{}) func() [32]byte {
	f, err := os.Open(path)
	if err != nil {
		r.log.Warn("cannot hash database", "path", path, "err", err)
		return func() [32]byte { return [32]byte{} }
	}
	ch := make(chan [32]byte, 1)
	go func() {
		defer f.Close()
		if start != nil {
			<-start
		}
		var d [32]byte
		h := blake3.New()
		if _, err := io.Copy(h, f); err != nil {
			r.log.Warn("cannot hash database", "path", path, "err", err)
		} else {
			h.Sum(d[:0])
		}
		ch <- d
	}()
	return func() [32]byte { return <-ch }
}

// digest is the BLAKE3 of a database file, printed in reports so that a
// mailed report lets an admin verify the baseline off-host.
func (r *integrityRun) digest(path string) [32]byte {
	d, _, err := scanner.HashFile(path, rules.AttrBLAKE3.Set())
	if err != nil {
		r.log.Warn("cannot hash database", "path", path, "err", err)
		return [32]byte{}
	}
	return d.BLAKE3
}

func (r *integrityRun) newReport(kind string) *report.Report {
	o := r.pol.Options
	return &report.Report{
		Kind: report.Kind(kind), Start: r.start, AgentVersion: version, Host: r.host,
		Config: r.c.String("config"), Level: r.level, Base16: o.ReportBase16,
		ForceAttrs: o.ReportForceAttrs, IgnoreChanged: o.ReportIgnoreChangedAttrs,
		Limit:    r.c.String("limit"),
		UserName: report.SystemUserName, GroupName: report.SystemGroupName,
	}
}

// emitReport finishes a run's report: it is kept in the report history
// (text and JSON), written to every report_url (stdout by default), logged
// to syslog as a one-line summary, mailed with --mail, and then old reports
// and baseline generations beyond report_maxage are pruned. Only a failure
// to write the report where the admin asked for it (report_url) is an error;
// history, syslog and mail problems are warnings, and a mail that cannot be
// sent is spooled (see mailReport).
func (r *integrityRun) emitReport(rep *report.Report) error {
	return r.emitReportAs(string(rep.Kind), rep)
}

// emitReportAs is emitReport with the history kind given (accept keeps its
// report as "accept" though it renders as an update).
func (r *integrityRun) emitReportAs(kind string, rep *report.Report) error {
	return r.emitRendered(kind, rep, renderReport(rep))
}

// renderedReport is a report rendered in both formats.
type renderedReport struct {
	text, js bytes.Buffer
	err      error
	hist     *report.History // where the bodies were prewritten (nil: none)
}

// renderReport sets rep's end time and renders it as text and JSON.
func renderReport(rep *report.Report) *renderedReport {
	return startRender(rep, nil).finish()
}

// rendering is a report being rendered (startRender).
type rendering struct {
	rep      *report.Report
	out      *renderedReport
	text, js *report.Pending // set once bodies is closed
	bodies   chan struct{}   // closed once the bodies are rendered (and prewritten)
}

// startRender renders rep as text and JSON but for their tails (the
// baselines' digests and the end time; see report.Pending), each on a
// goroutine of its own: a large report renders in half the time on two
// cores, and while the run writes its baseline. Until finish, the caller
// may set only rep's digests.
//
// With hist, the bodies go to the report history as soon as they are
// rendered (History.Prewrite), and emitRendered saves the report there.
func startRender(rep *report.Report, hist *report.History) *rendering {
	g := &rendering{rep: rep, out: &renderedReport{hist: hist}, bodies: make(chan struct{})}
	// Room for what a change takes (measured: about 290 bytes), so that
	// a large report is not copied at every doubling; JSONBody sizes
	// its own.
	g.out.text.Grow(4096 + 320*(len(rep.Changes)+len(rep.Problems)))
	go func() {
		rep.Prepare() // what both need, computed once (addChanges has begun it where there are changes)
		text := make(chan *report.Pending, 1)
		go func() { text <- report.TextBody(&g.out.text, rep) }()
		g.js = report.JSONBody(&g.out.js, rep)
		g.text = <-text
		if hist != nil {
			// Only appended to from here on (finish).
			hist.Prewrite(string(rep.Kind), g.out.text.Bytes(), g.out.js.Bytes())
		}
		close(g.bodies)
	}()
	return g
}

// discard removes what the rendering prewrote to the history and the
// report was not saved with (a run that fails before emitRendered).
func (g *rendering) discard() {
	if g.out.hist != nil {
		<-g.bodies
		g.out.hist.DiscardPrewrite()
	}
}

// finish sets the report's end time and renders the tails.
func (g *rendering) finish() *renderedReport {
	<-g.bodies
	text, js := g.text, g.js
	g.rep.End = time.Now()
	g.out.err = errors.Join(text.Finish(), js.Finish())
	return g.out
}

// emitRendered is emitReportAs for a report renderReport rendered.
func (r *integrityRun) emitRendered(kind string, rep *report.Report, out *renderedReport) error {
	r.obs.rep = rep
	format := r.pol.Options.ReportFormat
	if f := r.c.String("format"); f != "" {
		format = f
	}
	switch format {
	case "", "plain", "json":
	default:
		return fmt.Errorf("%w: unknown report format %q (plain or json)", errUsage, format)
	}
	if out.err != nil {
		return wrapWrite(out.err)
	}
	text, js := &out.text, &out.js
	rendered := text.Bytes()
	if format == "json" {
		rendered = js.Bytes()
	}

	o := r.pol.Options
	hist := out.hist
	if hist == nil {
		hist = &report.History{Dir: o.ReportDir}
	}
	var keepErr error
	if id, err := hist.Save(kind, text.Bytes(), js.Bytes()); err != nil {
		// The report is printed and mailed all the same, saying that it
		// is not in the history; the run's exit status says so too.
		keepErr = fmt.Errorf("%w: the report could not be kept in %s: %w", errWrite, o.ReportDir, err)
		rep.Notices = append(rep.Notices, "this report could not be kept in the report history: "+err.Error())
		text.Reset()
		js.Reset()
		if err := report.WriteText(text, rep); err != nil {
			return wrapWrite(err)
		}
		if err := report.WriteJSON(js, rep); err != nil {
			return wrapWrite(err)
		}
		rendered = text.Bytes()
		if format == "json" {
			rendered = js.Bytes()
		}
	} else {
		r.reportID = id
	}

	clean := rep.Added+rep.Removed+rep.Changed == 0 && len(rep.Problems) == 0
	var outErr error
	if !(o.ReportQuiet && clean && rep.Kind != report.KindInit) {
		urls := o.ReportURLs
		if len(urls) == 0 {
			urls = []string{"stdout"}
		}
		for _, u := range urls {
			if err := r.writeReportTo(u, rep, rendered); err != nil && outErr == nil {
				outErr = err
			}
		}
	}

	sev := report.SeverityNotice
	if !clean {
		sev = report.SeverityWarning
	}
	summary := report.Summary(rep)
	if r.reportID != "" {
		summary += " (report " + r.reportID + ")"
	}
	if err := report.Syslog(report.FacilityLocal0, sev, report.DefaultSyslogTag, summary); err != nil && !errors.Is(err, report.ErrSyslogUnavailable) {
		r.warn("syslog: %v", err)
	}

	if r.c.Bool("mail") {
		r.mailReport(rep, text.Bytes(), clean)
	} else {
		r.flushSpool()
	}
	r.prune()
	if outErr == nil && keepErr != nil {
		// Mailed already (with --mail): exit with the code, print the
		// cause even under --quiet, send no second mail.
		what := "the baseline is unchanged"
		if rep.NewBaseline != "" {
			what = "the baseline " + rep.NewBaseline + " was written"
		}
		sent := "printed to report_url"
		if r.c.Bool("mail") {
			sent += " and mailed"
		}
		return &exitError{code: exitWrite, err: fmt.Errorf("%w (%s; the report was %s all the same)", keepErr, what, sent)}
	}
	return outErr
}

// prune removes reports and kept baseline generations older than
// report_maxage; the active baseline is never touched.
func (r *integrityRun) prune() {
	o := r.pol.Options
	removed, err := report.Prune(o.ReportDir, o.StateDir, o.ReportMaxAge, time.Now(), r.path(baselineName))
	for _, p := range removed {
		r.log.Debug("pruned", "path", p)
	}
	if err != nil {
		r.warn("pruning old reports: %v", err)
	}
}

// alert prints a warning on stderr even with --quiet: something the admin
// must see, such as an unreadable baseline that was replaced.
func (r *integrityRun) alert(format string, args ...any) {
	fmt.Fprintf(r.stderr, "agent: warning: "+format+"\n", args...)
}

// warn prints a warning on stderr unless --quiet.
func (r *integrityRun) warn(format string, args ...any) {
	if !r.c.Bool("quiet") {
		fmt.Fprintf(r.stderr, "agent: warning: "+format+"\n", args...)
	}
}

// writeReportTo writes the rendered report to one report_url: stdout,
// stderr, file:PATH (0600, never through a symlink, appended to with
// report_append) or syslog:FACILITY (the
// plain report, a line a message).
func (r *integrityRun) writeReportTo(url string, rep *report.Report, rendered []byte) error {
	switch {
	case url == "stdout":
		_, err := r.stdout.Write(rendered)
		return wrapWrite(err)
	case url == "stderr":
		_, err := r.stderr.Write(rendered)
		return wrapWrite(err)
	case strings.HasPrefix(url, "file:"):
		path := strings.TrimPrefix(url, "file:")
		mode := os.O_TRUNC
		if r.pol.Options.ReportAppend {
			mode = os.O_APPEND // report_append, as aide
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|mode|syscallNoFollow, 0o600)
		if err != nil {
			return fmt.Errorf("%w: report_url: %w", errWrite, err)
		}
		if _, err := f.Write(rendered); err != nil {
			f.Close()
			return wrapWrite(err)
		}
		return wrapWrite(f.Close())
	case strings.HasPrefix(url, "syslog:"):
		if err := report.WriteSyslogReport(strings.TrimPrefix(url, "syslog:"), rep); err != nil {
			if errors.Is(err, report.ErrFacility) {
				return fmt.Errorf("%w: report_url %q: %w", errConfig, url, err)
			}
			r.warn("report_url %s: %v", url, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: report_url %q is not supported (stdout, stderr, file:PATH, syslog:FACILITY)", errConfig, url)
	}
}

func wrapWrite(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", errWrite, err)
}
