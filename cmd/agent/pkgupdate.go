package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"opsagent/db"
	"opsagent/integrity"
	"opsagent/pkgdb"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
)

// pkgScope is what a targeted update --packages rescans: the paths the
// touched packages ship now, everything under the areas where maintainer
// scripts edit files in place (statAreas), and the entries of the
// directories that changed since the baseline in the other script areas
// (triggers there replace whole files, which changes the directory) and
// of the directories a touched package owns. Everything else keeps its
// baseline entry unread: what no package run can have made is no business
// of update --packages, and the next check still compares it.
type pkgScope struct {
	paths     map[string]bool    // the touched packages' paths (both merged-/usr spellings)
	ancestors map[string]bool    // every directory above one of paths
	changed   map[string]bool    // baseline directories whose stat moved
	rescan    map[string]bool    // changed directories whose entries are all rescanned
	sizes     map[string]int64   // the baseline's st_size of each rescanned directory
	newDirs   map[string]bool    // directories below rescan that the baseline lacks
	touched   []string           // the packages, as the package manager spells them
	old       map[string]*scoped // the baseline's entries of the scope but kids (load)
	// kids are the baseline's entries directly in each rescanned
	// directory outside the stat areas, by name (load): tens of thousands
	// of names (a man1 of 18,000 pages) that the walk compares with the
	// directory's listing (SameChildren) instead of visiting them.
	kids map[string]*kids
}

// kids are the baseline's entries directly in a rescanned directory, by
// name, and what the update saw of each.
type kids struct {
	stats []db.ChildStat
	same  []bool // as scoped.same
	seen  []bool // the scan found it
}

// kid returns the kids holding p and p's index there; nil if p is none
// of them.
func (s *pkgScope) kid(p string) (*kids, int) {
	if p == "/" {
		return nil, 0
	}
	d := rules.ParentDir(p)
	ks := s.kids[d]
	if ks == nil {
		return nil, 0
	}
	name := p[len(d)+1:]
	if d == "/" {
		name = p[1:]
	}
	i, ok := slices.BinarySearchFunc(ks.stats, name, func(c db.ChildStat, name string) int { return strings.Compare(c.Name, name) })
	if !ok {
		return nil, 0
	}
	return ks, i
}

// isKidDir says whether p is a directory among the kids.
func (s *pkgScope) isKidDir(p string) bool {
	ks, i := s.kid(p)
	return ks != nil && ks.stats[i].Type == rules.TypeDir
}

// childPath is the path of name in directory dir.
func childPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// stat is the baseline's stat part of the scope's path p.
func (s *pkgScope) stat(p string) (db.Stat, bool) {
	if o, ok := s.old[p]; ok {
		return o.Stat, true
	}
	if ks, i := s.kid(p); ks != nil {
		return ks.stats[i].Stat, true
	}
	return db.Stat{}, false
}

// sameChildren is the scan's SameChildren: the names of a rescanned
// directory whose listing gives the inode and type the baseline
// recorded, merged by name with its kids (both sorted bytewise), and
// that the rules still select (selected, nil when the rules are those
// the baseline recorded everything with: after a config edit, a file no
// longer selected reads as gone, as in a full update). It returns how
// many it found.
func (s *pkgScope) sameChildren(dir string, children []scanner.Child, same []bool, selected func(string, rules.FileType) bool) int {
	ks := s.kids[dir]
	if ks == nil {
		return 0
	}
	st := ks.stats
	n, j := 0, 0
	for i, c := range children {
		if !c.MaySkip() {
			continue
		}
		for j < len(st) && st[j].Name < c.Name {
			j++
		}
		if j == len(st) {
			break
		}
		if k := &st[j]; k.Name == c.Name && !k.Problem && k.Type == c.Type && k.Inode == c.Ino && (selected == nil || selected(childPath(dir, c.Name), c.Type)) {
			same[i], ks.same[j] = true, true
			n++
		}
	}
	return n
}

// scoped is a baseline entry of the scope and what the update saw of it.
type scoped struct {
	*db.Lazy
	// same: the walk skipped it because its directory listing gives
	// the inode the baseline recorded (not replaced).
	same bool
	seen bool // the scan found it
}

// statAreas are the script areas update --packages rescans in full (every
// file stat'ed, the moved ones rehashed): maintainer scripts write state
// and configuration there in place (echo > /var/lib/pkg/state), which
// leaves the directory as it was. They are small next to /usr.
var statAreas = []string{"/etc/", "/var/lib/", "/var/cache/", "/boot/"}

// dirScan is the result of movedDirs.
type dirScan struct {
	moved []baseDir // baseline directories changed, replaced or gone
	err   error
	// Outside the script areas, which only the packages' own directories
	// concern: stat'ed by statOwned once the records say which.
	outside []baseDir
}

// baseDir is a baseline directory and its stat part.
type baseDir struct {
	path string
	st   db.Stat
}

// moved says whether d is no longer the directory the baseline recorded.
func (d baseDir) moved(root string, st *unix.Stat_t) bool {
	return unix.Lstat(root+d.path, st) != nil ||
		st.Ino != d.st.Inode || st.Mode != d.st.Mode || st.Mtim.Nano() != d.st.Mtime || st.Ctim.Nano() != d.st.Ctime
}

// statOwned completes ds with the directories outside the script areas
// that a package of the run owns (paths).
func (ds *dirScan) statOwned(root string, paths map[string]bool) {
	var st unix.Stat_t
	for _, d := range ds.outside {
		if paths[d.path] && d.moved(root, &st) {
			ds.moved = append(ds.moved, d)
		}
	}
}

// movedDirs finds the baseline directories of the script areas whose
// inode, mode, mtime or ctime moved, with one lstat per directory and
// nothing of the baseline decoded but their stat parts, and lists the
// others for statOwned. It needs no package records, so it runs while
// they load.
func movedDirs(old *db.Baseline, root string) dirScan {
	// The baseline's directories come in chunks, lstat'ed by a few lanes
	// (the calls wait on the disk more than they compute) while the next
	// chunks are read.
	type dir struct {
		baseDir
		moved bool
	}
	const chunk = 256
	chunks := make(chan []dir, 16)
	var (
		all [][]dir
		ds  dirScan
		wg  sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st unix.Stat_t
			for c := range chunks {
				for i := range c {
					c[i].moved = c[i].baseDir.moved(root, &st)
				}
			}
		}()
	}
	cur := make([]dir, 0, chunk)
	ds.err = old.DirStats(func(p string, st db.Stat) error {
		if !integrity.DirInAreas(p, integrity.DefaultScriptAreas) {
			ds.outside = append(ds.outside, baseDir{p, st})
			return nil
		}
		if cur = append(cur, dir{baseDir: baseDir{p, st}}); len(cur) == chunk {
			all = append(all, cur)
			chunks <- cur
			cur = make([]dir, 0, chunk)
		}
		return nil
	})
	all = append(all, cur)
	chunks <- cur
	close(chunks)
	wg.Wait()
	for _, c := range all {
		for _, d := range c {
			if d.moved {
				ds.moved = append(ds.moved, d.baseDir)
			}
		}
	}
	return ds
}

// newPkgScope starts the scope with the paths of the packages run since
// the baseline.
func newPkgScope(pdb pkgdb.DB, old *db.Baseline) *pkgScope {
	s := &pkgScope{paths: map[string]bool{}, ancestors: map[string]bool{}, changed: map[string]bool{},
		rescan: map[string]bool{}, sizes: map[string]int64{}, newDirs: map[string]bool{}}
	seen := map[string]bool{}
	for _, run := range pdb.Runs(old.Meta().Created) {
		for _, op := range run.Ops {
			if !seen[op.Package] {
				seen[op.Package] = true
				s.touched = append(s.touched, op.Package)
			}
		}
	}
	sort.Strings(s.touched)
	for _, pkg := range s.touched {
		for _, f := range pdb.Files(pkg) {
			p := f.Path
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			s.addPath(path.Clean(p)) // a clean path comes back as it is
		}
	}
	return s
}

// addMoved completes the scope with the directories that moved.
func (s *pkgScope) addMoved(ds dirScan) {
	areas := integrity.DefaultScriptAreas
	for _, d := range ds.moved {
		// Changed, replaced or gone (then its parent changed too).
		s.changed[d.path] = true
		if s.paths[d.path] || integrity.DirInAreas(d.path, areas) {
			s.rescan[d.path] = true
			s.sizes[d.path] = d.st.Size
		}
	}
	// The walk must reach every changed directory (one it does not find
	// is gone) and the stat areas.
	for d := range s.changed {
		s.addAncestors(d)
	}
	for _, a := range statAreas {
		s.addAncestors(strings.TrimSuffix(a, "/"))
	}
}

// addPath adds p and, for /bin, /sbin and /lib..., its merged-/usr
// spelling (the one that does not exist is never met by the walk).
func (s *pkgScope) addPath(p string) {
	s.paths[p] = true
	s.addAncestors(p)
	for _, d := range pkgdb.MergedUsrDirs {
		if strings.HasPrefix(p, d) && (len(p) == len(d) || p[len(d)] == '/') {
			q := "/usr" + p
			s.paths[q] = true
			s.addAncestors(q)
		}
	}
}

// addAncestors adds every directory above p.
func (s *pkgScope) addAncestors(p string) {
	for d := rules.ParentDir(p); p != "/" && !s.ancestors[d]; d = rules.ParentDir(d) {
		s.ancestors[d] = true
		if d == "/" {
			break
		}
	}
}

// wanted is the scan's Limit: the touched packages' paths, the changed
// directories, and every entry of a directory rescanned in full.
func (s *pkgScope) wanted(p string) bool {
	if s.paths[p] || s.changed[p] || integrity.DirInAreas(p, statAreas) {
		return true
	}
	d := rules.ParentDir(p)
	return p != "/" && (s.rescan[d] || s.newDirs[d])
}

// enter is the scan's Enter: the directories on the way to a touched
// package's path, the rescanned ones, and new directories below those.
func (s *pkgScope) enter(d string) bool {
	if s.ancestors[d] || s.rescan[d] || s.newDirs[d] || integrity.DirInAreas(d, statAreas) {
		return true
	}
	// Below a rescanned directory (outside the stat areas, whose trees
	// were entered above), its kids say whether d is a baseline
	// directory; below a new one, nothing is.
	if parent := rules.ParentDir(d); d != "/" && (s.rescan[parent] && !s.isKidDir(d) || s.newDirs[parent]) {
		s.newDirs[d] = true
		return true
	}
	return false
}

// updatePackages is `agent update --packages` without --rescan-all: it
// rescans the scope only (pkgScope), classifies its changes, and installs
// as the new baseline a copy of the old one amended with exactly the
// changes packages explain.
func (r *integrityRun) updatePackages(old *db.Baseline) error {
	// A short run with a bounded heap: fewer collections (measured:
	// a fifth of the run time with the default after a 15-package upgrade).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	since := old.Meta().Created
	// The old baseline's digest is read once the report renders, when
	// the scan has left the CPU some room; its file is opened now, before
	// Commit renames it.
	digestFrom := make(chan struct{})
	startDigest := sync.OnceFunc(func() { close(digestFrom) })
	defer startDigest()
	baseDigest := r.digestOpen(r.path(baselineName), digestFrom)
	root := r.pol.Options.RootPrefix
	// What needs no package records runs while they load: the lstat of
	// every baseline directory, and the copy of the baseline the update
	// amends.
	type records struct {
		pdb   pkgdb.DB
		why   string
		scope *pkgScope
	}
	recordsDone := make(chan records, 1)
	go func() {
		pdb, why := openPackageDB(r.ctx, r.pol.Options, since)
		var scope *pkgScope
		if pdb != nil {
			scope = newPkgScope(pdb, old)
		}
		recordsDone <- records{pdb, why, scope}
	}()
	type amended struct {
		w   *db.Writer
		err error
	}
	amendDone := make(chan amended, 1)
	// The entries kept unread were recorded under the baseline's rules:
	// after a rules edit the new baseline is a mix, which its zero rules
	// digest says (db.Meta). An edit of options that do not change what a
	// scan records (package_check, mail) is none: the record of the last
	// full read says which scan config the baseline was recorded with.
	meta := r.meta("update")
	fc, _ := r.lastFullCheck()
	sameRules := r.withScan(old.Meta(), fc.BaselineCreated, fc.BaselineScan)
	if !sameRules {
		meta.RulesDigest = [32]byte{}
	}
	go func() {
		w, err := old.Amend(r.pol.Options.StateDir, meta)
		amendDone <- amended{w, err}
	}()
	var (
		w     *db.Writer
		taken bool // amendDone was received from
	)
	defer func() {
		if !taken {
			w = (<-amendDone).w
		}
		if w != nil {
			w.Abort() // a no-op after Commit
		}
	}()
	ds := movedDirs(old, root)
	rec := <-recordsDone
	pdb, why, scope := rec.pdb, rec.why, rec.scope
	if pdb == nil {
		if why == "" {
			why = "package_check = no"
		}
		return fmt.Errorf("%w: update --packages needs the package records (%s); the baseline is unchanged", errUsage, why)
	}
	r.pkgDB = pdb
	if ds.err != nil {
		return ds.err
	}
	ds.statOwned(root, scope.paths)
	scope.addMoved(ds)

	opts := r.scanOptions()
	opts.Limit = scope.wanted
	opts.Enter = scope.enter
	opts.Uncompress = true
	opts.BaselineSize = func(p string) (int64, bool) {
		st, ok := scope.stat(p)
		return st.Size, ok
	}
	if err := scope.load(old); err != nil {
		return err
	}
	same := 0 // entries SameInode and SameChildren kept unread (the walker's goroutine only)
	// Under the rules the baseline recorded every entry with, each is
	// selected still; otherwise the rules are asked.
	selected := func(p string, t rules.FileType) bool { return r.pol.Match(p, t).Selected }
	if sameRules {
		selected = nil
	}
	opts.SameChildren = func(dir string, children []scanner.Child, isSame []bool) {
		same += scope.sameChildren(dir, children, isSame, selected)
	}
	opts.SameInode = func(p string, t rules.FileType, ino uint64) bool {
		// Not in the stat areas: files there are edited in place.
		o, ok := scope.old[p]
		if !ok || o.Problem || o.Type != t || o.Inode != ino || integrity.InAreas(p, statAreas) {
			return false
		}
		o.same = true
		same++
		return true
	}
	opts.Reuse = func(e *scanner.Entry) bool {
		st, ok := scope.stat(e.Path)
		return ok && sameFile(st, e)
	}
	var (
		scanned  []*scanner.Entry
		problems []report.Problem
	)
	if !r.c.Bool("no-nice") {
		if err := lowerPriority(r.pol.Options.Nice, r.pol.Options.IONice); err != nil {
			r.log.Warn("cannot lower the scan's priority", "err", err)
		}
	}
	_, err := scanner.Scan(r.ctx, r.pol, opts, func(e *scanner.Entry) error {
		if e.Reused {
			r.reused++
		} else if e.Err != "" {
			problems = append(problems, report.Problem{Path: e.Path, Err: e.Err})
		}
		scanned = append(scanned, e)
		return nil
	})
	if err != nil {
		if r.ctx.Err() != nil {
			return fmt.Errorf("%w: scan stopped, the baseline is unchanged", errInterrupted)
		}
		return err
	}

	pairs, err := scope.pairs(old, scanned)
	if err != nil {
		return err
	}
	base := r.path(baselineName)
	rep := r.newReport("update")
	rep.Baseline = base
	rep.Problems = problems
	r.addChanges(rep, pairs, since, true)

	// What the new baseline takes: the explained changes, and the pairs
	// the report does not show (a move, an ignored attribute), as a full
	// update takes them; the rest keeps its old entry.
	entries := int(old.Meta().Entries)
	var byPath map[string]report.Provenance
	if rep.Provenance != nil {
		byPath = rep.Provenance.ByPath
	}
	var accepted, kept int
	take := make([]scanner.Pair, 0, len(pairs))
	for _, p := range pairs {
		if v, ok := byPath[pairPath(p)]; ok && v.Class != report.ClassPackage && v.Class != report.ClassScript {
			kept++
			continue
		} else if ok {
			accepted++
		}
		switch {
		case p.New == nil:
			entries--
		case p.Old == nil:
			entries++
		}
		take = append(take, p)
	}
	rep.Total = entries
	rep.NewBaseline = base
	rep.Notices = append(rep.Notices, fmt.Sprintf("update --packages: %d paths rescanned (%d of them unmoved and not read), from %d packages run since the baseline and %d changed directories; %d explained changes accepted, %d unexplained or mismatched entries kept as in the old baseline; the other %d baseline entries were not looked at (--rescan-all stats them all)",
		len(scanned)+same, r.reused+same, len(scope.touched), len(scope.changed), accepted, kept, max(0, entries-len(scanned)-same)))
	r.addPosture(rep)
	// The report renders while the new baseline is written and synced;
	// its tail (the baselines' digests, the end time) comes last.
	render := startRender(rep, &report.History{Dir: r.pol.Options.ReportDir})
	defer render.discard() // a no-op once saved
	startDigest()

	if err := r.markPartial(r.start); err != nil {
		return err
	}
	a := <-amendDone
	taken = true
	if w = a.w; a.err != nil {
		return a.err
	}
	for _, p := range take {
		switch {
		case p.New == nil:
			err = w.Delete(p.Old.Path)
		case p.Old != nil: // read from the baseline amended
			err = w.Replace(p.New)
		default:
			err = w.Put(p.New)
		}
		if err != nil {
			return err
		}
	}
	// The new baseline's digest is read from the finished file while it
	// is synced.
	newDigest := func() [32]byte { return [32]byte{} }
	sealed := func(tmp string) { newDigest = r.digestOpen(tmp, nil) }
	if _, err = w.Commit(base, db.CommitOptions{KeepPrevious: true, Now: r.start, Sealed: sealed}); err != nil {
		return err
	}
	rep.BaselineDigest = baseDigest()
	rep.NewBaselineDigest = newDigest()
	out := render.finish()
	// last-check.db described the host before this update; accept must
	// not install it over the update.
	if err := os.Remove(r.path(lastCheckName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	if err := r.emitRendered(string(rep.Kind), rep, out); err != nil {
		return err
	}
	return r.outcome(rep)
}

// sameFile says whether the file e stat'ed is the one the baseline
// recorded as o: inode, size, mtime, ctime and mode did not move. Such a
// file keeps its baseline entry unread; nothing new is accepted that way,
// the next full check rehashes it.
func sameFile(o db.Stat, e *scanner.Entry) bool {
	return !o.Problem && o.Type == e.Type && o.Inode == e.Inode && o.Dev == e.Dev &&
		o.Size == e.Size && o.Mtime == e.Mtime && o.Ctime == e.Ctime && o.Mode == e.Mode
}

// load reads the baseline's entries of the scope, once, before the scan:
// the touched packages' paths, the changed directories and the stat areas
// into old; the stat parts of the entries of the directories rescanned in
// full into kids (only the few that the scan finds changed are read in
// full, by pairs). The scan's SameChildren and Reuse and the comparison
// then look them up in memory.
func (s *pkgScope) load(old *db.Baseline) error {
	// The stat areas' trees, the rescanned directories' kids and the
	// other paths of the scope, read in lanes (read transactions of their
	// own) that take the next read as they finish one, the largest first
	// (a directory's st_size grows with its entries; a tree's is not
	// known): a man1 of 18,000 pages is as much as all the other
	// directories of an upgrade together.
	type read struct {
		path string
		kind int // readTree, readChildren or readOne
		size int64
	}
	const (
		readTree = iota
		readChildren
		readOne
	)
	var reads []read
	for _, a := range statAreas {
		reads = append(reads, read{strings.TrimSuffix(a, "/"), readTree, math.MaxInt64})
	}
	for d := range s.rescan {
		if !integrity.DirInAreas(d, statAreas) { // else read with its tree
			reads = append(reads, read{d, readChildren, s.sizes[d]})
		}
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].size > reads[j].size })
	// What those reads do not cover, one by one.
	one := map[string]bool{}
	covered := func(p string) bool {
		return integrity.DirInAreas(p, statAreas) || p != "/" && s.rescan[rules.ParentDir(p)]
	}
	for _, a := range statAreas {
		one[strings.TrimSuffix(a, "/")] = true
	}
	for p := range s.changed {
		if !covered(p) {
			one[p] = true
		}
	}
	for p := range s.paths {
		if !covered(p) {
			one[p] = true
		}
	}
	for p := range one {
		reads = append(reads, read{path: p, kind: readOne})
	}
	lanes := scopeLanes()
	var (
		next  atomic.Int64
		got   = make([][]*db.Lazy, lanes)
		stats = make([][]db.ChildStat, len(reads))
		errs  = make([]error, lanes)
		wg    sync.WaitGroup
	)
	for lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			add := func(l *db.Lazy) error {
				got[lane] = append(got[lane], l)
				return nil
			}
			for i := int(next.Add(1) - 1); i < len(reads) && errs[lane] == nil; i = int(next.Add(1) - 1) {
				switch r := reads[i]; r.kind {
				case readTree:
					errs[lane] = old.LazyUnder(r.path, add)
				case readChildren:
					stats[i], errs[lane] = old.ChildStats(r.path)
				default:
					e, err := old.Get(r.path)
					if err == nil {
						got[lane] = append(got[lane], db.LazyOf(e))
					} else if !errors.Is(err, db.ErrNotFound) {
						errs[lane] = err
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n := 0
	for _, g := range got {
		n += len(g)
	}
	s.old = make(map[string]*scoped, n)
	slab := make([]scoped, 0, n)
	for _, all := range got {
		for _, l := range all {
			slab = append(slab, scoped{Lazy: l})
			s.old[l.Path] = &slab[len(slab)-1]
		}
	}
	s.kids = map[string]*kids{}
	for i, cs := range stats {
		if reads[i].kind != readChildren {
			continue
		}
		d := reads[i].path
		ks := cs[:0]
		for _, c := range cs {
			// The roots of the stat areas (/var/lib in /var) are read
			// one by one, into old.
			if c.Type == rules.TypeDir && integrity.DirInAreas(childPath(d, c.Name), statAreas) {
				continue
			}
			ks = append(ks, c)
		}
		s.kids[d] = &kids{stats: ks, same: make([]bool, len(ks)), seen: make([]bool, len(ks))}
	}
	return nil
}

// scopeLanes is how many goroutines read and compare the scope: one per
// CPU, at least two (the reads wait on page faults too) and at most 8.
func scopeLanes() int { return min(max(2, runtime.GOMAXPROCS(0)), 8) }

// pairs compares the rescanned entries with the baseline's: every scanned
// path, and every baseline path of the scope the scan did not find
// (removed, with the subtree of a removed directory), in key order, the
// pairs that differ only.
func (s *pkgScope) pairs(old *db.Baseline, scanned []*scanner.Entry) ([]scanner.Pair, error) {
	// The scanned entries are compared in lanes, each a run of them (the
	// old side is decoded there), and the runs joined in order.
	lanes := scopeLanes()
	per := (len(scanned) + lanes - 1) / lanes
	found := make([][]scanner.Pair, lanes)
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for lane := range lanes {
		run := scanned[min(lane*per, len(scanned)):min((lane+1)*per, len(scanned))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			found[lane], errs[lane] = s.compare(old, run)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []scanner.Pair
	for _, f := range found {
		out = append(out, f...)
	}
	gone := map[string]bool{}
	var goneDirs []string
	addGone := func(o *scanner.Entry) {
		gone[o.Path] = true
		out = append(out, scanner.Pair{Old: o})
		if o.Type == rules.TypeDir {
			goneDirs = append(goneDirs, o.Path)
		}
	}
	for _, l := range s.old {
		if l.seen || l.same {
			continue
		}
		o, err := l.Entry()
		if err != nil {
			return nil, err
		}
		addGone(o)
	}
	for d, ks := range s.kids {
		for i, c := range ks.stats {
			if ks.same[i] || ks.seen[i] {
				continue
			}
			o, err := old.Get(childPath(d, c.Name))
			if err != nil {
				return nil, err
			}
			addGone(o)
		}
	}
	if len(goneDirs) > 0 {
		cur := make(map[string]bool, len(scanned))
		for _, e := range scanned {
			cur[e.Path] = true
		}
		for _, d := range goneDirs {
			err := old.EachUnder(d, func(o *scanner.Entry) error {
				if !gone[o.Path] && !cur[o.Path] {
					gone[o.Path] = true
					out = append(out, scanner.Pair{Old: o})
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return scanner.KeyLess(pairPath(out[i]), pairPath(out[j])) })
	return out, nil
}

// compare is pairs for a run of the scanned entries: the pairs that
// differ, and each entry's baseline side marked seen.
func (s *pkgScope) compare(old *db.Baseline, scanned []*scanner.Entry) ([]scanner.Pair, error) {
	// The baseline side comes from the loaded scope, or (a kid, or a path
	// the scope did not foresee) from the file, all in one read.
	olds := make([]*scanner.Entry, len(scanned))
	var byPath []int
	for i, e := range scanned {
		l, ok := s.old[e.Path]
		if ok {
			l.seen = true
		} else if ks, i := s.kid(e.Path); ks != nil {
			ks.seen[i] = true
		}
		switch {
		case e.Reused:
		case ok:
			o, err := l.Entry()
			if err != nil {
				return nil, err
			}
			olds[i] = o
		default:
			byPath = append(byPath, i)
		}
	}
	paths := make([]string, len(byPath))
	for j, i := range byPath {
		paths[j] = scanned[i].Path
	}
	got, err := old.GetAll(paths)
	if err != nil {
		return nil, err
	}
	for j, i := range byPath {
		olds[i] = got[j]
	}
	var out []scanner.Pair
	for i, e := range scanned {
		if !e.Reused && scanner.Differ(olds[i], e) {
			out = append(out, scanner.Pair{Old: olds[i], New: e})
		}
	}
	return out, nil
}

func pairPath(p scanner.Pair) string {
	if p.New != nil {
		return p.New.Path
	}
	return p.Old.Path
}
