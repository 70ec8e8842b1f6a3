package atomicfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// leftovers returns the temporary names left in dir.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, de := range des {
		if _, ok := TempBase(de.Name()); ok {
			tmp = append(tmp, de.Name())
		}
	}
	return tmp
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, data := range []string{"first\n", "second, longer than the first\n", ""} {
		if err := WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatalf("WriteFile(%q): %v", data, err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != data {
			t.Errorf("content = %q, want %q", got, data)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("mode = %v, want -rw-------", fi.Mode())
		}
	}
	if tmp := leftovers(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

func TestWriteFileModeIgnoresUmask(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "man.8")
	if err := WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
}

// A symlink at the destination is replaced, never written through.
func TestWriteFileReplacesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "link")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("symlink target changed to %q", b)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("destination is %v, want a regular file", fi.Mode())
	}
}

// A failed write names the destination and leaves no temporary file and the
// old content intact.
func TestWriteFileErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub")
	if err := os.Mkdir(path, 0o700); err != nil { // rename over a directory fails
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("data"), 0o600)
	if err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != path || pe.Op != "write" {
		t.Errorf("error %q is not a write error naming %s", err, path)
	}
	if tmp := leftovers(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
	if _, err := os.Stat(filepath.Join(path, "x")); err != nil {
		t.Errorf("old content lost: %v", err)
	}
}

func TestPlaceNeverClobbers(t *testing.T) {
	dir := t.TempDir()
	tmp, err := WriteTemp(dir, "r.txt", strings.NewReader("new"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	taken := filepath.Join(dir, "taken.txt")
	if err := os.Symlink("/nonexistent", taken); err != nil { // dangling: still taken
		t.Fatal(err)
	}
	if err := Place(tmp, taken); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Place over a dangling symlink: %v, want ErrExist", err)
	}
	free := filepath.Join(dir, "free.txt")
	if err := Place(tmp, free); err != nil {
		t.Fatalf("Place on a free name after a taken one: %v", err)
	}
	if b, _ := os.ReadFile(free); !bytes.Equal(b, []byte("new")) {
		t.Errorf("placed content = %q", b)
	}
	if l, _ := os.Readlink(taken); l != "/nonexistent" {
		t.Errorf("taken name changed: %q", l)
	}
}

func TestTempBase(t *testing.T) {
	for _, c := range []struct {
		name, base string
		ok         bool
	}{
		{"baseline.db.tmp-123456", "baseline.db", true},
		{"check-20261203-101500.txt.tmp-9", "check-20261203-101500.txt", true},
		{"baseline.db", "", false},
		{".tmp-123", "", false},
		{"x.tmp-", "", false},
	} {
		base, ok := TempBase(c.name)
		if base != c.base || ok != c.ok {
			t.Errorf("TempBase(%q) = %q, %v; want %q, %v", c.name, base, ok, c.base, c.ok)
		}
	}
}

func TestCreateTempName(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateTemp(dir, "baseline.db", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	f.Close()
	base, ok := TempBase(filepath.Base(f.Name()))
	if !ok || base != "baseline.db" {
		t.Errorf("temp name %s does not read back as baseline.db's", f.Name())
	}
	fi, err := os.Stat(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v", fi.Mode().Perm())
	}
}
