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
	"time"
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
// it writes the holder's pid. If another process holds it, Lock fails with
// an error wrapping ErrLocked that names the file and either the holder's
// pid or "pid unknown". The lock file is never removed: removing it would
// let two processes lock two different files of the same name.
//
// A holder writes its pid just after taking the flock and clears it just
// before releasing it, so a contender can find the file empty, or naming
// a pid that is no longer running (a holder killed before Unlock), while
// the lock is in other hands. In that case Lock looks again for up to
// pidWait, taking the lock if it was released meanwhile. (The kernel
// cannot name an flock holder: F_GETLK and F_OFD_GETLK see only record
// locks, and report -1 as the pid of an OFD lock.)
func Lock(dir string) (*DirLock, error) { return LockFile(filepath.Join(dir, lockName)) }

// LockFile is Lock on the lock file path itself (agent watch holds
// state_dir/watch.lock for as long as it runs, apart from the state
// directory's lock that init and check take).
func LockFile(path string) (*DirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, fileMode)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			err = holder(f)
		}
		if err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "lock", Path: path, Err: err}
		}
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

// pidWait bounds how long Lock looks for the pid of a holder that has not
// written it yet: a holder writes it microseconds after its flock, so this
// only matters on a machine too loaded to run the holder at all.
const pidWait = 500 * time.Millisecond

// holder returns the error for a lock found held: ErrLocked with the pid
// of a running holder, or "pid unknown" when none showed within pidWait;
// nil when the lock was released meanwhile and is now ours.
func holder(f *os.File) error {
	deadline := time.Now().Add(pidWait)
	stale := 0
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pid := readPid(f)
		if pid > 0 && running(pid) {
			return fmt.Errorf("%w (pid %d)", ErrLocked, pid)
		}
		if pid > 0 {
			stale = pid
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(delay)
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
	}
	if stale > 0 {
		// Left by a holder killed before Unlock, or written by one in
		// another pid namespace: worth showing, not worth trusting.
		return fmt.Errorf("%w (pid unknown; the lock file names pid %d, which is not running here)", ErrLocked, stale)
	}
	return fmt.Errorf("%w (pid unknown)", ErrLocked)
}

// running reports whether a process with this pid exists (EPERM: it
// exists but is not ours to signal).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// readPid returns the pid written into the lock file, or 0 (see parsePid).
func readPid(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	return parsePid(buf[:n])
}

// parsePid returns the pid of a lock file's content, or 0 when it holds
// none: empty, or not a whole line of decimal digits (Lock writes "pid\n"
// with one write, so anything else is a write in progress or not ours).
func parsePid(b []byte) int {
	line, ok := bytes.CutSuffix(b, []byte("\n"))
	if !ok || len(line) == 0 || len(line) > 10 {
		return 0
	}
	pid := 0
	for _, c := range line {
		if c < '0' || c > '9' {
			return 0
		}
		pid = 10*pid + int(c-'0')
	}
	if pid > 1<<22 { // PID_MAX_LIMIT
		return 0
	}
	return pid
}
