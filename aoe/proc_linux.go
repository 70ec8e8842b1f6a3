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
// For a binary, Exe is the vblade binary and Cmdline the argv it was
// started with. For a "#!" script (a stand-in for vblade) the kernel runs
// the interpreter: Exe is the interpreter and Cmdline starts with it. Both
// cases compare the same way, since both sides come from /proc.
type identity struct {
	Exe       string   `json:"exe,omitempty"`
	Cmdline   []string `json:"cmdline,omitempty"`
	StartTime uint64   `json:"start_time,omitempty"`
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
	raw, err := os.ReadFile(base + "/cmdline")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return identity{}, errGone
		}
		return identity{}, err
	}
	return identity{
		Exe:       strings.TrimSuffix(exe, deletedSuffix),
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

// verify reports whether pid is still the process described by want. It
// returns a reason when it is not; err is only set when /proc cannot be
// read for another reason than the process being gone.
func verify(pid int, want identity) (ok bool, reason string, err error) {
	got, err := readIdentity(pid)
	if errors.Is(err, errGone) {
		return false, "is not running", nil
	}
	if err != nil {
		return false, "", err
	}
	switch {
	case want.Exe == "" || len(want.Cmdline) == 0:
		// Nothing was recorded (the process had already exited when the
		// start was recorded): nothing can prove it is ours.
		return false, "has no recorded identity", nil
	case got.Exe != want.Exe:
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
		if err != nil || (len(id.Cmdline) > 0 && id.Exe != "") || time.Now().After(deadline) {
			return id, err
		}
		time.Sleep(time.Millisecond)
	}
}
