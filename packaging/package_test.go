package packaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goCommand returns the go command of the toolchain running the test.
func goCommand(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err == nil {
		return gobin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not available to build the agent")
	}
	return gobin
}

// makePackage runs `make FORMAT` (deb or rpm) from the repository root with
// the products in dir and the extra make variables, and returns the path of
// the one package it wrote.
func makePackage(t *testing.T, format, dir string, vars ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed (apt-get install make)")
	}
	args := append([]string{"-C", "..", "--no-print-directory", format, "GO=" + goCommand(t), "PKGDIR=" + dir}, vars...)
	cmd := exec.Command("make", args...)
	// Under `make test` the outer make's flags and variables would reach
	// this make through the environment.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") ||
			strings.HasPrefix(kv, "MAKELEVEL=") || strings.HasPrefix(kv, "GOARCH=")
	})
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	found, _ := filepath.Glob(filepath.Join(dir, "*."+format))
	if len(found) != 1 {
		t.Fatalf("make %s wrote %d .%s files in %s: %q", format, len(found), format, dir, found)
	}
	t.Logf("make %s: %s in %v", format, filepath.Base(found[0]), time.Since(start).Round(time.Millisecond))
	return found[0]
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestPackagesReproducible: `make deb` and `make rpm` run twice, in
// different output directories and under different umasks, give
// byte-identical packages.
func TestPackagesReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four packages; skipped with -short")
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	sums := map[string][]string{}
	for i, umask := range []int{0o022, 0o077} {
		old := syscall.Umask(umask)
		for _, format := range []string{"deb", "rpm"} {
			p := makePackage(t, format, dirs[i])
			sums[format] = append(sums[format], filepath.Base(p)+" "+sha256File(t, p))
		}
		syscall.Umask(old)
	}
	for format, s := range sums {
		t.Logf("%s: %s | %s", format, s[0], s[1])
		if s[0] != s[1] {
			t.Errorf("two builds of the %s differ:\n%s\n%s", format, s[0], s[1])
		}
	}
}

// Versions of the two builds of the lifecycle test; the second is higher.
const (
	lifecycleV1 = "0.1.0+pkgtest1"
	lifecycleV2 = "0.1.0+pkgtest2"
)

// childEnv carries the work directory to the re-executed test binary that
// runs the lifecycle in its own mount namespace.
const childEnv = "OPSAGENT_PKGTEST_ROOT"

// TestPackageLifecycle builds two .debs (lifecycleV1, lifecycleV2) and
// checks, in a throwaway root (an overlay over / in a private mount
// namespace, chrooted into; the host's file system and package database are
// never written), what Debian policy and issue 19 ask of them: apt-get
// install puts the files with their modes and conffiles, enables the unit,
// asks to start it, and makes no baseline; agent init and check work with an
// edited conffile; the upgrade keeps the conffile, the baseline and the
// admin's disabled unit, asks to stop and start the service, and the apt
// hook explains the new binary; a tampered binary is a package-mismatch;
// dpkg -r keeps the conffiles and the baseline; dpkg -P removes everything.
//
// Service requests are observed through /usr/sbin/policy-rc.d, which
// deb-systemd-invoke asks before every start and stop: the test's one logs
// them and answers 101 (do not run), as in image builds. /run/systemd/system
// exists in the throwaway root so the maintainer scripts take the "systemd
// runs" path.
func TestPackageLifecycle(t *testing.T) {
	if work := os.Getenv(childEnv); work != "" {
		lifecycleChild(t, work)
		return
	}
	if testing.Short() {
		t.Skip("builds two packages; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts an overlay over / in a private mount namespace and chroots into it")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "apt-get", "deb-systemd-helper", "deb-systemd-invoke", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian packages dpkg, apt, init-system-helpers, systemd)", tool)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "agent").Output(); err == nil && strings.Contains(string(out), " installed") {
		t.Skip("a package named agent is installed on this host: the throwaway root would start with it")
	}
	work := t.TempDir()
	for i, v := range []string{lifecycleV1, lifecycleV2} {
		p := makePackage(t, "deb", filepath.Join(work, fmt.Sprint("build", i+1)), "PKG_VERSION="+v)
		if err := os.Rename(p, filepath.Join(work, fmt.Sprintf("v%d.deb", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	runChild(t, "TestPackageLifecycle", childEnv, work)
}

// runChild re-runs the test name of this binary with env=work in a new
// mount namespace, where it builds and uses its throwaway root, and passes
// on its failure or skip.
func runChild(t *testing.T, name, env, work string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+work)
	// A new mount namespace for the child; Go makes its / private (MS_REC),
	// so no mount of the child reaches the host and all go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s in the throwaway root: %v", name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	if i := bytes.Index(out, []byte("--- SKIP: "+name)); i >= 0 {
		t.Skipf("%s skipped:\n%s", name, out[i:])
	}
	if testing.Verbose() {
		t.Logf("%s output:\n%s", name, out)
	}
}

// chroot is the throwaway root of the lifecycle child.
type chroot struct {
	t    *testing.T
	root string
}

// mountRoot makes the throwaway root under work: a tmpfs for the overlay's
// upper layer, the overlay (lower: /) at work/root, /dev bound into it, a new
// /proc, and tmpfs on /tmp and /run.
func mountRoot(t *testing.T, work string) *chroot {
	layers := filepath.Join(work, "layers")
	root := filepath.Join(work, "root")
	for _, d := range []string{layers, root} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mount("tmpfs", layers, "tmpfs", 0, "mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs in a private mount namespace: %v", err)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(layers, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=/,upperdir=" + filepath.Join(layers, "upper") + ",workdir=" + filepath.Join(layers, "work")
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount an overlay over / (kernel without overlayfs, or / unfit as its lower layer): %v", err)
	}
	mounts := []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"/dev", "dev", "", syscall.MS_BIND | syscall.MS_REC, ""},
		{"proc", "proc", "proc", 0, ""},
		{"tmpfs", "tmp", "tmpfs", 0, "mode=1777"},
		{"tmpfs", "run", "tmpfs", 0, "mode=0755"},
	}
	for _, m := range mounts {
		if err := syscall.Mount(m.src, filepath.Join(root, m.dst), m.fstype, m.flags, m.data); err != nil {
			t.Fatalf("mount %s on %s: %v", m.src, m.dst, err)
		}
	}
	return &chroot{t: t, root: root}
}

// run runs argv in the throwaway root and returns its combined output and
// exit status; an error to start it fails the test.
func (c *chroot) run(argv ...string) (string, int) {
	c.t.Helper()
	// The command is looked up in the throwaway root's PATH, not the host's.
	path := argv[0]
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if fi, err := os.Stat(c.path(filepath.Join(dir, argv[0]))); !strings.Contains(argv[0], "/") && err == nil && fi.Mode().IsRegular() {
			path = filepath.Join(dir, argv[0])
			break
		}
	}
	cmd := &exec.Cmd{Path: path, Args: argv}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: c.root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		c.t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	return string(out), 0
}

// must runs argv and fails the test unless it exits with one of codes
// (default 0).
func (c *chroot) must(argv []string, codes ...int) string {
	c.t.Helper()
	if len(codes) == 0 {
		codes = []int{0}
	}
	out, rc := c.run(argv...)
	if !slices.Contains(codes, rc) {
		c.t.Fatalf("%s: exit %d, want %v\n%s", strings.Join(argv, " "), rc, codes, out)
	}
	return out
}

func (c *chroot) path(p string) string { return filepath.Join(c.root, p) }

func (c *chroot) write(p string, data string, mode fs.FileMode) {
	c.t.Helper()
	if err := os.MkdirAll(filepath.Dir(c.path(p)), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.path(p), []byte(data), mode); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chmod(c.path(p), mode); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chroot) read(p string) string {
	c.t.Helper()
	b, err := os.ReadFile(c.path(p))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func (c *chroot) exists(p string) bool {
	_, err := os.Lstat(c.path(p))
	return err == nil
}

// mode checks the type and permission bits of p.
func (c *chroot) mode(p string, want fs.FileMode) {
	c.t.Helper()
	fi, err := os.Lstat(c.path(p))
	if err != nil {
		c.t.Errorf("%s: %v", p, err)
		return
	}
	if got := fi.Mode() & (fs.ModeType | fs.ModePerm); got != want {
		c.t.Errorf("%s: mode %v, want %v", p, got, want)
	}
}

// policyLog returns and clears what the logging policy-rc.d recorded.
func (c *chroot) policyLog() string {
	c.t.Helper()
	b, err := os.ReadFile(c.path(policyLog))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(c.path(policyLog), nil, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

const (
	policyLog = "/run/policy-rc.d.log"
	unitLink  = "/etc/systemd/system/multi-user.target.wants/agent.service"
	// The test's agent.conf: the edit of the conffile. It scans a small
	// tree and the agent's own package files, which a package build does not
	// exclude.
	testConf = `# agent.conf of the package lifecycle test
NORMAL = p+u+g+s+md5+sha256
/srv/pkgtest NORMAL
/usr/sbin/agent$ NORMAL
/etc/agent NORMAL
`
)

// lifecycleChild runs in the re-executed test binary, alone in its mount
// namespace.
func lifecycleChild(t *testing.T, work string) {
	c := mountRoot(t, work)
	// The throwaway root starts from the host's /: leftovers of a source
	// install there would meet the package's conffiles.
	for _, p := range []string{"/etc/agent", "/var/lib/agent", "/var/log/agent", "/usr/sbin/agent", unitLink,
		"/var/lib/systemd/deb-systemd-helper-enabled/agent.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/agent.service",
		"/var/lib/systemd/deb-systemd-helper-masked/agent.service"} {
		if err := os.RemoveAll(c.path(p)); err != nil {
			t.Fatal(err)
		}
	}
	c.write("/usr/sbin/policy-rc.d", "#!/bin/sh\necho \"$*\" >>"+policyLog+"\nexit 101\n", 0o755)
	if err := os.MkdirAll(c.path("/run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		b, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("v%d.deb", i)))
		if err != nil {
			t.Fatal(err)
		}
		c.write(fmt.Sprintf("/tmp/v%d/agent.deb", i), string(b), 0o644)
	}

	// Install.
	out := c.must([]string{"apt-get", "install", "-y", "--no-install-recommends", "/tmp/v1/agent.deb"})
	if !strings.Contains(out, "record one with: agent init") {
		t.Errorf("the install does not say how to make a baseline:\n%s", out)
	}
	if got := c.policyLog(); got != "agent.service start\n" {
		t.Errorf("service requests on install: %q, want a start", got)
	}
	if v := c.must([]string{"agent", "--version"}); !strings.HasPrefix(v, "agent version "+lifecycleV1+"\n") ||
		!strings.Contains(v, "\ngo: go") || !strings.Contains(v, "\ncommit: ") {
		t.Errorf("agent --version:\n%s", v)
	}
	for p, m := range map[string]fs.FileMode{
		"/usr/sbin/agent":                              0o755,
		"/usr/share/man/man8/agent.8.gz":               0o644,
		"/usr/share/bash-completion/completions/agent": 0o644,
		"/usr/share/doc/agent/copyright":               0o644,
		"/usr/share/doc/agent/changelog.gz":            0o644,
		"/usr/share/agent/examples/cron.d/agent":       0o644,
		"/etc/agent/agent.conf":                        0o600,
		"/etc/agent/sshval.conf":                       0o644,
		"/etc/agent/vbladed.conf":                      0o644,
		"/etc/logrotate.d/agent":                       0o644,
		"/etc/apt/apt.conf.d/99agent":                  0o644,
		"/lib/systemd/system/agent.service":            0o644,
		"/var/lib/agent":                               fs.ModeDir | 0o700,
		"/var/log/agent":                               fs.ModeDir | 0o755,
		unitLink:                                       fs.ModeSymlink | 0o777,
	} {
		c.mode(p, m)
	}
	for _, p := range []string{"/usr/share/man/man8/agent.8.gz", "/usr/share/doc/agent/changelog.gz"} {
		if b := c.read(p); !strings.HasPrefix(b, "\x1f\x8b") {
			t.Errorf("%s is not gzipped", p)
		}
	}
	if dst, err := os.Readlink(c.path(unitLink)); err != nil || dst != "/lib/systemd/system/agent.service" {
		t.Errorf("%s -> %q (%v)", unitLink, dst, err)
	}
	conffiles := c.must([]string{"dpkg-query", "-W", "-f=${Conffiles}", "agent"})
	for _, p := range []string{"/etc/agent/agent.conf", "/etc/agent/sshval.conf", "/etc/agent/vbladed.conf",
		"/etc/logrotate.d/agent", "/etc/apt/apt.conf.d/99agent"} {
		if !strings.Contains(conffiles, " "+p+" ") {
			t.Errorf("%s is not a conffile:\n%s", p, conffiles)
		}
	}
	if ents, err := os.ReadDir(c.path("/var/lib/agent")); err != nil || len(ents) != 0 {
		t.Errorf("the install wrote into /var/lib/agent (%v): %v", err, ents)
	}

	// Edit the conffile, make a baseline, check.
	c.write("/etc/agent/agent.conf", testConf, 0o600)
	for i := range 5 {
		c.write(fmt.Sprintf("/srv/pkgtest/f%d", i), fmt.Sprintf("file %d\n", i), 0o644)
	}
	c.must([]string{"agent", "--quiet", "init"})
	c.mode("/var/lib/agent/baseline.db", 0o600)
	c.must([]string{"agent", "--quiet", "check"})

	// The admin disables the unit; the upgrade must leave it disabled.
	c.must([]string{"systemctl", "--root=/", "--quiet", "disable", "agent.service"})
	if c.exists(unitLink) {
		t.Fatalf("systemctl disable left %s", unitLink)
	}

	// Upgrade. The apt hook accepts the package's changes (the new binary).
	c.must([]string{"apt-get", "install", "-y", "--no-install-recommends", "/tmp/v2/agent.deb"})
	if got := c.policyLog(); got != "agent.service stop\nagent.service start\n" {
		t.Errorf("service requests on upgrade: %q, want a stop then a start", got)
	}
	if v := c.must([]string{"agent", "--version"}); !strings.HasPrefix(v, "agent version "+lifecycleV2+"\n") {
		t.Errorf("agent --version after the upgrade:\n%s", v)
	}
	if got := c.read("/etc/agent/agent.conf"); got != testConf {
		t.Errorf("the upgrade replaced the edited conffile:\n%s", got)
	}
	c.mode("/etc/agent/agent.conf", 0o600)
	if c.exists(unitLink) {
		t.Errorf("the upgrade enabled the unit the admin had disabled")
	}
	// Clean: the baseline and the tree are the same, and the apt hook took
	// the new binary into the baseline as a package change.
	c.must([]string{"agent", "--quiet", "check"})

	// A trojaned agent binary: the scan sees it, the dpkg record does not
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
		!strings.Contains(out, "/usr/sbin/agent: content differs from the md5 that agent "+lifecycleV2+" recorded") {
		t.Errorf("a tampered /usr/sbin/agent is not reported as a package mismatch:\n%s", out)
	}

	// Remove: the conffiles and the baseline stay.
	c.must([]string{"dpkg", "-r", "agent"})
	if got := c.policyLog(); got != "agent.service stop\n" {
		t.Errorf("service requests on remove: %q, want a stop", got)
	}
	if c.exists("/usr/sbin/agent") {
		t.Errorf("dpkg -r left /usr/sbin/agent")
	}
	for _, p := range []string{"/etc/agent/agent.conf", "/var/lib/agent/baseline.db"} {
		if !c.exists(p) {
			t.Errorf("dpkg -r removed %s", p)
		}
	}
	if st := c.must([]string{"dpkg-query", "-W", "-f=${Status}", "agent"}); st != "deinstall ok config-files" {
		t.Errorf("status after dpkg -r: %q", st)
	}

	// Purge: everything goes.
	c.must([]string{"dpkg", "-P", "agent"})
	for _, p := range []string{"/etc/agent", "/var/lib/agent", "/var/log/agent", "/etc/logrotate.d/agent",
		"/etc/apt/apt.conf.d/99agent", "/lib/systemd/system/agent.service", "/usr/share/doc/agent", unitLink,
		"/var/lib/systemd/deb-systemd-helper-enabled/agent.service.dsh-also"} {
		if c.exists(p) {
			t.Errorf("dpkg -P left %s", p)
		}
	}
	if out, rc := c.run("dpkg-query", "-W", "-f=${Status}", "agent"); rc == 0 && strings.Contains(out, "installed") {
		t.Errorf("status after dpkg -P: %q", out)
	}
}

// lintianKept are the lintian warnings the .deb keeps on purpose; README.md
// ("Install from the package") gives the reason for each.
var lintianKept = []string{
	"W: agent: non-standard-dir-perm 0700 != 0755 [var/lib/agent/]",
	"W: agent: non-standard-file-perm 0600 != 0644 [etc/agent/agent.conf]",
	"W: agent: uses-dpkg-database-directly [usr/sbin/agent]",
}

// TestLintian: lintian (pedantic) reports no error on the .deb and no
// warning but the ones README.md lists.
func TestLintian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package; skipped with -short")
	}
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		t.Skip("lintian is not installed (apt-get install lintian)")
	}
	deb := makePackage(t, "deb", t.TempDir())
	// --fail-on none: a non-zero exit is lintian's own failure; the tags
	// are judged below.
	cmd := exec.Command(lintian, "--fail-on", "none", "--pedantic", "--display-info", "--show-overrides",
		"--tag-display-limit", "0", deb)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lintian: %v\n%s%s", err, out, stderrOf(err))
	}
	t.Logf("lintian:\n%s", out)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(l, "E: "):
			t.Errorf("lintian error: %s", l)
		case strings.HasPrefix(l, "W: ") && !slices.Contains(lintianKept, l):
			t.Errorf("lintian warning that README.md does not list: %s", l)
		}
	}
}

// rpmlintKept are the rpmlint warnings the .rpm keeps on purpose; README.md
// ("Install from the package") gives the reason for each, and for each error
// packaging/rpmlintrc filters.
var rpmlintKept = []string{
	"agent.x86_64: W: position-independent-executable-suggested /usr/sbin/agent",
	"agent.x86_64: W: only-non-binary-in-usr-lib",
	"agent.x86_64: W: no-url-tag",
	"agent.x86_64: W: no-manual-page-for-binary agent",
	"agent.x86_64: W: manpage-not-compressed bz2 /usr/share/man/man8/agent.8.gz",
	"agent.x86_64: W: invalid-license see /usr/share/doc/agent/copyright",
}

// TestRpmlint: rpmlint, with the filters of packaging/rpmlintrc, reports
// no error on the .rpm and no warning but the ones README.md lists.
func TestRpmlint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package; skipped with -short")
	}
	rpmlint, err := exec.LookPath("rpmlint")
	if err != nil {
		t.Skip("rpmlint is not installed (apt-get install rpmlint)")
	}
	rpm := makePackage(t, "rpm", t.TempDir(), "GOARCH=amd64")
	// rpmlint exits non-zero on errors; the lines are judged below.
	out, err := exec.Command(rpmlint, "-r", "rpmlintrc", rpm).Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("rpmlint: %v", err)
	}
	t.Logf("rpmlint:\n%s", out)
	summary := false
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.Contains(l, ": E: "):
			t.Errorf("rpmlint error: %s", l)
		case strings.Contains(l, ": W: ") && !slices.Contains(rpmlintKept, l):
			t.Errorf("rpmlint warning that README.md does not list: %s", l)
		case strings.Contains(l, " packages and ") && strings.Contains(l, " 0 errors,"):
			summary = true
		}
	}
	if !summary {
		t.Errorf("rpmlint did not say it checked the package with 0 errors:\n%s%s", out, stderrOf(err))
	}
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}
