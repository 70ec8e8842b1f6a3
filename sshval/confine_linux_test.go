package sshval

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func rsyncDecision(r *Rule, args ...string) Decision {
	return Decision{Allow: true, Rule: r, Argv: append([]string{DefaultRsync}, args...)}
}

func TestPrepare(t *testing.T) {
	abi := landlockABI()
	root := t.TempDir()
	tests := []struct {
		name    string
		confine string
		runAs   string
		uid     int
		want    string // mode, or "" for an error
		skip    bool
	}{
		{name: "landlock chosen", confine: ConfineLandlock, uid: os.Getuid(), want: ConfineLandlock, skip: abi < 1},
		{name: "landlock missing", confine: ConfineLandlock, uid: os.Getuid(), want: "", skip: abi >= 1},
		{name: "chroot as root", confine: ConfineChroot, uid: 0, want: ConfineChroot, skip: os.Getuid() != 0},
		{name: "chroot not as root", confine: ConfineChroot, uid: 1000, want: ""},
		{name: "paths", confine: ConfinePaths, uid: os.Getuid(), want: ConfinePaths},
		{name: "default is landlock where the kernel has it", uid: os.Getuid(), want: ConfineLandlock, skip: abi < 1},
		{name: "default falls back to chroot as root", uid: 0, want: ConfineChroot, skip: abi >= 1 || os.Getuid() != 0},
		{name: "run_as unknown user", confine: ConfinePaths, runAs: "no-such-user-sshval", uid: 0, want: ""},
		{name: "run_as another user needs root", confine: ConfinePaths, runAs: "0", uid: 1000, want: ""},
		{name: "run_as numeric user with group", confine: ConfinePaths, runAs: "4242:4242", uid: 0, want: ConfinePaths},
		{name: "run_as numeric user without passwd entry or group", confine: ConfinePaths, runAs: "4242", uid: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("not this machine's case")
			}
			r := &Rule{Name: "r", Kind: KindRsync, Root: root, Push: true, Confine: tt.confine, RunAs: tt.runAs}
			p, err := Prepare(rsyncDecision(r, "--server", ".", root), tt.uid)
			if tt.want == "" {
				if !errors.Is(err, ErrConfine) {
					t.Errorf("Prepare = %+v, %v; want an ErrConfine", p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if p.Mode != tt.want {
				t.Errorf("mode %q, want %q", p.Mode, tt.want)
			}
			if (p.Warning != "") != (tt.want == ConfinePaths) {
				t.Errorf("warning %q for mode %s", p.Warning, p.Mode)
			}
			if tt.runAs == "4242:4242" && (p.Account.UID != 4242 || p.Account.GID != 4242 || !p.Account.Drop) {
				t.Errorf("account %+v, want uid and gid 4242 with a drop", p.Account)
			}
		})
	}
	t.Run("command rule has no mode", func(t *testing.T) {
		r := &Rule{Name: "c", Kind: KindCommand, Program: "/usr/bin/uptime"}
		p, err := Prepare(Decision{Allow: true, Rule: r, Argv: []string{"/usr/bin/uptime"}}, os.Getuid())
		if err != nil || p.Mode != "" {
			t.Errorf("Prepare = %+v, %v; want no mode", p, err)
		}
	})
}

func TestRewriteRoot(t *testing.T) {
	argv := []string{"/usr/bin/rsync", "--server", "--link-dest=/b/x/prev", "--confine-root=/data/b/x", ".", "/b/x/dest/", "/b/xy", "/b/x"}
	got := rewriteRoot(argv, "/b/x", "/data/b/x")
	want := []string{"/usr/bin/rsync", "--server", "--link-dest=/data/b/x/prev", "--confine-root=/data/b/x", ".", "/data/b/x/dest/", "/b/xy", "/data/b/x"}
	if !slices.Equal(got, want) {
		t.Errorf("rewriteRoot:\n got %q\nwant %q", got, want)
	}
	if argv[2] != "--link-dest=/b/x/prev" {
		t.Errorf("rewriteRoot changed its input")
	}
}

// confineHelperEnv makes the test binary, started again by TestRunConfined,
// Run the program and rule the variables name.
const confineHelperEnv = "SSHVAL_TEST_CONFINE_HELPER"

// TestConfineHelper is the child side of TestRunConfined: it runs
// SSHVAL_TEST_CONFINE_HELPER=MODE:ROOT:RUN_AS:PROGRAM ARGS... confined.
func TestConfineHelper(t *testing.T) {
	spec := os.Getenv(confineHelperEnv)
	if spec == "" {
		t.Skip("only run as TestRunConfined's child")
	}
	f := strings.SplitN(spec, ":", 4)
	r := &Rule{Name: "helper", Kind: KindRsync, Root: f[1], Push: true, Confine: f[0], RunAs: f[2]}
	d := Decision{Allow: true, Rule: r, Argv: strings.Fields(f[3])}
	p, err := Prepare(d, os.Geteuid())
	if err == nil {
		err = Run(d, p)
	}
	os.Stderr.WriteString("run failed: " + err.Error() + "\n")
	os.Exit(3)
}

// TestRunConfined runs real programs through Run as root: under landlock
// and chroot a file below the root is readable and one outside (which root
// could otherwise read) is not, and writes land only below the root; under
// run_as the program has exactly the account's ids and no supplementary
// groups.
func TestRunConfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chroot and run_as need it, and root is who confinement must hold")
	}
	dir, err := os.MkdirTemp("", "sshval-confine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	root, out := filepath.Join(dir, "root"), filepath.Join(dir, "out")
	for _, d := range []string{root, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "in"), []byte("inside\n"), 0o644)
	os.WriteFile(filepath.Join(out, "secret"), []byte("outside\n"), 0o600)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(mode, runAs, argv string) (string, error) {
		cmd := exec.Command(self, "-test.run=^TestConfineHelper$")
		cmd.Env = []string{confineHelperEnv + "=" + mode + ":" + root + ":" + runAs + ":" + argv}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	for _, mode := range []string{ConfineLandlock, ConfineChroot} {
		t.Run(mode, func(t *testing.T) {
			if mode == ConfineLandlock && landlockABI() < 1 {
				t.Skip("this kernel has no Landlock")
			}
			if got, err := run(mode, "", "/usr/bin/cat "+filepath.Join(root, "in")); err != nil || got != "inside\n" {
				t.Errorf("reading below the root: %q, %v", got, err)
			}
			if got, err := run(mode, "", "/usr/bin/cat "+filepath.Join(out, "secret")); err == nil || strings.Contains(got, "outside") {
				t.Errorf("reading outside the root: %q, %v; want a failure", got, err)
			}
			if got, err := run(mode, "", "/usr/bin/touch "+filepath.Join(out, "new")); err == nil {
				t.Errorf("writing outside the root: %q succeeded", got)
			}
			if _, err := os.Lstat(filepath.Join(out, "new")); err == nil {
				t.Errorf("a file was created outside the root")
			}
			if got, err := run(mode, "", "/usr/bin/touch "+filepath.Join(root, "new-"+mode)); err != nil {
				t.Errorf("writing below the root: %q, %v", got, err)
			}
			if got, err := run(mode, "nobody", "/usr/bin/id"); err != nil || !strings.HasPrefix(got, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n") {
				t.Errorf("run_as nobody: id says %q, %v", got, err)
			}
		})
	}
	t.Run("paths does not confine", func(t *testing.T) {
		if got, err := run(ConfinePaths, "", "/usr/bin/cat "+filepath.Join(out, "secret")); err != nil || got != "outside\n" {
			t.Errorf("paths mode: %q, %v; want the outside file read (only the path checks guard it)", got, err)
		}
	})
}
