package db

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The dirty-path journal of agent watch: one bbolt file in the state
// directory with the paths events touched (path → unix nanoseconds of the
// last event) and the watcher's state. The watcher opens it for each
// flush and closes it again, so that check --incremental and status can
// read it while the watcher runs.
var (
	journalPaths  = []byte("dirty")
	journalTrees  = []byte("trees")
	journalInodes = []byte("inodes")
	journalMeta   = []byte("meta")
	journalState  = []byte("state")
)

// Inode names a file by device and inode number: a file with several hard
// links changed under one name changed under all of them.
type Inode struct{ Dev, Ino uint64 }

// JournalState is what the watcher says about its journal.
type JournalState struct {
	// Started is when the watcher that keeps the journal started: the
	// journal holds every event on the marked file systems since then,
	// unless Overflowed or Full is set.
	Started time.Time `json:"started"`
	PID     int       `json:"pid"`
	// Marked are the paths the watcher marked (one per file system),
	// Unmarked the ones it could not, with the reason.
	Marked   []string `json:"marked"`
	Unmarked []string `json:"unmarked,omitempty"`
	// Mounts fingerprints the mount table entries of the marked file
	// systems (id, device, mount point, options) when the watcher started.
	Mounts string `json:"mounts"`
	// Scan is the scan config digest (rules.Policy.ScanDigest, hex) the
	// watcher matches events with.
	Scan string `json:"scan,omitempty"`
	// Overflowed is when the kernel's queue first overflowed (zero:
	// never since Started); Full is set when the journal hit its bound.
	Overflowed time.Time `json:"overflowed,omitzero"`
	Full       bool      `json:"full,omitempty"`
	Events     uint64    `json:"events"`
	Overflows  uint64    `json:"overflows"`
	Updated    time.Time `json:"updated"`
	// Synced is when the watcher last answered a sync request (SIGUSR1
	// from check --incremental): every event the kernel had queued by
	// then is journaled.
	Synced time.Time `json:"synced,omitzero"`
}

// Journal is the open journal file.
type Journal struct {
	bdb  *bolt.DB
	path string
}

// OpenJournal opens (creating it 0600) the journal at path for writing.
func OpenJournal(path string) (*Journal, error) {
	bdb, err := bolt.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout, OpenFile: openNoFollow})
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j := &Journal{bdb: bdb, path: path}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{journalPaths, journalTrees, journalInodes, journalMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		bdb.Close()
		return nil, corrupt("open", path, "journal: %v", err)
	}
	return j, nil
}

// ReadJournal opens the journal at path read-only; the error wraps
// fs.ErrNotExist when there is none.
func ReadJournal(path string) (*Journal, error) {
	bdb, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true, Timeout: 5 * lockTimeout, OpenFile: openNoFollow})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{bdb: bdb, path: path}, nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.bdb.Close() }

// Reset empties the journal and sets its state: a watcher that starts
// has seen nothing before its start.
func (j *Journal) Reset(st JournalState) error {
	return j.bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{journalPaths, journalTrees, journalInodes} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return putState(tx, st)
	})
}

func putState(tx *bolt.Tx, st JournalState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(journalMeta).Put(journalState, b)
}

// Record adds the paths of a batch (path → time of its last event), the
// directories created, removed or moved in it (trees: everything below
// them is to be read again) and the inodes of the files with several links
// it touched, and stores st, in one transaction. Once the journal holds max
// paths (or trees, or inodes) it takes no more and st.Full is set: a
// journal that lost a path must not be trusted. It returns the number of
// paths the journal holds.
func (j *Journal) Record(paths, trees map[string]time.Time, inodes map[Inode]time.Time, st *JournalState, max int) (int, error) {
	var n int
	// bbolt keeps the key and value slices of a Put until the commit:
	// each gets its own.
	stamp := func(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }
	err := j.bdb.Update(func(tx *bolt.Tx) error {
		ib := tx.Bucket(journalInodes)
		if ib == nil {
			// A journal of an earlier version: Reset makes the bucket.
			var err error
			if ib, err = tx.CreateBucket(journalInodes); err != nil {
				return err
			}
		}
		ni := ib.Stats().KeyN
		for in, t := range inodes {
			k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(make([]byte, 0, 16), in.Dev), in.Ino)
			if ib.Get(k) == nil {
				if ni >= max {
					st.Full = true
					continue
				}
				ni++
			}
			if err := ib.Put(k, stamp(t)); err != nil {
				return err
			}
		}
		tb := tx.Bucket(journalTrees)
		if tb == nil {
			var err error
			if tb, err = tx.CreateBucket(journalTrees); err != nil {
				return err
			}
		}
		nt := tb.Stats().KeyN
		for p, t := range trees {
			if p == "" {
				continue
			}
			if tb.Get([]byte(p)) == nil {
				if nt >= max {
					st.Full = true
					continue
				}
				nt++
			}
			if err := tb.Put([]byte(p), stamp(t)); err != nil {
				return err
			}
		}
		b := tx.Bucket(journalPaths)
		n = b.Stats().KeyN
		for p, t := range paths {
			if p == "" {
				continue
			}
			if b.Get([]byte(p)) == nil {
				if n >= max {
					st.Full = true
					continue
				}
				n++
			}
			if err := b.Put([]byte(p), stamp(t)); err != nil {
				return err
			}
		}
		st.Updated = time.Now()
		return putState(tx, *st)
	})
	return n, err
}

// Prune drops the paths and inodes whose last event is before t (the
// creation of the current baseline: the baseline holds what they became).
func (j *Journal) Prune(t time.Time) error {
	return j.bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{journalPaths, journalTrees, journalInodes} {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			// Keys are collected first: a cursor's key is not to be
			// used once its entry is deleted.
			var old [][]byte
			c := b.Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < t.UnixNano() {
					old = append(old, append([]byte(nil), k...))
				}
			}
			for _, k := range old {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// State returns the watcher's state and the number of journaled paths.
func (j *Journal) State() (JournalState, int, error) {
	var st JournalState
	var n int
	err := j.bdb.View(func(tx *bolt.Tx) error {
		m, p := tx.Bucket(journalMeta), tx.Bucket(journalPaths)
		if m == nil || p == nil {
			return corrupt("read", j.path, "journal without its buckets")
		}
		n = p.Stats().KeyN
		raw := m.Get(journalState)
		if raw == nil {
			return corrupt("read", j.path, "journal without its state")
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return corrupt("read", j.path, "journal state: %v", err)
		}
		return nil
	})
	return st, n, err
}

// Dirty calls fn with every path whose last event is at or after since.
func (j *Journal) Dirty(since time.Time, fn func(path string)) error {
	return j.bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalPaths)
		if b == nil {
			return corrupt("read", j.path, "journal without its paths")
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return corrupt("read", j.path, "journal entry %q of %d bytes", k, len(v))
			}
			if int64(binary.BigEndian.Uint64(v)) >= since.UnixNano() {
				fn(string(k))
			}
			return nil
		})
	})
}

// DirtyTrees calls fn with every directory recorded as created, removed or
// moved at or after since.
func (j *Journal) DirtyTrees(since time.Time, fn func(path string)) error {
	return j.bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalTrees)
		if b == nil {
			return nil // a journal of an earlier version: none recorded
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return corrupt("read", j.path, "journal tree entry %q of %d bytes", k, len(v))
			}
			if int64(binary.BigEndian.Uint64(v)) >= since.UnixNano() {
				fn(string(k))
			}
			return nil
		})
	})
}

// DirtyInodes calls fn with every inode recorded at or after since.
func (j *Journal) DirtyInodes(since time.Time, fn func(Inode)) error {
	return j.bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalInodes)
		if b == nil {
			return nil // a journal of an earlier version: none recorded
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 16 || len(v) != 8 {
				return corrupt("read", j.path, "journal inode entry of %d+%d bytes", len(k), len(v))
			}
			if int64(binary.BigEndian.Uint64(v)) >= since.UnixNano() {
				fn(Inode{Dev: binary.BigEndian.Uint64(k[:8]), Ino: binary.BigEndian.Uint64(k[8:])})
			}
			return nil
		})
	})
}

// openNoFollow is bbolt's OpenFile that never follows a symlink planted
// at the journal's name.
func openNoFollow(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
}
