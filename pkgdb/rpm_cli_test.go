package pkgdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rpmSpecs are the packages the real-rpm test builds: alpha ships a
// config file, a script, a mode-0640 file, a directory, a symlink, a path
// with a space and a ghost, and its %post (Lua, so that the empty root
// needs no shell) writes a file no package owns; beta is upgraded from 1.0
// to 2.0, which changes one file and drops another; gamma is removed.
var rpmSpecs = map[string]string{
	"alpha-1.0": `Name: alpha
Version: 1.0
Release: 1
Summary: alpha
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
alpha
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/alpha %{buildroot}/usr/share/alpha %{buildroot}/var/lib/alpha
printf '#!/bin/sh\necho alpha\n' > %{buildroot}/usr/bin/alpha
chmod 0755 %{buildroot}/usr/bin/alpha
echo 'setting=1' > %{buildroot}/etc/alpha/alpha.conf
echo 'data' > %{buildroot}/usr/share/alpha/data
echo 'spaced' > '%{buildroot}/usr/share/alpha/with space'
ln -s ../../bin/alpha %{buildroot}/usr/share/alpha/link
%post -p <lua>
local f = io.open("/var/lib/alpha/state", "w")
f:write("made by post\n")
f:close()
%files
%config(noreplace) /etc/alpha/alpha.conf
/usr/bin/alpha
%dir /usr/share/alpha
%attr(0640,root,root) /usr/share/alpha/data
"/usr/share/alpha/with space"
/usr/share/alpha/link
%dir /var/lib/alpha
%ghost /var/lib/alpha/alpha.log
`,
	"beta-1.0": betaSpec("1.0", "/usr/share/beta/old"),
	"beta-2.0": betaSpec("2.0", "/usr/share/beta/new"),
	"gamma-1.0": `Name: gamma
Version: 1.0
Release: 1
Summary: gamma
License: MIT
BuildArch: noarch
AutoReqProv: no
%description
gamma
%install
mkdir -p %{buildroot}/usr/lib/gamma
echo gamma > %{buildroot}/usr/lib/gamma/g.txt
%files
/usr/lib/gamma
`,
}

func betaSpec(version, extra string) string {
	return fmt.Sprintf(`Name: beta
Version: %[1]s
Release: 1
Summary: beta
License: MIT
BuildArch: noarch
AutoReqProv: no
%%description
beta
%%install
mkdir -p %%{buildroot}/usr/bin %%{buildroot}/usr/share/beta
echo 'beta %[1]s' > %%{buildroot}/usr/bin/beta
chmod 0755 %%{buildroot}/usr/bin/beta
echo '%[2]s' > %%{buildroot}%[2]s
%%files
/usr/bin/beta
%%dir /usr/share/beta
%[2]s
`, version, extra)
}

// rpmFixture is a root with a real rpm database in it.
type rpmFixture struct {
	t      *testing.T
	dir    string // scratch: topdir, HOME, build database
	root   string
	dbpath string // inside root
	rpm    string
	rpms   map[string]string // spec key -> built package
}

func newRPMFixture(t *testing.T) *rpmFixture {
	t.Helper()
	rpmBin, err := exec.LookPath("rpm")
	if err != nil {
		t.Skip("rpm is not installed (Debian package rpm)")
	}
	rpmbuild, err := exec.LookPath("rpmbuild")
	if err != nil {
		t.Skip("rpmbuild is not installed (Debian package rpm)")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing into a --root needs root: rpm chroots for scriptlets")
	}
	dir := t.TempDir()
	fx := &rpmFixture{t: t, dir: dir, dbpath: "/var/lib/rpm", rpm: rpmBin, rpms: map[string]string{}}
	keys := make([]string, 0, len(rpmSpecs))
	for k := range rpmSpecs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	top := filepath.Join(dir, "top")
	// No dependency generators, file checks or brp post-processing: the
	// packages hold no binaries, and those are most of rpmbuild's time.
	args := []string{"--quiet", "--dbpath", filepath.Join(dir, "builddb"), "--define", "_topdir " + top,
		"--define", "__os_install_post %{nil}", "--define", "__check_files %{nil}", "--define", "_build_id_links none", "-bb"}
	for _, k := range keys {
		spec := filepath.Join(dir, k+".spec")
		if err := os.WriteFile(spec, []byte(rpmSpecs[k]), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, spec)
		name, version, _ := strings.Cut(k, "-")
		fx.rpms[k] = filepath.Join(top, "RPMS", "noarch", name+"-"+version+"-1.noarch.rpm")
	}
	fx.run(rpmbuild, args...)
	return fx
}

// newRoot makes fx work on a new, empty merged-/usr root (/bin is a link to
// usr/bin) with an empty rpm database, for test t.
func (fx *rpmFixture) newRoot(t *testing.T, name string) {
	t.Helper()
	fx.t = t
	fx.root = filepath.Join(fx.dir, name)
	if err := os.MkdirAll(filepath.Join(fx.root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(fx.root, "bin")); err != nil {
		t.Fatal(err)
	}
	fx.run(fx.rpm, "--root", fx.root, "--dbpath", fx.dbpath, "--initdb")
}

// run runs an rpm tool with a private HOME, so nothing lands in ~/.rpmdb.
func (fx *rpmFixture) run(bin string, args ...string) {
	fx.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + fx.dir}
	out, err := cmd.CombinedOutput()
	if err != nil {
		fx.t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
}

func (fx *rpmFixture) rpmOp(args ...string) {
	fx.t.Helper()
	fx.run(fx.rpm, append([]string{"--root", fx.root, "--dbpath", fx.dbpath, "--nodeps"}, args...)...)
}

func (fx *rpmFixture) open() *RPM {
	fx.t.Helper()
	db, err := OpenRPM(context.Background(), RPMOptions{Binary: fx.rpm, Root: fx.root, DBPath: fx.dbpath, Timeout: time.Minute})
	if err != nil {
		fx.t.Fatal(err)
	}
	return db
}

// waitNextSecond sleeps into the next wall-clock second: rpm's transaction
// ids have second resolution, and two transactions in one second share one.
func waitNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
}

// TestRPMRealDatabase builds the packages once and runs each scenario in
// its own root: rpmbuild is most of the test's time.
func TestRPMRealDatabase(t *testing.T) {
	fx := newRPMFixture(t)
	t.Run("installed", func(t *testing.T) { testRPMInstalled(t, fx) })
	t.Run("dnf log", func(t *testing.T) { testRPMDNFLog(t, fx) })
}

func testRPMInstalled(t *testing.T, fx *rpmFixture) {
	fx.newRoot(t, "installed")
	start := time.Now().Truncate(time.Second)
	fx.rpmOp("-i", fx.rpms["alpha-1.0"], fx.rpms["gamma-1.0"])
	waitNextSecond()
	fx.rpmOp("-i", fx.rpms["beta-1.0"])
	waitNextSecond()
	mid := time.Now().Truncate(time.Second)
	fx.rpmOp("-U", fx.rpms["beta-2.0"])
	fx.rpmOp("-e", "gamma")
	db := fx.open()

	if db.Backend() != "rpm" {
		t.Errorf("Backend() = %q", db.Backend())
	}
	t.Run("packages", func(t *testing.T) {
		for name, want := range map[string]string{"alpha": "1.0-1", "beta": "2.0-1"} {
			p, ok := db.Package(name)
			if !ok || p.Version != want || p.Arch != "noarch" || p.Installed.Before(start) {
				t.Errorf("Package(%s) = %+v, %v, want version %s installed after %v", name, p, ok, want, start)
			}
		}
		if p, ok := db.Package("gamma"); ok {
			t.Errorf("removed gamma still found: %+v", p)
		}
	})
	t.Run("digests match the installed files", func(t *testing.T) {
		for _, p := range []string{"/usr/bin/alpha", "/etc/alpha/alpha.conf", "/usr/share/alpha/data", "/usr/share/alpha/with space", "/usr/bin/beta", "/usr/share/beta/new"} {
			owners := db.Owners(p)
			if len(owners) != 1 {
				t.Errorf("Owners(%q) = %+v, want one record", p, owners)
				continue
			}
			b, err := os.ReadFile(filepath.Join(fx.root, p))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			f := owners[0]
			if f.DigestAlgo != "sha256" || !bytes.Equal(f.Digest, sum[:]) || f.Size != int64(len(b)) {
				t.Errorf("%s: recorded %s %x size %d, on disk sha256 %x size %d", p, f.DigestAlgo, f.Digest, f.Size, sum, len(b))
			}
		}
	})
	t.Run("metadata", func(t *testing.T) {
		for _, tc := range []struct {
			path     string
			pkg      string
			mode     fs.FileMode
			conffile bool
			link     string
		}{
			{"/etc/alpha/alpha.conf", "alpha", 0o644, true, ""},
			{"/usr/bin/alpha", "alpha", 0o755, false, ""},
			{"/usr/share/alpha/data", "alpha", 0o640, false, ""},
			{"/usr/share/alpha", "alpha", fs.ModeDir | 0o755, false, ""},
			{"/usr/share/alpha/link", "alpha", fs.ModeSymlink | 0o777, false, "../../bin/alpha"},
			{"/usr/bin/beta", "beta", 0o755, false, ""},
		} {
			owners := db.Owners(tc.path)
			if len(owners) != 1 {
				t.Errorf("Owners(%q) = %+v, want one record", tc.path, owners)
				continue
			}
			f := owners[0]
			if f.Package != tc.pkg || !f.HasMeta || f.Mode != tc.mode || f.Conffile != tc.conffile || f.LinkTarget != tc.link || f.Owner != "root" || f.Group != "root" {
				t.Errorf("%s: got %+v, want package %s mode %v conffile %v link %q owned by root:root", tc.path, f, tc.pkg, tc.mode, tc.conffile, tc.link)
			}
			if f.Mode.IsRegular() == (f.Digest == nil) {
				t.Errorf("%s: digest %x on mode %v", tc.path, f.Digest, f.Mode)
			}
		}
		if g := db.Owners("/var/lib/alpha/alpha.log"); len(g) != 1 || g[0].Digest != nil {
			t.Errorf("ghost: got %+v, want one record without digest", g)
		}
	})
	t.Run("default dbpath", func(t *testing.T) {
		// Without DBPath, a root's database at /var/lib/rpm is found even
		// where the rpm that runs defaults elsewhere (Debian: ~/.rpmdb).
		db, err := OpenRPM(context.Background(), RPMOptions{Binary: fx.rpm, Root: fx.root, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := db.Package("beta"); !ok || p.Version != "2.0-1" {
			t.Errorf("Package(beta) = %+v, %v", p, ok)
		}
	})
	t.Run("merged usr", func(t *testing.T) {
		if o := db.Owners("/bin/alpha"); len(o) != 1 || o[0].Path != "/usr/bin/alpha" || o[0].Package != "alpha" {
			t.Errorf("Owners(/bin/alpha) = %+v, want the record of /usr/bin/alpha", o)
		}
		if o := db.Owners("/bin/../bin/beta"); len(o) != 1 || o[0].Package != "beta" {
			t.Errorf("Owners(/bin/../bin/beta) = %+v", o)
		}
	})
	t.Run("upgrade and removal", func(t *testing.T) {
		for _, p := range []string{"/usr/share/beta/old", "/usr/lib/gamma/g.txt", "/usr/lib/gamma", "/var/lib/alpha/state"} {
			if o := db.Owners(p); len(o) != 0 {
				t.Errorf("Owners(%q) = %+v, want none", p, o)
			}
		}
		var paths []string
		for _, f := range db.Files("beta") {
			paths = append(paths, f.Path)
		}
		sort.Strings(paths)
		if want := "/usr/bin/beta /usr/share/beta /usr/share/beta/new"; strings.Join(paths, " ") != want {
			t.Errorf("Files(beta) = %v, want %s", paths, want)
		}
		if n := len(db.Files("alpha")); n != 8 {
			t.Errorf("Files(alpha) has %d records, want 8", n)
		}
		if f := db.Files("gamma"); f != nil {
			t.Errorf("Files(gamma) = %+v, want none", f)
		}
	})
	t.Run("runs", func(t *testing.T) {
		runs := db.Runs(time.Time{})
		// alpha's run (gamma, installed with it, is gone) and beta's
		// upgrade; the run of beta 1.0 left no trace in the database.
		if len(runs) != 2 {
			t.Fatalf("got %d runs %+v, want 2", len(runs), runs)
		}
		if o := runs[0].Ops; len(o) != 1 || o[0].Package != "alpha" || o[0].NewVersion != "1.0-1" || o[0].Action != ActionInstall {
			t.Errorf("first run ops %+v, want alpha 1.0-1 installed", o)
		}
		if o := runs[1].Ops; len(o) != 1 || o[0].Package != "beta" || o[0].NewVersion != "2.0-1" {
			t.Errorf("second run ops %+v, want beta 2.0-1", o)
		}
		// The file alpha's %post wrote changed inside alpha's run.
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(fx.root, "var/lib/alpha/state"), &st); err != nil {
			t.Fatal(err)
		}
		ctime := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		if ctime.Before(runs[0].Start) || ctime.After(runs[0].End) {
			t.Errorf("%%post output changed at %v, outside alpha's run %v..%v", ctime, runs[0].Start, runs[0].End)
		}
		if got := db.Runs(mid); len(got) != 1 || got[0].Ops[0].Package != "beta" {
			t.Errorf("Runs(%v) = %+v, want only beta's upgrade", mid, got)
		}
	})
	t.Run("records", func(t *testing.T) {
		ents, err := os.ReadDir(filepath.Join(fx.root, fx.dbpath))
		if err != nil || len(ents) == 0 {
			t.Fatalf("database directory: %v, %d entries", err, len(ents))
		}
		for _, e := range ents {
			if pkg, ok := db.Records(filepath.Join(fx.dbpath, e.Name())); !ok || pkg != "" {
				t.Errorf("Records(%s) = %q, %v, want a shared record", e.Name(), pkg, ok)
			}
		}
		for _, p := range []string{"/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages"} {
			if _, ok := db.Records(p); !ok {
				t.Errorf("Records(%s) = false", p)
			}
		}
		for _, p := range []string{"/usr/bin/alpha", "/var/lib/rpmx", "/var/lib/rpm"} {
			if _, ok := db.Records(p); ok {
				t.Errorf("Records(%s) = true", p)
			}
		}
		if _, ok := db.StatOverride("/usr/bin/alpha"); ok {
			t.Error("StatOverride found an override, rpm has none")
		}
	})
}

// testRPMDNFLog checks that a dnf log next to the database turns the
// database's view of beta's upgrade into an upgrade from 1.0-1, and adds
// gamma's removal that the database cannot know.
func testRPMDNFLog(t *testing.T, fx *rpmFixture) {
	fx.newRoot(t, "dnflog")
	fx.rpmOp("-i", fx.rpms["beta-1.0"], fx.rpms["gamma-1.0"])
	waitNextSecond()
	fx.rpmOp("-U", fx.rpms["beta-2.0"])
	fx.rpmOp("-e", "gamma")
	p, ok := fx.open().Package("beta")
	if !ok {
		t.Fatal("beta not installed")
	}
	stamp := func(d time.Duration) string { return p.Installed.Add(d).UTC().Format("2006-01-02T15:04:05Z0700") }
	log := stamp(-time.Second) + " INFO --- logging initialized ---\n" +
		stamp(0) + " SUBDEBUG Upgrade: beta-2.0-1.noarch\n" +
		stamp(0) + " SUBDEBUG Upgraded: beta-1.0-1.noarch\n" +
		stamp(time.Second) + " SUBDEBUG Erase: gamma-1.0-1.noarch\n"
	logDir := filepath.Join(fx.root, "var/log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logDir, "dnf.rpm.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := fx.open().Runs(p.Installed.Add(-time.Second))
	if len(runs) != 1 {
		t.Fatalf("got runs %+v, want one", runs)
	}
	want := []Operation{
		{Time: p.Installed, Action: ActionUpgrade, Package: "beta", OldVersion: "1.0-1", NewVersion: "2.0-1"},
		{Time: p.Installed.Add(time.Second), Action: ActionRemove, Package: "gamma", OldVersion: "1.0-1"},
	}
	if fmt.Sprint(runs[0].Ops) != fmt.Sprint(want) {
		t.Errorf("got ops %+v, want %+v", runs[0].Ops, want)
	}
	if err := os.WriteFile(filepath.Join(logDir, "dnf.rpm.log.1"), []byte(stamp(0)+" SUBDEBUG Erase: broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenRPM(context.Background(), RPMOptions{Root: fx.root, DBPath: fx.dbpath})
	if !errors.Is(err, ErrDNFLog) || !strings.Contains(err.Error(), "dnf.rpm.log.1:1:") {
		t.Errorf("damaged rotated log: got %v, want an ErrDNFLog naming dnf.rpm.log.1:1", err)
	}
}

func TestRPMOpenErrors(t *testing.T) {
	_, err := OpenRPM(context.Background(), RPMOptions{Binary: filepath.Join(t.TempDir(), "rpm")})
	if !errors.Is(err, ErrRPMAbsent) {
		t.Errorf("missing binary: got %v, want ErrRPMAbsent", err)
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed (Debian package rpm)")
	}
	dir := t.TempDir()
	// rpm -qa would create a database where there is none, and report
	// nothing installed: OpenRPM must refuse before it runs.
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dbpath string }{
		{"missing", filepath.Join(dir, "missing")},
		{"empty", filepath.Join(dir, "empty")},
		{"a file", filepath.Join(dir, "file")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenRPM(context.Background(), RPMOptions{DBPath: tc.dbpath, Log: filepath.Join(dir, "nolog")})
			if !errors.Is(err, ErrRPMAbsent) {
				t.Errorf("got %v, want ErrRPMAbsent", err)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenRPM created the missing database: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "empty")); len(ents) != 0 {
		t.Errorf("OpenRPM wrote into the empty database directory: %v", ents)
	}
	// A damaged database: rpm fails, and the error says it was rpm -qa.
	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "rpmdb.sqlite"), bytes.Repeat([]byte("garbage "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenRPM(context.Background(), RPMOptions{DBPath: bad, Log: filepath.Join(dir, "nolog")})
	if err == nil || !strings.HasPrefix(err.Error(), "rpm -qa: ") {
		t.Errorf("damaged database: got %v, want an rpm -qa error", err)
	}
	t.Logf("damaged database: %v", err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenRPM(ctx, RPMOptions{DBPath: bad}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
