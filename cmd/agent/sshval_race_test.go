package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// raceRig runs `agent sshval` the way sshd would, without sshd: rsync's
// -e names a two-line shell script that sets SSH_ORIGINAL_COMMAND to the
// server command rsync hands it and SSH_CONNECTION to a loopback client,
// and execs the agent as root with the rules file of one confinement mode.
// Running as root without run_as is the hard case: only the confinement
// keeps the program below its root.
type raceRig struct {
	dir     string
	root    string // the rule's root
	outside string // a directory outside the root, full of bait
	rsh     string // the -e script
}

// Bait in the outside directory, and what a pull of the same name inside
// the root holds.
const (
	raceOutsideSecret = "OUTSIDE-SECRET\n"
	raceInsideSecret  = "inside\n"
)

func newRaceRig(t *testing.T, mode, rule string) *raceRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sshval race tests need root: sshval must run as root for chroot, and unconfined root is what the race must not exploit")
	}
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("the sshval race tests need rsync: ", err)
	}
	if mode == "landlock" {
		if v, err := llsys.LandlockGetABIVersion(); err != nil || v < 1 {
			t.Skipf("this kernel has no Landlock (%v)", err)
		}
	}
	dir, err := os.MkdirTemp("", "agent-sshval-race-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &raceRig{dir: dir, root: filepath.Join(dir, "root"), outside: filepath.Join(dir, "outside")}
	for _, d := range []string{r.root, r.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.outside, "secret"), []byte(raceOutsideSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.conf")
	text := fmt.Sprintf("counters none\nrsync race {\n\troot %s\n\tconfine %s\n%s}\n", r.root, mode, rule)
	if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r.rsh = filepath.Join(dir, "rsh")
	script := "#!/bin/sh\nshift\nSSH_ORIGINAL_COMMAND=\"$*\" SSH_CONNECTION='127.0.0.1 50000 127.0.0.1 22' exec " +
		agentBin + " sshval --rules " + rules + "\n"
	if err := os.WriteFile(r.rsh, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Syslog is not wanted here; a missing /dev/log is tolerated anyway.
	return r
}

// rsync runs the rsync client through the rig; "R:" starts a remote path.
// It returns the client's exit status (0 success) and its stderr.
func (r *raceRig) rsync(ctx context.Context, args ...string) (int, string) {
	argv := []string{"-e", r.rsh}
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "R:"); ok {
			a = "x:" + rest
		}
		argv = append(argv, a)
	}
	cmd := exec.CommandContext(ctx, "rsync", argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	default:
		return -1, err.Error()
	}
}

// outsideEntries lists what is in the outside directory besides the bait.
func (r *raceRig) outsideEntries(t *testing.T) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(r.outside, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != r.outside && p != filepath.Join(r.outside, "secret") {
			got = append(got, strings.TrimPrefix(p, r.outside+"/"))
		}
		return nil
	})
	return got
}

// parallel runs n calls of f(i), on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// raceModes are the confinement modes the race tests try. paths is the
// racy baseline: its escapes are counted, not failed on, and a test that
// never sees one says the race setup proved nothing.
var raceModes = []string{"landlock", "chroot", "paths"}

// raceBaseline is how many transfers the racy paths mode gets: enough to
// show the race setup works, no more (it is not asserted on).
const raceBaseline = 100

// raceWorkers is how many rsync transfers run at once: enough to keep the
// swapper and the transfers overlapping on two loaded cores.
const raceWorkers = 4

// TestSSHValRaceLocalSwap is the local swap race of issue 14: inside the
// root a directory swap and a symlink swapl -> OUTSIDE trade places in a
// loop (renameat2 RENAME_EXCHANGE), as any local process that can write
// the root could do, while clients pull swap/secret and push into swap/.
// Under kernel confinement nothing outside the root is read or written.
func TestSSHValRaceLocalSwap(t *testing.T) {
	for _, mode := range raceModes {
		t.Run(mode, func(t *testing.T) {
			pulls, pushes := 200, 200
			if mode == "paths" {
				pulls, pushes = raceBaseline, raceBaseline // it leaks in about one try of five
			}
			r := newRaceRig(t, mode, "\tpush yes\n\tpull yes\n\tdelete no\n\tmunge-links yes\n")
			swap, swapl := filepath.Join(r.root, "swap"), filepath.Join(r.root, "swapl")
			if err := os.Mkdir(swap, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(swap, "secret"), []byte(raceInsideSecret), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(r.outside, swapl); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(r.dir, "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			pulled := filepath.Join(r.dir, "pulled")
			if err := os.Mkdir(pulled, 0o755); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			stop := make(chan struct{})
			var swaps atomic.Int64
			var swapErr error
			var swapper sync.WaitGroup
			swapper.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := unix.Renameat2(unix.AT_FDCWD, swap, unix.AT_FDCWD, swapl, unix.RENAME_EXCHANGE); err != nil {
						swapErr = err
						return
					}
					swaps.Add(1)
				}
			})

			var leaks, okPulls, okPushes atomic.Int64
			parallel(pulls, raceWorkers, func(i int) {
				dst := filepath.Join(pulled, fmt.Sprint(i))
				if code, _ := r.rsync(ctx, "-rlt", "R:swap/secret", dst); code == 0 {
					okPulls.Add(1)
				}
				if b, err := os.ReadFile(dst); err == nil && string(b) == raceOutsideSecret {
					leaks.Add(1)
				}
			})
			parallel(pushes, raceWorkers, func(i int) {
				name := filepath.Join(src, fmt.Sprint(i))
				os.MkdirAll(name, 0o755)
				os.WriteFile(filepath.Join(name, fmt.Sprintf("pushed-%d", i)), []byte("x\n"), 0o644)
				if code, _ := r.rsync(ctx, "-rlt", name+"/", "R:swap/"); code == 0 {
					okPushes.Add(1)
				}
			})
			close(stop)
			swapper.Wait()
			if swapErr != nil {
				t.Fatalf("swapper: %v", swapErr)
			}
			written := r.outsideEntries(t)
			t.Logf("mode %s: %d pulls (%d succeeded), %d pushes (%d succeeded), %d swaps: %d pulls read the outside secret, %d entries written outside",
				mode, pulls, okPulls.Load(), pushes, okPushes.Load(), swaps.Load(), leaks.Load(), len(written))
			if ctx.Err() != nil {
				t.Fatalf("transfers took longer than the deadline: %v", ctx.Err())
			}
			if okPulls.Load() == 0 || okPushes.Load() == 0 {
				t.Errorf("no pull or no push succeeded: the race never had the confined program running")
			}
			if mode == "paths" {
				if leaks.Load()+int64(len(written)) == 0 {
					t.Logf("paths mode did not escape in this run: the race setup did not show its effect this time")
				}
				return
			}
			if leaks.Load() > 0 {
				t.Errorf("mode %s: %d pulls read a file outside the root", mode, leaks.Load())
			}
			if len(written) > 0 {
				t.Errorf("mode %s: pushes wrote outside the root: %v", mode, written[:min(len(written), 10)])
			}
		})
	}
}

// TestSSHValRaceClient is the client-only race of issue 14, with
// munge-links no: one connection pushes cswap alternately as a directory
// and as a symlink to OUTSIDE (with --force, so the directory is replaced),
// while other connections push files into cswap/. Under kernel confinement
// nothing is written outside the root.
func TestSSHValRaceClient(t *testing.T) {
	for _, mode := range raceModes {
		t.Run(mode, func(t *testing.T) {
			pushes := 500
			if mode == "paths" {
				pushes = 2 * raceBaseline // it leaks in about one try of forty
			}
			r := newRaceRig(t, mode, "\tpush yes\n\tpull no\n\tdelete yes\n\tmunge-links no\n")
			asDir, asLink := filepath.Join(r.dir, "as-dir"), filepath.Join(r.dir, "as-link")
			if err := os.MkdirAll(filepath.Join(asDir, "cswap"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(asLink, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(r.outside, filepath.Join(asLink, "cswap")); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(r.dir, "src")

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			stop := make(chan struct{})
			var flips atomic.Int64
			var flipper sync.WaitGroup
			flipper.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					from := asDir
					if i%2 == 1 {
						from = asLink
					}
					// Only the top level: cswap itself, replaced whatever
					// it is now.
					if code, _ := r.rsync(ctx, "-lt", "--dirs", "--force", from+"/", "R:"); code == 0 {
						flips.Add(1)
					}
				}
			})

			var okPushes atomic.Int64
			parallel(pushes, raceWorkers-1, func(i int) {
				name := filepath.Join(src, fmt.Sprint(i))
				os.MkdirAll(name, 0o755)
				os.WriteFile(filepath.Join(name, fmt.Sprintf("pushed-%d", i)), []byte("x\n"), 0o644)
				if code, _ := r.rsync(ctx, "-rlt", name+"/", "R:cswap/"); code == 0 {
					okPushes.Add(1)
				}
			})
			close(stop)
			flipper.Wait()
			written := r.outsideEntries(t)
			t.Logf("mode %s: %d pushes into cswap/ (%d succeeded), %d flips of cswap: %d entries written outside",
				mode, pushes, okPushes.Load(), flips.Load(), len(written))
			if ctx.Err() != nil {
				t.Fatalf("transfers took longer than the deadline: %v", ctx.Err())
			}
			if okPushes.Load() == 0 || flips.Load() < 2 {
				t.Errorf("the race never ran: %d pushes and %d flips succeeded", okPushes.Load(), flips.Load())
			}
			if mode == "paths" {
				if len(written) == 0 {
					t.Logf("paths mode did not escape in this run: the race setup did not show its effect this time")
				}
				return
			}
			if len(written) > 0 {
				t.Errorf("mode %s: pushes wrote outside the root: %v", mode, written[:min(len(written), 10)])
			}
		})
	}
}

// BenchmarkSSHValColdStart times one `agent sshval` process from start to
// exit, run as sshd runs it: for a refused command (decision and log), and
// for an accepted rsync push of nothing under Landlock (Prepare, the
// ruleset, the exec of rsync --server, which then reads an empty stdin and
// exits), against that rsync run directly (it waits about 100 ms before
// it exits), so the difference is the agent's share. The budget
// is 10 ms for it.
func BenchmarkSSHValColdStart(b *testing.B) {
	dir := b.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		b.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.conf")
	if err := os.WriteFile(rules, []byte("rsync r {\n\troot "+root+"\n\tpush yes\n}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, cmd string }{
		{"refused", "rm -rf /x"},
		{"accepted", "rsync --server -re.iLsfxCIvu . dest/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(agentBin, "sshval", "--rules", rules)
				cmd.Env = []string{"SSH_ORIGINAL_COMMAND=" + bc.cmd, "SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22", "PATH=/usr/bin:/bin"}
				cmd.Run()
			}
		})
	}
	b.Run("rsync alone", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command("/usr/bin/rsync", "--server", "-re.iLsfxCIvu", ".", filepath.Join(root, "dest/"))
			cmd.Run()
		}
	})
}
