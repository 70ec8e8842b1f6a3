package aoetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the namespace helpers.
var (
	// ErrUnsupported means the rig cannot run here: not root, or a tool
	// it needs is missing. Tests skip with it.
	ErrUnsupported = errors.New("aoetest: AoE rig unsupported")
	// ErrNamespace means creating, entering or removing a namespace failed.
	ErrNamespace = errors.New("aoetest: network namespace")
)

// netnsDir is where `ip netns add` mounts named namespaces.
const netnsDir = "/run/netns"

// Supported reports why the rig cannot run here, or nil: it needs root,
// `ip`, and every tool in bins (for example "vblade") in PATH.
func Supported(bins ...string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root for network namespaces and raw sockets (euid %d)", ErrUnsupported, os.Geteuid())
	}
	for _, b := range append([]string{"ip"}, bins...) {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%w: %s not found in PATH", ErrUnsupported, b)
		}
	}
	return nil
}

// Do runs fn on an OS thread that has entered network namespace ns, so
// sockets fn opens (see Dial) belong to ns. Goroutines fn starts do not
// inherit the namespace. The thread goes back to its own namespace after fn;
// if that fails, the goroutine exits still locked, which makes the runtime
// discard the thread rather than let other goroutines run in ns.
func Do(ns string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- doLocked(ns, fn)
	}()
	return <-done
}

// doLocked is Do's body on the locked thread. It unlocks the thread only
// when the thread is back in its original namespace.
func doLocked(ns string, fn func() error) error {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("%w: enter %s: %w", ErrNamespace, ns, err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("%w: enter %s: %w", ErrNamespace, ns, err)
	}
	err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET)
	target.Close()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("%w: enter %s: setns: %w", ErrNamespace, ns, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the thread dies with this goroutine.
		return errors.Join(ferr, fmt.Errorf("%w: leave %s: setns: %w", ErrNamespace, ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Command prepares name with args to run inside namespace ns through `ip
// netns exec`. ip execs the command in place, so cmd.Process.Pid is the
// command's pid.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// ip runs `ip args...` and returns its combined output in the error.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Pids lists the processes whose network namespace is ns, as `ip netns
// pids` finds them.
func Pids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: pids of %s: %w", ErrNamespace, ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// KillAll sends SIGKILL to every process in namespace ns until none is
// left or about two seconds pass. The calling process is never signalled,
// even if one of its threads is inside ns.
func KillAll(ns string) error {
	self := os.Getpid()
	var left []int
	for range 40 {
		pids, err := Pids(ns)
		if err != nil {
			return err
		}
		left = left[:0]
		for _, p := range pids {
			if p == self {
				continue
			}
			left = append(left, p)
			// ESRCH: it exited between the listing and now.
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if len(left) == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%w: processes left in %s: %v", ErrNamespace, ns, left)
}

// DeleteNamespace kills every process in ns and deletes it. A namespace
// that does not exist is not an error, so cleanup can run twice.
func DeleteNamespace(ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	kerr := KillAll(ns)
	if err := ip("netns", "delete", ns); err != nil {
		return errors.Join(kerr, fmt.Errorf("%w: %w", ErrNamespace, err))
	}
	return kerr
}

// Pair is two network namespaces joined by a veth pair whose ends are up.
type Pair struct {
	A, B           string           // namespace names
	IfaceA, IfaceB string           // veth ends: IfaceA lives in A, IfaceB in B
	MACA, MACB     net.HardwareAddr // their addresses
}

// Fixed, locally administered addresses for the veth ends: they only exist
// inside the pair's namespaces, and fixed values make logs comparable.
var (
	defaultMACA = net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0x0a}
	defaultMACB = net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0x0b}
)

// pairCount numbers the pairs of one process so that names stay unique.
var pairCount atomic.Int64

// CreatePair creates namespaces a and b and a veth pair between them (ends
// IfaceA "veth-a" in a, IfaceB "veth-b" in b, with fixed locally
// administered MACs) and brings both ends up. The veth is created inside a
// with its peer moved straight into b, so the host's namespace never sees
// it. On error, whatever was created is removed.
func CreatePair(a, b string) (p *Pair, err error) {
	p = &Pair{A: a, B: b, IfaceA: "veth-a", IfaceB: "veth-b",
		MACA: append(net.HardwareAddr{}, defaultMACA...), MACB: append(net.HardwareAddr{}, defaultMACB...)}
	if err := ip("netns", "add", a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNamespace, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
			p = nil
		}
	}()
	steps := [][]string{
		{"netns", "add", b},
		{"-n", a, "link", "add", p.IfaceA, "type", "veth", "peer", "name", p.IfaceB, "netns", b},
		{"-n", a, "link", "set", "dev", p.IfaceA, "address", p.MACA.String(), "up"},
		{"-n", b, "link", "set", "dev", p.IfaceB, "address", p.MACB.String(), "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return p, fmt.Errorf("%w: %w", ErrNamespace, err)
		}
	}
	return p, nil
}

// NewPair creates a Pair named after the test process (agtA-PID, agtB-PID;
// later pairs of the same process get a -N suffix) and removes it with
// t.Cleanup, which runs even when the test fails: every process left in
// either namespace is killed, then the namespaces (and with them the veth)
// are deleted. Register it after t.TempDir so that the processes are gone
// before their files are removed. A failure to create is fatal.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	suffix := strconv.Itoa(os.Getpid())
	if n := pairCount.Add(1); n > 1 {
		suffix += "-" + strconv.FormatInt(n, 10)
	}
	p, err := CreatePair("agtA-"+suffix, "agtB-"+suffix)
	if err != nil {
		t.Fatalf("creating namespaces: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("removing namespaces: %v", err)
		}
	})
	return p
}

// Close kills every process in both namespaces and deletes them; the veth
// goes with them. It may be called more than once.
func (p *Pair) Close() error {
	return errors.Join(DeleteNamespace(p.A), DeleteNamespace(p.B))
}
