package report

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockSpool takes the exclusive flock of dir/.lock, waiting (polling every
// 50 ms) until it is free or ctx ends, and returns its release. Two
// flushes at once (the daemon and `agent mail flush` from cron) would
// otherwise send the same message twice. The kernel drops the lock when
// the process dies, so a crash never leaves it held.
func lockSpool(ctx context.Context, dir string) (func(), error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, &fs.PathError{Op: "lock", Path: path, Err: err}
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, &fs.PathError{Op: "lock", Path: path, Err: context.Cause(ctx)}
		case <-time.After(50 * time.Millisecond):
		}
	}
}
