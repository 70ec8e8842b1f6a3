package aoe

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// procHelperEnv selects a helper mode of the test binary (see TestMain and
// procHelper): the tests below need processes in other namespaces.
const procHelperEnv = "AOE_TEST_PROC_HELPER"

// procReport is what a helper prints: its pid and its identity as read
// from its own namespaces, or the error.
type procReport struct {
	PID int      `json:"pid"`
	ID  identity `json:"id"`
	Err string   `json:"err,omitempty"`
}

// procHelper runs one helper mode and returns the exit status.
//
//   - "bind ROOT": run in a new mount namespace; binds / recursively on
//     ROOT and runs "self" chrooted to ROOT, in that same namespace.
//   - "self": prints its own procReport and waits for stdin to close.
//   - "report": prints its own procReport and exits (run as pid 1 of a new
//     pid namespace that still sees the parent's /proc).
func procHelper(mode string) int {
	switch {
	case strings.HasPrefix(mode, "bind "):
		root := strings.TrimPrefix(mode, "bind ")
		// Go marked / private after the unshare; do it again, so that
		// nothing below can ever reach the caller's namespace.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			fmt.Fprintln(os.Stderr, "make / private:", err)
			return 2
		}
		if err := syscall.Mount("/", root, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			fmt.Fprintln(os.Stderr, "bind / on", root, err)
			return 2
		}
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), procHelperEnv+"=self")
		cmd.Dir = "/"
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "chrooted helper:", err)
			return 2
		}
		return 0
	case mode == "self" || mode == "report":
		id, err := readIdentity(os.Getpid())
		rep := procReport{PID: os.Getpid(), ID: id}
		if err != nil {
			rep.Err = err.Error()
		}
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
		if mode == "self" {
			bufio.NewReader(os.Stdin).ReadString('\n')
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// needRoot skips t unless it runs as root (namespaces and chroot).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates mount and pid namespaces and a chroot")
	}
}

// startHelper starts the test binary in helper mode with attr and returns
// the report it prints first. The helper ends when the returned function
// is called.
func startHelper(t *testing.T, mode string, attr *syscall.SysProcAttr) (procReport, func()) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), procHelperEnv+"="+mode)
	cmd.SysProcAttr = attr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
			t.Skipf("cannot create namespaces here: %v", err)
		}
		t.Fatal(err)
	}
	stop := func() {
		stdin.Close()
		cmd.Wait()
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		if strings.Contains(stderr.String(), "operation not permitted") {
			t.Skipf("cannot set up the namespaces here: %s", stderr.String())
		}
		t.Fatalf("helper %q printed nothing: %v\n%s", mode, err, stderr.String())
	}
	var rep procReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		stop()
		t.Fatalf("helper %q: %v: %q", mode, err, line)
	}
	return rep, stop
}

// TestIdentityFromAnotherMountNamespaceInChroot is the fresh-machine
// failure: the supervisor and `agent aoe status` both run chrooted (the
// root of a debootstrap'd machine), each in its own mount namespace (`ip
// netns exec` makes one per command). The process records its identity
// from inside; this test reads /proc from another namespace, where the
// text of /proc/PID/exe carries the chroot's directory. The process must
// still be recognised, and a changed executable or start time still
// refused.
func TestIdentityFromAnotherMountNamespaceInChroot(t *testing.T) {
	needRoot(t)
	// Not t.TempDir: the directory only ever gets os.Remove, which cannot
	// delete what a bind mount shows through it.
	root, err := os.MkdirTemp("", "aoe-chroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(root) })
	rep, stop := startHelper(t, "bind "+root, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS})
	defer stop()
	if rep.Err != "" {
		t.Fatalf("chrooted process cannot read its own identity: %s", rep.Err)
	}
	link, err := os.Readlink("/proc/" + strconv.Itoa(rep.PID) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if link == rep.ID.Exe {
		t.Fatalf("set-up did not reproduce the case: the exe link reads %s from both sides", link)
	}
	t.Logf("exe link: %s inside, %s from here", rep.ID.Exe, link)

	if ok, why, err := verify(rep.PID, rep.ID); !ok || err != nil {
		t.Errorf("verify(identity recorded in the chroot) = %v %q %v, want true", ok, why, err)
	}
	for _, tt := range []struct {
		name string
		edit func(*identity)
	}{
		{"other inode", func(id *identity) { id.ExeIno++ }},
		{"other device", func(id *identity) { id.ExeDev++ }},
		{"pid reused", func(id *identity) { id.StartTime++ }},
		{"other command line", func(id *identity) { id.Cmdline = append(id.Cmdline, "-x") }},
	} {
		id := rep.ID
		id.Cmdline = append([]string(nil), id.Cmdline...)
		tt.edit(&id)
		if ok, _, err := verify(rep.PID, id); ok || err != nil {
			t.Errorf("%s: verify = %v %v, want false", tt.name, ok, err)
		}
	}
}

// TestIdentityProcOfAnotherPIDNamespace: a process in a new pid namespace
// that still sees the parent's /proc (`unshare --pid --fork` without
// --mount-proc) is pid 1 to itself, but /proc/1 is the host's init. It
// must get an error, never the identity of another process.
func TestIdentityProcOfAnotherPIDNamespace(t *testing.T) {
	needRoot(t)
	rep, stop := startHelper(t, "report", &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	defer stop()
	if rep.PID != 1 {
		t.Fatalf("helper is pid %d, want 1 in its own pid namespace", rep.PID)
	}
	if rep.Err == "" {
		t.Fatalf("readIdentity in a pid namespace with the parent's /proc = %+v, want an error", rep.ID)
	}
	if !strings.Contains(rep.Err, "another pid namespace") {
		t.Errorf("error %q does not say that /proc is another pid namespace's", rep.Err)
	}
}

// TestIdentityOldStateFile: a state file written before the device and
// inode were recorded still compares the link text.
func TestIdentityOldStateFile(t *testing.T) {
	real, err := readIdentity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if real.ExeIno == 0 {
		t.Fatalf("readIdentity(self) recorded no inode: %+v", real)
	}
	old := identity{Exe: real.Exe, Cmdline: real.Cmdline, StartTime: real.StartTime}
	if ok, why, err := verify(os.Getpid(), old); !ok || err != nil {
		t.Errorf("verify(old identity) = %v %q %v, want true", ok, why, err)
	}
	old.Exe = "/usr/sbin/vblade"
	if ok, _, err := verify(os.Getpid(), old); ok || err != nil {
		t.Errorf("verify(old identity, other exe) = %v %v, want false", ok, err)
	}
}
