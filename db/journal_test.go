package db

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"
)

func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watch.db")
	if _, err := ReadJournal(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadJournal of nothing: %v", err)
	}
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	st := JournalState{Started: t0, PID: 7, Marked: []string{"/"}}
	if err := j.Reset(st); err != nil {
		t.Fatal(err)
	}
	n, err := j.Record(map[string]time.Time{"/a": t0.Add(time.Second), "/b": t0.Add(3 * time.Second)}, nil, nil, &st, 3)
	if err != nil || n != 2 || st.Full {
		t.Fatalf("Record: %d, %v, full %v", n, err, st.Full)
	}
	// Over the bound: the journal says so and keeps what it had.
	n, err = j.Record(map[string]time.Time{"/c": t0.Add(4 * time.Second), "/d": t0.Add(4 * time.Second), "/a": t0.Add(5 * time.Second)}, nil, nil, &st, 3)
	if err != nil || n != 3 || !st.Full {
		t.Fatalf("Record over the bound: %d, %v, full %v", n, err, st.Full)
	}
	j.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal file mode: %v %v", fi.Mode(), err)
	}
	r, err := ReadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := r.State()
	if err != nil || n != 3 || !got.Full || got.PID != 7 || !got.Started.Equal(t0) {
		t.Fatalf("State: %+v %d %v", got, n, err)
	}
	var dirty []string
	if err := r.Dirty(t0.Add(2*time.Second), func(p string) { dirty = append(dirty, p) }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirty)
	if len(dirty) != 3 || dirty[0] != "/a" || dirty[1] != "/b" {
		t.Errorf("Dirty since +2s: %q", dirty)
	}
	r.Close()
	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Prune(t0.Add(4 * time.Second)); err != nil {
		t.Fatal(err)
	}
	dirty = nil
	j.Dirty(time.Time{}, func(p string) { dirty = append(dirty, p) })
	for _, p := range dirty {
		if p == "/b" {
			t.Errorf("Prune kept /b: %q", dirty)
		}
	}
	if !slices.Contains(dirty, "/a") {
		t.Errorf("Prune dropped /a: %q", dirty)
	}
	j.Close()
	// A symlink at the journal's name is never followed.
	link := filepath.Join(t.TempDir(), "watch.db")
	os.Symlink(path, link)
	if _, err := OpenJournal(link); err == nil {
		t.Error("OpenJournal followed a symlink")
	}
}

// TestJournalInodes: inodes are recorded, read back since a time, pruned,
// and found in a baseline without decoding it.
func TestJournalInodes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watch.db")
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	st := JournalState{Started: t0}
	if err := j.Reset(st); err != nil {
		t.Fatal(err)
	}
	a, b := Inode{Dev: 2049, Ino: 100003}, Inode{Dev: 2049, Ino: 7}
	if _, err := j.Record(nil, map[string]time.Time{"/t": t0.Add(5 * time.Second)}, map[Inode]time.Time{a: t0.Add(5 * time.Second), b: t0.Add(time.Second)}, &st, 10); err != nil {
		t.Fatal(err)
	}
	var got []Inode
	if err := j.DirtyInodes(t0.Add(2*time.Second), func(in Inode) { got = append(got, in) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != a {
		t.Errorf("DirtyInodes since +2s: %v", got)
	}
	var trees []string
	if err := j.DirtyTrees(t0.Add(2*time.Second), func(p string) { trees = append(trees, p) }); err != nil || len(trees) != 1 || trees[0] != "/t" {
		t.Errorf("DirtyTrees since +2s: %q %v", trees, err)
	}
	if err := j.Prune(t0.Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got = nil
	j.DirtyInodes(time.Time{}, func(in Inode) { got = append(got, in) })
	if len(got) != 1 || got[0] != a {
		t.Errorf("after Prune: %v", got)
	}
	j.Close()

	entries := testEntries(200)
	entries[10].Inode, entries[10].Dev = 555, 9
	entries[20].Inode, entries[20].Dev = 555, 9
	entries[30].Inode, entries[30].Dev = 555, 8 // another file system
	base, err := Open(writeBaseline(t, t.TempDir(), "baseline.db", entries))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	paths, err := base.PathsOfInodes(map[Inode]bool{{Dev: 9, Ino: 555}: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{entries[10].Path, entries[20].Path}; !slices.Equal(paths, want) {
		t.Errorf("PathsOfInodes = %q, want %q", paths, want)
	}
	for _, e := range entries {
		v := appendEntry(nil, dbKey(e.Path), e)
		if in, ok := peekInode(v); !ok || in != (Inode{Dev: e.Dev, Ino: e.Inode}) {
			t.Fatalf("peekInode(%s) = %v %v, want %d/%d", e.Path, in, ok, e.Dev, e.Inode)
		}
	}
}
