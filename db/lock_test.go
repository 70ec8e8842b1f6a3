//go:build unix

package db

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, lockName)
	if got := strings.TrimSpace(string(mustRead(t, path))); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want our pid %d", got, os.Getpid())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	// flock locks belong to the open file description, so a second open
	// in this process contends like another process would.
	if l2, err := Lock(dir); !errors.Is(err, ErrLocked) {
		if err == nil {
			l2.Unlock()
		}
		t.Errorf("second Lock = %v, want ErrLocked", err)
	} else {
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Path != path {
			t.Errorf("second Lock error %v does not name %s", err, path)
		}
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	l3, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	l3.Unlock()
}

// TestLockOtherProcess holds the lock in a child process (flock(1) is not
// needed: the child is a shell-free sleep holding an inherited descriptor).
func TestLockOtherProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Hand the locked descriptor to a child, then drop ours: the lock
	// now lives only in the child.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary:", err)
	}
	cmd := exec.Command(sleep, "30")
	cmd.ExtraFiles = []*os.File{l.f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = nil
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock while a child holds it = %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The kernel drops the lock with the killed holder.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l2, err := Lock(dir)
		if err == nil {
			l2.Unlock()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lock after the holder died: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLockSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, lockName)); err != nil {
		t.Fatal(err)
	}
	if l, err := Lock(dir); !errors.Is(err, syscall.ELOOP) {
		if err == nil {
			l.Unlock()
		}
		t.Errorf("Lock through a symlink = %v, want ELOOP", err)
	}
}

func TestLockMissingDir(t *testing.T) {
	if l, err := Lock(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			l.Unlock()
		}
		t.Errorf("Lock(missing dir) = %v, want ErrNotExist", err)
	}
}
