package aoe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// identity is what tells one process apart from any later process that
// reuses its pid: the executable, the exact command line and the start time
// (clock ticks after boot, /proc/PID/stat field 22). It is read from /proc
// right after the start, when the pid is certainly the vblade just
// exec'd, and compared before every signal.
//
// The executable is compared by the device and inode of the file
// /proc/PID/exe opens, not by the text of that link: the text depends on
// who reads it. A reader in another mount namespace than the process
// (every `ip netns exec`, systemd's private mounts, a container exec)
// that is also chrooted gets the path from the root of the process's
// namespace, e.g. /var/tmp/root/usr/sbin/vblade where the supervisor read
// /usr/sbin/vblade. Exe is kept for messages, and compared only for a
// state file written before ExeDev and ExeIno were recorded.
//
// For a binary, Exe is the vblade binary and Cmdline the argv it was
// started with. For a "#!" script (a stand-in for vblade) the kernel runs
// the interpreter: Exe is the interpreter and Cmdline starts with it. Both
// cases compare the same way, since both sides come from /proc.
type identity struct {
	Exe       string   `json:"exe,omitempty"`
	ExeDev    uint64   `json:"exe_dev,omitempty"`
	ExeIno    uint64   `json:"exe_ino,omitempty"`
	Cmdline   []string `json:"cmdline,omitempty"`
	StartTime uint64   `json:"start_time,omitempty"`
}

// errProcNamespace: the /proc mounted here belongs to another pid namespace
// than this process (`unshare --pid` without a new /proc mount, a container
// given the host's /proc), so /proc/PID is not the process PID names for
// kill(2), and no identity read from it can be trusted.
var errProcNamespace = errors.New("aoe: /proc shows another pid namespace")

// checkProcNamespace makes sure /proc numbers processes as this process
// sees them: /proc/self must name the pid getpid returns.
func checkProcNamespace() error {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return fmt.Errorf("%w: /proc/self: %w", errProcNamespace, err)
	}
	if pid := strconv.Itoa(os.Getpid()); self != pid {
		return fmt.Errorf("%w: /proc/self is %s, this process is pid %s (mount a /proc of this pid namespace)", errProcNamespace, self, pid)
	}
	return nil
}

// errGone means the pid names no live process (none at all, or a zombie
// that only waits to be reaped).
var errGone = errors.New("process is gone")

// deletedSuffix is what the kernel appends to /proc/PID/exe when the binary
// was replaced on disk (a package upgrade of vblade). The running process
// is still the vblade that was started.
const deletedSuffix = " (deleted)"

// readIdentity reads the identity of pid from /proc. It returns errGone
// for a pid that is not running (or is a zombie).
func readIdentity(pid int) (identity, error) {
	if pid <= 0 {
		return identity{}, errGone
	}
	if err := checkProcNamespace(); err != nil {
		return identity{}, err
	}
	base := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return identity{}, errGone
		}
		return identity{}, err
	}
	state, start, err := parseStat(stat)
	if err != nil {
		return identity{}, fmt.Errorf("%s/stat: %w", base, err)
	}
	if state == "Z" || state == "X" {
		return identity{}, errGone
	}
	exe, err := os.Readlink(base + "/exe")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return identity{}, errGone
		}
		return identity{}, err
	}
	// stat follows the link the way the kernel does, to the file the
	// process runs, whatever its path looks like from here.
	fi, err := os.Stat(base + "/exe")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return identity{}, errGone
		}
		return identity{}, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return identity{}, fmt.Errorf("%s/exe: no device and inode", base)
	}
	raw, err := os.ReadFile(base + "/cmdline")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return identity{}, errGone
		}
		return identity{}, err
	}
	return identity{
		Exe:       strings.TrimSuffix(exe, deletedSuffix),
		ExeDev:    uint64(sys.Dev),
		ExeIno:    uint64(sys.Ino),
		Cmdline:   splitCmdline(raw),
		StartTime: start,
	}, nil
}

// parseStat returns the state and start time of a /proc/PID/stat line:
//
//	30482 (vblade) S 1 30482 30482 0 -1 4194560 ... 0 0 20 0 1 0 5151290 ...
//
// The command name in parentheses may itself contain spaces and ')', so the
// fields are counted from the last ')'.
func parseStat(b []byte) (state string, start uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, errors.New("malformed stat line")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field 22 (starttime) is f[19].
	if len(f) < 20 {
		return "", 0, errors.New("short stat line")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("start time: %w", err)
	}
	return f[0], start, nil
}

// splitCmdline splits /proc/PID/cmdline into its NUL-terminated words.
func splitCmdline(raw []byte) []string {
	raw = bytes.TrimSuffix(raw, []byte{0})
	if len(raw) == 0 {
		return nil
	}
	return strings.Split(string(raw), "\x00")
}

// reasonGone is the reason verify gives for a pid that runs nothing.
const reasonGone = "is not running"

// verify reports whether pid is still the process described by want. It
// returns a reason when it is not; err is only set when /proc cannot be
// read for another reason than the process being gone.
func verify(pid int, want identity) (ok bool, reason string, err error) {
	got, err := readIdentity(pid)
	if errors.Is(err, errGone) {
		return false, reasonGone, nil
	}
	if err != nil {
		return false, "", err
	}
	switch {
	case want.Exe == "" || len(want.Cmdline) == 0:
		// Nothing was recorded (the process had already exited when the
		// start was recorded): nothing can prove it is ours.
		return false, "has no recorded identity", nil
	case want.ExeIno != 0 && (got.ExeDev != want.ExeDev || got.ExeIno != want.ExeIno):
		return false, fmt.Sprintf("runs %s (device %d inode %d), not %s (device %d inode %d)", got.Exe, got.ExeDev, got.ExeIno, want.Exe, want.ExeDev, want.ExeIno), nil
	case want.ExeIno == 0 && got.Exe != want.Exe:
		// A state file of an older agent: only the link text is known.
		return false, fmt.Sprintf("runs %s, not %s", got.Exe, want.Exe), nil
	case !slices.Equal(got.Cmdline, want.Cmdline):
		return false, fmt.Sprintf("has command line %q, not %q", got.Cmdline, want.Cmdline), nil
	case want.StartTime != 0 && got.StartTime != want.StartTime:
		return false, "was started later (pid reused)", nil
	}
	return true, "", nil
}

// flockNB takes a flock of the given kind without waiting. It returns
// errLocked when another open file description holds a conflicting lock.
func flockNB(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return errLocked
		default:
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// funlock drops a flock taken with flockNB.
func funlock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// errLocked: the pid file is locked by a live supervisor.
var errLocked = errors.New("locked")

// sendSignal sends sig to pid.
func sendSignal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return errGone
		}
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// startedIdentity reads the identity of a process just started. The parent
// of a vfork-style start runs again while the kernel is still setting up
// the new program's arguments, so /proc can briefly show an empty command
// line; it is read again for up to 200 ms until it is complete.
func startedIdentity(pid int) (identity, error) {
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		id, err := readIdentity(pid)
		if err != nil || (len(id.Cmdline) > 0 && id.ExeIno != 0) || time.Now().After(deadline) {
			return id, err
		}
		time.Sleep(time.Millisecond)
	}
}
