package scanner

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// all selects every path with attrs and descends everywhere.
func all(attrs rules.AttrSet) func(string, rules.FileType) rules.Match {
	return func(string, rules.FileType) rules.Match {
		return rules.Match{Selected: true, Descend: true, Attrs: attrs}
	}
}

func attrsOf(as ...rules.Attr) rules.AttrSet {
	var s rules.AttrSet
	for _, a := range as {
		s |= a.Set()
	}
	return s
}

var basic = attrsOf(rules.AttrPerm, rules.AttrUID, rules.AttrGID, rules.AttrSize,
	rules.AttrLinkName, rules.AttrMD5, rules.AttrSHA256, rules.AttrBLAKE3)

// scanAll runs Scan over root with opts and returns the emitted entries.
func scanAll(t *testing.T, root string, opts Options) ([]*Entry, Stats) {
	t.Helper()
	opts.Root = root
	if opts.match == nil {
		opts.match = all(basic)
	}
	var got []*Entry
	st, err := Scan(context.Background(), nil, opts, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%s) = %v", root, err)
	}
	return got, st
}

func byPath(es []*Entry) map[string]*Entry {
	m := make(map[string]*Entry, len(es))
	for _, e := range es {
		m[e.Path] = e
	}
	return m
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanOrder(t *testing.T) {
	root := t.TempDir()
	names := []string{
		"a/b", "a!b", "a/b!", "a b", "a\nb", "z", "a/c/d", "\xff\xfe", "B", "a.", "é",
	}
	for _, n := range names {
		writeFile(t, filepath.Join(root, n), n)
	}
	for _, workers := range []int{1, 2, 8} {
		t.Run("workers="+strconv.Itoa(workers), func(t *testing.T) {
			got, st := scanAll(t, root, Options{Workers: workers, window: 3})
			var paths []string
			for _, e := range got {
				paths = append(paths, e.Path)
			}
			want := []string{"/", "/B", "/a", "/a/b", "/a/b!", "/a/c", "/a/c/d", "/a\nb", "/a b", "/a!b", "/a.", "/z", "/é", "/\xff\xfe"}
			if !slices.Equal(paths, want) {
				t.Errorf("order = %q, want %q", paths, want)
			}
			if !slices.IsSortedFunc(paths, func(a, b string) int { return keyCompare(a, b) }) {
				t.Errorf("emit order is not key order: %q", paths)
			}
			if st.Entries != int64(len(want)) || st.Errors != 0 {
				t.Errorf("stats = %+v, want %d entries, 0 errors", st, len(want))
			}
		})
	}
}

func TestScanRecords(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0\n")
	if err := os.Symlink("passwd", filepath.Join(root, "etc/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, st := scanAll(t, root, Options{})
	m := byPath(got)

	t.Run("regular", func(t *testing.T) {
		e := m["/etc/passwd"]
		if e == nil {
			t.Fatal("no entry for /etc/passwd")
		}
		data := []byte("root:x:0:0\n")
		if e.Type != rules.TypeFile || e.Size != int64(len(data)) || e.Err != "" {
			t.Errorf("entry = %+v", e)
		}
		if e.Digests.MD5 != md5.Sum(data) || e.Digests.SHA256 != sha256.Sum256(data) || e.Digests.BLAKE3 != blake3.Sum256(data) {
			t.Errorf("digests = %x, want md5 %x", e.Digests, md5.Sum(data))
		}
		var zero [64]byte
		if e.Digests.SHA512 != zero {
			t.Errorf("sha512 computed though not asked: %x", e.Digests.SHA512)
		}
		if e.Attrs != basic&^rules.AttrLinkName.Set() {
			t.Errorf("Attrs = %v, want %v", e.Attrs, basic&^rules.AttrLinkName.Set())
		}
	})
	t.Run("empty", func(t *testing.T) {
		e := m["/etc/empty"]
		if e == nil || e.Digests.MD5 != md5.Sum(nil) || e.Mode&0o777 != 0o600 {
			t.Errorf("entry = %+v", e)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		e := m["/etc/link"]
		if e == nil || e.Type != rules.TypeSymlink || e.LinkTarget != "passwd" {
			t.Fatalf("entry = %+v", e)
		}
		if e.Attrs.Has(rules.AttrMD5) || e.Digests.MD5 != [16]byte{} {
			t.Errorf("symlink has hash attrs: %v %x", e.Attrs, e.Digests.MD5)
		}
	})
	t.Run("dir", func(t *testing.T) {
		e := m["/etc"]
		if e == nil || e.Type != rules.TypeDir || e.Attrs.Has(rules.AttrMD5) || e.Nlink < 2 {
			t.Errorf("entry = %+v", e)
		}
	})
	if st.FilesHashed != 2 || st.BytesHashed != int64(len("root:x:0:0\n")) {
		t.Errorf("stats = %+v, want 2 files, 11 bytes", st)
	}
}

func TestScanRootIsNotADirectory(t *testing.T) {
	root := filepath.Join(t.TempDir(), "f")
	writeFile(t, root, "x")
	got, _ := scanAll(t, root, Options{})
	if len(got) != 1 || got[0].Path != "/" || got[0].Type != rules.TypeFile {
		t.Errorf("entries = %+v, want one file at /", got)
	}
}

func TestScanMissingRoot(t *testing.T) {
	_, err := Scan(context.Background(), nil, Options{Root: "/nonexistent/x", match: all(basic)}, func(*Entry) error { return nil })
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Scan(missing root) = %v, want ErrNotExist", err)
	}
}

func TestScanNilPolicy(t *testing.T) {
	_, err := Scan(context.Background(), nil, Options{Root: t.TempDir()}, func(*Entry) error { return nil })
	if !errors.Is(err, ErrNoPolicy) {
		t.Errorf("Scan(nil policy) = %v, want ErrNoPolicy", err)
	}
}

func TestScanSelection(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"keep/a", "keep/b", "skip/a", "nodesc/x", "other/y"} {
		writeFile(t, filepath.Join(root, n), n)
	}
	match := func(p string, ft rules.FileType) rules.Match {
		switch {
		case strings.HasPrefix(p, "/skip"):
			return rules.Match{}
		case p == "/nodesc":
			return rules.Match{Selected: true, Attrs: basic}
		case p == "/keep/b":
			return rules.Match{Selected: false}
		case p == "/other":
			return rules.Match{Descend: true} // not selected itself, children are
		}
		return rules.Match{Selected: true, Descend: true, Attrs: basic}
	}
	got, _ := scanAll(t, root, Options{match: match})
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	want := []string{"/", "/keep", "/keep/a", "/nodesc", "/other/y"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}

	t.Run("limit", func(t *testing.T) {
		got, _ := scanAll(t, root, Options{Limit: func(p string) bool { return strings.HasPrefix(p, "/keep/") }})
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Path)
		}
		if want := []string{"/keep/a", "/keep/b"}; !slices.Equal(paths, want) {
			t.Errorf("paths = %q, want %q", paths, want)
		}
	})

	t.Run("same inode", func(t *testing.T) {
		// /keep/a's inode is known: it is neither stat'ed nor emitted.
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "keep/a"), &st); err != nil {
			t.Fatal(err)
		}
		var asked []string
		got, _ := scanAll(t, root, Options{Limit: func(p string) bool { return strings.HasPrefix(p, "/keep/") },
			SameInode: func(p string, ft rules.FileType, ino uint64) bool {
				asked = append(asked, p)
				return ft == rules.TypeFile && ino == st.Ino
			}})
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Path)
		}
		if want := []string{"/keep/b"}; !slices.Equal(paths, want) {
			t.Errorf("paths = %q, want %q", paths, want)
		}
		if want := []string{"/keep/a", "/keep/b"}; !slices.Equal(asked, want) {
			t.Errorf("SameInode asked about %q, want %q", asked, want)
		}
	})

	t.Run("same children", func(t *testing.T) {
		// /keep's listing is offered once, sorted, with d_type and d_ino;
		// /keep/a, found unchanged, is not visited at all (SameInode is
		// not asked about it, the policy neither); same[i] set for a
		// directory is ignored.
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "keep/a"), &st); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(root, "keep/sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(root, "keep/sub"))
		var listed []string
		var inodes []string
		var matched []string
		opts := Options{Limit: func(p string) bool { return strings.HasPrefix(p, "/keep/") },
			SameChildren: func(dir string, children []Child, same []bool) {
				if dir != "/keep" {
					return
				}
				for i, c := range children {
					listed = append(listed, fmt.Sprintf("%s:%v", c.Name, c.Type))
					same[i] = c.Name == "a" && c.Ino == st.Ino || c.Name == "sub"
				}
			},
			SameInode: func(p string, ft rules.FileType, ino uint64) bool {
				inodes = append(inodes, p)
				return false
			},
			match: func(p string, ft rules.FileType) rules.Match {
				matched = append(matched, p)
				return rules.Match{Selected: true, Descend: true, Attrs: basic}
			}}
		got, _ := scanAll(t, root, opts)
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Path)
		}
		if want := []string{"/keep/b", "/keep/sub"}; !slices.Equal(paths, want) {
			t.Errorf("paths = %q, want %q", paths, want)
		}
		if want := []string{"a:f", "b:f", "sub:d"}; !slices.Equal(listed, want) {
			t.Errorf("SameChildren saw %q, want %q", listed, want)
		}
		if want := []string{"/keep/b"}; !slices.Equal(inodes, want) {
			t.Errorf("SameInode asked about %q, want %q", inodes, want)
		}
		if slices.Contains(matched, "/keep/a") {
			t.Errorf("the policy was asked about /keep/a: %q", matched)
		}
	})

	t.Run("enter", func(t *testing.T) {
		// Only / and /keep are read; /other and /nodesc are emitted
		// (selected, inside no Limit) but never read.
		var asked []string
		got, _ := scanAll(t, root, Options{Enter: func(d string) bool {
			asked = append(asked, d)
			return d == "/" || d == "/keep"
		}})
		var paths []string
		for _, e := range got {
			paths = append(paths, e.Path)
		}
		if want := []string{"/", "/keep", "/keep/a", "/keep/b", "/nodesc", "/other", "/skip"}; !slices.Equal(paths, want) {
			t.Errorf("paths = %q, want %q", paths, want)
		}
		if want := []string{"/", "/keep", "/nodesc", "/other", "/skip"}; !slices.Equal(asked, want) {
			t.Errorf("Enter asked about %q, want %q", asked, want)
		}
	})
}

// makeTree creates dirs×files small files under root.
func makeTree(t testing.TB, root string, dirs, files int) {
	t.Helper()
	for d := range dirs {
		dir := filepath.Join(root, "d"+itoa(d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, "f"+itoa(f)), []byte(strings.Repeat("x", f%5000)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// appendOnRead is a hook that appends to the file p (the scan's path
// name) once the scan has read it a first time.
func appendOnRead(p, name string) func(point, path string) {
	return func(point, path string) {
		if point == "read" && path == name {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.WriteString("more")
				f.Close()
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

// TestStopWalk cancels a scan of a large tree from inside emit and checks
// that Scan returns promptly, emits nothing more, and leaks neither
// goroutines nor directory descriptors.
func TestStopWalk(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 40, 250) // 10 000 files
	beforeG := runtime.NumGoroutine()
	beforeFD := openFDs(t)

	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"cancel", true}, {"emit error", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errStop := errors.New("stop")
			var n, after atomic.Int64
			var stopped atomic.Bool
			start := time.Now()
			_, err := Scan(ctx, nil, Options{Root: root, Workers: 4, match: all(basic)}, func(e *Entry) error {
				if stopped.Load() {
					after.Add(1)
				}
				if n.Add(1) == 100 {
					stopped.Store(true)
					if tc.cancel {
						cancel()
					} else {
						return errStop
					}
				}
				return nil
			})
			if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("Scan = %v, want context.Canceled", err)
			}
			if !tc.cancel && !errors.Is(err, errStop) {
				t.Errorf("Scan = %v, want errStop", err)
			}
			if after.Load() != 0 {
				t.Errorf("%d entries emitted after the stop", after.Load())
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Scan took %v after a stop at entry 100", d)
			}
		})
	}
	// Goroutines have exited when Scan returns; give the runtime a moment
	// to account for them.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > beforeG && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > beforeG {
		t.Errorf("goroutines: %d before, %d after", beforeG, g)
	}
	if fds := openFDs(t); fds > beforeFD {
		t.Errorf("open fds: %d before, %d after", beforeFD, fds)
	}
}

func TestScanProgressAndStats(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 5, 200)
	var calls atomic.Int64
	got, st := scanAll(t, root, Options{Progress: func(Stats) { calls.Add(1) }})
	if st.Entries != int64(len(got)) || st.Entries != 1+5+1000 {
		t.Errorf("Entries = %d, emitted %d, want %d", st.Entries, len(got), 1006)
	}
	if st.FilesHashed != 1000 {
		t.Errorf("FilesHashed = %d, want 1000", st.FilesHashed)
	}
	if calls.Load() > 100 {
		t.Errorf("Progress called %d times", calls.Load())
	}
}

func TestScanWindowBoundsMemory(t *testing.T) {
	// A slow consumer must not let the walker run ahead: with a window of 8
	// at most 8 entries are in flight at any time.
	root := t.TempDir()
	makeTree(t, root, 2, 100)
	var inflight, maxInflight atomic.Int64
	opts := Options{Root: root, Workers: 3, window: 8, match: all(basic)}
	opts.hook = func(point, _ string) {
		if point == "lstat" {
			if v := inflight.Add(1); v > maxInflight.Load() {
				maxInflight.Store(v)
			}
		}
	}
	_, err := Scan(context.Background(), nil, opts, func(e *Entry) error {
		if e.Type != rules.TypeDir {
			inflight.Add(-1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := maxInflight.Load(); m > 8 {
		t.Errorf("max in flight = %d, want <= 8", m)
	}
}

func TestHostile(t *testing.T) {
	t.Run("fifo", func(t *testing.T) {
		root := t.TempDir()
		if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan []*Entry)
		go func() {
			got, _ := scanAll(t, root, Options{})
			done <- got
		}()
		select {
		case got := <-done:
			e := byPath(got)["/fifo"]
			if e == nil || e.Type != rules.TypeFIFO || e.Err != "" || e.Attrs.Has(rules.AttrMD5) {
				t.Errorf("fifo entry = %+v", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("scan blocked on a FIFO")
		}
	})
	t.Run("symlink loop", func(t *testing.T) {
		root := t.TempDir()
		os.Symlink("b", filepath.Join(root, "a"))
		os.Symlink("a", filepath.Join(root, "b"))
		os.Symlink(".", filepath.Join(root, "self"))
		got, st := scanAll(t, root, Options{})
		m := byPath(got)
		if len(got) != 4 || st.Errors != 0 {
			t.Fatalf("entries = %d (errors %d), want 4 and 0", len(got), st.Errors)
		}
		if m["/a"].LinkTarget != "b" || m["/self"].LinkTarget != "." || m["/self"].Type != rules.TypeSymlink {
			t.Errorf("links = %+v %+v", m["/a"], m["/self"])
		}
	})
	t.Run("vanished before lstat", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "gone"), "x")
		writeFile(t, filepath.Join(root, "stays"), "y")
		opts := Options{hook: func(point, path string) {
			if point == "lstat" && path == "/gone" {
				os.Remove(filepath.Join(root, "gone"))
			}
		}}
		got, st := scanAll(t, root, opts)
		if m := byPath(got); m["/gone"] != nil || m["/stays"] == nil {
			t.Errorf("entries = %v, want /stays without /gone", got)
		}
		if st.Vanished != 1 || st.Errors != 0 {
			t.Errorf("stats = %+v, want 1 vanished, 0 errors", st)
		}
	})
	t.Run("vanished before open", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "gone"), "x")
		opts := Options{hook: func(point, path string) {
			if point == "open" && path == "/gone" {
				os.Remove(filepath.Join(root, "gone"))
			}
		}}
		got, st := scanAll(t, root, opts)
		e := byPath(got)["/gone"]
		if e == nil || !strings.Contains(e.Err, "open /gone: ") || !strings.Contains(e.Err, unix.ENOENT.Error()) {
			t.Fatalf("entry = %+v, want Err open /gone: ENOENT", e)
		}
		if e.Attrs&rules.HashAttrs != 0 || st.Errors != 1 {
			t.Errorf("hash attrs kept (%v) or errors = %d", e.Attrs, st.Errors)
		}
	})
	t.Run("replaced before open", func(t *testing.T) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "f"), "x")
		opts := Options{hook: func(point, path string) {
			if point == "open" && path == "/f" {
				p := filepath.Join(root, "f")
				os.Remove(p)
				os.WriteFile(p, []byte("evil"), 0o644)
			}
		}}
		got, _ := scanAll(t, root, opts)
		e := byPath(got)["/f"]
		if e == nil || !strings.HasSuffix(e.Err, ErrReplaced.Error()) || e.Digests.MD5 != [16]byte{} {
			t.Errorf("entry = %+v, want %v and no digest", e, ErrReplaced)
		}
	})
	t.Run("growing while hashed", func(t *testing.T) {
		root := t.TempDir()
		p := filepath.Join(root, "log")
		writeFile(t, p, strings.Repeat("a", 3*readBufSize))
		opts := Options{hook: appendOnRead(p, "/log")}
		got, st := scanAll(t, root, opts)
		e := byPath(got)["/log"]
		if e == nil || !strings.HasSuffix(e.Err, ErrChanged.Error()) || !strings.HasPrefix(e.Err, "hash /log: ") {
			t.Fatalf("entry = %+v, want Err hash /log: %v", e, ErrChanged)
		}
		if e.Digests.MD5 == [16]byte{} || st.Errors != 1 {
			t.Errorf("digests dropped or errors = %d", st.Errors)
		}
	})
	t.Run("small file growing after its one read", func(t *testing.T) {
		// The short read ends the hashing: the growth is seen by the
		// fstat after it.
		root := t.TempDir()
		p := filepath.Join(root, "log")
		writeFile(t, p, "short")
		opts := Options{hook: appendOnRead(p, "/log")}
		got, _ := scanAll(t, root, opts)
		if e := byPath(got)["/log"]; e == nil || !strings.HasSuffix(e.Err, ErrChanged.Error()) {
			t.Fatalf("entry = %+v, want Err %v", e, ErrChanged)
		}
	})
	t.Run("sizes around the read buffer", func(t *testing.T) {
		root := t.TempDir()
		sizes := []int{0, 1, readBufSize - 1, readBufSize, readBufSize + 1, 2 * readBufSize}
		for _, n := range sizes {
			writeFile(t, filepath.Join(root, fmt.Sprintf("f%d", n)), strings.Repeat("z", n))
		}
		got, _ := scanAll(t, root, Options{})
		for _, n := range sizes {
			e := byPath(got)[fmt.Sprintf("/f%d", n)]
			if want := md5.Sum([]byte(strings.Repeat("z", n))); e == nil || e.Err != "" || e.Digests.MD5 != want {
				t.Errorf("%d bytes: entry %+v, want md5 %x", n, e, want)
			}
		}
	})
	t.Run("socket", func(t *testing.T) {
		root := t.TempDir()
		l, err := net.Listen("unix", filepath.Join(root, "sock"))
		if err != nil {
			t.Skipf("no unix sockets: %v", err)
		}
		defer l.Close()
		got, _ := scanAll(t, root, Options{})
		e := byPath(got)["/sock"]
		if e == nil || e.Type != rules.TypeSocket || e.Err != "" {
			t.Errorf("socket entry = %+v", e)
		}
	})
	t.Run("devices", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mknod needs root")
		}
		root := t.TempDir()
		if err := unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Skipf("mknod: %v", err)
		}
		// A block device whose driver does not exist would fail an open;
		// the scanner must never try.
		if err := unix.Mknod(filepath.Join(root, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(250, 250))); err != nil {
			t.Skipf("mknod: %v", err)
		}
		got, st := scanAll(t, root, Options{})
		m := byPath(got)
		if e := m["/null"]; e == nil || e.Type != rules.TypeCharDev || e.Rdev != unix.Mkdev(1, 3) || e.Err != "" {
			t.Errorf("char device entry = %+v", e)
		}
		if e := m["/blk"]; e == nil || e.Type != rules.TypeBlockDev || e.Err != "" {
			t.Errorf("block device entry = %+v", e)
		}
		if st.FilesHashed != 0 {
			t.Errorf("FilesHashed = %d, want 0", st.FilesHashed)
		}
	})
	t.Run("unreadable file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		root := t.TempDir()
		p := filepath.Join(root, "secret")
		writeFile(t, p, "x")
		os.Chmod(p, 0)
		got, st := scanAll(t, root, Options{})
		e := byPath(got)["/secret"]
		if e == nil || !strings.Contains(e.Err, "open /secret: ") || st.Errors != 1 {
			t.Errorf("entry = %+v, errors %d", e, st.Errors)
		}
	})
	t.Run("unreadable dir", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "d/x"), "x")
		os.Chmod(filepath.Join(root, "d"), 0)
		defer os.Chmod(filepath.Join(root, "d"), 0o755)
		got, st := scanAll(t, root, Options{})
		e := byPath(got)["/d"]
		if e == nil || e.Err == "" || st.Errors != 1 {
			t.Errorf("entry = %+v, errors %d", e, st.Errors)
		}
	})
}

// TestDeepPath walks and hashes a file whose path is longer than PATH_MAX.
func TestDeepPath(t *testing.T) {
	root := t.TempDir()
	comp := strings.Repeat("d", 200)
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	depth := 25 // 25*201 bytes > 4096
	for range depth {
		if err := unix.Mkdirat(fd, comp, 0o755); err != nil {
			t.Fatal(err)
		}
		nfd, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = nfd
	}
	ffd, err := unix.Openat(fd, "leaf", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(ffd, []byte("deep"))
	xattrs := unix.Fsetxattr(ffd, "user.deep", []byte("v"), 0) == nil
	unix.Close(ffd)
	unix.Close(fd)

	got, st := scanAll(t, root, Options{match: all(basic | rules.AttrXattrs.Set())})
	if st.Errors != 0 {
		for _, e := range got {
			if e.Err != "" {
				t.Errorf("%.60s...: %s", e.Path, e.Err)
			}
		}
	}
	leaf := got[len(got)-1]
	if !strings.HasSuffix(leaf.Path, "/leaf") || len(leaf.Path) <= unix.PathMax {
		t.Fatalf("last entry %.40s... (len %d), want a leaf beyond PATH_MAX", leaf.Path, len(leaf.Path))
	}
	if leaf.Digests.MD5 != md5.Sum([]byte("deep")) {
		t.Errorf("deep leaf md5 = %x", leaf.Digests.MD5)
	}
	if xattrs && (len(leaf.Xattrs) != 1 || leaf.Xattrs[0].Name != "user.deep") {
		t.Errorf("deep leaf xattrs = %+v", leaf.Xattrs)
	}
}

func TestXattrs(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	writeFile(t, p, "x")
	if err := unix.Setxattr(p, "user.b", []byte("2"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	unix.Setxattr(p, "user.a", []byte("1"), 0)
	os.Symlink("f", filepath.Join(root, "l"))
	ext := basic | rules.ExtraAttrs
	got, _ := scanAll(t, root, Options{match: all(ext)})
	m := byPath(got)
	e := m["/f"]
	want := []Xattr{{"user.a", []byte("1")}, {"user.b", []byte("2")}}
	if e == nil || len(e.Xattrs) != 2 || e.Xattrs[0].Name != want[0].Name || string(e.Xattrs[1].Value) != "2" {
		t.Errorf("xattrs = %+v, want %+v", e.Xattrs, want)
	}
	if e.Err != "" || m["/l"].Err != "" || m["/"].Err != "" {
		t.Errorf("errors: %q %q %q", e.Err, m["/l"].Err, m["/"].Err)
	}
	t.Run("not asked", func(t *testing.T) {
		got, _ := scanAll(t, root, Options{})
		if e := byPath(got)["/f"]; len(e.Xattrs) != 0 {
			t.Errorf("xattrs recorded without the attribute: %+v", e.Xattrs)
		}
	})
}

func TestGrowingPrefix(t *testing.T) {
	root := t.TempDir()
	data := strings.Repeat("0123456789", 30000) // crosses chunk boundaries
	writeFile(t, filepath.Join(root, "log"), data)
	attrs := attrsOf(rules.AttrSize, rules.AttrGrowing, rules.AttrMD5, rules.AttrSHA256)
	for _, old := range []int64{5, readBufSize, readBufSize + 3, int64(len(data)), int64(len(data)) + 1} {
		got, _ := scanAll(t, root, Options{match: all(attrs), BaselineSize: func(p string) (int64, bool) {
			return old, p == "/log"
		}})
		e := byPath(got)["/log"]
		if old > int64(len(data)) {
			if e.Prefix != nil {
				t.Errorf("old %d: prefix recorded beyond EOF: %+v", old, e.Prefix)
			}
			continue
		}
		if e.Prefix == nil || e.Prefix.Size != old || e.Prefix.Digests.MD5 != md5.Sum([]byte(data[:old])) ||
			e.Prefix.Digests.SHA256 != sha256.Sum256([]byte(data[:old])) {
			t.Errorf("old %d: prefix = %+v", old, e.Prefix)
		}
		if e.Digests.MD5 != md5.Sum([]byte(data)) {
			t.Errorf("old %d: full digest wrong", old)
		}
	}
}

func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	writeFile(t, p, "hello")
	attrs := attrsOf(rules.AttrBLAKE3, rules.AttrMD5)
	d, n, err := HashFile(p, attrs)
	if err != nil || n != 5 || d.BLAKE3 != blake3.Sum256([]byte("hello")) || d.MD5 != md5.Sum([]byte("hello")) {
		t.Errorf("HashFile = %x, %d, %v", d.BLAKE3, n, err)
	}
	if _, _, err := HashFile(filepath.Join(dir, "missing"), attrs); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("HashFile(missing) = %v, want ErrNotExist", err)
	}
	fifo := filepath.Join(dir, "fifo")
	unix.Mkfifo(fifo, 0o600)
	if _, _, err := HashFile(fifo, attrs); !errors.Is(err, ErrNotRegular) {
		t.Errorf("HashFile(fifo) = %v, want ErrNotRegular", err)
	}
	os.Symlink("f", filepath.Join(dir, "l"))
	if _, _, err := HashFile(filepath.Join(dir, "l"), attrs); err == nil {
		t.Error("HashFile(symlink) followed the link")
	}
}

func TestMayEnterProc(t *testing.T) {
	fd, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs); sfs.Type != unix.PROC_SUPER_MAGIC {
		t.Skip("/proc is not procfs here")
	}
	for _, tc := range []struct {
		name  string
		rules []*rules.Rule
		want  bool
	}{
		{"no rule", nil, false},
		{"rule on /", []*rules.Rule{{Kind: rules.Selective, Regex: "/"}}, false},
		{"rule names /proc", []*rules.Rule{{Kind: rules.Selective, Regex: "/proc/cpuinfo"}}, true},
		{"negative rule", []*rules.Rule{{Kind: rules.Negative, Regex: "/proc"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scan{pol: &rules.Policy{Rules: tc.rules}}
			s.log = slog.New(slog.DiscardHandler)
			if got := s.mayEnter("/proc", fd, st.Dev, st.Dev+1, false); got != tc.want {
				t.Errorf("mayEnter(/proc) = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseDirents(t *testing.T) {
	rec := func(name string, typ byte) []byte {
		n := 19 + len(name) + 1
		n = (n + 7) &^ 7
		b := make([]byte, n)
		binary.LittleEndian.PutUint64(b, uint64(len(name))<<40|7)
		b[16], b[17] = byte(n), byte(n>>8)
		b[18] = typ
		copy(b[19:], name)
		return b
	}
	var buf []byte
	buf = append(buf, rec(".", unix.DT_DIR)...)
	buf = append(buf, rec("..", unix.DT_DIR)...)
	buf = append(buf, rec("file", unix.DT_REG)...)
	buf = append(buf, rec("a\nb\xff", unix.DT_UNKNOWN)...)
	got := parseDirents(buf, nil)
	want := []dirent{{name: "file\x00", typ: rules.TypeFile, ino: 4<<40 | 7}, {name: "a\nb\xff\x00", typ: rules.TypeUnknown, ino: 4<<40 | 7}}
	if !slices.Equal(got, want) {
		t.Errorf("parseDirents = %+v, want %+v", got, want)
	}
}

func FuzzParseDirents(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 0, 8, 'a', 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range parseDirents(b, nil) {
			if len(d.name) < 2 || strings.IndexByte(d.name, 0) != len(d.name)-1 || d.name == ".\x00" || d.name == "..\x00" {
				t.Errorf("bad name %q", d.name)
			}
		}
	})
}

// TestUncompressed: a check scan records the digests of a gzip file's
// decompressed content (all members) when its rule has compressed; plain
// and broken files, and init scans, get none.
func TestUncompressed(t *testing.T) {
	root := t.TempDir()
	plain := strings.Repeat("log line\n", 40000) // several read chunks
	var gz bytes.Buffer
	for _, part := range []string{plain[:1000], plain[1000:]} { // two members, as cat a.gz b.gz
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(part))
		zw.Close()
	}
	writeFile(t, filepath.Join(root, "a.gz"), gz.String())
	writeFile(t, filepath.Join(root, "plain"), plain)
	writeFile(t, filepath.Join(root, "broken.gz"), gz.String()[:gz.Len()/2])
	attrs := attrsOf(rules.AttrCompressed, rules.AttrMD5, rules.AttrSHA256)
	got, _ := scanAll(t, root, Options{match: all(attrs), Uncompress: true})
	m := byPath(got)
	if e := m["/a.gz"]; e.Uncompressed == nil || e.Uncompressed.SHA256 != sha256.Sum256([]byte(plain)) ||
		e.Uncompressed.MD5 != md5.Sum([]byte(plain)) || e.Digests.SHA256 != sha256.Sum256(gz.Bytes()) {
		t.Errorf("a.gz: uncompressed %+v, digests %x", e.Uncompressed, e.Digests.SHA256)
	}
	for _, p := range []string{"/plain", "/broken.gz"} {
		if e := m[p]; e.Uncompressed != nil || e.Err != "" {
			t.Errorf("%s: uncompressed %+v, err %q; want none", p, e.Uncompressed, e.Err)
		}
	}
	got, _ = scanAll(t, root, Options{match: all(attrs)})
	if e := byPath(got)["/a.gz"]; e.Uncompressed != nil {
		t.Errorf("without Uncompress: %+v", e.Uncompressed)
	}
	got, _ = scanAll(t, root, Options{match: all(attrs &^ rules.AttrCompressed.Set()), Uncompress: true})
	if e := byPath(got)["/a.gz"]; e.Uncompressed != nil {
		t.Errorf("rule without compressed: %+v", e.Uncompressed)
	}
}

// TestReuse: a file Options.Reuse claims is emitted with its stat fields
// and Reused set, never opened or hashed; the others are hashed as usual.
func TestReuse(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "keep"), "kept content")
	writeFile(t, filepath.Join(root, "read"), "read content")
	var asked []string
	var mu sync.Mutex
	es, st := scanAll(t, root, Options{Reuse: func(e *Entry) bool {
		mu.Lock()
		asked = append(asked, e.Path)
		mu.Unlock()
		return e.Path == "/keep"
	}})
	m := byPath(es)
	keep, read := m["/keep"], m["/read"]
	if keep == nil || read == nil {
		t.Fatalf("entries: %v", m)
	}
	if !keep.Reused || keep.Digests != (Digests{}) || keep.Size != int64(len("kept content")) || keep.Inode == 0 {
		t.Errorf("reused entry: %+v", keep)
	}
	if read.Reused || read.Digests.MD5 == ([16]byte{}) {
		t.Errorf("read entry: %+v", read)
	}
	if st.FilesHashed != 1 {
		t.Errorf("FilesHashed = %d, want 1", st.FilesHashed)
	}
	if m["/"] != nil && m["/"].Reused {
		t.Error("a directory was offered to Reuse")
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(asked)
	if !slices.Equal(asked, []string{"/keep", "/read"}) {
		t.Errorf("Reuse asked about %q, want only the regular files", asked)
	}
}

// TestScanFewDescriptors scans, under a low RLIMIT_NOFILE, a tree of
// directories holding one file each while the workers are slow, so that
// the walker runs as far ahead as the queue lets it: every queued job
// holds its directory open, and the queue must stay within the limit.
func TestScanFewDescriptors(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, 600, 1)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	low := lim
	low.Cur = uint64(openFDs(t) + 120)
	if low.Cur > lim.Cur {
		t.Skipf("RLIMIT_NOFILE is %d already", lim.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	var opened atomic.Int64
	slow := func(point, _ string) {
		// The first files are slow to hash: the walker meanwhile
		// queues the rest.
		if point == "open" && opened.Add(1) < 4 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	var n int
	_, err := Scan(context.Background(), nil, Options{Root: root, Workers: 2, match: all(basic), hook: slow}, func(e *Entry) error {
		n++
		if e.Err != "" {
			t.Errorf("%s: %s", e.Path, e.Err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 600*2; n != want {
		t.Errorf("%d entries, want %d", n, want)
	}
}
