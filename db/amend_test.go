package db

import (
	"bytes"
	"path"
	"slices"
	"strings"
	"testing"

	"opsagent/rules"
	"opsagent/scanner"
)

func TestAmend(t *testing.T) {
	dir := t.TempDir()
	entries := testEntries(500)
	src := writeBaseline(t, dir, "baseline.db", entries)
	b, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Replace two entries (one with Put, one with Replace), add two (out
	// of order), delete two and one that is not there.
	changed := *entries[10]
	changed.Size++
	replaced := *entries[40]
	replaced.Size++
	added := []*scanner.Entry{
		{Path: "/zzz", Type: rules.TypeFile, Attrs: normal, Mode: 0o100644},
		{Path: "/aaa", Type: rules.TypeDir, Attrs: normal, Mode: 0o40755},
	}
	gone := []string{entries[20].Path, entries[30].Path, "/not/there"}
	m := testMeta()
	m.Kind = "update"
	w, err := b.Amend(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, e := range append([]*scanner.Entry{&changed}, added...) {
		if err := w.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Replace(&replaced); err != nil {
		t.Fatal(err)
	}
	for _, p := range gone {
		if err := w.Delete(p); err != nil {
			t.Fatal(err)
		}
	}
	dst := path.Join(dir, "amended.db")
	if _, err := w.Commit(dst, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Verify(dst); err != nil {
		t.Fatalf("Verify(amended) = %v", err)
	}
	var want []*scanner.Entry
	for _, e := range entries {
		switch {
		case e.Path == changed.Path:
			want = append(want, &changed)
		case e.Path == replaced.Path:
			want = append(want, &replaced)
		case slices.Contains(gone, e.Path):
		default:
			want = append(want, e)
		}
	}
	want = append(want, added...)
	slices.SortFunc(want, func(a, b *scanner.Entry) int { return bytes.Compare(dbKey(a.Path), dbKey(b.Path)) })
	meta, got, err := readAll(dst)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Entries != uint64(len(want)) || meta.Kind != "update" {
		t.Errorf("meta = %d entries, kind %q; want %d, update", meta.Entries, meta.Kind, len(want))
	}
	if err := sameEntries(got, want); err != nil {
		t.Error(err)
	}
	// The source is untouched.
	if _, got, err := readAll(src); err != nil || sameEntries(got, entries) != nil {
		t.Errorf("source changed: %v", err)
	}
}

func TestDeleteNeedsAmend(t *testing.T) {
	w, err := Create(t.TempDir(), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Delete("/x"); err == nil {
		t.Error("Delete on a plain writer succeeded")
	}
	if err := w.Replace(&scanner.Entry{Path: "/x", Type: rules.TypeFile}); err == nil {
		t.Error("Replace on a plain writer succeeded")
	}
}

// openTestBaseline writes n test entries to a baseline and opens it
// (closed at the end of the test); it returns the directories' paths too.
func openTestBaseline(t *testing.T, n int) (*Baseline, []*scanner.Entry, []string) {
	t.Helper()
	entries := testEntries(n)
	b, err := Open(writeBaseline(t, t.TempDir(), "baseline.db", entries))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	var dirs []string
	for _, e := range entries {
		if e.Type == rules.TypeDir {
			dirs = append(dirs, e.Path)
		}
	}
	return b, entries, dirs
}

func TestDirsAndEachUnder(t *testing.T) {
	b, entries, wantDirs := openTestBaseline(t, 300)
	var dirs []string
	if err := b.Dirs(func(e *scanner.Entry) error { dirs = append(dirs, e.Path); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dirs, wantDirs) {
		t.Errorf("Dirs = %q, want %q", dirs, wantDirs)
	}
	for _, d := range []string{"/", "/usr/lib", "/usr/lib/pkg0003", "/usr/lib/pkg0003/file-00121.so", "/none"} {
		var got, want []string
		for _, e := range entries {
			if e.Path != d && strings.HasPrefix(e.Path, strings.TrimSuffix(d, "/")+"/") {
				want = append(want, e.Path)
			}
		}
		if err := b.EachUnder(d, func(e *scanner.Entry) error { got = append(got, e.Path); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("EachUnder(%s) = %d entries, want %d", d, len(got), len(want))
		}
		got, want = nil, slices.DeleteFunc(want, func(p string) bool {
			return strings.Contains(strings.TrimPrefix(p, strings.TrimSuffix(d, "/")+"/"), "/")
		})
		if err := b.EachChild(d, func(e *scanner.Entry) error { got = append(got, e.Path); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("EachChild(%s) = %q, want %q", d, got, want)
		}
	}
}
