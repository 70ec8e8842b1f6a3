//go:build unix

package db

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// lockName is the lock file in the state directory.
const lockName = "lock"

// DirLock is an exclusive lock on a state directory, held until Unlock or
// until the process exits (the kernel drops flock locks with the last
// descriptor, so a killed agent never leaves a stale lock).
type DirLock struct {
	f *os.File
}

// Lock takes the exclusive lock of state directory dir without waiting:
// an flock on dir/lock (created 0600, never through a symlink), into which
// it writes the holder's pid. If another process holds it, Lock fails at
// once with an error wrapping ErrLocked that names the file and, when it
// can be read, the holder's pid. The lock file is never removed: removing
// it would let two processes lock two different files of the same name.
func Lock(dir string) (*DirLock, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, fileMode)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid := readPid(f); pid > 0 {
				return nil, &fs.PathError{Op: "lock", Path: path, Err: fmt.Errorf("%w (pid %d)", ErrLocked, pid)}
			}
			return nil, &fs.PathError{Op: "lock", Path: path, Err: ErrLocked}
		}
		return nil, &fs.PathError{Op: "lock", Path: path, Err: err}
	}
	// The pid is for the message above and for humans; the flock is the
	// lock. A failure to write it does not matter.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock. It is safe to call more than once.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clearing the pid first means a reader never sees a stale one
	// attributed to the next holder; closing releases the flock.
	f.Truncate(0)
	return f.Close()
}

// flock retries flock(2) on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// readPid returns the pid written into the lock file, or 0.
func readPid(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
