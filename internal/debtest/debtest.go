// Package debtest builds small Debian packages with dpkg-deb and installs,
// upgrades and removes them with the real dpkg in a root directory of the
// test's own (its own admin dir and log; maintainer scripts run outside a
// chroot with $DPKG_ROOT set). It is for tests only.
package debtest

import (
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// Deb is a package a test builds.
type Deb struct {
	Name, Version, Arch string // Arch "" means all
	MultiArchSame       bool
	Files               map[string]string // absolute path → content
	Conffiles           []string
	Postinst            string // script body after "#!/bin/sh\nset -e\n"
	// MD5Sums ships DEBIAN/md5sums for the files that are not conffiles,
	// as dh_md5sums does (dpkg-deb alone ships none).
	MD5Sums bool
}

// Host is a root directory dpkg installs into.
type Host struct {
	t    testing.TB
	Root string
	debs string
}

// NewHost makes an empty dpkg root, merged-/usr (bin, sbin, lib linked to
// usr/) when merged is set. It skips the test where dpkg cannot run.
func NewHost(t testing.TB, merged bool) *Host {
	t.Helper()
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-divert", "dpkg-statoverride"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package dpkg): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("installing into a dpkg root needs root (file ownership)")
	}
	h := &Host{t: t, Root: filepath.Join(t.TempDir(), "root"), debs: t.TempDir()}
	for _, dir := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "usr/bin", "usr/sbin", "usr/lib", "etc"} {
		if err := os.MkdirAll(filepath.Join(h.Root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(h.Root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if merged {
		for _, d := range []string{"bin", "sbin", "lib"} {
			if err := os.Symlink("usr/"+d, filepath.Join(h.Root, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

// Build writes p's tree and makes p's .deb; it returns the .deb's path.
func (h *Host) Build(p Deb) string {
	h.t.Helper()
	arch := p.Arch
	if arch == "" {
		arch = "all"
	}
	dir := filepath.Join(h.debs, p.Name+"_"+p.Version+"_"+arch)
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <test@example.org>\nDescription: opsagent test package\n", p.Name, p.Version, arch)
	if p.MultiArchSame {
		ctl += "Multi-Arch: same\n"
	}
	files := map[string]string{"DEBIAN/control": ctl}
	if len(p.Conffiles) > 0 {
		files["DEBIAN/conffiles"] = strings.Join(p.Conffiles, "\n") + "\n"
	}
	var sums []string
	for path, content := range p.Files {
		files[strings.TrimPrefix(path, "/")] = content
		if !slices.Contains(p.Conffiles, path) {
			sums = append(sums, fmt.Sprintf("%x  %s\n", md5.Sum([]byte(content)), strings.TrimPrefix(path, "/")))
		}
	}
	if p.MD5Sums {
		sort.Strings(sums)
		files["DEBIAN/md5sums"] = strings.Join(sums, "")
	}
	for rel, content := range files {
		full := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	if p.Postinst != "" {
		if err := os.WriteFile(filepath.Join(dir, "DEBIAN/postinst"), []byte("#!/bin/sh\nset -e\n"+p.Postinst), 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	out := dir + ".deb"
	h.Run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", dir, out)
	return out
}

// Run runs a dpkg tool and fails the test with its output on error.
func (h *Host) Run(tool string, args ...string) {
	h.t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// Dpkg runs dpkg on the root and returns the window it ran in, widened to
// whole seconds as dpkg.log records them.
func (h *Host) Dpkg(args ...string) (from, to time.Time) {
	h.t.Helper()
	from = time.Now().Truncate(time.Second)
	h.Run("dpkg", append([]string{"--root=" + h.Root, "--log=" + h.Log(), "--force-script-chrootless"}, args...)...)
	return from, time.Now()
}

// Log is the root's dpkg.log.
func (h *Host) Log() string { return filepath.Join(h.Root, "var/log/dpkg.log") }
