package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ioprio_set(2) constants (linux/ioprio.h).
const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
	ioprioClassRT    = 1
	ioprioClassBE    = 2
	ioprioClassIdle  = 3
)

// lowerPriority applies the nice and ionice options to every thread of the
// process. On Linux both are per thread, and a new thread inherits them from
// the thread that creates it, so setting them on all current threads covers
// the threads the Go runtime starts later. nice 0 and ionice "none" leave the
// priority alone.
func lowerPriority(nice int, ionice string) error {
	ioprio, err := parseIONice(ionice)
	if err != nil {
		return err
	}
	if nice == 0 && ioprio < 0 {
		return nil
	}
	// Twice: a thread started while the first pass ran may have copied the
	// old values.
	for pass := 0; pass < 2; pass++ {
		tids, err := threadIDs()
		if err != nil {
			return err
		}
		for _, tid := range tids {
			if nice != 0 {
				if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
					return fmt.Errorf("setpriority %d: %w", nice, err)
				}
			}
			if ioprio >= 0 {
				_, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(ioprio))
				if errno != 0 && errno != unix.ESRCH {
					return fmt.Errorf("ioprio_set %s: %w", ionice, errno)
				}
			}
		}
	}
	return nil
}

// parseIONice turns the ionice option into an ioprio value, or -1 for none.
func parseIONice(v string) (int, error) {
	class, level, hasLevel := strings.Cut(v, ":")
	n := 4 // the kernel's default best-effort level
	if hasLevel {
		var err error
		n, err = strconv.Atoi(level)
		if err != nil || n < 0 || n > 7 {
			return 0, fmt.Errorf("%w: ionice %q", errConfig, v)
		}
	}
	switch class {
	case "", "none":
		return -1, nil
	case "idle":
		return ioprioClassIdle << ioprioClassShift, nil
	case "best-effort":
		return ioprioClassBE<<ioprioClassShift | n, nil
	case "realtime":
		return ioprioClassRT<<ioprioClassShift | n, nil
	}
	return 0, fmt.Errorf("%w: ionice %q", errConfig, v)
}

func threadIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
