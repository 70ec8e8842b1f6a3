package scanner

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// Sentinels for the per-entry problems the scanner detects itself. They are
// wrapped in an *fs.PathError (Op "hash") by HashFile, and their text ends
// Entry.Err of the entries they concern.
var (
	// ErrChanged: size, mtime or ctime moved while the file was read; the
	// digests were kept but may describe no version the file ever had.
	ErrChanged = errors.New("file changed while reading")
	// ErrReplaced: the file opened is not the file stat'ed (dev, inode or
	// type differ), so it was not hashed.
	ErrReplaced = errors.New("file replaced while scanning")
	// ErrNotRegular: HashFile was given something other than a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrNoPolicy: Scan was called with a nil policy.
	ErrNoPolicy = errors.New("scanner: nil policy")
)

// Child is a name in a directory listing, as SameChildren sees it.
type Child struct {
	Name string         // without the directory's path
	Type rules.FileType // from d_type; TypeUnknown when the file system does not say
	Ino  uint64         // d_ino; 0 when not known
}

// MaySkip says whether SameChildren may find c unchanged: not a
// directory, and with its type and inode in the listing.
func (c Child) MaySkip() bool {
	return c.Type != rules.TypeDir && c.Type != rules.TypeUnknown && c.Ino != 0
}

// Options tune a Scan. The zero value scans "/" with GOMAXPROCS workers.
type Options struct {
	// Workers is the number of hashing goroutines; 0 or less means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Root is AIDE's root_prefix: the tree on disk is Root+path, while
	// Entry.Path never includes it and always starts with "/". "" means "/".
	Root string
	// Limit is AIDE's --limit: entries for which it returns false are not
	// emitted. Directories are still walked (subject to the policy), since
	// something below them may be inside the limit. Nil means no limit.
	// It is called from the walker goroutine only.
	Limit func(path string) bool
	// Enter, when set, is asked about every directory the policy would
	// descend into, before the walker reads it: false means nothing below
	// it is wanted, so it is not read (its own entry is still emitted when
	// it is selected and inside Limit). agent update --packages uses it to
	// read only the directories a package run touched. Nil enters every
	// directory. It is called from the walker goroutine only, after Limit
	// for the same path.
	Enter func(dir string) bool
	// SameInode, when set, is asked by the walker about every entry other
	// than a directory it would emit, with the type and inode its
	// directory listing gives (d_type, d_ino), before any stat: true
	// means the caller's record of that inode stands as it is, and the
	// entry is neither stat'ed nor emitted. agent update --packages uses
	// it to skip the files a package run did not replace (dpkg and
	// triggers rename new files into place). It is called from the
	// walker goroutine only.
	SameInode func(path string, t rules.FileType, ino uint64) bool
	// SameChildren, when set, is called by the walker with every
	// directory it has read and that directory's listing (sorted bytewise
	// by name), before it looks at any of the entries. It sets same[i]
	// for the entries other than directories whose listing gives the type
	// and inode the caller's record of them holds: those are skipped as
	// SameInode skips them, but before any path is made, the policy or
	// Limit is asked, or SameInode is. same[i] is ignored where
	// Child.MaySkip is false: for a directory, and for an entry whose type
	// or inode the listing does not give.
	// The slices are valid during the call only. agent update --packages
	// uses it to pass over the tens of thousands of untouched names of a
	// changed directory at the cost of a comparison each. It is called
	// from the walker goroutine only.
	SameChildren func(dir string, children []Child, same []bool)
	// BaselineSize, when set, returns the size the baseline recorded for
	// path. For a regular file whose rule has growing and a hash, the scanner
	// then also records the digests of that many leading bytes
	// (Entry.Prefix), which lets Compare ignore appends as aide --check
	// does. It is called from several goroutines at once.
	BaselineSize func(path string) (size int64, ok bool)
	// Reuse, when set, is asked about every regular file after its lstat
	// (e holds the stat fields): true means the caller already has a
	// record of this file it trusts as it is (agent update --packages
	// keeps the baseline's entry of a file whose inode, size, mtime and
	// ctime did not move), so the file is not opened and e is emitted
	// with Reused set and nothing read. Called from the hashing workers,
	// concurrently.
	Reuse func(e *Entry) bool
	// Uncompress, when true, makes the scanner also record, for a regular
	// gzip file whose rule has compressed and a hash, the digests of its
	// decompressed content (Entry.Uncompressed), so that a log rotated and
	// compressed can be matched to its old entry (see Changes). aide does
	// this in check mode only; so does the agent (a second read of those
	// files only).
	Uncompress bool
	// Logger receives notices (vanished files, skipped /proc and /sys
	// mounts, pseudo file systems recorded by metadata only); nil discards
	// them.
	Logger *slog.Logger
	// Progress, when set, is called with running totals from the goroutine
	// that calls emit, at most about ten times a second.
	Progress func(Stats)

	// match replaces pol.Match in package tests (the seam that lets the
	// scanner be tested without a parsed policy).
	match func(path string, t rules.FileType) rules.Match
	// hook, when set, is called at named points of the pipeline so tests can
	// race the scanner deterministically ("lstat": before a worker stats an
	// entry; "open": before it opens a file; "read": after the first chunk
	// of a file was hashed; "statfs": before a worker asks which file
	// system holds an entry).
	hook func(point, path string)
	// window overrides the reorder window (tests).
	window int
}

// Stats are the totals of a Scan.
type Stats struct {
	Entries     int64 // entries emitted
	FilesHashed int64 // regular files read to the end for at least one digest
	BytesHashed int64 // bytes read while hashing
	Errors      int64 // emitted entries with Err set
	Vanished    int64 // paths listed by readdir that were gone before lstat (not entries, as in aide)
	// MetadataOnly counts the entries on pseudo file systems (proc, sysfs,
	// debugfs, cgroup...; see pseudoFS) whose rule asked for digests or
	// e2fsattrs: they are recorded from their stat and xattrs only, never
	// opened, and are not problems. One notice per file system goes to
	// Options.Logger.
	MetadataOnly int64
}

// defaultWindow bounds how far the walker may run ahead of emit: at most
// this many entries are queued, being hashed or waiting to be re-ordered,
// so memory stays flat whatever the size of the tree.
const defaultWindow = 4096

// maxQueue bounds the jobs queued for the workers. The walker runs ahead
// of them by up to this many jobs, so that directories it lists but
// mostly skips (update --packages keeps unreplaced files unread) overlap
// the hashing of the files before them instead of following it (measured:
// a tenth of an update --packages after an upgrade). Every queued job
// holds its directory open, so the queue also bounds the walker's
// descriptors: queueLen keeps it to a quarter of RLIMIT_NOFILE.
const maxQueue = 512

// queueLen is the capacity of the jobs queue.
func queueLen(workers, window int) int {
	n := min(maxQueue, window)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(4*n) {
		n = int(lim.Cur / 4)
	}
	return max(n, min(4*workers, window), 1)
}

// Scan walks the tree selected by pol and calls emit once per selected entry,
// in key order (see Key): depth-first pre-order with each directory's
// children sorted bytewise. emit is called sequentially from the calling
// goroutine, so it needs no locking; it may keep the *Entry.
//
// Per-entry problems never stop the walk: they are entries with Err set,
// counted in Stats.Errors. Scan returns a non-nil error only when the root
// cannot be stat'ed, when emit returns an error (returned as is), or when ctx
// is cancelled (ctx.Err()). Every goroutine Scan starts has exited when it
// returns.
func Scan(ctx context.Context, pol *rules.Policy, opts Options, emit func(*Entry) error) (Stats, error) {
	s, err := newScan(pol, opts)
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	window := defaultWindow
	if opts.window > 0 {
		window = opts.window
	}
	s.tokens = make(chan struct{}, window)
	s.jobs = make(chan job, queueLen(workers, window))
	results := make(chan result, 4*workers)

	var wg sync.WaitGroup
	var walkErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		// The walker closes jobs when it returns, which lets the hashers
		// drain and exit.
		walkErr = s.walk(ctx)
		if walkErr != nil {
			cancel()
		}
	}()
	var hashers sync.WaitGroup
	for range workers {
		hashers.Add(1)
		go func() {
			defer hashers.Done()
			w := newWorker(s)
			defer w.close()
			for j := range s.jobs {
				r := result{seq: j.seq, e: w.do(ctx, &j)}
				select {
				case results <- r:
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		// results closes once every hasher has exited, ending the loop below.
		defer wg.Done()
		hashers.Wait()
		close(results)
	}()

	st, emitErr := s.reorder(ctx, results, window, emit)
	cancel()
	// Drain so blocked senders see the closed channels; the hashers release
	// the directory handles of every job they take.
	for range results {
	}
	wg.Wait()
	st.FilesHashed = s.filesHashed.Load()
	st.BytesHashed = s.bytesHashed.Load()
	st.Vanished = s.vanished.Load()
	st.MetadataOnly = s.pseudo.Load()
	// The walker's own failure (a missing root) explains the cancellation
	// that followed; a context error from the walker is only an echo of
	// emit's error or of the caller's cancellation.
	if walkErr != nil && !errors.Is(walkErr, context.Canceled) && !errors.Is(walkErr, context.DeadlineExceeded) {
		return st, walkErr
	}
	return st, emitErr
}

// reorder receives results in completion order and calls emit in sequence
// order. ring holds the results that arrived early; the walker cannot issue
// sequence number n+window before n was emitted (tokens), so slots never
// collide.
func (s *scan) reorder(ctx context.Context, results <-chan result, window int, emit func(*Entry) error) (Stats, error) {
	var st Stats
	ring := make([]result, window)
	filled := make([]bool, window)
	var next uint64
	var last time.Time
	progress := s.opts.Progress
	for {
		var r result
		var ok bool
		select {
		case r, ok = <-results:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			return st, nil
		}
		i := r.seq % uint64(window)
		ring[i], filled[i] = r, true
		for {
			k := next % uint64(window)
			if !filled[k] {
				break
			}
			e := ring[k].e
			ring[k], filled[k] = result{}, false
			next++
			<-s.tokens // free the slot for the walker
			if e == nil {
				continue // vanished or deselected after a closer look
			}
			if err := ctx.Err(); err != nil {
				return st, err // nothing is emitted once the scan is cancelled
			}
			st.Entries++
			if e.Err != "" {
				st.Errors++
			}
			dropAbsent(e)
			if err := emit(e); err != nil {
				return st, err
			}
			if progress != nil && st.Entries%64 == 0 {
				if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
					last = now
					p := st
					p.FilesHashed = s.filesHashed.Load()
					p.BytesHashed = s.bytesHashed.Load()
					p.Vanished = s.vanished.Load()
					progress(p)
				}
			}
		}
	}
}

// scan is the state shared by the walker and the workers of one Scan.
type scan struct {
	pol    *rules.Policy
	opts   Options
	root   string // Root without a trailing slash; "" for "/"
	log    *slog.Logger
	match  func(path string, t rules.FileType) rules.Match
	jobs   chan job
	tokens chan struct{}
	seq    uint64 // next sequence number (walker only)

	// Reused by the walker for each SameChildren call.
	childBuf []Child
	sameBuf  []bool

	filesHashed, bytesHashed, vanished, pseudo atomic.Int64

	fsMu   sync.Mutex
	fsKind map[uint64]string // st_dev -> pseudo file system name, "" for others (see fsOf)
}

func newScan(pol *rules.Policy, opts Options) (*scan, error) {
	s := &scan{pol: pol, opts: opts, match: opts.match, log: opts.Logger}
	if s.match == nil {
		if pol == nil {
			return nil, ErrNoPolicy
		}
		s.match = pol.Match
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	root := opts.Root
	for len(root) > 0 && root[len(root)-1] == '/' {
		root = root[:len(root)-1]
	}
	s.root = root
	return s, nil
}

// diskPath is where path lives on disk.
func (s *scan) diskPath(path string) string {
	if s.root == "" {
		return path
	}
	if path == "/" {
		return s.root
	}
	return s.root + path
}

func (s *scan) hook(point, path string) {
	if s.opts.hook != nil {
		s.opts.hook(point, path)
	}
}

// result is one finished job; e is nil when the job produced no entry.
type result struct {
	seq uint64
	e   *Entry
}
