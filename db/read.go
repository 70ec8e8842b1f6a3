package db

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sys/unix"

	"opsagent/scanner"
)

// batchEntries is how many entries Each and Join decode per read
// transaction. Callbacks run between transactions, outside the recover
// boundary, on entries already copied out of the memory map; memory stays
// at one batch per cursor however large the file.
const batchEntries = 1024

// Baseline is an open, read-only baseline generation. Its methods may be
// called from several goroutines at once.
type Baseline struct {
	path string
	bdb  *bolt.DB
	meta Meta
}

// Open opens the baseline at path read-only. It fails with an error
// wrapping ErrVersion if the file has a format this agent does not know,
// ErrLocked if another process holds an exclusive lock on it for more than a
// second, and ErrCorrupt if it is not a complete baseline: empty, truncated,
// not a bbolt file, damaged bbolt structures, missing buckets or meta keys,
// or a meta checksum mismatch. Open never panics on any file content.
//
// Open checks the page structure of the entries tree (one header read per
// page, no entry data) but not the entries themselves: those are checked
// as they are read (CRC-32C each, strictly increasing keys, and at the end
// of Each and Join the count in the meta), which costs no extra pass over
// the file. Verify runs bbolt's full consistency check as well.
func Open(path string) (*Baseline, error) { return open(path, false) }

// CheckRegular returns nil if nothing is at path or a regular file is, and
// an error wrapping ErrUnusable if something else is (a symlink, dangling
// or not, a directory, a FIFO, a device, a socket). Commands call it before
// any work, so that they refuse such a baseline at once.
func CheckRegular(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return unusable("open", path, fi.Mode())
	}
	return nil
}

func open(path string, preloadFreelist bool) (*Baseline, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, unusable("open", path, fi.Mode())
	}
	if fi.Size() == 0 {
		return nil, corrupt("open", path, "empty file")
	}
	var bdb *bolt.DB
	err = guard("open", path, func() error {
		var err error
		bdb, err = bolt.Open(path, fileMode, &bolt.Options{
			Timeout:         lockTimeout,
			ReadOnly:        true,
			PreLoadFreelist: preloadFreelist,
		})
		return err
	})
	if err != nil {
		return nil, openError(path, err)
	}
	b := &Baseline{path: path, bdb: bdb}
	err = guard("open", path, func() error {
		return bdb.View(func(tx *bolt.Tx) error { return b.load(tx, fi.Size()) })
	})
	if err != nil {
		bdb.Close()
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion) {
			return nil, err
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return b, nil
}

// openError classifies an error of bolt.Open.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return &fs.PathError{Op: "open", Path: path, Err: ErrLocked}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return corrupt("open", path, "%v", err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err // an I/O error of the file itself
	}
	// bbolt reports a file too short for its meta pages and similar
	// damage with unexported errors.
	return corrupt("open", path, "%v", err)
}

// load checks the structure of an opened file and reads its meta.
func (b *Baseline) load(tx *bolt.Tx, fileSize int64) error {
	pageSize := b.bdb.Info().PageSize
	if pageSize <= 0 {
		return corrupt("open", b.path, "page size %d", pageSize)
	}
	// tx.Size is the high-water mark of the pages the meta page claims;
	// a file shorter than that was truncated, and reading the missing
	// pages would fault.
	if tx.Size() > fileSize {
		return corrupt("open", b.path, "file has %d bytes, its meta claims %d (truncated)", fileSize, tx.Size())
	}
	highWater := uint64(tx.Size() / int64(pageSize))
	// The top level must hold exactly our two buckets.
	var names [][]byte
	c := tx.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil || len(names) == 2 {
			return corrupt("open", b.path, "not a baseline: unexpected top-level key %q", k)
		}
		names = append(names, bytes.Clone(k))
	}
	if len(names) != 2 || !bytes.Equal(names[0], bucketEntries) || !bytes.Equal(names[1], bucketMeta) {
		return corrupt("open", b.path, "not a baseline: top-level buckets %q, want %q and %q", names, bucketEntries, bucketMeta)
	}
	meta := tx.Bucket(bucketMeta)
	entries := tx.Bucket(bucketEntries)
	f, err := os.Open(b.path)
	if err != nil {
		return err
	}
	defer f.Close()
	// The page headers are read from a map of the file of its own (one
	// pread per page took most of an open): a file shorter than tx.Size
	// was refused above, and a fault on one truncated meanwhile is a panic
	// that guard recovers.
	if tx.Size() < int64(pageSize) || tx.Size() > math.MaxInt {
		return corrupt("open", b.path, "meta claims %d bytes", tx.Size())
	}
	pages, err := unix.Mmap(int(f.Fd()), 0, int(tx.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return &fs.PathError{Op: "mmap", Path: b.path, Err: err}
	}
	defer unix.Munmap(pages)
	seen := make([]bool, highWater)
	for _, root := range []uint64{uint64(c.Bucket().Root()), uint64(meta.Root()), uint64(entries.Root())} {
		if err := checkTree(bytes.NewReader(pages), pageSize, highWater, root, seen); err != nil {
			return corrupt("open", b.path, "%v", err)
		}
	}
	m, err := decodeMeta(meta.Get)
	if errors.Is(err, ErrVersion) {
		return &fs.PathError{Op: "open", Path: b.path, Err: err}
	}
	if err != nil {
		return corrupt("open", b.path, "%v", err)
	}
	b.meta = m
	return nil
}

// Path returns the file name the baseline was opened with.
func (b *Baseline) Path() string { return b.path }

// Meta returns the baseline's meta data.
func (b *Baseline) Meta() Meta { return b.meta }

// Close closes the file. The Baseline must not be used afterwards.
func (b *Baseline) Close() error { return b.bdb.Close() }

// Get returns the entry of path, or an error wrapping ErrNotFound if the
// baseline has none, or ErrCorrupt if it does not decode. Get checks only
// that entry: a damaged branch page can make it miss a present entry,
// which Each and Join (and Verify) would report as corruption.
func (b *Baseline) Get(path string) (*scanner.Entry, error) {
	if err := checkKeyable(path); err != nil {
		return nil, &fs.PathError{Op: "get", Path: path, Err: ErrNotFound}
	}
	key := dbKey(path)
	var e *scanner.Entry
	err := guard("get", b.path, func() error {
		return b.bdb.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketEntries)
			if bk == nil {
				return corrupt("get", b.path, "bucket %q missing", bucketEntries)
			}
			k, v := bk.Cursor().Seek(key)
			if k == nil || !bytes.Equal(k, key) {
				return &fs.PathError{Op: "get", Path: path, Err: ErrNotFound}
			}
			if v == nil {
				return corrupt("get", b.path, "entry %q is a bucket", path)
			}
			var err error
			if e, err = decodeEntry(k, v); err != nil {
				return corrupt("get", b.path, "entry %q: %v", path, err)
			}
			return nil
		})
	})
	return e, err
}

// GetAll is Get for many paths in one read transaction (not one each):
// out[i] is the entry of paths[i], nil where the baseline has none. The
// first damaged entry ends the read with ErrCorrupt.
func (b *Baseline) GetAll(paths []string) ([]*scanner.Entry, error) {
	out := make([]*scanner.Entry, len(paths))
	if len(paths) == 0 {
		return out, nil
	}
	err := b.viewEntries(func(c *bolt.Cursor) error {
		var key, at, atV []byte // at: the key the cursor is on, nil before the first
		for i, p := range paths {
			if checkKeyable(p) != nil {
				continue
			}
			key = appendKey(key[:0], p)
			k, v := seekFrom(c, key, at, atV)
			at, atV = k, v
			if k == nil || !bytes.Equal(k, key) {
				continue
			}
			e, err := b.decode(k, v)
			if err != nil {
				return err
			}
			out[i] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// seekFrom is c.Seek(key) for a cursor on the key at, whose value is atV
// (at nil: on none): paths asked in key order, as a scan emits them, are
// often at or a few keys after the one before, which stepping reaches
// without a search from the root.
func seekFrom(c *bolt.Cursor, key, at, atV []byte) ([]byte, []byte) {
	if at == nil {
		return c.Seek(key)
	}
	switch cmp := bytes.Compare(key, at); {
	case cmp == 0:
		return at, atV
	case cmp < 0:
		return c.Seek(key)
	}
	for range 4 {
		k, v := c.Next()
		if k == nil || bytes.Compare(k, key) >= 0 {
			return k, v
		}
	}
	return c.Seek(key)
}

// Each calls fn for every entry in key order (the scanner's emit order).
// The entries are fresh copies fn may keep. Each stops at the first error
// and returns it: fn's error unchanged, or an error wrapping ErrCorrupt
// naming the damaged entry. Reaching the end with a different number of
// entries than the meta records is also ErrCorrupt.
func (b *Baseline) Each(fn func(*scanner.Entry) error) error {
	c := b.cursor()
	for {
		e, err := c.next()
		if err != nil || e == nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Join walks old and cur together in key order and calls fn once per path
// present in either, with nil for the side that lacks it: fn(nil, cur) is
// an added path, fn(old, nil) a removed one. Memory stays at one batch per
// side however large the files. Errors are as for Each.
func Join(old, cur *Baseline, fn func(old, cur *scanner.Entry) error) error {
	oc, cc := old.cursor(), cur.cursor()
	o, err := oc.next()
	if err != nil {
		return err
	}
	c, err := cc.next()
	if err != nil {
		return err
	}
	for o != nil || c != nil {
		var cmp int
		switch {
		case o == nil:
			cmp = 1
		case c == nil:
			cmp = -1
		default:
			cmp = bytes.Compare(oc.key(), cc.key())
		}
		switch {
		case cmp < 0:
			err = fn(o, nil)
		case cmp > 0:
			err = fn(nil, c)
		default:
			err = fn(o, c)
		}
		if err != nil {
			return err
		}
		if cmp <= 0 {
			if o, err = oc.next(); err != nil {
				return err
			}
		}
		if cmp >= 0 {
			if c, err = cc.next(); err != nil {
				return err
			}
		}
	}
	return nil
}

// cursor reads a baseline's entries in key order, one batch per read
// transaction, checking as it goes that keys strictly increase, every
// entry decodes, and the total matches the meta.
type cursor struct {
	b       *Baseline
	batch   []item
	pos     int
	last    []byte // key of the last decoded entry
	n       uint64 // entries decoded so far
	started bool
	done    bool // no more entries in the file
}

type item struct {
	key []byte
	e   *scanner.Entry
}

func (b *Baseline) cursor() *cursor { return &cursor{b: b} }

// key returns the key of the entry last returned by next.
func (c *cursor) key() []byte { return c.batch[c.pos-1].key }

// next returns the next entry, or nil at the end.
func (c *cursor) next() (*scanner.Entry, error) {
	if c.pos == len(c.batch) {
		if c.done {
			return nil, nil
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
		if len(c.batch) == 0 {
			return nil, nil
		}
	}
	c.pos++
	return c.batch[c.pos-1].e, nil
}

// fill decodes the next batch in one read transaction.
func (c *cursor) fill() error {
	c.batch, c.pos = c.batch[:0], 0
	b := c.b
	err := guard("read", b.path, func() error {
		return b.bdb.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketEntries)
			if bk == nil {
				return corrupt("read", b.path, "bucket %q missing", bucketEntries)
			}
			cur := bk.Cursor()
			var k, v []byte
			if !c.started {
				k, v = cur.First()
				c.started = true
			} else {
				k, v = cur.Seek(c.last)
				if k != nil && bytes.Equal(k, c.last) {
					k, v = cur.Next()
				}
			}
			for ; k != nil; k, v = cur.Next() {
				if len(c.batch) == batchEntries {
					return nil
				}
				if c.n > 0 && bytes.Compare(k, c.last) <= 0 {
					return corrupt("read", b.path, "key %q after %q: out of order", keyPath(k), keyPath(c.last))
				}
				if v == nil {
					return corrupt("read", b.path, "entry %q is a bucket", keyPath(k))
				}
				e, err := decodeEntry(k, v)
				if err != nil {
					return corrupt("read", b.path, "entry %q: %v", keyPath(k), err)
				}
				key := bytes.Clone(k)
				c.batch = append(c.batch, item{key, e})
				c.last = key
				c.n++
			}
			c.done = true
			return nil
		})
	})
	if err != nil {
		c.batch, c.done = c.batch[:0], true
		return err
	}
	if c.done && c.n != b.meta.Entries {
		return corrupt("read", b.path, "%d entries, meta records %d", c.n, b.meta.Entries)
	}
	return nil
}

// Verify runs every check there is on the baseline at path: Open's, a
// decode of every entry with the count, and bbolt's own consistency check
// (tx.Check: page reachability, free list, key order in every page), which
// costs a further full pass. It returns nil or the first problem, wrapping
// ErrCorrupt or ErrVersion as Open does.
func Verify(path string) error {
	// The free list is needed by tx.Check; loading it also checks it.
	b, err := open(path, true)
	if err != nil {
		return err
	}
	defer b.Close()
	// Decode first: tx.Check follows a flipped bucket flag on an entry
	// into pages checkTree never saw, and Each reports that flag first.
	if err := b.Each(func(*scanner.Entry) error { return nil }); err != nil {
		return err
	}
	return guard("verify", path, func() error {
		return b.bdb.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				if len(errs) < 10 {
					errs = append(errs, err)
				}
			}
			if len(errs) > 0 {
				return corrupt("verify", path, "%v", errors.Join(errs...))
			}
			return nil
		})
	})
}

// String describes m for logs and errors.
func (m Meta) String() string {
	return fmt.Sprintf("format %d, %s on %s by agent %s at %s, %d entries",
		m.Format, m.Kind, m.Host, m.AgentVersion, m.Created.Format("2006-01-02T15:04:05Z07:00"), m.Entries)
}
