package sshval

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// countersDir makes a root-owned 1733 directory (needs root).
func countersDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the counters directory is root's: needs root")
	}
	dir := filepath.Join(t.TempDir(), "counters")
	if err := EnsureCountersDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCountConcurrent: many concurrent updates of one counter file, each
// with its own open file (as separate sshval processes have), lose no
// count; the directory is made 1733 and the file 0600.
func TestCountConcurrent(t *testing.T) {
	dir := countersDir(t)
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(fs.ModePerm|fs.ModeSticky) != CountersMode {
		t.Fatalf("mode %v", fi.Mode())
	}
	const workers, each = 40, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := Count(dir, 0, (w+i)%3 != 0, time.Unix(1_700_000_000, 0)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, probs, err := ReadCounters(dir)
	if err != nil || len(probs) != 0 || len(got) != 1 {
		t.Fatalf("ReadCounters: %v %v %v", got, probs, err)
	}
	if c := got[0]; c.UID != 0 || c.Allowed+c.Refused != workers*each || c.Last.Unix() != 1_700_000_000 {
		t.Errorf("counts %+v, want %d decisions", c, workers*each)
	}
	var refused uint64
	for w := range workers {
		for i := range each {
			if (w+i)%3 == 0 {
				refused++
			}
		}
	}
	if got[0].Refused != refused {
		t.Errorf("refused %d, want %d", got[0].Refused, refused)
	}
	fi, err = os.Lstat(filepath.Join(dir, "0"))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("counter file: %v %v", fi.Mode(), err)
	}
}

// TestCountersForeignFiles: a file named for another uid (pre-created by
// someone else), a file that is not named by a uid, a symlink, a
// malformed and an oversized file are problems; the good file is read.
// Count refuses to write through the pre-created file and a symlink.
func TestCountersForeignFiles(t *testing.T) {
	dir := countersDir(t)
	if err := Count(dir, 0, true, time.Now()); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string, uid int) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	write("1001", "allowed 5\nrefused 0\n", 1002) // user 1002 planted it for 1001
	write("junk", "", 1003)
	write("1004", "allowed x\n", 1004)
	write("1005", strings.Repeat("allowed 1\n", 1000), 1005)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "1006")); err != nil {
		t.Fatal(err)
	}
	got, probs, err := ReadCounters(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UID != 0 || got[0].Allowed != 1 {
		t.Errorf("counts %+v", got)
	}
	want := map[string]string{"1001": "owned by uid 1002", "junk": "not named by a uid", "1004": "want KEY NUMBER",
		"1005": "larger than", "1006": "too many levels of symbolic links"}
	if len(probs) != len(want) {
		t.Errorf("problems %v", probs)
	}
	for _, p := range probs {
		if w, ok := want[p.Name]; !ok || !strings.Contains(p.Error(), w) || !errors.Is(p.Err, ErrCounterFile) {
			t.Errorf("problem %s: %v (want %q)", p.Name, p.Err, w)
		}
	}
	// Count as uid 1001 (it runs as 1001; as root the open succeeds, so
	// the ownership check is what refuses).
	if err := Count(dir, 1001, true, time.Now()); !errors.Is(err, ErrCounterFile) {
		t.Errorf("Count through a foreign file: %v", err)
	}
	if err := Count(dir, 1006, true, time.Now()); !errors.Is(err, ErrCounterFile) {
		t.Errorf("Count through a symlink: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "1001")); string(b) != "allowed 5\nrefused 0\n" {
		t.Errorf("foreign file changed: %q", b)
	}
}

// TestCountersDirChecked: a directory with another mode or owner is
// refused by Count, ReadCounters and EnsureCountersDir (which does not
// change it); a missing one wraps fs.ErrNotExist for Count.
func TestCountersDirChecked(t *testing.T) {
	dir := countersDir(t)
	if err := Count(filepath.Join(dir, "missing"), 0, true, time.Now()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
	for _, tc := range []struct {
		mode fs.FileMode
		uid  int
	}{{0o777 | fs.ModeSticky, 0}, {0o733, 0}, {CountersMode, 1000}} {
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, tc.uid, 0); err != nil {
			t.Fatal(err)
		}
		if err := Count(dir, 0, true, time.Now()); !errors.Is(err, ErrCountersDir) {
			t.Errorf("%v uid %d: Count: %v", tc.mode, tc.uid, err)
		}
		if _, _, err := ReadCounters(dir); !errors.Is(err, ErrCountersDir) {
			t.Errorf("%v uid %d: ReadCounters: %v", tc.mode, tc.uid, err)
		}
		if err := EnsureCountersDir(dir); !errors.Is(err, ErrCountersDir) {
			t.Errorf("%v uid %d: EnsureCountersDir: %v", tc.mode, tc.uid, err)
		}
		if fi, _ := os.Lstat(dir); fi.Mode()&(fs.ModePerm|fs.ModeSticky) != tc.mode {
			t.Errorf("EnsureCountersDir changed the mode to %v", fi.Mode())
		}
	}
}

func TestParseCounts(t *testing.T) {
	c, err := ParseCounts(FormatCounts(Counts{Allowed: 3, Refused: 7, Last: time.Unix(1_700_000_000, 0)}))
	if err != nil || c.Allowed != 3 || c.Refused != 7 || c.Last.Unix() != 1_700_000_000 {
		t.Errorf("round trip: %+v %v", c, err)
	}
	if c, err := ParseCounts(nil); err != nil || c != (Counts{}) {
		t.Errorf("empty: %+v %v", c, err)
	}
	for _, bad := range []string{"allowed 1", "allowed 01\n", "allowed -1\n", "allowed 1\nallowed 2\n",
		"other 1\n", "allowed  1\n", "allowed 1 \n", "\n", "last 99999999999999\n", "allowed 99999999999999999999\n"} {
		if _, err := ParseCounts([]byte(bad)); !errors.Is(err, ErrCounterFile) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzParseCounts: any input parses or fails with ErrCounterFile, never
// panics, and what parses formats back to a file that parses the same.
func FuzzParseCounts(f *testing.F) {
	f.Add([]byte("allowed 1\nrefused 2\nlast 1700000000\n"))
	f.Add([]byte(""))
	f.Add([]byte("allowed 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCounts(b)
		if err != nil {
			if !errors.Is(err, ErrCounterFile) {
				t.Fatalf("error %v does not wrap ErrCounterFile", err)
			}
			return
		}
		c2, err := ParseCounts(FormatCounts(c))
		if err != nil || c2 != c {
			t.Fatalf("%q: %+v, reformatted %+v %v", b, c, c2, err)
		}
	})
}
