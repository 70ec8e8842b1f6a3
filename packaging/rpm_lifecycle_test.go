package packaging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rpmChildEnv carries the work directory to the re-executed test binary
// that runs the rpm lifecycle in its own mount namespace (childEnv is the
// .deb's).
const rpmChildEnv = "OPSAGENT_RPMTEST_ROOT"

const (
	// rpmDB is the throwaway root's rpm database, made empty by the test:
	// the place Red Hat's rpm keeps it, which the agent's rpm backend also
	// looks at (Debian's rpm defaults to ~/.rpmdb).
	rpmDB = "/var/lib/rpm"
	// systemctlLog is where the test's systemctl records its arguments.
	systemctlLog = "/run/systemctl.log"
	rpmUnitFile  = "/usr/lib/systemd/system/agent.service"
)

// TestRPMLifecycle is TestPackageLifecycle for the .rpm: it builds two
// (lifecycleV1, lifecycleV2; rpm takes the "+" in a version) and, in the
// same kind of throwaway root, drives the real rpm with a private, new
// database: rpm -i puts the files with their modes, config and doc files,
// asks systemctl for the unit's preset, and makes no baseline; agent init
// and check work with an edited agent.conf; rpm -U keeps the edited file
// and the baseline and asks to restart the service, and agent update
// --packages (the dnf hook's command) takes the new binary from rpm's
// records; a tampered binary is a package-mismatch; rpm -e stops and
// disables the unit, keeps the baseline and saves the edited agent.conf as
// agent.conf.rpmsave.
//
// rpm runs with --nodeps: the Debian root's logrotate is dpkg's, unknown to
// the rpm database. /var/lib/dpkg/status is removed in the throwaway root,
// so the agent reads rpm's records as on an rpm host.
//
// Service requests are observed through a systemctl that logs its
// arguments and does nothing, put in front of the real one in the PATH rpm
// gives scriptlets (%_install_script_path, not the caller's PATH).
// /run/systemd/system exists in the throwaway root so the scriptlets take
// the "systemd runs" path.
func TestRPMLifecycle(t *testing.T) {
	if work := os.Getenv(rpmChildEnv); work != "" {
		rpmLifecycleChild(t, work)
		return
	}
	if testing.Short() {
		t.Skip("builds two packages; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts an overlay over / in a private mount namespace and chroots into it")
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (Debian package rpm)")
	}
	work := t.TempDir()
	for i, v := range []string{lifecycleV1, lifecycleV2} {
		p := makePackage(t, "rpm", filepath.Join(work, fmt.Sprint("build", i+1)), "PKG_VERSION="+v, "GOARCH=amd64")
		if want := "agent-" + v + "-1.x86_64.rpm"; filepath.Base(p) != want {
			t.Errorf("make rpm wrote %s, want %s", filepath.Base(p), want)
		}
		if err := os.Rename(p, filepath.Join(work, fmt.Sprintf("v%d.rpm", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	runChild(t, "TestRPMLifecycle", rpmChildEnv, work)
}

// rpm runs rpm on the throwaway root's database and fails the test unless
// it exits 0.
func (c *chroot) rpm(args ...string) string {
	c.t.Helper()
	return c.must(append([]string{"rpm", "--dbpath", rpmDB}, args...))
}

// systemctlLog returns and clears what the logging systemctl recorded.
func (c *chroot) systemctlLog() string {
	c.t.Helper()
	b, err := os.ReadFile(c.path(systemctlLog))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.path(systemctlLog), nil, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// scriptletDir returns the first directory of the PATH rpm gives
// scriptlets, as a path in the throwaway root that does not leave it: a
// symlinked /sbin (merged /usr) is followed by hand.
func (c *chroot) scriptletDir() string {
	c.t.Helper()
	path := strings.TrimSpace(c.rpm("--eval", "%{_install_script_path}"))
	dir, _, _ := strings.Cut(path, ":")
	if !filepath.IsAbs(dir) {
		c.t.Fatalf("rpm's %%_install_script_path is %q", path)
	}
	if fi, err := os.Lstat(c.path(dir)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		dst, err := os.Readlink(c.path(dir))
		if err != nil {
			c.t.Fatal(err)
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(dir), dst)
		}
		dir = dst
	}
	return dir
}

// rpmLifecycleChild runs in the re-executed test binary, alone in its
// mount namespace.
func rpmLifecycleChild(t *testing.T, work string) {
	c := mountRoot(t, work)
	// Leftovers of a source install or of a package on the host would meet
	// the package's files; the host's rpm database (if any) is not the
	// test's; without dpkg's status the agent reads rpm's records.
	for _, p := range []string{"/etc/agent", "/var/lib/agent", "/var/log/agent", "/usr/sbin/agent",
		"/etc/logrotate.d/agent", "/etc/dnf/plugins/post-transaction-actions.d/agent.action", rpmUnitFile,
		"/usr/share/doc/agent", "/usr/share/agent", "/usr/share/man/man8/agent.8.gz",
		"/usr/share/bash-completion/completions/agent", unitLink,
		rpmDB, "/root/.rpmdb", "/var/lib/dpkg/status"} {
		if err := os.RemoveAll(c.path(p)); err != nil {
			t.Fatal(err)
		}
	}
	if !c.exists("/usr/bin/rpm") && !c.exists("/bin/rpm") {
		t.Skip("the throwaway root has no rpm")
	}
	if err := os.MkdirAll(c.path(rpmDB), 0o755); err != nil {
		t.Fatal(err)
	}
	c.rpm("--initdb")
	sysctl := filepath.Join(c.scriptletDir(), "systemctl")
	c.write(sysctl, "#!/bin/sh\necho \"$*\" >>"+systemctlLog+"\nexit 0\n", 0o755)
	if err := os.MkdirAll(c.path("/run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		b, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("v%d.rpm", i)))
		if err != nil {
			t.Fatal(err)
		}
		c.write(fmt.Sprintf("/tmp/v%d/agent.rpm", i), string(b), 0o644)
	}

	// Install.
	out := c.rpm("-i", "--nodeps", "/tmp/v1/agent.rpm")
	t.Logf("rpm -i:\n%s", out)
	if !strings.Contains(out, "record one with: agent init") {
		t.Errorf("the install does not say how to make a baseline:\n%s", out)
	}
	if got := c.systemctlLog(); got != "--no-reload preset agent.service\n" {
		t.Errorf("systemctl on install (%s): %q, want the unit's preset", sysctl, got)
	}
	if q := c.rpm("-q", "agent"); q != "agent-"+lifecycleV1+"-1.x86_64\n" {
		t.Errorf("rpm -q agent after the install: %q", q)
	}
	if v := c.must([]string{"agent", "--version"}); !strings.HasPrefix(v, "agent version "+lifecycleV1+"\n") ||
		!strings.Contains(v, "\ncommit: ") || !strings.Contains(v, "\nbuilt: rpm package\n") {
		t.Errorf("agent --version:\n%s", v)
	}
	for p, m := range map[string]fs.FileMode{
		"/usr/sbin/agent":                                          0o755,
		"/usr/share/man/man8/agent.8.gz":                           0o644,
		"/usr/share/bash-completion/completions/agent":             0o644,
		"/usr/share/doc/agent/copyright":                           0o644,
		"/usr/share/doc/agent/changelog.gz":                        0o644,
		"/usr/share/agent/examples/cron.d/agent":                   0o644,
		"/etc/agent":                                               fs.ModeDir | 0o755,
		"/etc/agent/agent.conf":                                    0o600,
		"/etc/agent/sshval.conf":                                   0o644,
		"/etc/agent/vbladed.conf":                                  0o644,
		"/etc/logrotate.d/agent":                                   0o644,
		"/etc/dnf/plugins/post-transaction-actions.d/agent.action": 0o644,
		rpmUnitFile:      0o644,
		"/var/lib/agent": fs.ModeDir | 0o700,
		"/var/log/agent": fs.ModeDir | 0o755,
	} {
		c.mode(p, m)
	}
	for _, p := range []string{"/usr/share/man/man8/agent.8.gz", "/usr/share/doc/agent/changelog.gz"} {
		if b := c.read(p); !strings.HasPrefix(b, "\x1f\x8b") {
			t.Errorf("%s is not gzipped", p)
		}
	}
	lines := func(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
	config := lines(c.rpm("-qc", "agent"))
	if want := []string{"/etc/agent/agent.conf", "/etc/agent/sshval.conf", "/etc/agent/vbladed.conf",
		"/etc/dnf/plugins/post-transaction-actions.d/agent.action", "/etc/logrotate.d/agent"}; !slices.Equal(config, want) {
		t.Errorf("rpm -qc agent: %q, want %q", config, want)
	}
	docs := lines(c.rpm("-qd", "agent"))
	if want := []string{"/usr/share/doc/agent/changelog.gz", "/usr/share/doc/agent/copyright",
		"/usr/share/man/man8/agent.8.gz"}; !slices.Equal(docs, want) {
		t.Errorf("rpm -qd agent: %q, want %q", docs, want)
	}
	// Every config file is noreplace.
	if flags := c.rpm("-q", "--queryformat", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", "agent"); strings.Count(flags, "cn ") != len(config) {
		t.Errorf("config files that are not config(noreplace):\n%s", flags)
	}
	if out := c.rpm("-V", "--nodeps", "agent"); out != "" {
		t.Errorf("rpm -V agent after the install:\n%s", out)
	}
	if ents, err := os.ReadDir(c.path("/var/lib/agent")); err != nil || len(ents) != 0 {
		t.Errorf("the install wrote into /var/lib/agent (%v): %v", err, ents)
	}

	// Edit agent.conf, make a baseline, check.
	c.write("/etc/agent/agent.conf", testConf, 0o600)
	for i := range 5 {
		c.write(fmt.Sprintf("/srv/pkgtest/f%d", i), fmt.Sprintf("file %d\n", i), 0o644)
	}
	c.must([]string{"agent", "--quiet", "init"})
	c.mode("/var/lib/agent/baseline.db", 0o600)
	c.must([]string{"agent", "--quiet", "check"})

	// Upgrade. The new package's agent.conf is the old one's, so rpm keeps
	// the edited file and writes no agent.conf.rpmnew: it does that only
	// for a config(noreplace) file changed both on disk and in the package.
	out = c.rpm("-U", "--nodeps", "/tmp/v2/agent.rpm")
	t.Logf("rpm -U:\n%s", out)
	if strings.Contains(out, "no baseline yet") {
		t.Errorf("the upgrade asks for a baseline:\n%s", out)
	}
	if got := c.systemctlLog(); got != "daemon-reload\ntry-restart agent.service\n" {
		t.Errorf("systemctl on upgrade: %q, want a daemon-reload and a try-restart", got)
	}
	if q := c.rpm("-q", "agent"); q != "agent-"+lifecycleV2+"-1.x86_64\n" {
		t.Errorf("rpm -q agent after the upgrade: %q", q)
	}
	if v := c.must([]string{"agent", "--version"}); !strings.HasPrefix(v, "agent version "+lifecycleV2+"\n") {
		t.Errorf("agent --version after the upgrade:\n%s", v)
	}
	if got := c.read("/etc/agent/agent.conf"); got != testConf {
		t.Errorf("the upgrade replaced the edited agent.conf:\n%s", got)
	}
	c.mode("/etc/agent/agent.conf", 0o600)
	for _, p := range []string{"/etc/agent/agent.conf.rpmnew", "/etc/agent/agent.conf.rpmsave"} {
		if c.exists(p) {
			t.Errorf("the upgrade wrote %s", p)
		}
	}
	c.mode("/var/lib/agent/baseline.db", 0o600)
	// What the dnf hook (agent.action) runs after a transaction: the new
	// binary is a package change in rpm's records, taken into the baseline
	// (exit 4: a changed entry).
	out = c.must([]string{"agent", "--quiet", "update", "--packages"}, 4)
	if !strings.Contains(out, "Provenance of the changes (rpm):") ||
		!strings.Contains(out, " 1 explained changes accepted, 0 unexplained or mismatched entries kept") ||
		!strings.Contains(out, ": /usr/sbin/agent\n") {
		t.Errorf("agent update --packages did not take the new binary from rpm's records:\n%s", out)
	}
	c.must([]string{"agent", "--quiet", "check"})

	// A trojaned agent binary: the scan sees it, rpm's record does not
	// match it.
	f, err := os.OpenFile(c.path("/usr/sbin/agent"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "trojan"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out = c.must([]string{"agent", "check"}, 4)
	if !strings.Contains(out, "Package mismatch:\t1\n") ||
		!strings.Contains(out, "/usr/sbin/agent: content differs from the ") ||
		!strings.Contains(out, " that agent "+lifecycleV2+"-1 recorded") {
		t.Errorf("a tampered /usr/sbin/agent is not reported as a package mismatch:\n%s", out)
	}

	// Erase. rpm has no purge: it removes the unchanged config files and
	// renames a changed one to NAME.rpmsave (noreplace or not), so the
	// edited agent.conf survives as agent.conf.rpmsave; directories that
	// are not empty stay, so the baseline does too.
	out = c.rpm("-e", "--nodeps", "agent")
	t.Logf("rpm -e:\n%s", out)
	if !strings.Contains(out, "/etc/agent/agent.conf saved as /etc/agent/agent.conf.rpmsave") {
		t.Errorf("rpm -e does not say it saved the edited agent.conf:\n%s", out)
	}
	if got := c.systemctlLog(); got != "--no-reload disable --now agent.service\ndaemon-reload\n" {
		t.Errorf("systemctl on erase: %q, want disable --now then a daemon-reload", got)
	}
	if got := c.read("/etc/agent/agent.conf.rpmsave"); got != testConf {
		t.Errorf("agent.conf.rpmsave is not the edited agent.conf:\n%s", got)
	}
	c.mode("/var/lib/agent/baseline.db", 0o600)
	for _, p := range []string{"/usr/sbin/agent", "/etc/agent/agent.conf", "/etc/agent/sshval.conf",
		"/etc/agent/vbladed.conf", "/etc/logrotate.d/agent", "/etc/dnf/plugins/post-transaction-actions.d/agent.action",
		rpmUnitFile, "/usr/share/doc/agent", "/usr/share/agent", "/usr/share/man/man8/agent.8.gz",
		"/usr/share/bash-completion/completions/agent", "/var/log/agent"} {
		if c.exists(p) {
			t.Errorf("rpm -e left %s", p)
		}
	}
	if out, rc := c.run("rpm", "--dbpath", rpmDB, "-q", "agent"); rc == 0 {
		t.Errorf("rpm -q agent after the erase: %q", out)
	}
}
