// Package atomicfile is the one way the agent writes a file that must be
// either complete or absent after a crash: the data goes to a temporary file
// in the destination's directory (<name>.tmp-<random>, created exclusively
// with the caller's mode), which is synced, renamed (or linked, never
// clobbering) into place, and the directory is synced so the new name
// survives a power loss.
//
// It never follows a symlink at the temporary name (the name is new and made
// with O_EXCL), and it removes its temporary file on every error. Callers
// that clean up after a killed process recognise the leftovers by TempInfix.
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// TempInfix marks a file still being written: <name>.tmp-<random>. A file
// with it in its name is never a finished file.
const TempInfix = ".tmp-"

// TempBase returns the name a temporary file name was made for
// ("baseline.db" for "baseline.db.tmp-123456") and whether name is one.
func TempBase(name string) (string, bool) {
	i := strings.LastIndex(name, TempInfix)
	if i <= 0 || i+len(TempInfix) == len(name) {
		return "", false
	}
	return name[:i], true
}

// CreateTemp creates a new temporary file dir/<name>.tmp-<random> with mode
// perm (not reduced by the umask). The caller writes it and hands its name
// to Replace or Place, or removes it.
func CreateTemp(dir, name string, perm fs.FileMode) (*os.File, error) {
	f, err := os.CreateTemp(dir, name+TempInfix+"*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// WriteTemp copies r to a new synced temporary file for name in dir and
// returns its path.
func WriteTemp(dir, name string, r io.Reader, perm fs.FileMode) (string, error) {
	f, err := CreateTemp(dir, name, perm)
	if err != nil {
		return "", err
	}
	return FinishTemp(f, r)
}

// FinishTemp completes a temporary file made by CreateTemp: it appends
// what r holds, syncs and closes f, and returns its name; on error the
// file is removed.
func FinishTemp(f *os.File, r io.Reader) (string, error) {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// WriteFile writes data to path atomically with mode perm, replacing what
// is there. Errors have the fs.PathError shape with op "write".
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := WriteTemp(dir, name, bytes.NewReader(data), perm)
	if err == nil {
		err = Replace(tmp, path)
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: unwrapPath(err)}
	}
	return nil
}

// Replace renames the synced file tmp over dst and syncs the directory of
// dst. On a failed rename tmp is removed.
func Replace(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(dst))
}

// Place gives the synced file tmp the second name dst only if dst does not
// exist (as anything, a dangling symlink included); it fails with an error
// wrapping fs.ErrExist otherwise, so the caller can try another name with
// the same tmp. A hard link is the atomic no-clobber rename POSIX offers:
// tmp keeps its name, and the caller removes it once done. Where the file
// system has no hard links it falls back to a rename after an Lstat check,
// which only a concurrent writer of the same name can race. The caller
// syncs the directory (SyncDir) once all names are placed.
func Place(tmp, dst string) error {
	err := os.Link(tmp, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, lerr := os.Lstat(dst); !errors.Is(lerr, fs.ErrNotExist) {
		return &fs.PathError{Op: "link", Path: dst, Err: fs.ErrExist}
	}
	if rerr := os.Rename(tmp, dst); rerr != nil {
		return fmt.Errorf("%w (after link: %v)", rerr, err)
	}
	return nil
}

// SyncDir fsyncs a directory so the names created or renamed in it survive
// a crash.
func SyncDir(dir string) error { return syncPath(dir, syscall.O_DIRECTORY) }

// SyncFile fsyncs the regular file at path (written by someone else, such
// as a database library) without following a symlink there.
func SyncFile(path string) error { return syncPath(path, 0) }

func syncPath(path string, flag int) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|flag, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// unwrapPath drops an *fs.PathError wrapper so WriteFile's own error names
// the destination once.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
