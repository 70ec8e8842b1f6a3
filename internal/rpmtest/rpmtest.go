// Package rpmtest builds small noarch rpm packages with rpmbuild and
// installs, upgrades and removes them with the real rpm in a root
// directory of the test's own, whose database lies at the usual
// /var/lib/rpm inside it. It is for tests only.
package rpmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Pkg is a package a test builds: plain files only.
type Pkg struct {
	Name, Version string
	Files         map[string]string // absolute path → content, without ' % or \
	Config        []string          // paths marked %config(noreplace)
}

// DBPath is where the root's database lies, inside Root.
const DBPath = "/var/lib/rpm"

// Host is a root directory rpm installs into.
type Host struct {
	t        testing.TB
	Root     string
	scratch  string // topdir, HOME, the build database
	rpm      string
	rpmbuild string
}

// NewHost makes a root with an empty database, merged-/usr (bin linked to
// usr/bin) when merged is set. It skips the test where rpm or rpmbuild is
// missing or the test does not run as root.
func NewHost(t testing.TB, merged bool) *Host {
	t.Helper()
	h := &Host{t: t, scratch: t.TempDir()}
	var err error
	if h.rpm, err = exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (Debian package rpm)")
	}
	if h.rpmbuild, err = exec.LookPath("rpmbuild"); err != nil {
		t.Skip("rpmbuild is not installed (Debian package rpm)")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing into an rpm --root needs root: rpm chroots")
	}
	h.Root = filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"usr/bin", "etc", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(h.Root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if merged {
		if err := os.Symlink("usr/bin", filepath.Join(h.Root, "bin")); err != nil {
			t.Fatal(err)
		}
	}
	h.run(h.rpm, "--root", h.Root, "--dbpath", DBPath, "--initdb")
	return h
}

// Build makes every package in one rpmbuild run and returns their paths
// in order.
func (h *Host) Build(pkgs ...Pkg) []string {
	h.t.Helper()
	top := filepath.Join(h.scratch, "top")
	// No dependency generators, file checks or brp post-processing: the
	// packages hold no binaries, and those are most of rpmbuild's time.
	args := []string{"--quiet", "--dbpath", filepath.Join(h.scratch, "builddb"), "--define", "_topdir " + top,
		"--define", "__os_install_post %{nil}", "--define", "__check_files %{nil}", "--define", "_build_id_links none", "-bb"}
	var out []string
	for _, p := range pkgs {
		for f, c := range p.Files {
			if strings.ContainsAny(c, `'%\`) {
				h.t.Fatalf("rpmtest: %s: content of %s has ' %% or \\", p.Name, f)
			}
		}
		spec := filepath.Join(h.scratch, p.Name+"-"+p.Version+".spec")
		if err := os.WriteFile(spec, []byte(p.spec()), 0o644); err != nil {
			h.t.Fatal(err)
		}
		args = append(args, spec)
		out = append(out, filepath.Join(top, "RPMS", "noarch", p.Name+"-"+p.Version+"-1.noarch.rpm"))
	}
	h.run(h.rpmbuild, args...)
	return out
}

// spec writes p's spec file: each file is written by printf, its
// newlines as \n.
func (p Pkg) spec() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name: %s\nVersion: %s\nRelease: 1\nSummary: %s\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n%%description\n%s\n%%install\n", p.Name, p.Version, p.Name, p.Name)
	paths := make([]string, 0, len(p.Files))
	for f := range p.Files {
		paths = append(paths, f)
	}
	sort.Strings(paths)
	for _, f := range paths {
		content := p.Files[f]
		fmt.Fprintf(&b, "mkdir -p %%{buildroot}%s\nprintf '%s' > %%{buildroot}%s\n", filepath.Dir(f), strings.ReplaceAll(content, "\n", `\n`), f)
	}
	b.WriteString("%files\n")
	for _, f := range paths {
		cfg := ""
		for _, c := range p.Config {
			if c == f {
				cfg = "%config(noreplace) "
			}
		}
		b.WriteString(cfg + f + "\n")
	}
	return b.String()
}

// RPM runs rpm on the root (--nodeps) and fails the test on error.
func (h *Host) RPM(args ...string) {
	h.t.Helper()
	h.run(h.rpm, append([]string{"--root", h.Root, "--dbpath", DBPath, "--nodeps"}, args...)...)
}

// run runs an rpm tool with a private HOME, so nothing lands in ~/.rpmdb.
func (h *Host) run(bin string, args ...string) {
	h.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + h.scratch}
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}
