package db

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"opsagent/rules"
	"opsagent/scanner"
)

// Stat is the stat part of a baseline entry: what tells whether the file
// on disk is still the one recorded, without its digests, link target or
// extended attributes.
type Stat struct {
	Type         rules.FileType
	Problem      bool // the entry records a problem (Entry.Err is set)
	Mode         uint32
	Size         int64
	Inode, Dev   uint64
	Mtime, Ctime int64
}

// StatOf is the stat part of a decoded entry.
func StatOf(e *scanner.Entry) Stat {
	return Stat{Type: e.Type, Problem: e.Err != "", Mode: e.Mode, Size: e.Size,
		Inode: e.Inode, Dev: e.Dev, Mtime: e.Mtime, Ctime: e.Ctime}
}

// Lazy is a baseline entry whose checksum and stat part have been checked
// and read, and whose other fields are decoded on the first call of Entry.
// Reading a directory's worth of entries that way costs a fraction of
// decoding them: agent update --packages compares tens of thousands of
// them by inode and needs the whole entry of a few.
type Lazy struct {
	Stat
	Path     string
	db       string // the baseline file, for errors
	key, val []byte // private copies; nil once decoded
	e        *scanner.Entry
}

// LazyOf wraps an entry already decoded.
func LazyOf(e *scanner.Entry) *Lazy { return &Lazy{Stat: StatOf(e), Path: e.Path, e: e} }

// Entry decodes the whole entry (once).
func (l *Lazy) Entry() (*scanner.Entry, error) {
	if l.e != nil {
		return l.e, nil
	}
	e, err := parseEntry(l.key, l.val[:len(l.val)-crcSize])
	if err != nil {
		return nil, corrupt("read", l.db, "entry %q: %v", l.Path, err)
	}
	l.e, l.key, l.val = e, nil, nil
	return e, nil
}

// peekStat checks the checksum of an encoded entry and reads its stat
// part. Errors are plain, as decodeEntry's.
func peekStat(key, val []byte) (Stat, error) {
	var st Stat
	body, err := checkedBody(key, val)
	if err != nil {
		return st, err
	}
	r := reader{b: body[1:]}
	r.uvarint() // attributes
	st.Type = rules.FileType(r.byte())
	flags := r.uvarint()
	if r.err == nil && flags&^flagAll != 0 {
		return st, fmt.Errorf("unknown presence flags %#x", flags&^flagAll)
	}
	st.Problem = flags&flagErr != 0
	st.Mode = r.uint32()
	r.uint32() // uid
	r.uint32() // gid
	st.Size = r.varint()
	r.varint()  // blocks
	r.uvarint() // nlink
	st.Inode = r.uvarint()
	st.Dev = r.uvarint()
	r.uvarint() // rdev
	r.varint()  // atime
	st.Mtime = r.varint()
	st.Ctime = r.varint()
	return st, r.err
}

// stat is peekStat of an entry read by a cursor, naming the damage.
func (b *Baseline) stat(k, v []byte) (Stat, error) { return readNamed(b, k, v, peekStat) }

// lazyReader makes the Lazy entries of one read, copying keys and values
// out of the transaction into shared blocks and the entries into slabs:
// a directory's worth of entries costs a few allocations, not several
// each. Blocks and slabs start small and double up to their largest size,
// so that the many small directories of one update do not each take a
// large block (measured: 37 MB for 386 directories with fixed sizes).
type lazyReader struct {
	b     *Baseline
	bytes []byte
	slab  []Lazy
}

const (
	lazyBlockMin, lazyBlock = 2 << 10, 64 << 10
	lazySlabMin, lazySlab   = 8, 256
)

func (lr *lazyReader) read(k, v []byte) (*Lazy, error) {
	b := lr.b
	st, err := b.stat(k, v)
	if err != nil {
		return nil, err
	}
	n := len(k) + len(v)
	if n > cap(lr.bytes)-len(lr.bytes) {
		lr.bytes = make([]byte, 0, max(min(2*cap(lr.bytes), lazyBlock), lazyBlockMin, n))
	}
	off := len(lr.bytes)
	lr.bytes = append(append(lr.bytes, k...), v...)
	buf := lr.bytes[off : off+n : off+n]
	if len(lr.slab) == cap(lr.slab) {
		lr.slab = make([]Lazy, 0, max(min(2*cap(lr.slab), lazySlab), lazySlabMin))
	}
	lr.slab = append(lr.slab, Lazy{Stat: st, Path: keyPath(k), db: b.path, key: buf[:len(k):len(k)], val: buf[len(k):]})
	return &lr.slab[len(lr.slab)-1], nil
}

// DirStats calls fn, in key order, with the path and stat part of every
// directory of the baseline; nothing else is decoded. The directories are
// handed over in batches while the rest of the file is still being read
// (a read transaction on a goroutine of its own: fn never runs inside
// it), so fn may already have seen some of them when DirStats returns an
// error about a later entry. Errors are as for Dirs; an error of fn ends
// the read and is returned as it is.
func (b *Baseline) DirStats(fn func(path string, st Stat) error) error {
	type dir struct {
		path string
		st   Stat
	}
	const batchLen = 256
	batches := make(chan []dir, 8)
	stop := make(chan struct{})
	var readErr error
	go func() {
		defer close(batches)
		batch := make([]dir, 0, batchLen)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]dir, 0, batchLen)
				return true
			case <-stop:
				return false
			}
		}
		readErr = b.viewEntries(func(c *bolt.Cursor) error {
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if t, ok := peekType(v); ok && t != rules.TypeDir {
					continue
				}
				st, err := b.stat(k, v)
				if err != nil {
					return err
				}
				if st.Type != rules.TypeDir {
					continue
				}
				if batch = append(batch, dir{keyPath(k), st}); len(batch) == batchLen && !send() {
					return nil
				}
			}
			if len(batch) > 0 {
				send()
			}
			return nil
		})
	}()
	var fnErr error
	for batch := range batches {
		for _, d := range batch {
			if fnErr != nil {
				break
			}
			if fnErr = fn(d.path, d.st); fnErr != nil {
				close(stop)
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	return readErr
}

// LazyUnder is EachUnder with Lazy entries.
func (b *Baseline) LazyUnder(dir string, fn func(*Lazy) error) error {
	return under(b, dir, false, (&lazyReader{b: b}).read, fn)
}

// ChildStat is an entry directly in a directory of the baseline, as
// ChildStats reads it: its name there and its stat part.
type ChildStat struct {
	Name string
	Stat
}

// ChildStats returns the entries directly in the directory dir, in key
// order (bytewise by name), with nothing decoded but their stat parts
// (checksums checked), and the entries further below skipped unread: agent
// update --packages compares a changed directory's listing with them by
// inode, for tens of thousands of names of which it needs a few whole
// entries (Get). The names share one allocation. Errors are as for
// EachChild.
func (b *Baseline) ChildStats(dir string) ([]ChildStat, error) {
	prefix := len(dbKey(dir))
	if dir != "/" {
		prefix++ // the separator
	}
	var out []ChildStat
	err := b.viewEntries(func(c *bolt.Cursor) error {
		// Counted first, so that the names and stat parts each take one
		// allocation of their size (tens of thousands of entries grown
		// by append cost five times that).
		n, size := 0, 0
		if err := walkUnder(c, dir, true, func(k, _ []byte) error {
			n, size = n+1, size+len(k)-prefix
			return nil
		}); err != nil {
			return err
		}
		out = make([]ChildStat, 0, n)
		names := make([]byte, 0, size)
		ends := make([]int, 0, n)
		if err := walkUnder(c, dir, true, func(k, v []byte) error {
			st, err := b.stat(k, v)
			if err != nil {
				return err
			}
			names = append(names, k[prefix:]...)
			ends = append(ends, len(names))
			out = append(out, ChildStat{Stat: st})
			return nil
		}); err != nil {
			return err
		}
		all, start := string(names), 0
		for i, end := range ends {
			out[i].Name, start = all[start:end], end
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// under reads the entries below dir (see walkUnder) with read, in one
// transaction, then calls fn for each.
func under[T any](b *Baseline, dir string, childrenOnly bool, read func(k, v []byte) (T, error), fn func(T) error) error {
	var out []T
	err := b.viewEntries(func(c *bolt.Cursor) error {
		return walkUnder(c, dir, childrenOnly, func(k, v []byte) error {
			x, err := read(k, v)
			if err == nil {
				out = append(out, x)
			}
			return err
		})
	})
	return each(out, err, fn)
}

// walkUnder calls fn with the key and value of every entry strictly below
// dir, or directly in it when childrenOnly (the deeper ones are skipped
// with a seek, never read).
func walkUnder(c *bolt.Cursor, dir string, childrenOnly bool, fn func(k, v []byte) error) error {
	prefix := dbKey(dir)
	if dir != "/" {
		prefix = append(prefix, 0)
	}
	var skip []byte
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) == len(prefix) {
			continue // the root's own key when dir is "/"
		}
		if i := bytes.IndexByte(k[len(prefix):], 0); childrenOnly && i >= 0 {
			// A grandchild: jump past the child's subtree (its keys
			// continue with NUL, so the child's key with 0x01
			// follows them).
			skip = append(append(skip[:0], k[:len(prefix)+i]...), 1)
			if k, v = c.Seek(skip); k == nil || !bytes.HasPrefix(k, prefix) {
				break
			}
			if bytes.IndexByte(k[len(prefix):], 0) >= 0 {
				continue // cannot happen: a name holds no NUL
			}
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}
