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
	n, err := j.Record(map[string]time.Time{"/a": t0.Add(time.Second), "/b": t0.Add(3 * time.Second)}, &st, 3)
	if err != nil || n != 2 || st.Full {
		t.Fatalf("Record: %d, %v, full %v", n, err, st.Full)
	}
	// Over the bound: the journal says so and keeps what it had.
	n, err = j.Record(map[string]time.Time{"/c": t0.Add(4 * time.Second), "/d": t0.Add(4 * time.Second), "/a": t0.Add(5 * time.Second)}, &st, 3)
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
