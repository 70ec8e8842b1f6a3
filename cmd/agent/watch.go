package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/db"
	"opsagent/posture"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
	"opsagent/watch"
)

const (
	watchJournalName = "watch.db"
	watchLockName    = "watch.lock"
	// exitWatchUnavailable: fanotify is missing or not permitted here.
	exitWatchUnavailable = 3
	// watchJournalMax bounds the journal; a fuller one is not trusted.
	watchJournalMax = 1_000_000
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:  "watch",
		Usage: "follow changes with fanotify: print each finding as it happens and keep the dirty-path journal of check --incremental (exit 3 where fanotify is unavailable)",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "quiet", Value: time.Second, Usage: "report a burst of events once it has been quiet this long"},
			&cli.DurationFlag{Name: "max-delay", Value: 3 * time.Second, Usage: "report a burst that goes on after at most this long"},
			&cli.IntFlag{Name: "max-lines", Value: 100, Usage: "print at most this many findings per burst, then one summary line"},
		},
		Action: runWatch,
	}
}

// watchTargets returns one path per file system that holds a part of the
// scanned trees (the file system of each selection root and those mounted
// below one), on the host, and a fingerprint of their mount table lines.
// Pseudo file systems (proc, sysfs, cgroup...) are left out as the scan
// leaves them out.
//
// remote lists the marked ones that are network or FUSE file systems
// (remoteFS), which the journal cannot vouch for.
func watchTargets(pol *rules.Policy) (paths []string, fingerprint string, remote []string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, "", nil, err
	}
	defer f.Close()
	mounts, err := posture.ParseMountinfo(f, "/proc/self/mountinfo")
	if err != nil {
		return nil, "", nil, err
	}
	root := pol.Options.RootPrefix
	if root == "" {
		root = "/"
	}
	var hostRoots []string
	for _, r := range pol.SelectionRoots() {
		h := filepath.Join(root, r)
		// The nearest directory that exists: a root may be a file or
		// not exist yet.
		for {
			if fi, err := os.Stat(h); err == nil && fi.IsDir() {
				break
			}
			if h == "/" {
				break
			}
			h = filepath.Dir(h)
		}
		hostRoots = append(hostRoots, h)
	}
	seen := map[string]bool{}
	var fp strings.Builder
	add := func(p string, m *posture.Mount) {
		if seen[p] {
			return
		}
		seen[p] = true
		paths = append(paths, p)
		if m != nil && remoteFS(m.FSType) {
			remote = append(remote, fmt.Sprintf("%s: a %s file system, changed by others without a file event here", p, m.FSType))
		}
		if m != nil {
			fmt.Fprintf(&fp, "%d %d:%d %s %s %s\n", m.ID, m.Major, m.Minor, m.MountPoint, m.FSType, strings.Join(m.Options, ","))
		}
	}
	for _, h := range hostRoots {
		// Every mount below a scanned root counts in the fingerprint,
		// pseudo or not: one mounted or unmounted there changes what
		// the scan sees without a file event.
		for i := range mounts {
			if m := &mounts[i]; m.MountPoint != h && within(m.MountPoint, h) {
				fmt.Fprintf(&fp, "below %d %d:%d %s %s\n", m.ID, m.Major, m.Minor, m.MountPoint, m.FSType)
			}
		}
		// The mount holding h: the longest mount point above it (the
		// last one listed wins for stacked mounts).
		var best *posture.Mount
		for i := range mounts {
			m := &mounts[i]
			if within(h, m.MountPoint) && (best == nil || len(m.MountPoint) >= len(best.MountPoint)) {
				best = m
			}
		}
		if best == nil || !pseudoFS(best.FSType) {
			add(h, best)
		}
		for i := range mounts {
			m := &mounts[i]
			// Marked whether the rules select the mount point or only
			// walk through it; the events are matched one by one.
			if m.MountPoint != h && within(m.MountPoint, h) && !pseudoFS(m.FSType) {
				add(m.MountPoint, m)
			}
		}
	}
	sum := sha256.Sum256([]byte(fp.String()))
	return paths, hex.EncodeToString(sum[:8]), remote, nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// remoteFS are the file systems whose files others change without a file
// event here (other NFS/CIFS clients, the server behind a FUSE or virtio
// file system): the journal cannot vouch for them.
func remoteFS(t string) bool {
	switch t {
	case "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "lustre", "gpfs", "virtiofs", "fuse", "fuseblk":
		return true
	}
	return strings.HasPrefix(t, "fuse.")
}

// pseudoFS are the kernel's file systems that the scan records by
// metadata only or not at all; fanotify has nothing to say about them.
func pseudoFS(t string) bool {
	switch t {
	case "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "debugfs", "tracefs", "securityfs",
		"pstore", "bpf", "configfs", "fusectl", "binfmt_misc", "hugetlbfs", "autofs", "efivarfs", "rpc_pipefs", "nsfs":
		return true
	}
	return false
}

// runWatch is agent watch: mark, read, coalesce, journal, compare, print.
func runWatch(c *cli.Context) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	notices(c, pol, c.App.ErrWriter)
	r := newRun(c, pol)
	if err := r.parseLevel(); err != nil {
		return err
	}
	o := pol.Options
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("%w: create state_dir: %w", errWrite, err)
	}
	lock, err := db.LockFile(filepath.Join(o.StateDir, watchLockName))
	if err != nil {
		return fmt.Errorf("agent watch for %s: %w", o.StateDir, err)
	}
	defer lock.Unlock()
	targets, fp, remote, err := watchTargets(pol)
	if err != nil {
		return fmt.Errorf("watch: mount table: %w", err)
	}
	w, err := watch.Open(targets, false)
	if err != nil {
		if errors.Is(err, watch.ErrUnavailable) {
			return &exitError{code: exitWatchUnavailable, err: err}
		}
		return err
	}
	defer w.Close()
	scanDigest := pol.ScanDigest()
	st := db.JournalState{Started: time.Now(), PID: os.Getpid(), Mounts: fp, Scan: hex.EncodeToString(scanDigest[:])}
	for _, rm := range remote {
		st.Unmarked = append(st.Unmarked, rm)
		fmt.Fprintf(r.stderr, "agent: warning: watch: %s (check --incremental runs full checks)\n", rm)
	}
	for _, m := range w.Marks() {
		if m.Err != nil {
			st.Unmarked = append(st.Unmarked, m.Err.Error())
			fmt.Fprintf(r.stderr, "agent: warning: watch: %v (changes there are seen by scans only)\n", m.Err)
		} else {
			st.Marked = append(st.Marked, m.Path)
		}
	}
	jpath := filepath.Join(o.StateDir, watchJournalName)
	j, err := db.OpenJournal(jpath)
	if err != nil {
		return err
	}
	err = j.Reset(st)
	j.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "agent: watching %s\n", strings.Join(st.Marked, " "))
	out := bufio.NewWriter(r.stdout)
	wt := &watcher{r: r, w: w, st: &st, jpath: jpath, out: out, maxLines: c.Int("max-lines"), pending: map[string]time.Time{},
		links: map[db.Inode]time.Time{}, trees: map[string]time.Time{}, mail: newWatchMailer(r)}
	if wt.mail != nil {
		defer wt.mail.tick(true)
	}
	// check --incremental asks with SIGUSR1 for every event queued so
	// far to be journaled before it reads the journal (watchSync).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	syncReq := make(chan struct{}, 1)
	stopSigs, sigsDone := make(chan struct{}), make(chan struct{})
	defer func() { close(stopSigs); <-sigsDone }() // before w.Close
	go func() {
		defer close(sigsDone)
		for {
			select {
			case <-sigs:
				select {
				case syncReq <- struct{}{}:
				default:
				}
				w.Wake()
			case <-stopSigs:
				return
			}
		}
	}()
	quiet, maxDelay := c.Duration("quiet"), c.Duration("max-delay")
	var first, last time.Time
	read := func(timeoutMS int) (int, bool, error) {
		evs, overflow, err := w.Read(timeoutMS)
		if err != nil && !errors.Is(err, watch.ErrRecord) {
			return 0, false, err
		}
		if err != nil {
			fmt.Fprintf(r.stderr, "agent: warning: %v\n", err)
		}
		now := time.Now()
		if overflow && st.Overflowed.IsZero() {
			st.Overflowed = now
			fmt.Fprintf(out, "%s overflow: the kernel's event queue overflowed, events were lost: check --incremental runs full checks until agent watch restarts\n", now.UTC().Format(time.RFC3339))
		}
		for _, e := range evs {
			if e.Mask&linkMask != 0 && !e.Dir() {
				// Whatever its name, a file with several links may be
				// scanned under another: its inode is journaled. Stat'ed
				// as the event is read, so that a name made and removed
				// again soon is still seen as often as can be.
				var st syscall.Stat_t
				if syscall.Lstat(e.Path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Nlink > 1 {
					wt.links[db.Inode{Dev: uint64(st.Dev), Ino: st.Ino}] = now
				}
			}
			p, ok := r.watchedPath(e.Path)
			if !ok {
				continue
			}
			if len(wt.pending) == 0 {
				first = now
			}
			wt.pending[p] = now
			if e.Dir() && e.Mask&treeMask != 0 {
				// What is below a directory that came, went or
				// moved may have no events of its own (or events
				// under a name it had for a moment): read it all.
				wt.trees[p] = now
			}
			last = now
		}
		return len(evs), overflow, nil
	}
	for {
		if r.ctx.Err() != nil {
			// Stopping: what was read is journaled and reported.
			return wt.flush()
		}
		select {
		case <-syncReq:
			// Drain what the kernel holds, then journal it; the
			// findings are printed with the burst as usual.
			for range 1000 {
				if _, _, err := read(0); err != nil {
					return err
				}
				// Empty, counting the records the watcher drops (its
				// own, unresolvable ones): the queue is drained.
				if w.LastRecords == 0 {
					break
				}
			}
			if err := wt.sync(); err != nil {
				return err
			}
		default:
		}
		_, overflow, err := read(200)
		if err != nil {
			return err
		}
		now := time.Now()
		if len(wt.pending) > 0 && (now.Sub(last) >= quiet || now.Sub(first) >= maxDelay) || overflow {
			if err := wt.flush(); err != nil {
				return err
			}
		}
		if wt.mail != nil {
			wt.mail.tick(false)
		}
	}
}

// treeMask are the events on a directory after which everything below it
// is read again by check --incremental.
const treeMask = watch.MaskCreate | watch.MaskDelete | watch.MaskDeleteSelf | watch.MaskMovedFrom | watch.MaskMovedTo

// takeTrees returns the directories to journal as trees and forgets them.
func (wt *watcher) takeTrees() map[string]time.Time {
	t := wt.trees
	wt.trees = map[string]time.Time{}
	return t
}

// linkMask are the events after which a file's other names (hard links)
// may differ from the baseline: its content or metadata changed, or a new
// name raised its link count.
const linkMask = watch.MaskModify | watch.MaskCloseWrite | watch.MaskAttrib | watch.MaskCreate | watch.MaskMovedTo

// linkInodes returns the inodes to journal and forgets them.
func (wt *watcher) linkInodes() map[db.Inode]time.Time {
	l := wt.links
	wt.links = map[db.Inode]time.Time{}
	return l
}

// sync journals the pending paths without reporting them (flush does
// that later) and stamps the state Synced, which watchSync waits for.
func (wt *watcher) sync() error {
	wt.st.Events, wt.st.Overflows = wt.w.Events, wt.w.Overflows
	wt.st.Synced = time.Now()
	j, err := db.OpenJournal(wt.jpath)
	if err != nil {
		return err
	}
	_, err = j.Record(wt.pending, wt.takeTrees(), wt.linkInodes(), wt.st, watchJournalMax)
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	return err
}

// watchedPath maps a host path of an event to the scanned namespace and
// says whether the policy selects it (as a file, or as a directory for
// an event on one).
func (r *integrityRun) watchedPath(host string) (string, bool) {
	p := host
	if root := strings.TrimSuffix(r.pol.Options.RootPrefix, "/"); root != "" {
		if !strings.HasPrefix(host, root+"/") {
			return "", false
		}
		p = host[len(root):]
	}
	for _, ex := range r.pol.Exclusions() {
		if within(p, ex.Path) {
			return "", false
		}
	}
	if watchMatters(r.pol, p) {
		return p, true
	}
	return "", false
}

// watchMatters reports whether an event on p can change what a scan
// records: p is selected as any type of file, or is a directory the scan
// walks through (what is moved or removed with it may be selected), or
// its directory is selected (its times and link count change).
func watchMatters(pol *rules.Policy, p string) bool {
	for _, t := range []rules.FileType{rules.TypeFile, rules.TypeDir, rules.TypeSymlink, rules.TypeFIFO, rules.TypeSocket, rules.TypeBlockDev, rules.TypeCharDev} {
		if m := pol.Match(p, t); m.Selected || t == rules.TypeDir && m.Descend {
			return true
		}
	}
	return p != "/" && pol.Match(path.Dir(p), rules.TypeDir).Selected
}

// watcher is the state of one agent watch between bursts.
type watcher struct {
	r        *integrityRun
	w        *watch.Watcher
	st       *db.JournalState
	jpath    string
	out      *bufio.Writer
	maxLines int
	pending  map[string]time.Time
	// links are the inodes of the files with several links created,
	// written or changed since the last journaling, under any name.
	links map[db.Inode]time.Time
	// trees are the directories created, removed or moved since the last
	// journaling.
	trees  map[string]time.Time
	mail   *watchMailer // nil: findings are not mailed
	pruned time.Time
}

// flush journals the pending paths, compares them with the baseline and
// prints the findings.
func (wt *watcher) flush() error {
	defer wt.out.Flush()
	if len(wt.pending) == 0 {
		return nil
	}
	batch := wt.pending
	wt.pending = map[string]time.Time{}
	wt.st.Events, wt.st.Overflows = wt.w.Events, wt.w.Overflows
	j, err := db.OpenJournal(wt.jpath)
	if err != nil {
		return err
	}
	_, err = j.Record(batch, wt.takeTrees(), wt.linkInodes(), wt.st, watchJournalMax)
	base, berr := db.Open(wt.r.path(baselineName))
	if err == nil && berr == nil && time.Since(wt.pruned) > time.Minute {
		// What happened before the current baseline is in it.
		err = j.Prune(base.Meta().Created.Add(-2 * time.Second))
		wt.pruned = time.Now()
	}
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if base != nil {
			base.Close()
		}
		return err
	}
	if berr != nil {
		// No baseline yet (or unreadable): the journal is kept, there is
		// nothing to compare with.
		fmt.Fprintf(wt.out, "%s %d paths changed; no baseline to compare with: %v\n", time.Now().UTC().Format(time.RFC3339), len(batch), berr)
		return nil
	}
	defer base.Close()
	rep, err := wt.r.compareBatch(base, batch)
	if err != nil {
		return err
	}
	byPath := map[string]report.Provenance{}
	if rep.Provenance != nil {
		byPath = rep.Provenance.ByPath
	}
	stamp := time.Now().UTC().Format(time.RFC3339)
	var lines, classes []string
	for i, ch := range rep.Changes {
		class := report.ClassUnexplained
		if v, ok := byPath[ch.Path]; ok {
			class = v.Class
		}
		line := fmt.Sprintf("%s %s %s %s", stamp, report.ChangeString(ch, wt.r.pol.Options.ReportIgnoreChangedAttrs), report.EscapePath(ch.Path), class)
		if wt.mail != nil {
			lines, classes = append(lines, line), append(classes, class)
		}
		switch {
		case i < wt.maxLines:
			fmt.Fprintln(wt.out, line)
		case i == wt.maxLines:
			fmt.Fprintf(wt.out, "%s ... and %d more changes in this burst (%d paths journaled)\n", stamp, len(rep.Changes)-i, len(batch))
		}
		if i >= wt.maxLines && wt.mail == nil {
			break
		}
	}
	if wt.mail != nil {
		wt.mail.add(lines, classes)
	}
	if len(rep.Changes) > 0 {
		emitChangeEvents(wt.r.pol.Options, rep, "watch", wt.r.alert)
	}
	return nil
}

// compareBatch scans the paths of a burst (and nothing else) and returns
// a report of how they differ from the baseline, classified.
func (r *integrityRun) compareBatch(base *db.Baseline, batch map[string]time.Time) (*report.Report, error) {
	want := make(map[string]bool, len(batch))
	anc := map[string]bool{}
	for p := range batch {
		want[p] = true
		for d := path.Dir(p); !anc[d]; d = path.Dir(d) {
			anc[d] = true
			if d == "/" {
				break
			}
		}
	}
	opts := r.scanOptions()
	opts.Limit = func(p string) bool { return want[p] }
	opts.Enter = func(d string) bool { return anc[d] }
	opts.Uncompress = true
	cur := map[string]*scanner.Entry{}
	if _, err := scanner.Scan(r.ctx, r.pol, opts, func(e *scanner.Entry) error {
		cur[e.Path] = e
		return nil
	}); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return scanner.KeyLess(paths[i], paths[j]) })
	var pairs []scanner.Pair
	for _, p := range paths {
		o, err := base.Get(p)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
		if err != nil {
			o = nil
		}
		n := cur[p]
		switch {
		case o == nil && n == nil:
		case o == nil || n == nil || scanner.Differ(o, n):
			pairs = append(pairs, scanner.Pair{Old: o, New: n})
		}
	}
	rep := r.newReport("check")
	r.pkgDB = nil // packages may have been installed since the last burst
	r.addChanges(rep, pairs, base.Meta().Created, true)
	return rep, nil
}

// journalAnchor says from when a journal in state st covers every change
// for check --incremental against base, or why it cannot ("" when it can).
// It asks nothing of the watcher (journalTrust then does).
func (r *integrityRun) journalAnchor(base *db.Baseline, st db.JournalState) (anchor, string) {
	dir := r.pol.Options.StateDir
	if !watcherRunning(dir) {
		return anchor{}, "agent watch is not running, so the journal may miss changes"
	}
	m := base.Meta()
	fc, haveFC := r.lastFullCheck()
	scan := r.scanDigest()
	if !r.withScan(m, fc.BaselineCreated, fc.BaselineScan) {
		return anchor{}, "the rules changed since the baseline was written"
	}
	// A full read is on record when the record has one (a record may hold
	// only partial baselines).
	fullRead := haveFC && !fc.Time.IsZero()
	partial := haveFC && fc.isPartial(m.Created)
	if every := r.pol.Options.FullCheckEvery; every > 0 {
		if !fullRead {
			return anchor{}, "no full check is on record"
		}
		if ago := time.Since(fc.Time); ago >= every {
			return anchor{}, fmt.Sprintf("the last full check was at %s, full_check_every is %s", fc.Time.Format(time.RFC3339), every)
		}
	}
	// The moment the journal must cover from: the baseline's writing, or
	// a later full check of this baseline and rules (what differed then
	// is rescanned too), which lets a watcher started after the baseline
	// (a reboot) vouch for what came after that check.
	a := anchor{at: m.Created}
	if fullRead && fc.Time.After(m.Created) && fc.BaselineCreated.Equal(m.Created) &&
		fc.Scan == scan && !fc.TooMany && !st.Started.After(fc.Time) {
		a = anchor{at: fc.Time, fullCheck: true, carried: fc.Differing}
	} else if partial {
		// Not an image of the tree: only a full check of it anchors.
		return anchor{}, "the baseline was written by update --packages, update --limit or accept, which keep entries they did not read or come from an older scan: the next full check makes incremental checks possible again"
	}
	if why := trustState(st, a); why != "" {
		return anchor{}, why
	}
	if st.Scan != scan {
		return anchor{}, "agent watch runs with other rules than this check: restart it"
	}
	if _, fp, _, err := watchTargets(r.pol); err != nil || fp != st.Mounts {
		return anchor{}, "a watched file system was mounted, unmounted or remounted since agent watch started"
	}
	return a, ""
}

// journalView is what check --incremental reads from a trusted journal:
// the paths and the inodes of files with several links touched since the
// baseline was written, and since when the journal is complete.
type journalView struct {
	dirty    map[string]bool
	trees    map[string]bool
	inodes   map[db.Inode]bool
	complete time.Time
	anchor   anchor
}

// journalTrust says why the dirty-path journal cannot stand in for a full
// read of the tree ("" when it can) and returns what it holds since the
// baseline was written.
func (r *integrityRun) journalTrust(base *db.Baseline) (*journalView, string) {
	dir := r.pol.Options.StateDir
	jpath := filepath.Join(dir, watchJournalName)
	state := func() (db.JournalState, string) {
		j, err := db.ReadJournal(jpath)
		if errors.Is(err, os.ErrNotExist) {
			return db.JournalState{}, "there is no journal: agent watch has not run"
		}
		if err != nil {
			return db.JournalState{}, fmt.Sprintf("the journal cannot be read: %v", err)
		}
		defer j.Close()
		st, _, err := j.State()
		if err != nil {
			return st, fmt.Sprintf("the journal cannot be read: %v", err)
		}
		return st, ""
	}
	st, why := state()
	if why != "" {
		return nil, why
	}
	a, why := r.journalAnchor(base, st)
	if why != "" {
		return nil, why
	}
	if err := watchSync(dir, st, 5*time.Second); err != nil {
		return nil, err.Error()
	}
	j, err := db.ReadJournal(jpath)
	if err != nil {
		return nil, fmt.Sprintf("the journal cannot be read: %v", err)
	}
	defer j.Close()
	st, _, err = j.State()
	if err != nil {
		return nil, fmt.Sprintf("the journal cannot be read: %v", err)
	}
	if why := trustState(st, a); why != "" {
		return nil, why
	}
	v := &journalView{dirty: map[string]bool{}, trees: map[string]bool{}, inodes: map[db.Inode]bool{}, complete: st.Started, anchor: a}
	for _, p := range a.carried {
		v.dirty[p] = true
	}
	since := a.at.Add(-2 * time.Second)
	if err := j.Dirty(since, func(p string) { v.dirty[p] = true }); err != nil {
		return nil, fmt.Sprintf("the journal cannot be read: %v", err)
	}
	if err := j.DirtyTrees(since, func(p string) { v.trees[p] = true }); err != nil {
		return nil, fmt.Sprintf("the journal cannot be read: %v", err)
	}
	if err := j.DirtyInodes(since, func(in db.Inode) { v.inodes[in] = true }); err != nil {
		return nil, fmt.Sprintf("the journal cannot be read: %v", err)
	}
	return v, ""
}

// anchor is the moment check --incremental takes the journal from.
type anchor struct {
	at        time.Time
	fullCheck bool     // at is a full check's start, not the baseline's writing
	carried   []string // the paths that differed from the baseline at that check
}

// trustState says why a journal in state st does not cover everything
// since the anchor ("" when it does).
func trustState(st db.JournalState, a anchor) string {
	switch {
	case !st.Overflowed.IsZero():
		return fmt.Sprintf("the event queue overflowed at %s and events were lost", st.Overflowed.Format(time.RFC3339))
	case st.Full:
		return fmt.Sprintf("the journal reached its bound of %d paths", watchJournalMax)
	case len(st.Unmarked) > 0:
		return "some file systems are not watched: " + strings.Join(st.Unmarked, "; ")
	case st.Started.After(a.at):
		return fmt.Sprintf("agent watch started at %s, after the baseline was written (%s) and after the last full check: changes in between are not journaled (the next full check, update or init makes incremental checks possible again)",
			st.Started.Format(time.RFC3339), a.at.Format(time.RFC3339))
	}
	return ""
}

// watcherRunning reports whether an agent watch holds the watch lock of
// state directory dir (probed with a shared lock, which fails while the
// watcher holds its exclusive one).
func watcherRunning(dir string) bool { return lockHeld(filepath.Join(dir, watchLockName)) }

// watchStatus is the watcher part of agent status.
type watchStatus struct {
	Ran      bool             `json:"ran"`
	Running  bool             `json:"running"`
	Journal  *db.JournalState `json:"journal,omitempty"`
	Paths    int              `json:"journaled_paths"`
	Complete bool             `json:"complete"`
	Why      string           `json:"why,omitempty"` // why the journal is incomplete or unreadable
	// Incremental says whether check --incremental would run now (without
	// asking the watcher to journal its queue, which the check does):
	// IncrementalSince is the moment it takes the journal from, or
	// IncrementalWhy why it would run a full check.
	Incremental      bool      `json:"incremental"`
	IncrementalSince time.Time `json:"incremental_since,omitzero"`
	IncrementalWhy   string    `json:"incremental_why,omitempty"`
}

// readIncremental fills ws's Incremental fields for the config pol (nil:
// unknown) from the journal state it read.
func readIncremental(c *cli.Context, pol *rules.Policy, dir string, ws *watchStatus) {
	if pol == nil || ws.Journal == nil {
		return
	}
	base, err := db.Open(filepath.Join(dir, baselineName))
	if err != nil {
		ws.IncrementalWhy = fmt.Sprintf("no baseline to compare with: %v", err)
		return
	}
	defer base.Close()
	pol.Options.StateDir = dir // status's own copy of the config
	r := newRun(c, pol)
	a, why := r.journalAnchor(base, *ws.Journal)
	ws.Incremental, ws.IncrementalWhy = why == "", why
	if why == "" {
		ws.IncrementalSince = a.at
	}
}

func readWatchStatus(dir string) watchStatus {
	var ws watchStatus
	j, err := db.ReadJournal(filepath.Join(dir, watchJournalName))
	if errors.Is(err, os.ErrNotExist) {
		return ws
	}
	ws.Ran = true
	if err != nil {
		ws.Why = fmt.Sprintf("journal unreadable: %v", err)
		return ws
	}
	defer j.Close()
	st, n, err := j.State()
	if err != nil {
		ws.Why = fmt.Sprintf("journal unreadable: %v", err)
		return ws
	}
	ws.Journal, ws.Paths = &st, n
	ws.Running = watcherRunning(dir)
	switch {
	case !ws.Running:
		ws.Why = "the watcher stopped"
	case !st.Overflowed.IsZero():
		ws.Why = "the event queue overflowed at " + st.Overflowed.Format(time.RFC3339)
	case st.Full:
		ws.Why = fmt.Sprintf("the journal reached its bound of %d paths", watchJournalMax)
	case len(st.Unmarked) > 0:
		ws.Why = "some file systems are not marked"
	default:
		ws.Complete = true
	}
	return ws
}

// writeWatchStatus prints ws as agent status does.
func writeWatchStatus(w io.Writer, ws watchStatus) {
	if !ws.Ran {
		fmt.Fprintln(w, "watch: never ran")
		return
	}
	st := ws.Journal
	if st == nil {
		fmt.Fprintf(w, "watch: %s\n", ws.Why)
		return
	}
	running := "not running"
	if ws.Running {
		running = fmt.Sprintf("running (pid %d)", st.PID)
	}
	fmt.Fprintf(w, "watch: %s, started %s; marked: %s\n", running, st.Started.Local().Format(time.DateTime), strings.Join(st.Marked, " "))
	for _, u := range st.Unmarked {
		fmt.Fprintf(w, "watch: not marked: %s\n", u)
	}
	complete := "complete since " + st.Started.Local().Format(time.DateTime)
	if !ws.Complete {
		complete = "incomplete: " + ws.Why
	}
	fmt.Fprintf(w, "watch: %d events, %d queue overflows, journal of %d paths, %s (last written %s)\n",
		st.Events, st.Overflows, ws.Paths, complete, st.Updated.Local().Format(time.DateTime))
	switch {
	case ws.Incremental:
		fmt.Fprintf(w, "watch: check --incremental: possible, from the journal since %s\n", ws.IncrementalSince.Local().Format(time.DateTime))
	case ws.IncrementalWhy != "":
		fmt.Fprintf(w, "watch: check --incremental: a full check instead: %s\n", ws.IncrementalWhy)
	}
}

// startWatch runs agent watch as a child of the daemon when the watch
// option is yes, restarting it (after 1 s, doubling up to a minute) when
// it dies, until ctx ends. Its findings and messages go to the daemon's
// log. Where fanotify is unavailable (exit 3) it says so once and the
// scheduled scans go on without it. The returned channel closes when the
// child is gone.
func (d *daemon) startWatch(ctx context.Context, pol *rules.Policy) <-chan struct{} {
	done := make(chan struct{})
	if pol.Options.Watch != "yes" {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		delay := time.Second
		for ctx.Err() == nil {
			start := time.Now()
			cmd := exec.CommandContext(ctx, d.exe, append(d.baseArgs(), "watch")...)
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = jobGrace
			// A daemon killed outright must not leave a watcher holding
			// watch.lock against the next daemon's.
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
			var errText lineLog
			cmd.Stdout = &lineLog{log: func(l string) { d.log.Warn("watch: "+l, "job", "watch") }}
			errText.log = func(l string) { d.log.Info("watch: "+l, "job", "watch") }
			cmd.Stderr = &errText
			err := cmd.Run()
			var ee *exec.ExitError
			code := -1
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if ctx.Err() != nil {
				return
			}
			if code == exitWatchUnavailable {
				msg := "agent watch is unavailable here, scheduled scans go on without it: " + strings.TrimSpace(errText.all.String())
				d.log.Warn(msg)
				d.syslog(report.SeverityWarning, msg)
				return
			}
			d.log.Warn("agent watch stopped; restarting it", "err", err, "in", delay)
			d.syslog(report.SeverityWarning, fmt.Sprintf("agent watch stopped (%v); restarting it", err))
			if time.Since(start) > 10*time.Minute {
				delay = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Minute)
		}
	}()
	return done
}

// lineLog passes every complete line written to it to log, and keeps
// the first 4 KiB of text (for the message of a child that failed).
type lineLog struct {
	log     func(string)
	partial []byte
	all     strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	if l.all.Len() < 4096 {
		l.all.Write(p[:min(len(p), 4096)])
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := string(l.partial[:i]); line != "" {
			l.log(line)
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}
