//go:build unix

package db

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// rawHolder takes the flock of dir's lock file the way Lock does but
// without writing a pid, standing for a holder caught between its flock
// and its write (or for flock(1) run by hand on the file).
func rawHolder(t *testing.T, dir, content string) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f
}

// deadPid returns the pid of a child that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	tr, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true binary:", err)
	}
	cmd := exec.Command(tr)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestLockNamesHolder: the error names the holder's pid or says it is
// unknown, and never names a pid the file holds only from a dead holder.
func TestLockNamesHolder(t *testing.T) {
	want := "(pid " + strconv.Itoa(os.Getpid()) + ")"
	t.Run("pid written just after the flock", func(t *testing.T) {
		dir := t.TempDir()
		f := rawHolder(t, dir, "")
		go func() {
			time.Sleep(30 * time.Millisecond)
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}()
		_, err := Lock(dir)
		if !errors.Is(err, ErrLocked) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Lock = %v, want ErrLocked ending %q", err, want)
		}
	})
	t.Run("stale pid of a killed holder", func(t *testing.T) {
		dir := t.TempDir()
		f := rawHolder(t, dir, strconv.Itoa(deadPid(t))+"\n")
		go func() {
			time.Sleep(30 * time.Millisecond)
			f.Truncate(0)
			f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}()
		_, err := Lock(dir)
		if !errors.Is(err, ErrLocked) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Lock = %v, want ErrLocked ending %q", err, want)
		}
	})
	t.Run("holder that never writes", func(t *testing.T) {
		dir := t.TempDir()
		rawHolder(t, dir, "")
		start := time.Now()
		_, err := Lock(dir)
		if !errors.Is(err, ErrLocked) || !strings.HasSuffix(err.Error(), "(pid unknown)") {
			t.Errorf("Lock = %v, want ErrLocked ending (pid unknown)", err)
		}
		if d := time.Since(start); d > pidWait+time.Second {
			t.Errorf("Lock took %v, want about %v", d, pidWait)
		}
	})
	t.Run("dead pid that stays", func(t *testing.T) {
		dir := t.TempDir()
		dead := deadPid(t)
		rawHolder(t, dir, strconv.Itoa(dead)+"\n")
		_, err := Lock(dir)
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid unknown") ||
			!strings.Contains(err.Error(), strconv.Itoa(dead)) {
			t.Errorf("Lock = %v, want pid unknown naming the stale pid %d", err, dead)
		}
	})
	t.Run("released while looking", func(t *testing.T) {
		dir := t.TempDir()
		f := rawHolder(t, dir, "")
		go func() {
			time.Sleep(30 * time.Millisecond)
			f.Close()
		}()
		l, err := Lock(dir)
		if err != nil {
			t.Fatalf("Lock after the holder released = %v, want the lock", err)
		}
		l.Unlock()
	})
}

var pidSuffix = regexp.MustCompile(`\(pid [1-9][0-9]*\)$`)

// TestLockUnlockRace: contenders racing a holder that locks and unlocks in
// a loop get the lock or an error naming a pid, never one without.
func TestLockUnlockRace(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if l, err := Lock(dir); err == nil {
				l.Unlock()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for range 2000 {
		l, err := Lock(dir)
		if err == nil {
			l.Unlock()
			continue
		}
		if !errors.Is(err, ErrLocked) || !pidSuffix.MatchString(err.Error()) {
			t.Fatalf("Lock = %v, want the lock or ErrLocked with a pid", err)
		}
	}
}

func TestParsePid(t *testing.T) {
	for in, want := range map[string]int{
		"123\n": 123, "1\n": 1, "4194304\n": 4194304,
		"": 0, "\n": 0, "123": 0, "12 3\n": 0, "+12\n": 0, "-1\n": 0, "0\n": 0,
		"4194305\n": 0, "99999999999999999999\n": 0, "123\n\n": 0, " 123\n": 0,
	} {
		if got := parsePid([]byte(in)); got != want {
			t.Errorf("parsePid(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzParsePid: any content yields 0 or the pid whose line it is exactly.
func FuzzParsePid(f *testing.F) {
	for _, s := range []string{"123\n", "", "\n", "0\n", "4194304\n", "12a\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pid := parsePid(b)
		if pid < 0 || pid > 1<<22 {
			t.Fatalf("parsePid(%q) = %d out of range", b, pid)
		}
		if pid > 0 && string(b) != strconv.Itoa(pid)+"\n" && strings.TrimLeft(string(b), "0") != strconv.Itoa(pid)+"\n" {
			t.Fatalf("parsePid(%q) = %d from something else than its line", b, pid)
		}
	})
}
