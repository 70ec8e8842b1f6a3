package watch

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// record builds one event as the kernel lays it out, with one
// directory-and-name info record.
func record(mask uint64, pid int32, handle []byte, name string) []byte {
	ne := binary.NativeEndian
	info := make([]byte, infoHeaderLen+fsidLen+handleHeaderLen)
	info[0] = infoDFIDName
	ne.PutUint32(info[infoHeaderLen:], 7)
	ne.PutUint32(info[infoHeaderLen+fsidLen:], uint32(len(handle)))
	ne.PutUint32(info[infoHeaderLen+fsidLen+4:], 1)
	info = append(append(append(info, handle...), name...), 0)
	for len(info)%4 != 0 {
		info = append(info, 0)
	}
	ne.PutUint16(info[2:], uint16(len(info)))
	meta := make([]byte, metadataLen)
	ne.PutUint32(meta[0:], uint32(metadataLen+len(info)))
	meta[4] = metadataVersion
	ne.PutUint16(meta[6:], metadataLen)
	ne.PutUint64(meta[8:], mask)
	ne.PutUint32(meta[16:], ^uint32(0)) // FAN_NOFD
	ne.PutUint32(meta[20:], uint32(pid))
	return append(meta, info...)
}

func TestParseEvents(t *testing.T) {
	buf := append(record(MaskCreate, 42, []byte{1, 2, 3, 4, 5, 6, 7, 8}, "new"), record(MaskDelete|MaskOnDir, 43, []byte{9, 9, 9, 9}, "sub")...)
	var got []Record
	if err := ParseEvents(buf, func(r Record) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "new" || got[0].PID != 42 || got[0].Mask != MaskCreate || len(got[0].Handle) != 8 ||
		got[0].FSID[0] != 7 || got[1].Name != "sub" || got[1].Mask&MaskOnDir == 0 || got[1].Self {
		t.Fatalf("records %+v", got)
	}
	// Every truncation is an error, never a panic, and the complete
	// records before it are passed on.
	for n := 1; n < len(buf); n++ {
		if n == len(buf)/2 {
			continue
		}
		var k int
		err := ParseEvents(buf[:n], func(Record) { k++ })
		if !errors.Is(err, ErrRecord) && !(n >= len(buf)/2 && err == nil) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add(record(MaskCreate, 1, []byte{1, 2, 3, 4}, "x"))
	f.Add(append(record(MaskOverflow, 1, []byte{1}, ""), record(MaskModify, 2, []byte{5, 6}, "y")...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ParseEvents(b, func(r Record) {
			if len(r.Handle) > maxHandleBytes {
				t.Fatalf("handle of %d bytes", len(r.Handle))
			}
		})
	})
}

// TestWatcherTmpfs marks a tmpfs of its own and sees a create, a write, a
// rename, a mode change and a delete as paths.
func TestWatcherTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (fanotify and a tmpfs mount)")
	}
	dir := t.TempDir()
	if err := unix.Mount("agent-watch-test", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	w, err := Open([]string{dir}, false)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("fanotify: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Changes made by another process: the watcher drops its own.
	sh := func(script string) {
		t.Helper()
		if out, err := runSh(script); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	os.Mkdir(filepath.Join(dir, "d"), 0o755) // our own: not reported
	sh("cd " + dir + " && echo a > d/f && mv d/f d/g && chmod 600 d/g && rm d/g")
	want := map[string]uint64{filepath.Join(dir, "d", "f"): MaskCreate | MaskMovedFrom, filepath.Join(dir, "d", "g"): MaskMovedTo | MaskAttrib | MaskDelete}
	seen := map[string]uint64{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		evs, overflow, err := w.Read(200)
		if err != nil || overflow {
			t.Fatalf("read: %v, overflow %v", err, overflow)
		}
		for _, e := range evs {
			seen[e.Path] |= e.Mask
		}
		done := true
		for p, m := range want {
			if seen[p]&m != m {
				done = false
			}
		}
		if done {
			break
		}
	}
	for p, m := range want {
		if seen[p]&m != m {
			t.Errorf("%s: mask %#x, want at least %#x (seen %v; events %d, unresolved %d, marks %+v)", p, seen[p], m, seen, w.Events, w.Unresolved, w.Marks())
		}
	}
	if _, ok := seen[filepath.Join(dir, "d")]; ok && seen[filepath.Join(dir, "d")]&MaskCreate != 0 {
		t.Errorf("the watcher reported its own mkdir")
	}
}
