package scanner

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The *at calls of the hot path take names that already end in NUL (the
// walker keeps them so), which spares the copy unix.BytePtrFromString makes
// on every call: two allocations per file otherwise.

// fstatatZ is fstatat(2) for a NUL-terminated name.
func fstatatZ(dirfd int, cname string, st *unix.Stat_t, flags int) error {
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(cname))),
		uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	runtime.KeepAlive(cname)
	if e != 0 {
		return e
	}
	return nil
}

// openatZ is openat(2) for a NUL-terminated name.
func openatZ(dirfd int, cname string, flags int) (int, error) {
	r, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(unsafe.StringData(cname))),
		uintptr(flags), 0, 0, 0)
	runtime.KeepAlive(cname)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// cstring returns s followed by a NUL, as the Z calls want it.
func cstring(s string) string { return s + "\x00" }

// plain returns a NUL-terminated name without its NUL.
func plain(cname string) string {
	if n := len(cname); n > 0 && cname[n-1] == 0 {
		return cname[:n-1]
	}
	return cname
}
