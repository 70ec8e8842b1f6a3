package posture

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The walker passes names that end in NUL inside its getdents buffer, so
// the *at calls need no copy per file.

// fstatatZ is fstatat(2) for a NUL-terminated name.
func fstatatZ(dirfd int, name *byte, st *unix.Stat_t, flags int) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// openatZ is openat(2) for a NUL-terminated name.
func openatZ(dirfd int, name *byte, flags int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(name)), uintptr(flags), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}
