package db

import (
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"opsagent/rules"
	"opsagent/scanner"
)

// TestLazy: the stat parts and lazily decoded entries are those the full
// decoding gives, for every kind of test entry (links, xattrs, problems).
func TestLazy(t *testing.T) {
	b, entries, wantDirs := openTestBaseline(t, 300)
	var dirs []string
	err := b.DirStats(func(p string, st Stat) error {
		dirs = append(dirs, p)
		e, err := b.Get(p)
		if err != nil {
			return err
		}
		if st != StatOf(e) {
			t.Errorf("DirStats(%s) = %+v, want %+v", p, st, StatOf(e))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dirs, wantDirs) {
		t.Errorf("DirStats gave %q, want %q", dirs, wantDirs)
	}
	// Many batches: every directory, in order.
	big, _, bigDirs := openTestBaseline(t, 20000)
	dirs = dirs[:0]
	if err := big.DirStats(func(p string, _ Stat) error { dirs = append(dirs, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(bigDirs) <= 256 || !reflect.DeepEqual(dirs, bigDirs) {
		t.Errorf("DirStats of %d directories gave %d", len(bigDirs), len(dirs))
	}
	// An error of fn ends the read (which runs on a goroutine of its
	// own) and comes back as it is.
	errStop := errors.New("stop")
	n := 0
	if err := b.DirStats(func(string, Stat) error {
		if n++; n == 2 {
			return errStop
		}
		return nil
	}); err != errStop || n != 2 {
		t.Errorf("DirStats with fn failing at the second: %v after %d calls, want errStop after 2", err, n)
	}
	for _, d := range []string{"/", "/usr/lib", "/usr/lib/pkg0003", "/none"} {
		var want []*scanner.Entry
		if err := b.EachUnder(d, func(e *scanner.Entry) error { want = append(want, e); return nil }); err != nil {
			t.Fatal(err)
		}
		var got []*Lazy
		if err := b.LazyUnder(d, func(l *Lazy) error { got = append(got, l); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d lazy entries, want %d", d, len(got), len(want))
		}
		for i, l := range got {
			if l.Path != want[i].Path || l.Stat != StatOf(want[i]) {
				t.Errorf("%s: lazy %s %+v, want %s %+v", d, l.Path, l.Stat, want[i].Path, StatOf(want[i]))
			}
			e, err := l.Entry()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, want[i]) {
				t.Errorf("%s: Entry() = %+v, want %+v", l.Path, e, want[i])
			}
			if again, _ := l.Entry(); again != e {
				t.Errorf("%s: a second Entry() decoded again", l.Path)
			}
		}

		// ChildStats: the names and stat parts of what EachChild gives.
		var wantKids []ChildStat
		if err := b.EachChild(d, func(e *scanner.Entry) error {
			wantKids = append(wantKids, ChildStat{Name: path.Base(e.Path), Stat: StatOf(e)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		kids, err := b.ChildStats(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(kids) != len(wantKids) || len(kids) == 0 && strings.HasPrefix(d, "/usr") {
			t.Fatalf("ChildStats(%s): %d entries, want %d", d, len(kids), len(wantKids))
		}
		for i := range kids {
			if kids[i] != wantKids[i] {
				t.Errorf("ChildStats(%s)[%d] = %+v, want %+v", d, i, kids[i], wantKids[i])
			}
		}
	}
	if l := LazyOf(entries[5]); l.Stat != StatOf(entries[5]) || l.Path != entries[5].Path {
		t.Errorf("LazyOf = %+v", l)
	} else if e, err := l.Entry(); err != nil || e != entries[5] {
		t.Errorf("LazyOf(e).Entry() = %v, %v", e, err)
	}
}

// TestLazyCorrupt: a damaged entry is reported, naming it, by the stat
// readers as by the decoders; a byte flipped past the stat part is caught
// by the checksum before Entry is ever called.
func TestLazyCorrupt(t *testing.T) {
	dir := t.TempDir()
	entries := testEntries(200)
	path := writeBaseline(t, dir, "baseline.db", entries)
	var victim, victimDir *scanner.Entry
	for _, e := range entries {
		if victim == nil && e.Type == rules.TypeFile && strings.HasPrefix(e.Path, "/usr/lib/pkg0002/") {
			victim = e
		}
		if victimDir == nil && e.Type == rules.TypeDir && e.Path == "/usr/lib/pkg0003" {
			victimDir = e
		}
	}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEntries)
		for _, e := range []*scanner.Entry{victim, victimDir} {
			v := append([]byte(nil), bk.Get(dbKey(e.Path))...)
			v[len(v)-crcSize-1] ^= 0x40 // the last byte before the checksum
			if err := bk.Put(dbKey(e.Path), v); err != nil {
				return err
			}
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check := func(what string, err error, p string) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want ErrCorrupt naming %s", what, err, p)
		}
	}
	check("DirStats", b.DirStats(func(string, Stat) error { return nil }), victimDir.Path)
	_, err = b.ChildStats("/usr/lib/pkg0002")
	check("ChildStats", err, victim.Path)
	_, err = b.GetAll([]string{"/usr/lib/pkg0001", victim.Path})
	check("GetAll", err, victim.Path)
	check("LazyUnder", b.LazyUnder("/usr", func(*Lazy) error { return nil }), victim.Path)
	if _, err := b.ChildStats("/usr/lib/pkg0001"); err != nil {
		t.Errorf("an undamaged directory: %v", err)
	}
	// The damaged entries below a directory's own are not read.
	if _, err := b.ChildStats("/usr"); err != nil {
		t.Errorf("ChildStats above the damage: %v", err)
	}
}
