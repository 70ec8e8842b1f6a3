package db

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

// childEnv names the directory a re-executed test binary writes an endless
// generation into (see TestMain and TestKilledWriter).
const childEnv = "OPSAGENT_DB_TEST_WRITER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childWriter(dir))
	}
	os.Exit(m.Run())
}

// childWriter writes entries into a new generation in dir until killed.
func childWriter(dir string) int {
	w, err := Create(dir, testMeta())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := 0; ; i++ {
		e := &scanner.Entry{Path: fmt.Sprintf("/big/f%09d", i), Type: rules.TypeFile, Attrs: normal | allHashes,
			Mode: 0o100644, Size: int64(i), Mtime: int64(i)}
		if err := w.Put(e); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	entries := testEntries(25_000) // more than two chunks
	path := writeBaseline(t, dir, "baseline.db", entries)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode = %o, want 600", perm)
	}
	meta, got, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	want := testMeta()
	want.Format, want.Entries = FormatVersion, uint64(len(entries))
	if meta != want {
		t.Errorf("Meta() = %+v, want %+v", meta, want)
	}
	if err := sameEntries(got, entries); err != nil {
		t.Error(err)
	}
	if err := Verify(path); err != nil {
		t.Errorf("Verify: %v", err)
	}
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, i := range []int{0, 1, 9999, 10000, len(entries) - 1} {
		e, err := b.Get(entries[i].Path)
		if err != nil {
			t.Errorf("Get(%q) error: %v", entries[i].Path, err)
		} else if err := sameEntries([]*scanner.Entry{e}, entries[i:i+1]); err != nil {
			t.Errorf("Get(%q): %v", entries[i].Path, err)
		}
	}
	for _, p := range []string{"/nonexistent", "/usr/lib", "", "/a\x00b"} {
		if e, err := b.Get(p); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, %v, want ErrNotFound", p, e, err)
		}
	}
	// GetAll: the same entries in one read, nil where Get finds none,
	// in the order asked (not key order).
	var paths []string
	var found []*scanner.Entry
	for _, i := range []int{10000, 0, len(entries) - 1, 9999} {
		paths, found = append(paths, entries[i].Path), append(found, entries[i])
	}
	paths = append(paths, "/nonexistent", "/usr/lib", "", "/a\x00b")
	all, err := b.GetAll(paths)
	if err != nil || len(all) != len(paths) {
		t.Fatalf("GetAll = %d entries, %v; want %d", len(all), err, len(paths))
	}
	if err := sameEntries(all[:len(found)], found); err != nil {
		t.Errorf("GetAll: %v", err)
	}
	for i, e := range all[len(found):] {
		if e != nil {
			t.Errorf("GetAll(%q) = %+v, want nil", paths[len(found)+i], e)
		}
	}
	// In key order, with neighbours, gaps, repeats and a step back: what
	// Get gives, path by path.
	var mixed []string
	for _, i := range []int{0, 1, 2, 4, 4, 9, 10, 3, 500, 501, 503, len(entries) - 2, len(entries) - 1} {
		mixed = append(mixed, entries[i].Path)
		mixed = append(mixed, entries[i].Path+"\xff") // absent, just after it
	}
	mixed = append(mixed, "/zzz-after-everything", entries[7].Path)
	all, err = b.GetAll(mixed)
	if err != nil || len(all) != len(mixed) {
		t.Fatalf("GetAll = %d entries, %v; want %d", len(all), err, len(mixed))
	}
	for i, p := range mixed {
		want, err := b.Get(p)
		if errors.Is(err, ErrNotFound) {
			want = nil
		} else if err != nil {
			t.Fatal(err)
		}
		if (want == nil) != (all[i] == nil) || want != nil && sameEntries([]*scanner.Entry{all[i]}, []*scanner.Entry{want}) != nil {
			t.Errorf("GetAll(%q) = %+v, Get = %+v", p, all[i], want)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(ents) != 0 {
		t.Errorf("temporary files left: %q", ents)
	}
}

func TestWriteEmpty(t *testing.T) {
	path := writeBaseline(t, t.TempDir(), "baseline.db", nil)
	meta, got, err := readAll(path)
	if err != nil || meta.Entries != 0 || len(got) != 0 {
		t.Errorf("readAll(empty) = %+v, %d entries, %v; want 0 entries, nil", meta, len(got), err)
	}
}

func TestPutOrder(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		bad   string // the path Put must refuse
	}{
		{"duplicate", []string{"/a", "/b"}, "/b"},
		{"backwards", []string{"/a", "/c"}, "/b"},
		{"sibling-before-subtree-end", []string{"/a", "/a-b"}, "/a/z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Create(t.TempDir(), testMeta())
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			for _, p := range tc.paths {
				if err := w.Put(&scanner.Entry{Path: p}); err != nil {
					t.Fatalf("Put(%q) error: %v", p, err)
				}
			}
			if err := w.Put(&scanner.Entry{Path: tc.bad}); !errors.Is(err, ErrOrder) {
				t.Errorf("Put(%q) = %v, want ErrOrder", tc.bad, err)
			}
		})
	}
	t.Run("invalid-paths", func(t *testing.T) {
		w, err := Create(t.TempDir(), testMeta())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		for _, p := range []string{"", "/a\x00b"} {
			if err := w.Put(&scanner.Entry{Path: p}); err == nil {
				t.Errorf("Put(%q) = nil, want error", p)
			}
		}
	})
}

func TestCommitKeepPrevious(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "baseline.db")
	now := time.Date(2026, 11, 21, 6, 7, 8, 0, time.UTC)
	commit := func(n int, opts CommitOptions) string {
		t.Helper()
		w, err := Create(dir, testMeta())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		for _, e := range testEntries(n) {
			if err := w.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		kept, err := w.Commit(dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after Commit: %v", err)
		}
		return kept
	}
	keep := CommitOptions{KeepPrevious: true, Now: now}
	if kept := commit(10, keep); kept != "" {
		t.Errorf("first Commit kept %q, want nothing", kept)
	}
	first := mustRead(t, dst)
	kept := commit(20, keep)
	if want := filepath.Join(dir, "baseline-20261121-060708.db"); kept != want {
		t.Errorf("second Commit kept %q, want %q", kept, want)
	} else if !bytes.Equal(mustRead(t, kept), first) {
		t.Errorf("kept generation differs from the previous baseline")
	}
	second := mustRead(t, dst)
	if want := filepath.Join(dir, "baseline-20261121-060708-2.db"); commit(30, keep) != want {
		t.Errorf("third Commit in the same second did not keep %q", want)
	} else if !bytes.Equal(mustRead(t, want), second) {
		t.Errorf("second kept generation differs from the previous baseline")
	}
	if kept := commit(40, CommitOptions{}); kept != "" {
		t.Errorf("Commit without KeepPrevious kept %q", kept)
	}
	if meta, _, err := readAll(dst); err != nil || meta.Entries != 40 {
		t.Errorf("baseline after 4 commits: %+v, %v; want 40 entries", meta, err)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*")); len(names) != 3 {
		t.Errorf("files = %q, want the baseline and two kept ones", names)
	}
	t.Run("now-required", func(t *testing.T) {
		w, err := Create(dir, testMeta())
		if err != nil {
			t.Fatal(err)
		}
		defer w.Abort()
		if _, err := w.Commit(dst, CommitOptions{KeepPrevious: true}); err == nil {
			t.Error("Commit with KeepPrevious and no Now succeeded")
		}
	})
}

func TestCommitOtherDir(t *testing.T) {
	w, err := Create(t.TempDir(), testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Commit(filepath.Join(t.TempDir(), "baseline.db"), CommitOptions{}); err == nil {
		t.Error("Commit into another directory succeeded")
	}
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Put(&scanner.Entry{Path: "/a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(w.Path()); err != nil {
		t.Fatalf("temporary file: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Abort(); err != nil {
			t.Errorf("Abort #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(w.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file after Abort: %v", err)
	}
	if err := w.Put(&scanner.Entry{Path: "/b"}); err == nil {
		t.Error("Put after Abort succeeded")
	}
	if _, err := w.Commit(filepath.Join(dir, "baseline.db"), CommitOptions{}); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestCreateMissingDir(t *testing.T) {
	if w, err := Create(filepath.Join(t.TempDir(), "nope"), testMeta()); err == nil {
		w.Abort()
		t.Error("Create in a missing directory succeeded")
	}
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{ // name: removed
		"baseline.db.tmp-123456":             true,
		"last-check.db.tmp-9":                true,
		"baseline-20260101-000000.db.tmp-77": true,
		"baseline.db":                        false,
		"last-check.db":                      false,
		"baseline-20260101-000000.db":        false,
		"report.txt.tmp-1":                   false,
		"lock":                               false,
		"notes.db.tmp":                       false,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.db.tmp-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CleanTemp(dir); err != nil {
		t.Fatal(err)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != removed {
			t.Errorf("after CleanTemp, %s gone = %v, want %v", name, gone, removed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dir.db.tmp-1")); err != nil {
		t.Errorf("CleanTemp removed a directory: %v", err)
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	dst := writeBaseline(t, dir, "baseline.db", testEntries(100))
	src := writeBaseline(t, dir, "last-check.db", testEntries(200))
	old, srcData := mustRead(t, dst), mustRead(t, src)
	kept, err := Install(src, dst, CommitOptions{KeepPrevious: true, Now: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustRead(t, dst), srcData) {
		t.Error("installed baseline differs from its source")
	}
	if !bytes.Equal(mustRead(t, src), srcData) {
		t.Error("Install changed its source")
	}
	if kept != filepath.Join(dir, "baseline-19700101-000000.db") || !bytes.Equal(mustRead(t, kept), old) {
		t.Errorf("Install kept %q, want the old baseline as baseline-19700101-000000.db", kept)
	}

	t.Run("corrupt-source-refused", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.db")
		data := bytes.Clone(srcData)
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(bad, data[:len(data)-4096], 0o600); err != nil {
			t.Fatal(err)
		}
		before := mustRead(t, dst)
		if _, err := Install(bad, dst, CommitOptions{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Install(corrupt) = %v, want ErrCorrupt", err)
		}
		if !bytes.Equal(mustRead(t, dst), before) {
			t.Error("a refused Install changed the baseline")
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*")); len(tmps) != 0 {
			t.Errorf("temporary files left: %q", tmps)
		}
	})
	t.Run("missing-source", func(t *testing.T) {
		if _, err := Install(filepath.Join(dir, "nope.db"), dst, CommitOptions{}); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Install(missing) = %v, want ErrNotExist", err)
		}
	})
}

// TestKilledWriter kills a process in the middle of writing a generation
// and checks that the baseline it would have replaced is untouched and that
// CleanTemp removes what is left.
func TestKilledWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	dst := writeBaseline(t, dir, "baseline.db", testEntries(500))
	before := mustRead(t, dst)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until a few chunks are on disk, then kill.
	deadline := time.Now().Add(20 * time.Second)
	var tmp string
	for {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child wrote no 4 MiB in time; stderr: %s", stderr.String())
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, "baseline.db.tmp-*"))
		if len(tmps) == 1 {
			if fi, err := os.Stat(tmps[0]); err == nil && fi.Size() > 4<<20 {
				tmp = tmps[0]
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child ended with %v (stderr %s), want killed", err, stderr.String())
	}
	if !bytes.Equal(mustRead(t, dst), before) {
		t.Error("baseline changed by a killed writer")
	}
	if _, _, err := readAll(dst); err != nil {
		t.Errorf("baseline after killed writer: %v", err)
	}
	// The leftover is not a baseline: no meta was ever written.
	if _, err := Open(tmp); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open(leftover %s) = %v, want ErrCorrupt", filepath.Base(tmp), err)
	}
	if err := CleanTemp(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover after CleanTemp: %v", err)
	}
}

// BenchmarkWrite measures Put+Commit in entries per second.
func BenchmarkWrite(b *testing.B) {
	entries := testEntries(100_000)
	dir := b.TempDir()
	for b.Loop() {
		writeBaseline(b, dir, "baseline.db", entries)
	}
	b.ReportMetric(float64(len(entries)*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkWriteChunk measures Put alone (no fsync) for several chunk
// sizes; it backs the chunkEntries choice.
func BenchmarkWriteChunk(b *testing.B) {
	entries := testEntries(100_000)
	for _, chunk := range []int{1_000, 10_000, 100_000} {
		b.Run(strconv.Itoa(chunk), func(b *testing.B) {
			dir := b.TempDir()
			for b.Loop() {
				w, err := Create(dir, testMeta())
				if err != nil {
					b.Fatal(err)
				}
				w.chunk = chunk
				for _, e := range entries {
					if err := w.Put(e); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.flush(); err != nil {
					b.Fatal(err)
				}
				w.Abort()
			}
			b.ReportMetric(float64(len(entries)*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
