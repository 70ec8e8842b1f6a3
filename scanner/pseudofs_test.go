package scanner

import (
	"context"
	"crypto/md5"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// hangLimit is how long a test lets a read that used to run for hours go
// on before failing: far more than the bounded code needs, far less than
// the unbounded code took.
const hangLimit = 20 * time.Second

func procfs(t *testing.T) {
	t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs("/proc/self", &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		t.Skipf("no procfs at /proc (%v)", err)
	}
}

// TestScanPseudoFS: a policy naming /proc/PID/pagemap (size 0, about 256
// GiB to read) records it from its metadata, fast, without a problem, and
// counts it; the notice is logged once for the file system.
func TestScanPseudoFS(t *testing.T) {
	procfs(t)
	pid := strconv.Itoa(os.Getpid())
	conf := "NORMAL = p+u+g+s+md5+sha256+e2fsattrs\n" +
		"/proc/" + pid + "/pagemap$ NORMAL\n" +
		"/proc/" + pid + "/status$ NORMAL\n"
	pol, err := rules.Parse(strings.NewReader(conf), "test.conf", rules.LoadOptions{Hostname: "h", AgentVersion: "test"})
	if err != nil {
		t.Fatalf("rules.Parse = %v", err)
	}
	var log strings.Builder
	opts := Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	start := time.Now()
	var got []*Entry
	st, err := Scan(ctx, pol, opts, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan = %v after %v (stats %+v)", err, time.Since(start), st)
	}
	m := byPath(got)
	for _, name := range []string{"pagemap", "status"} {
		p := "/proc/" + pid + "/" + name
		e := m[p]
		if e == nil {
			t.Fatalf("%s not recorded; entries %v", p, got)
		}
		if e.Err != "" || e.Attrs&readAttrs != 0 || e.Digests != (Digests{}) {
			t.Errorf("%s = attrs %v, digests %x, err %q; want metadata only", p, e.Attrs, e.Digests.MD5, e.Err)
		}
		if want := attrsOf(rules.AttrPerm, rules.AttrUID, rules.AttrGID, rules.AttrSize); e.Attrs != want || e.Type != rules.TypeFile {
			t.Errorf("%s attrs = %v type %v, want %v of a file", p, e.Attrs, e.Type, want)
		}
	}
	if st.MetadataOnly != 2 || st.FilesHashed != 0 || st.BytesHashed != 0 || st.Errors != 0 {
		t.Errorf("stats = %+v, want 2 metadata-only, nothing hashed, no errors", st)
	}
	if n := strings.Count(log.String(), "pseudo file system"); n != 1 || !strings.Contains(log.String(), "fs=proc") {
		t.Errorf("log has %d pseudo file system notices, want 1 naming proc:\n%s", n, log.String())
	}
}

// TestScanPseudoFSCache: statfs runs once per file system, not per file.
func TestScanPseudoFSCache(t *testing.T) {
	procfs(t)
	root := "/proc/" + strconv.Itoa(os.Getpid())
	// Every file of the process directory, hashed if it were allowed
	// (Root is the process directory, so "/" names it).
	pol, err := rules.Parse(strings.NewReader("/ p+s+md5\n!/task$\n!/fd$\n!/fdinfo$\n!/map_files$\n"), "test.conf",
		rules.LoadOptions{Hostname: "h", AgentVersion: "test"})
	if err != nil {
		t.Fatalf("rules.Parse = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	files := 0
	var statfs atomic.Int32
	opts := Options{Root: root, hook: func(point, _ string) {
		if point == "statfs" {
			statfs.Add(1)
		}
	}}
	st, err := Scan(ctx, pol, opts, func(e *Entry) error {
		if e.Type == rules.TypeFile {
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan = %v (stats %+v)", err, st)
	}
	if files < 10 || st.MetadataOnly != int64(files) || st.FilesHashed != 0 || st.Errors != 0 {
		t.Fatalf("%d files, stats %+v: want >= 10 files, all metadata only, no errors", files, st)
	}
	if statfs.Load() != 1 {
		t.Errorf("statfs asked %d times for %d files on one file system, want once", statfs.Load(), files)
	}
	t.Logf("%d files, %d statfs", files, statfs.Load())
}

// scanAllCtx is scanAll under hangLimit.
func scanAllCtx(t *testing.T, root string, opts Options) ([]*Entry, Stats) {
	t.Helper()
	opts.Root = root
	ctx, cancel := context.WithTimeout(context.Background(), hangLimit)
	defer cancel()
	var got []*Entry
	st, err := Scan(ctx, nil, opts, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%s) = %v (stats %+v)", root, err, st)
	}
	return got, st
}

// TestHashBound: a regular file that keeps growing faster than it can be
// read (here sparse, so the disk stays empty) is read up to its stat'ed
// size and one byte more; the digest is that of the stat'ed content and the
// entry says the file changed while being read.
func TestHashBound(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "log")
	data := strings.Repeat("a", 4*readBufSize)
	writeFile(t, p, data)
	stop := make(chan struct{})
	grown := make(chan struct{})
	started := false
	opts := Options{hook: func(point, path string) {
		if point != "read" || path != "/log" || started {
			return
		}
		started = true
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			close(grown)
			return
		}
		// Grow before hashing goes on, then keep growing until the scan ends.
		size := int64(len(data))
		grow := func() bool {
			size += 1 << 30
			return size < 1<<40 && f.Truncate(size) == nil
		}
		grow()
		close(grown)
		go func() {
			defer f.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !grow() {
					return
				}
			}
		}()
	}}
	opts.match = all(basic)
	got, st := scanAllCtx(t, root, opts)
	close(stop)
	<-grown
	e := byPath(got)["/log"]
	if e == nil || !strings.HasSuffix(e.Err, ErrChanged.Error()) {
		t.Fatalf("entry = %+v, want Err %v", e, ErrChanged)
	}
	if e.Digests.MD5 != md5.Sum([]byte(data)) {
		t.Errorf("digest is not that of the %d stat'ed bytes", len(data))
	}
	if st.BytesHashed != int64(len(data)) {
		t.Errorf("BytesHashed = %d, want %d", st.BytesHashed, len(data))
	}
}

// TestHashFileBound: HashFile of a file that reports size 0 and delivers
// gigabytes returns at once with ErrChanged.
func TestHashFileBound(t *testing.T) {
	procfs(t)
	type res struct {
		n   int64
		err error
	}
	done := make(chan res, 1)
	go func() {
		_, n, err := HashFile("/proc/self/pagemap", attrsOf(rules.AttrMD5))
		done <- res{n, err}
	}()
	select {
	case r := <-done:
		if !errors.Is(r.err, ErrChanged) || r.n != 0 {
			t.Errorf("HashFile(pagemap) = %d bytes, %v; want 0 and %v", r.n, r.err, ErrChanged)
		}
	case <-time.After(hangLimit):
		t.Fatalf("HashFile(pagemap) still reading after %v", hangLimit)
	}
}

// TestHashShrunk: a file that ends before its stat'ed size changed too.
func TestHashShrunk(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	writeFile(t, p, strings.Repeat("b", 3*readBufSize))
	opts := Options{match: all(basic), hook: func(point, path string) {
		if point == "read" && path == "/f" {
			os.Truncate(p, readBufSize+10)
		}
	}}
	got, _ := scanAllCtx(t, root, opts)
	if e := byPath(got)["/f"]; e == nil || !strings.HasSuffix(e.Err, ErrChanged.Error()) {
		t.Errorf("entry = %+v, want Err %v", e, ErrChanged)
	}
}
