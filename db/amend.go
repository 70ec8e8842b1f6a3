package db

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"

	"opsagent/internal/atomicfile"
	"opsagent/rules"
	"opsagent/scanner"
)

// Dirs calls fn, in key order, for every directory entry of the baseline.
// Only directories are decoded (the type sits at a fixed place in every
// value), so it costs a fraction of Each; the entries are fresh copies fn
// may keep. Errors are as for Each, except that the count is not checked.
func (b *Baseline) Dirs(fn func(*scanner.Entry) error) error {
	var dirs []*scanner.Entry
	err := b.viewEntries(func(c *bolt.Cursor) error {
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if t, ok := peekType(v); ok && t != rules.TypeDir {
				continue
			}
			e, err := b.decode(k, v)
			if err != nil {
				return err
			}
			if e.Type == rules.TypeDir {
				dirs = append(dirs, e)
			}
		}
		return nil
	})
	return each(dirs, err, fn)
}

// viewEntries runs fn on a cursor of the entries bucket in one read
// transaction, inside the recover boundary.
func (b *Baseline) viewEntries(fn func(*bolt.Cursor) error) error {
	return guard("read", b.path, func() error {
		return b.bdb.View(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketEntries)
			if bk == nil {
				return corrupt("read", b.path, "bucket %q missing", bucketEntries)
			}
			return fn(bk.Cursor())
		})
	})
}

// decode decodes one entry read by a cursor, naming the damage.
func (b *Baseline) decode(k, v []byte) (*scanner.Entry, error) {
	return readNamed(b, k, v, decodeEntry)
}

// readNamed applies read (decodeEntry, peekStat) to one entry read by a
// cursor, naming the damage.
func readNamed[T any](b *Baseline, k, v []byte, read func(k, v []byte) (T, error)) (T, error) {
	var zero T
	if v == nil {
		return zero, corrupt("read", b.path, "entry %q is a bucket", keyPath(k))
	}
	x, err := read(k, v)
	if err != nil {
		return zero, corrupt("read", b.path, "entry %q: %v", keyPath(k), err)
	}
	return x, nil
}

// each calls fn for the entries read, once the read succeeded.
func each[T any](entries []T, err error, fn func(T) error) error {
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// peekType reads the file type of an encoded entry without decoding (or
// checking) the rest: version byte, uvarint attributes, type byte. ok is
// false when the value is too short to say; the caller then decodes it,
// which reports the damage.
func peekType(v []byte) (rules.FileType, bool) {
	if len(v) < 3 || v[0] != entryVersion {
		return 0, false
	}
	i := 1
	for i < len(v) && v[i]&0x80 != 0 {
		i++
	}
	i++
	if i >= len(v) {
		return 0, false
	}
	return rules.FileType(v[i]), true
}

// PathsOfInodes returns the baseline's paths of the files in set, in key
// order. The device and inode sit among the first fields of every entry, so
// nothing else is decoded (or checked): check --incremental finds with it
// the other names of a file with several hard links that changed under one.
func (b *Baseline) PathsOfInodes(set map[Inode]bool) ([]string, error) {
	var out []string
	err := b.viewEntries(func(c *bolt.Cursor) error {
		for k, v := c.First(); k != nil; k, v = c.Next() {
			in, ok := peekInode(v)
			if !ok {
				// Too damaged to say: decoding it names the damage.
				if _, err := b.decode(k, v); err != nil {
					return err
				}
				continue
			}
			if set[in] {
				out = append(out, keyPath(k))
			}
		}
		return nil
	})
	return out, err
}

// peekInode reads the device and inode of an encoded entry (see the
// encoding in encode.go) without decoding the rest.
func peekInode(v []byte) (Inode, bool) {
	if len(v) < 3 || v[0] != entryVersion {
		return Inode{}, false
	}
	i := 1
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(v[i:])
		if n <= 0 {
			return 0, false
		}
		i += n
		return x, true
	}
	if _, ok := next(); !ok { // attrs
		return Inode{}, false
	}
	if i >= len(v) {
		return Inode{}, false
	}
	i++ // type
	// flags, mode, uid, gid, size, blocks (zig-zag varints read as
	// uvarints: only their length matters here), nlink
	for range 7 {
		if _, ok := next(); !ok {
			return Inode{}, false
		}
	}
	ino, ok := next()
	if !ok {
		return Inode{}, false
	}
	dev, ok := next()
	if !ok {
		return Inode{}, false
	}
	return Inode{Dev: dev, Ino: ino}, true
}

// EachUnder calls fn, in key order, for every entry strictly below the
// directory dir ("/" for all but the root). Errors are as for Each; the
// count is not checked.
func (b *Baseline) EachUnder(dir string, fn func(*scanner.Entry) error) error {
	return under(b, dir, false, b.decode, fn)
}

// EachChild calls fn, in key order, for every entry directly in the
// directory dir; the entries further below are skipped undecoded.
func (b *Baseline) EachChild(dir string, fn func(*scanner.Entry) error) error {
	return under(b, dir, true, b.decode, fn)
}

// Amend starts a new generation in dir as a copy of b, to be edited with
// Put (any order; an existing path is replaced) and Delete, then
// installed with Commit like any other Writer. It costs a file copy and the
// edits instead of a rewrite of every entry: agent update --packages
// changes a few hundred entries of a baseline of hundreds of thousands.
func (b *Baseline) Amend(dir string, meta Meta) (*Writer, error) {
	in, err := os.Open(b.path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := atomicfile.CreateTemp(dir, "baseline.db", fileMode)
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	// ReadFrom copies in the kernel (copy_file_range) where it can; the
	// one fsync is Commit's. The copy's writeback starts now, so that
	// Commit waits for the pages the edits touch rather than the whole
	// file.
	_, err = f.ReadFrom(in)
	if err == nil {
		atomicfile.StartWriteback(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("amend %s: copy: %w", b.path, err)
	}
	bdb, err := bolt.Open(tmp, fileMode, &bolt.Options{Timeout: lockTimeout, NoSync: true, NoGrowSync: true})
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("amend %s: %w", tmp, err)
	}
	return &Writer{tmp: tmp, bdb: bdb, meta: meta, chunk: chunkEntries, amend: true, n: b.meta.Entries}, nil
}

// Delete removes path from a generation started by Amend; a path it does
// not hold is no error. After any error the Writer is unusable.
func (w *Writer) Delete(path string) error {
	if w.err != nil {
		return w.err
	}
	if !w.amend {
		return errors.New("db: delete on a writer not made by Amend")
	}
	if err := checkKeyable(path); err != nil {
		return &fs.PathError{Op: "delete", Path: path, Err: err}
	}
	w.dels = append(w.dels, dbKey(path))
	if len(w.dels) >= w.chunk {
		return w.flush()
	}
	return nil
}

// flushAmend applies the pending puts and deletes of an amended
// generation in one transaction, keeping the entry count right.
func (w *Writer) flushAmend() error {
	if len(w.spans) == 0 && len(w.dels) == 0 {
		return nil
	}
	err := w.bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries)
		if b == nil {
			return fmt.Errorf("bucket %q missing", bucketEntries)
		}
		for _, p := range w.spans {
			k := w.buf[p.k0:p.k1]
			if !p.held && b.Get(k) == nil {
				w.n++
			}
			if err := b.Put(k, w.buf[p.k1:p.v1]); err != nil {
				return &fs.PathError{Op: "put", Path: keyPath(k), Err: err}
			}
		}
		for _, k := range w.dels {
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return &fs.PathError{Op: "delete", Path: keyPath(k), Err: err}
			}
			w.n--
		}
		return nil
	})
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.tmp, err)
		return w.err
	}
	w.buf = w.buf[:0]
	w.spans = w.spans[:0]
	w.dels = w.dels[:0]
	return nil
}
