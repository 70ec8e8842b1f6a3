package db

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"opsagent/internal/atomicfile"
	"opsagent/scanner"
)

// A file named "*.db.tmp-*" (atomicfile.TempInfix) in the state directory
// is an unfinished generation.

// Chunking of Writer.Put. Measured with BenchmarkWriteChunk (100,000
// entries of ~170 bytes, Put plus the last flush, NoSync, 2 shared cores,
// -benchtime 10x -count 2): 1,000 entries per transaction ran at
// 0.75-0.94M entries/s, 10,000 at 0.86-1.08M/s, 100,000 (one transaction)
// at 0.35-0.37M/s, as bbolt then splits one huge node at commit. 10,000
// is as fast as the smaller chunks with a tenth of the transactions and
// bounds the buffer (~2 MiB). The byte cap keeps memory flat when entries
// carry large xattrs.
const (
	chunkEntries = 10_000
	chunkBytes   = 16 << 20
)

// lockTimeout bounds every wait for a bbolt file lock: "opening an already
// open Bolt database will cause it to hang" without one.
const lockTimeout = time.Second

// CommitOptions says how Commit and Install replace an existing file.
type CommitOptions struct {
	// KeepPrevious keeps the file being replaced as
	// baseline-YYYYMMDD-HHMMSS.db beside it (a hard link, so the old file
	// is never absent). The zero value replaces it without a trace, as
	// `check` does for last-check.db.
	KeepPrevious bool
	// Now names the kept file, formatted in Now's location. It is
	// required when KeepPrevious is set.
	Now time.Time
	// Sealed, when set, is called with the temporary file once it holds
	// the whole generation and is closed, before it is synced and
	// installed: what it reads there is what Commit installs. It runs on
	// Commit's goroutine. A descriptor it opens there may be read after
	// it returns, while Commit syncs and renames the file (the rename
	// does not change what it reads); it must not write.
	Sealed func(tmp string)
}

// Writer writes one baseline generation to a temporary file. It is not safe
// for concurrent use. Callers defer Abort, which removes the temporary file
// unless Commit installed it.
type Writer struct {
	tmp   string
	bdb   *bolt.DB
	meta  Meta
	last  []byte // key of the last Put
	n     uint64 // entries accepted
	buf   []byte // keys and values of the pending chunk
	spans []pair // offsets into buf
	chunk int    // entries per transaction: chunkEntries (benchmarks vary it)
	err   error  // first failure; the Writer is unusable after it
	done  bool   // committed or aborted
	// amend: a copy of a baseline being edited (Baseline.Amend): Put
	// takes any order and replaces, Delete removes, n counts the file's
	// entries.
	amend bool
	dels  [][]byte
}

// pair locates one buffered key and value in Writer.buf.
type pair struct {
	k0, k1, v1 int
	held       bool // Replace: the amended baseline holds the key
}

// Create starts a new generation as a temporary file
// dir/baseline.db.tmp-XXXXXX (mode 0600). dir must exist. meta is stored at
// Commit, with Format and Entries filled in.
func Create(dir string, meta Meta) (*Writer, error) {
	f, err := atomicfile.CreateTemp(dir, "baseline.db", fileMode)
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	// NoSync: the file is worthless until Commit, which fsyncs it once
	// before the rename; syncing every chunk would only slow the scan.
	bdb, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: lockTimeout, NoSync: true, NoGrowSync: true})
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		// Both buckets, but no meta keys yet: an interrupted file
		// has no format version and can never pass for a baseline.
		if _, err := tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketEntries)
		return err
	})
	if err != nil {
		bdb.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("create %s: %w", tmp, err)
	}
	return &Writer{tmp: tmp, bdb: bdb, meta: meta, chunk: chunkEntries}, nil
}

// Path returns the name of the temporary file.
func (w *Writer) Path() string { return w.tmp }

// Put adds e. Entries must arrive in strictly increasing key order (the
// scanner's emit order, see dbKey); an entry out of order or repeated is
// rejected with an error wrapping ErrOrder, which keeps every write a
// sorted append. Put keeps no reference to e. After any error the Writer
// is unusable and must be aborted.
func (w *Writer) Put(e *scanner.Entry) error { return w.put(e, false) }

// Replace is Put, in a generation started by Amend, of a path the amended
// baseline holds: the entry count stays, without the lookup Put makes to
// know it (agent update --packages replaces thousands of entries it has
// just read from that baseline). Replacing a path the baseline lacks
// leaves a wrong count, which Each then reports as corruption.
func (w *Writer) Replace(e *scanner.Entry) error {
	if !w.amend {
		return errors.New("db: replace on a writer not made by Amend")
	}
	return w.put(e, true)
}

func (w *Writer) put(e *scanner.Entry, held bool) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("db: put on a finished writer")
	}
	if err := checkKeyable(e.Path); err != nil {
		return &fs.PathError{Op: "put", Path: e.Path, Err: err}
	}
	// The buffer doubles (append grows a large one by a quarter, which
	// copies and allocates five times its size on the way).
	if cap(w.buf)-len(w.buf) < 4<<10 {
		w.buf = slices.Grow(w.buf, max(cap(w.buf), 64<<10))
	}
	k0 := len(w.buf)
	w.buf = appendKey(w.buf, e.Path)
	key := w.buf[k0:]
	if !w.amend && w.n > 0 && bytes.Compare(key, w.last) <= 0 {
		w.buf = w.buf[:k0]
		return &fs.PathError{Op: "put", Path: e.Path, Err: fmt.Errorf("%w: after %q", ErrOrder, keyPath(w.last))}
	}
	k1 := len(w.buf)
	w.buf = appendEntry(w.buf, w.buf[k0:k1], e)
	w.spans = append(w.spans, pair{k0, k1, len(w.buf), held})
	w.last = append(w.last[:0], w.buf[k0:k1]...)
	if !w.amend {
		w.n++
	}
	if len(w.spans) >= w.chunk || len(w.buf) >= chunkBytes {
		return w.flush()
	}
	return nil
}

// flush writes the pending chunk in one transaction.
func (w *Writer) flush() error {
	if w.amend {
		return w.flushAmend()
	}
	if len(w.spans) == 0 {
		return nil
	}
	err := w.bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		// Keys only ever grow, so fill pages completely instead of
		// bbolt's default half: smaller file, fewer pages to read.
		b.FillPercent = 1.0
		for _, p := range w.spans {
			if err := b.Put(w.buf[p.k0:p.k1], w.buf[p.k1:p.v1]); err != nil {
				return &fs.PathError{Op: "put", Path: keyPath(w.buf[p.k0:p.k1]), Err: err}
			}
		}
		return nil
	})
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.tmp, err)
		return w.err
	}
	// bbolt keeps the value slices until the commit; it is over.
	w.buf = w.buf[:0]
	w.spans = w.spans[:0]
	return nil
}

// Commit writes the remaining entries and the meta (Format =
// FormatVersion, Entries = the number of entries put), closes and fsyncs
// the file, and installs it at dst, which must be in the directory the
// Writer was created in. See Install for how dst is replaced. It returns
// the path of the kept previous generation, or "" if none was kept. On
// error the temporary file is left for Abort.
func (w *Writer) Commit(dst string, opts CommitOptions) (string, error) {
	if w.err != nil {
		return "", w.err
	}
	if w.done {
		return "", errors.New("db: commit on a finished writer")
	}
	if filepath.Dir(dst) != filepath.Dir(w.tmp) {
		return "", fmt.Errorf("commit %s: not in the directory of %s", dst, w.tmp)
	}
	if err := w.flush(); err != nil {
		return "", err
	}
	w.meta.Format = FormatVersion
	w.meta.Entries = w.n
	pairs := metaPairs(w.meta)
	// The meta goes in a transaction of its own, the last one: bbolt
	// keeps the previous root in its second meta page, and if a damaged
	// newest meta page makes bbolt fall back to it, that older tree has
	// no meta keys and reads as corrupt instead of as a shorter baseline.
	err := w.bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		for _, kv := range pairs {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return b.Put(metaKeyChecksum, metaChecksum(pairs))
	})
	if err == nil {
		err = w.bdb.Close()
	} else {
		w.bdb.Close()
	}
	if err == nil && opts.Sealed != nil {
		opts.Sealed(w.tmp)
	}
	if err == nil {
		err = atomicfile.SyncFile(w.tmp)
	}
	if err != nil {
		w.err = fmt.Errorf("commit %s: %w", w.tmp, err)
		return "", w.err
	}
	kept, err := install(w.tmp, dst, opts)
	if err != nil {
		w.err = err
		return "", err
	}
	w.done = true
	return kept, nil
}

// Abort discards the generation: it closes and removes the temporary file.
// It is a no-op after a successful Commit or a previous Abort, so callers
// can always defer it.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.bdb.Close() // may already be closed by a failed Commit
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Install copies the baseline at src to a temporary file beside dst, fsyncs
// it, checks the copy with Verify (a file that does not read back is never
// installed), and installs it at dst like Commit; src is left in place.
// `agent accept` uses it to turn last-check.db into the baseline.
//
// Installing never leaves dst missing or half-written: with KeepPrevious
// the old dst is first hard-linked (copied where links are not supported)
// to baseline-YYYYMMDD-HHMMSS.db, then the new file is renamed over dst and
// the directory is fsynced. It returns the kept path, or "".
func Install(src, dst string, opts CommitOptions) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := atomicfile.WriteTemp(filepath.Dir(dst), filepath.Base(dst), in, fileMode)
	if err != nil {
		return "", fmt.Errorf("install %s: %w", src, err)
	}
	if err := Verify(tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("install %s: %w", src, err)
	}
	kept, err := install(tmp, dst, opts)
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return kept, nil
}

// install renames the synced file tmp over dst, keeping the old dst first
// if asked, and fsyncs the directory. A dst that exists but is not a
// regular file (ErrUnusable) is never replaced: a symlink or a device there
// is something the admin must look at.
func install(tmp, dst string, opts CommitOptions) (string, error) {
	var kept string
	fi, err := os.Lstat(dst)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("install %s: %w", dst, err)
	case !fi.Mode().IsRegular():
		return "", unusable("install", dst, fi.Mode())
	case opts.KeepPrevious:
		if kept, err = keep(dst, opts.Now); err != nil {
			return "", fmt.Errorf("install %s: keep previous: %w", dst, err)
		}
	}
	// One directory fsync makes both the kept link and the rename durable.
	if err := atomicfile.Replace(tmp, dst); err != nil {
		return kept, fmt.Errorf("install %s: %w", dst, err)
	}
	return kept, nil
}

// keptLayout names kept generations: baseline-YYYYMMDD-HHMMSS.db.
const keptLayout = "20060102-150405"

// keep gives dst a second name baseline-<now>.db in its directory
// (baseline-<now>-N.db if that is taken) and returns it.
func keep(dst string, now time.Time) (string, error) {
	if now.IsZero() {
		return "", errors.New("CommitOptions.Now not set")
	}
	dir := filepath.Dir(dst)
	stamp := now.Format(keptLayout)
	for i := 1; i < 100; i++ {
		name := "baseline-" + stamp + ".db"
		if i > 1 {
			name = fmt.Sprintf("baseline-%s-%d.db", stamp, i)
		}
		path := filepath.Join(dir, name)
		err := os.Link(dst, path)
		if err == nil {
			return path, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links here (some FUSE and network file systems):
		// copy instead, through a synced temp file and a rename, so
		// the kept name is never half-written either.
		if _, serr := os.Lstat(path); serr == nil {
			continue
		}
		src, oerr := os.Open(dst)
		if oerr != nil {
			return "", oerr
		}
		tmp, cerr := atomicfile.WriteTemp(dir, name, src, fileMode)
		src.Close()
		if cerr != nil {
			return "", fmt.Errorf("%w (after link: %v)", cerr, err)
		}
		if rerr := atomicfile.Replace(tmp, path); rerr != nil {
			return "", rerr
		}
		return path, nil
	}
	return "", fmt.Errorf("no free name for baseline-%s.db", stamp)
}

// CleanTemp removes the temporary files ("*.db.tmp-*") that a killed
// Writer, Install or keep left in dir. Call it only while holding the
// directory lock, or it may delete a generation another process is still
// writing.
func CleanTemp(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range ents {
		name := de.Name()
		if !de.Type().IsRegular() || !isTempName(name) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// isTempName reports whether name is one of our temporary file names.
func isTempName(name string) bool {
	base, ok := atomicfile.TempBase(name)
	return ok && strings.HasSuffix(base, ".db")
}
