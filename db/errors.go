package db

import (
	"errors"
	"fmt"
	"io/fs"
)

// Error classes. Errors returned by this package wrap one of these (or an
// fs/syscall error for plain I/O failures); test them with errors.Is.
var (
	// ErrCorrupt marks a file that is not a readable baseline: not a bbolt
	// file, truncated, damaged, missing our buckets or meta, or holding an
	// entry that does not decode.
	ErrCorrupt = errors.New("db: baseline is corrupt")
	// ErrVersion marks a baseline whose format version this agent does not
	// know (usually written by a newer agent).
	ErrVersion = errors.New("db: unsupported baseline format version")
	// ErrNotFound is returned by Baseline.Get for a path the baseline lacks.
	ErrNotFound = errors.New("db: path not in baseline")
	// ErrLocked marks a lock (the state directory lock, or a bbolt file lock)
	// held by another process.
	ErrLocked = errors.New("db: locked by another process")
	// ErrUnusable marks a baseline path that is not a regular file: a
	// symlink (dangling or not), a directory, a FIFO, a device or a socket.
	// No command follows, reads or replaces such a file; the admin moves it
	// away.
	ErrUnusable = errors.New("db: not a regular file")
	// ErrOrder is returned by Writer.Put for an entry whose key does not sort
	// strictly after the previous one.
	ErrOrder = errors.New("db: entries out of order")
)

// unusable returns an fs.PathError for op on path wrapping ErrUnusable,
// naming what the file is.
func unusable(op, path string, mode fs.FileMode) error {
	return &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w (%s)", ErrUnusable, fileKind(mode))}
}

// fileKind names the type of a file mode for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// corrupt returns an fs.PathError for op on path wrapping ErrCorrupt with a
// detail text.
func corrupt(op, path, format string, args ...any) error {
	return &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))}
}
