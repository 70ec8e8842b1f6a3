package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"opsagent/db"
	"opsagent/internal/atomicfile"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
)

// fullCheckName records when the tree was last read in full (init, a
// full check or update): check --incremental gives way to a full check
// once that is full_check_every ago.
const fullCheckName = "last-full-check"

// incScope is what check --incremental reads: the journaled paths and
// their directories, and in full the trees of the journaled directories
// that are new, gone or replaced (a directory created, moved or removed:
// the events on what is below it may never have been journaled).
type incScope struct {
	want      map[string]bool // paths rescanned one by one
	trees     map[string]bool // directories rescanned with everything below
	ancestors map[string]bool // directories on the way to a wanted path
	old       map[string]*scanner.Entry
	links     int // baseline names of the journaled files with several links
}

func (s *incScope) inTree(p string) bool {
	for d := p; ; d = path.Dir(d) {
		if s.trees[d] {
			return true
		}
		if d == "/" {
			return false
		}
	}
}

func (s *incScope) wanted(p string) bool { return s.want[p] || s.inTree(p) }
func (s *incScope) enter(d string) bool  { return s.ancestors[d] || s.inTree(d) }

// newIncScope loads the baseline entries of the dirty paths, decides
// which journaled directories are rescanned as whole trees, and loads
// the baseline's entries below those.
func newIncScope(old *db.Baseline, dirty, trees map[string]bool, inodes map[db.Inode]bool, root string) (*incScope, error) {
	s := &incScope{want: map[string]bool{}, trees: map[string]bool{}, ancestors: map[string]bool{}, old: map[string]*scanner.Entry{}}
	add := func(p string) {
		s.want[p] = true
		for d := path.Dir(p); p != "/" && !s.ancestors[d]; d = path.Dir(d) {
			s.ancestors[d] = true
			if d == "/" {
				break
			}
		}
	}
	for p := range dirty {
		add(p)
		if p != "/" {
			// A change to a name changes its directory (times, links).
			add(path.Dir(p))
		}
	}
	for p := range trees {
		// A directory that was created, removed or moved, whatever
		// its inode now: read with everything below it.
		add(p)
		if p != "/" {
			add(path.Dir(p))
		}
		s.trees[p] = true
	}
	for p := range s.want {
		o, err := old.Get(p)
		switch {
		case errors.Is(err, db.ErrNotFound):
			o = nil
		case err != nil:
			return nil, err
		default:
			s.old[p] = o
		}
		if !dirty[p] {
			continue
		}
		var st syscall.Stat_t
		onDisk := syscall.Lstat(filepath.Join(root, p), &st) == nil
		isDir := onDisk && st.Mode&syscall.S_IFMT == syscall.S_IFDIR
		wasDir := o != nil && o.Type == rules.TypeDir
		if (isDir || wasDir) && !(isDir && wasDir && o.Inode == st.Ino && o.Dev == uint64(st.Dev)) {
			s.trees[p] = true
		}
	}
	// A file with several links that changed under one name changed under
	// all: the watcher journaled the inodes of those it saw, and a removed
	// or replaced name's inode is in the baseline.
	links := maps.Clone(inodes)
	for p := range dirty {
		if o := s.old[p]; o != nil && o.Type == rules.TypeFile && o.Nlink > 1 {
			if links == nil {
				links = map[db.Inode]bool{}
			}
			links[db.Inode{Dev: o.Dev, Ino: o.Inode}] = true
		}
	}
	if len(links) > 0 {
		others, err := old.PathsOfInodes(links)
		if err != nil {
			return nil, err
		}
		for _, p := range others {
			if s.want[p] {
				continue
			}
			add(p)
			o, err := old.Get(p)
			if err != nil {
				return nil, err
			}
			s.old[p] = o
		}
		s.links = len(others)
	}
	// Only the outermost trees: one inside another is read with it.
	for d := range s.trees {
		if d != "/" && s.inTreeAbove(d) {
			delete(s.trees, d)
		}
	}
	for d := range s.trees {
		if err := old.EachUnder(d, func(e *scanner.Entry) error {
			s.old[e.Path] = e
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// inTreeAbove reports whether a directory strictly above d is a tree.
func (s *incScope) inTreeAbove(d string) bool {
	for p := path.Dir(d); ; p = path.Dir(p) {
		if s.trees[p] {
			return true
		}
		if p == "/" {
			return false
		}
	}
}

// incrementalCheck is check --incremental with a journal it trusts: it
// rescans (and rehashes) the journaled paths, their directories and the
// journaled directory trees that are new or replaced, takes every other
// entry from the baseline unread, and writes last-check.db as a copy of
// the baseline amended with what it found, so that accept works as after
// a full check. It costs O(changes): nothing else of the tree is read.
func (r *integrityRun) incrementalCheck(old *db.Baseline, view *journalView) error {
	dirty, complete := view.dirty, view.complete
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	root := r.pol.Options.RootPrefix
	if root == "" {
		root = "/"
	}
	baseDigest := r.digestLater(r.path(baselineName))
	s, err := newIncScope(old, dirty, view.trees, view.inodes, root)
	if err != nil {
		return err
	}
	opts := r.scanOptions()
	limit := opts.Limit
	opts.Limit = func(p string) bool { return s.wanted(p) && (limit == nil || limit(p)) }
	opts.Enter = s.enter
	opts.Uncompress = true
	opts.BaselineSize = func(p string) (int64, bool) {
		if e, ok := s.old[p]; ok {
			return e.Size, true
		}
		return 0, false
	}
	if !r.c.Bool("no-nice") {
		if err := lowerPriority(r.pol.Options.Nice, r.pol.Options.IONice); err != nil {
			r.log.Warn("cannot lower the scan's priority", "err", err)
		}
	}
	var (
		scanned  []*scanner.Entry
		problems []report.Problem
	)
	stats, err := scanner.Scan(r.ctx, r.pol, opts, func(e *scanner.Entry) error {
		if e.Err != "" {
			problems = append(problems, report.Problem{Path: e.Path, Err: e.Err})
		}
		scanned = append(scanned, e)
		return nil
	})
	r.obs.stats = stats
	if err != nil {
		if r.ctx.Err() != nil {
			return fmt.Errorf("%w: scan stopped, the baseline is unchanged", errInterrupted)
		}
		return err
	}
	seen := make(map[string]bool, len(scanned))
	var pairs []scanner.Pair
	for _, e := range scanned {
		seen[e.Path] = true
		if o := s.old[e.Path]; scanner.Differ(o, e) {
			pairs = append(pairs, scanner.Pair{Old: o, New: e})
		}
	}
	for p, o := range s.old {
		if !seen[p] && (r.limit == nil || r.limit.MatchString(p)) {
			pairs = append(pairs, scanner.Pair{Old: o})
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return scanner.KeyLess(pairPath(pairs[i]), pairPath(pairs[j])) })

	// last-check.db: the baseline amended with every differing pair.
	w, err := old.Amend(r.pol.Options.StateDir, r.meta("check"))
	if err != nil {
		return err
	}
	defer w.Abort()
	entries := int(old.Meta().Entries)
	for _, p := range pairs {
		switch {
		case p.New != nil:
			if p.Old == nil {
				entries++
			}
			err = w.Put(p.New)
		default:
			entries--
			err = w.Delete(p.Old.Path)
		}
		if err != nil {
			return err
		}
	}
	if _, err := w.Commit(r.path(lastCheckName), db.CommitOptions{}); err != nil {
		return err
	}

	base := r.path(baselineName)
	rep := r.newReport("check")
	rep.Baseline = base
	rep.BaselineDigest = baseDigest()
	rep.MetadataOnly = int(stats.MetadataOnly)
	rep.Problems = problems
	rep.Total = entries
	r.addChanges(rep, pairs, old.Meta().Created, true)
	trees := make([]string, 0, len(s.trees))
	for d := range s.trees {
		trees = append(trees, d)
	}
	sort.Strings(trees)
	treeText := ""
	if len(trees) > 0 {
		treeText = fmt.Sprintf(", %d directory trees read in full (new, moved or removed directories: %s)", len(trees), strings.Join(firstN(trees, 5), " "))
	}
	if s.links > 0 {
		treeText += fmt.Sprintf(", %d other names of files with several links", s.links)
	}
	since := "the baseline"
	if a := view.anchor; a.fullCheck {
		since = fmt.Sprintf("the full check of %s (with the %d paths that differed from the baseline then)", a.at.Format(time.RFC3339), len(a.carried))
	}
	rep.Notices = append(rep.Notices, fmt.Sprintf("incremental check: %d paths in the watch journal since %s; %d entries rescanned and %d files rehashed%s; the other %d entries are taken from the baseline unread (the journal is complete since %s; a full check reads them all)",
		len(dirty), since, len(scanned), stats.FilesHashed, treeText, max(0, entries-len(scanned)), complete.Format(time.RFC3339)))
	r.addPosture(rep)
	if err := r.emitReport(rep); err != nil {
		return err
	}
	return r.outcome(rep)
}

// firstN is the first n of list, with "..." for the rest.
func firstN(list []string, n int) []string {
	if len(list) <= n {
		return list
	}
	return append(append([]string{}, list[:n]...), "...")
}

// watchSync asks the watcher (SIGUSR1) to journal every event the kernel
// has queued, and waits until it says it has (JournalState.Synced): a
// change made just before check --incremental must be in the journal it
// reads. The pid is taken as the watcher's only when the watch lock is
// held and the process's command line is an agent watch.
func watchSync(dir string, st db.JournalState, timeout time.Duration) error {
	if st.PID <= 0 || !isWatchProcess(st.PID) {
		return fmt.Errorf("process %d is not an agent watch", st.PID)
	}
	asked := time.Now()
	if err := syscall.Kill(st.PID, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("cannot signal agent watch (pid %d): %w", st.PID, err)
	}
	deadline := asked.Add(timeout)
	for {
		time.Sleep(20 * time.Millisecond)
		j, err := db.ReadJournal(filepath.Join(dir, watchJournalName))
		if err != nil {
			return err
		}
		now, _, err := j.State()
		j.Close()
		if err != nil {
			return err
		}
		if !now.Synced.Before(asked) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent watch (pid %d) did not journal its queued events within %s", st.PID, timeout)
		}
	}
}

// isWatchProcess reports whether pid runs "agent ... watch".
func isWatchProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(args) < 2 {
		return false
	}
	for _, a := range args[1:] {
		if a == "watch" {
			return true
		}
	}
	return false
}

// fullCheck is state_dir/last-full-check (JSON, 0600): when the tree was
// last read in full (init, a full check or update), against which baseline
// and rules, and which paths differed from that baseline then. It is the
// other anchor of check --incremental besides the baseline itself: a
// watcher started after the baseline (a reboot) but before a full check
// vouches for everything since that check, and what differed then is
// rescanned with the journaled paths.
type fullCheck struct {
	Time            time.Time `json:"time"`
	BaselineCreated time.Time `json:"baseline_created"`
	// Scan is the rules.Policy.ScanDigest (hex) this read ran with,
	// BaselineScan the one the baseline was recorded with ("" when not
	// known: then the baseline's full config digest must match).
	Scan         string `json:"scan_digest"`
	BaselineScan string `json:"baseline_scan_digest,omitempty"`
	// Differing are the paths whose entry differed from the baseline;
	// TooMany is set instead past maxAnchorPaths.
	Differing []string `json:"differing"`
	TooMany   bool     `json:"too_many,omitempty"`
	// Partial are the creation times of baselines that update --packages,
	// update --limit or accept wrote (the newest last, at most
	// maxPartial): they keep entries they did not read, or come from an
	// older scan, so they are no image of the tree to anchor at; only a
	// full check of them is. Kept by every record that follows.
	Partial []time.Time `json:"partial_baselines,omitempty"`
}

// maxPartial bounds fullCheck.Partial.
const maxPartial = 32

// isPartial reports whether the baseline created at created is one of fc's
// partial ones.
func (fc fullCheck) isPartial(created time.Time) bool {
	return slices.ContainsFunc(fc.Partial, func(t time.Time) bool { return t.Equal(created) })
}

// markPartial records, before the baseline created at created is written
// (by update --packages or --limit, or accept), that it is partial. The
// record of the last full read stays as it is. An error leaves the baseline
// unwritten: one that is not marked could anchor an incremental check.
func (r *integrityRun) markPartial(created time.Time) error {
	fc, ok := r.lastFullCheck()
	if !ok {
		fc = fullCheck{Differing: []string{}}
	}
	fc.Partial = append(fc.Partial, created)
	if n := len(fc.Partial); n > maxPartial {
		fc.Partial = fc.Partial[n-maxPartial:]
	}
	return r.saveFullCheck(fc)
}

func (r *integrityRun) saveFullCheck(fc fullCheck) error {
	if fc.Differing == nil {
		fc.Differing = []string{}
	}
	b, err := json.Marshal(fc)
	if err == nil {
		err = atomicfile.WriteFile(r.path(fullCheckName), append(b, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errWrite, r.path(fullCheckName), err)
	}
	return nil
}

// maxAnchorPaths bounds fullCheck.Differing; a check that found more
// differences is no anchor (run agent update).
const maxAnchorPaths = 100_000

// writeFullCheck records a full read of the tree that started at t, against
// the baseline created at baseCreated, with the paths that differed from it.
//
// A new baseline (init, update: differing is nil) was recorded with this
// config; an older one with the config its record says, if it is the one
// the previous record describes.
func (r *integrityRun) writeFullCheck(t, baseCreated time.Time, differing []string) {
	scan := r.scanDigest()
	fc := fullCheck{Time: t, BaselineCreated: baseCreated, Scan: scan, Differing: differing}
	prev, havePrev := r.lastFullCheck()
	if havePrev {
		fc.Partial = prev.Partial
	}
	if baseCreated.Equal(t) {
		fc.BaselineScan = scan
	} else if havePrev && prev.BaselineCreated.Equal(baseCreated) {
		fc.BaselineScan = prev.BaselineScan
	}
	if len(differing) > maxAnchorPaths {
		fc.Differing, fc.TooMany = nil, true
	}
	if err := r.saveFullCheck(fc); err != nil {
		// Without the record the next incremental check is refused
		// (or anchors at a baseline that is an image): nothing opens.
		r.warn("cannot record this full read: %v", err)
	}
}

// scanDigest is the hex rules.Policy.ScanDigest of the current config.
func (r *integrityRun) scanDigest() string {
	d := r.pol.ScanDigest()
	return hex.EncodeToString(d[:])
}

// withScan reports whether the database with meta m was written with the
// current scan config (rules.Policy.ScanDigest). A record of the scan
// digest a database created at created was written with (scan, "" when
// none) says so when it describes m: options that do not change what a
// scan records (package_check, mail, schedules, report layout) may have
// changed since. Otherwise the whole config must be the one m records.
//
// For a baseline the record is the last full read's BaselineCreated and
// BaselineScan; for last-check.db its Time and Scan (that read is the
// scan).
func (r *integrityRun) withScan(m db.Meta, created time.Time, scan string) bool {
	if scan != "" && created.Equal(m.Created) {
		return scan == r.scanDigest()
	}
	return m.RulesDigest == r.pol.Digest
}

// lastFullCheck reads the record of the last full read of the tree (or of
// a partial update since); ok is false when there is none (or it cannot be
// read: then it is no anchor).
func (r *integrityRun) lastFullCheck() (fullCheck, bool) {
	var fc fullCheck
	b, err := os.ReadFile(r.path(fullCheckName))
	if err != nil || json.Unmarshal(b, &fc) != nil {
		return fullCheck{}, false
	}
	return fc, true
}
