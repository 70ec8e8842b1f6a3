package pkgdb

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"opsagent/internal/debtest"
)

type deb = debtest.Deb

// dpkgHost is a debtest.Host with the backend's own accessors.
type dpkgHost struct {
	*debtest.Host
	t    *testing.T
	root string
}

func newDpkgHost(t *testing.T, merged bool) *dpkgHost {
	t.Helper()
	h := debtest.NewHost(t, merged)
	return &dpkgHost{Host: h, t: t, root: h.Root}
}

func (h *dpkgHost) build(p deb) string                       { h.t.Helper(); return h.Build(p) }
func (h *dpkgHost) run(tool string, args ...string)          { h.t.Helper(); h.Run(tool, args...) }
func (h *dpkgHost) dpkg(args ...string) (from, to time.Time) { h.t.Helper(); return h.Dpkg(args...) }
func (h *dpkgHost) log() string                              { return h.Log() }

func (h *dpkgHost) open() *Dpkg {
	h.t.Helper()
	d, err := OpenDpkg(DpkgOptions{Root: h.root})
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// md5Of is the digest of the file at host path p in the root.
func (h *dpkgHost) md5Of(p string) []byte {
	b, err := os.ReadFile(filepath.Join(h.root, p))
	if err != nil {
		h.t.Fatal(err)
	}
	s := md5.Sum(b)
	return s[:]
}

// owners lists "package@path" of Owners(p), for comparing.
func owners(d *Dpkg, p string) []string {
	var out []string
	for _, f := range d.Owners(p) {
		out = append(out, f.Package+"@"+f.Path)
	}
	return out
}

// TestDpkgInstalledRoot installs, diverts, overrides, upgrades and removes
// real packages in a merged-/usr root and checks every lookup against what
// dpkg did.
func TestDpkgInstalledRoot(t *testing.T) {
	h := newDpkgHost(t, true)
	arch := strings.TrimSpace(func() string {
		out, err := exec.Command("dpkg", "--print-architecture").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}())

	tp10 := h.build(deb{Name: "tp", Version: "1.0",
		Files: map[string]string{
			"/usr/bin/tp":       "tp one\n",
			"/bin/tp-legacy":    "legacy spelling\n",
			"/usr/bin/tp-extra": "dropped in 1.1\n",
			"/etc/tp/tp.conf":   "setting=1\n",
			"/usr/share/tp/a":   "a\n",
		},
		Conffiles: []string{"/etc/tp/tp.conf"},
		Postinst:  "mkdir -p \"$DPKG_ROOT/var/lib/tp\"\necho configured > \"$DPKG_ROOT/var/lib/tp/state\"\n",
	})
	lib := h.build(deb{Name: "tp-lib", Version: "2.0", Arch: arch, MultiArchSame: true,
		Files: map[string]string{"/usr/lib/tp/libtp.so": "elf\n", "/usr/share/tp/b": "b\n"}})
	in1From, in1To := h.dpkg("-i", tp10, lib)

	// tp-divert replaces /usr/bin/tp; the package's own file moves aside.
	h.run("dpkg-divert", "--root="+h.root, "--package", "tp-divert", "--rename",
		"--divert", "/usr/bin/tp.distrib", "--add", "/usr/bin/tp")
	div := h.build(deb{Name: "tp-divert", Version: "0.1",
		Files: map[string]string{"/usr/bin/tp": "diverting tp\n"}})
	h.dpkg("-i", div)
	h.run("dpkg-statoverride", "--root="+h.root, "--add", "root", "root", "4750", "/usr/bin/tp-legacy")

	if _, err := os.Stat(filepath.Join(h.root, "var/lib/tp/state")); err != nil {
		t.Fatalf("postinst did not run: %v", err)
	}
	d := h.open()
	t.Run("owners", func(t *testing.T) {
		for _, tc := range []struct {
			path string
			want []string
		}{
			{"/usr/share/tp", []string{"tp@/usr/share/tp", "tp-lib:" + arch + "@/usr/share/tp"}},
			{"/usr/share/tp/b", []string{"tp-lib:" + arch + "@/usr/share/tp/b"}},
			{"/etc/tp/tp.conf", []string{"tp@/etc/tp/tp.conf"}},
			{"/bin/tp-legacy", []string{"tp@/bin/tp-legacy"}},
			{"/usr/bin/tp-legacy", []string{"tp@/usr/bin/tp-legacy"}}, // merged-/usr
			{"/usr/lib/tp/libtp.so", []string{"tp-lib:" + arch + "@/usr/lib/tp/libtp.so"}},
			{"/lib/tp/libtp.so", []string{"tp-lib:" + arch + "@/lib/tp/libtp.so"}}, // merged-/usr
			{"/usr/bin/tp", []string{"tp-divert@/usr/bin/tp"}},                     // diverted
			{"/usr/bin/tp.distrib", []string{"tp@/usr/bin/tp.distrib"}},            // the original
			{"/var/lib/tp/state", nil},                                             // postinst's
			{"/usr/bin/nothing", nil},
		} {
			if got := owners(d, tc.path); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Owners(%s) = %q, want %q", tc.path, got, tc.want)
			}
		}
	})
	t.Run("digests", func(t *testing.T) {
		// Every file record of every package matches the file dpkg put
		// on disk, diversions resolved.
		n := 0
		for _, pkg := range []string{"tp", "tp-lib", "tp-lib:" + arch, "tp-divert"} {
			for _, f := range d.Files(pkg) {
				if f.Digest == nil {
					continue
				}
				n++
				if got := h.md5Of(f.Path); !bytes.Equal(got, f.Digest) {
					t.Errorf("%s %s: digest %x, file has %x", pkg, f.Path, f.Digest, got)
				}
				if f.DigestAlgo != "md5" {
					t.Errorf("%s %s: algo %q", pkg, f.Path, f.DigestAlgo)
				}
			}
		}
		if n < 8 {
			t.Errorf("only %d digests checked", n)
		}
		conf := d.Owners("/etc/tp/tp.conf")
		if len(conf) != 1 || !conf[0].Conffile || !bytes.Equal(conf[0].Digest, h.md5Of("/etc/tp/tp.conf")) {
			t.Errorf("conffile record %+v", conf)
		}
		if o := d.Owners("/usr/share/tp"); len(o) != 2 || o[0].Digest != nil {
			t.Errorf("directory records %+v", o)
		}
	})
	t.Run("packages", func(t *testing.T) {
		p, ok := d.Package("tp")
		if !ok || p.Version != "1.0" || p.Arch != "all" || p.Status != "install ok installed" {
			t.Errorf("Package(tp) = %+v, %v", p, ok)
		}
		for _, name := range []string{"tp-lib", "tp-lib:" + arch, "tp:all"} {
			if _, ok := d.Package(name); !ok {
				t.Errorf("Package(%s) not found", name)
			}
		}
		if _, ok := d.Package("tp-lib:i386"); ok {
			t.Error("Package(tp-lib:i386) found")
		}
	})
	t.Run("statoverride", func(t *testing.T) {
		want := StatOverride{Path: "/usr/bin/tp-legacy", Owner: "root", Group: "root", Mode: 0o750 | os.ModeSetuid}
		for _, p := range []string{"/usr/bin/tp-legacy", "/bin/tp-legacy"} {
			if got, ok := d.StatOverride(p); !ok || got != want {
				t.Errorf("StatOverride(%s) = %+v, %v, want %+v", p, got, ok, want)
			}
		}
	})
	t.Run("records", func(t *testing.T) {
		for _, tc := range []struct {
			path, pkg string
			ok        bool
		}{
			{"/var/lib/dpkg/status", "", true},
			{"/var/lib/dpkg/diversions", "", true},
			{"/var/lib/dpkg/statoverride", "", true},
			{"/var/lib/dpkg/info/tp.md5sums", "tp", true},
			{"/var/lib/dpkg/info/tp.list", "tp", true},
			{"/var/lib/dpkg/info/tp-lib:" + arch + ".list", "tp-lib:" + arch, true},
			{"/var/lib/dpkg/info/format", "", true},
			{"/var/lib/dpkg", "", true},
			{"/var/lib/dpkgx", "", false},
			{"/var/lib/tp/state", "", false},
		} {
			if pkg, ok := d.Records(tc.path); pkg != tc.pkg || ok != tc.ok {
				t.Errorf("Records(%s) = %q, %v, want %q, %v", tc.path, pkg, ok, tc.pkg, tc.ok)
			}
		}
	})

	// Upgrade tp (its new version drops tp-extra) and remove tp-lib.
	tp11 := h.build(deb{Name: "tp", Version: "1.1",
		Files: map[string]string{
			"/usr/bin/tp":     "tp two\n",
			"/bin/tp-legacy":  "legacy spelling\n",
			"/etc/tp/tp.conf": "setting=1\n",
			"/usr/share/tp/a": "a\n",
		},
		Conffiles: []string{"/etc/tp/tp.conf"},
		Postinst:  "echo upgraded > \"$DPKG_ROOT/var/lib/tp/state\"\n",
	})
	upFrom, upTo := h.dpkg("-i", tp11)
	rmFrom, rmTo := h.dpkg("--remove", "tp-lib")
	d = h.open()
	t.Run("after upgrade", func(t *testing.T) {
		if got := owners(d, "/usr/bin/tp-extra"); got != nil {
			t.Errorf("Owners(tp-extra) = %q after 1.1 dropped it", got)
		}
		if got := owners(d, "/usr/share/tp"); !reflect.DeepEqual(got, []string{"tp@/usr/share/tp"}) {
			t.Errorf("Owners(/usr/share/tp) = %q after removing tp-lib", got)
		}
		o := d.Owners("/usr/bin/tp.distrib")
		if len(o) != 1 || o[0].Version != "1.1" || !bytes.Equal(o[0].Digest, h.md5Of("/usr/bin/tp.distrib")) {
			t.Errorf("Owners(tp.distrib) = %+v", o)
		}
	})
	t.Run("only touched", func(t *testing.T) {
		// After the last run nothing was touched: no list is read, the
		// status still is. Since the first run, everything was.
		none, err := OpenDpkg(DpkgOptions{Root: h.root, OnlyTouchedSince: rmTo.Add(2 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if !none.Partial() || d.Partial() {
			t.Errorf("Partial() = %v, full open %v", none.Partial(), d.Partial())
		}
		if got := owners(none, "/usr/bin/tp.distrib"); got != nil {
			t.Errorf("Owners(tp.distrib) = %q with no package touched", got)
		}
		if _, ok := none.Package("tp-divert"); !ok {
			t.Error("the partial DB lost an untouched package's status")
		}
		all, err := OpenDpkg(DpkgOptions{Root: h.root, OnlyTouchedSince: in1From})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/usr/bin/tp.distrib", "/usr/bin/tp", "/usr/share/tp", "/etc/tp/tp.conf"} {
			if got, want := owners(all, p), owners(d, p); !reflect.DeepEqual(got, want) {
				t.Errorf("Owners(%s) = %q since the first run, full open %q", p, got, want)
			}
		}
	})
	t.Run("runs", func(t *testing.T) {
		runs := d.Runs(time.Time{})
		if len(runs) != 4 {
			t.Fatalf("%d runs, want 4 (install, divert package, upgrade, remove): %+v", len(runs), runs)
		}
		for i, tc := range []struct {
			from, to time.Time
			ops      []string
		}{
			{in1From, in1To, []string{"install tp:all  1.0", "install tp-lib:" + arch + "  2.0",
				"configure tp-lib:" + arch + "  2.0", "configure tp:all  1.0"}},
			{},
			{upFrom, upTo, []string{"upgrade tp:all 1.0 1.1", "configure tp:all  1.1"}},
			{rmFrom, rmTo, []string{"remove tp-lib:" + arch + " 2.0 "}},
		} {
			if tc.ops == nil {
				continue
			}
			r := runs[i]
			if r.Start.Before(tc.from) || r.End.After(tc.to) || r.End.Before(r.Start) {
				t.Errorf("run %d: window %v..%v outside %v..%v", i, r.Start, r.End, tc.from, tc.to)
			}
			var got []string
			for _, op := range r.Ops {
				got = append(got, fmt.Sprintf("%s %s %s %s", op.Action, op.Package, op.OldVersion, op.NewVersion))
				if op.Time.Before(r.Start) || op.Time.After(r.End) {
					t.Errorf("run %d: op at %v outside the run", i, op.Time)
				}
			}
			sort.Strings(got)
			sort.Strings(tc.ops)
			if !reflect.DeepEqual(got, tc.ops) {
				t.Errorf("run %d ops:\n got %q\nwant %q", i, got, tc.ops)
			}
		}
		// dpkg.log has whole seconds, so the runs may share one.
		if got := d.Runs(runs[3].End); len(got) == 0 || !reflect.DeepEqual(got[len(got)-1], runs[3]) {
			t.Errorf("Runs(end of the removal) = %+v, want it to end with the removal", got)
		}
		if got := d.Runs(time.Now().Add(time.Hour)); len(got) != 0 {
			t.Errorf("Runs(future) = %d runs", len(got))
		}
	})
	t.Run("rotated log", func(t *testing.T) {
		// Rotate the log the way logrotate does, cutting a run in two:
		// the runs read back must be the same.
		want := d.Runs(time.Time{})
		b, err := os.ReadFile(h.log())
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(b), "\n")
		cut1, cut2 := 3, len(lines)/2+1
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(strings.Join(lines[:cut1], "")))
		zw.Close()
		for name, content := range map[string]string{
			"dpkg.log.2.gz": gz.String(),
			"dpkg.log.1":    strings.Join(lines[cut1:cut2], ""),
			"dpkg.log":      strings.Join(lines[cut2:], ""),
			"dpkg.log.x":    "not a rotation\n",
		} {
			if err := os.WriteFile(filepath.Join(h.root, "var/log", name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := h.open().Runs(time.Time{}); !reflect.DeepEqual(got, want) {
			t.Errorf("rotated runs differ:\n got %+v\nwant %+v", got, want)
		}
		// A damaged rotation is an error naming it.
		if err := os.WriteFile(filepath.Join(h.root, "var/log/dpkg.log.2.gz"), []byte("\x1f\x8bjunk"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenDpkg(DpkgOptions{Root: h.root}); err == nil || !strings.Contains(err.Error(), "dpkg.log.2.gz") {
			t.Errorf("damaged gzip rotation: error %v", err)
		}
	})
}

// TestDpkgNotMerged checks that without merged /usr the two spellings are
// two paths.
func TestDpkgNotMerged(t *testing.T) {
	h := newDpkgHost(t, false)
	h.dpkg("-i", h.build(deb{Name: "tq", Version: "1", Files: map[string]string{"/bin/tq": "x\n"}}))
	d := h.open()
	if got := owners(d, "/bin/tq"); !reflect.DeepEqual(got, []string{"tq@/bin/tq"}) {
		t.Errorf("Owners(/bin/tq) = %q", got)
	}
	if got := owners(d, "/usr/bin/tq"); got != nil {
		t.Errorf("Owners(/usr/bin/tq) = %q on a host without merged /usr", got)
	}
}

// TestDpkgDamaged damages each record of an installed root in turn: Open
// must fail naming the file and line.
func TestDpkgDamaged(t *testing.T) {
	h := newDpkgHost(t, false)
	h.dpkg("-i", h.build(deb{Name: "tr", Version: "1",
		Files:     map[string]string{"/usr/bin/tr1": "1\n", "/etc/tr.conf": "c\n"},
		Conffiles: []string{"/etc/tr.conf"}}))
	h.run("dpkg-divert", "--root="+h.root, "--local", "--rename", "--divert", "/usr/bin/tr1.orig", "--add", "/usr/bin/tr1")
	h.run("dpkg-statoverride", "--root="+h.root, "--add", "root", "root", "0755", "/usr/bin/tr1")
	d := h.open()
	if got := owners(d, "/usr/bin/tr1"); got != nil {
		t.Errorf("Owners of a locally diverted path = %q, want none", got)
	}
	if got := owners(d, "/usr/bin/tr1.orig"); !reflect.DeepEqual(got, []string{"tr@/usr/bin/tr1.orig"}) {
		t.Errorf("Owners(/usr/bin/tr1.orig) = %q", got)
	}
	admin := filepath.Join(h.root, "var/lib/dpkg")
	for _, tc := range []struct {
		name, file string
		damage     func(string) string
		line       int
	}{
		{"status field", "status", func(s string) string { return "garbage\n" + s }, 1},
		{"status conffile digest", "status", func(s string) string {
			return strings.Replace(s, "/etc/tr.conf ", "/etc/tr.conf zz", 1)
		}, 0},
		{"list truncated", "info/tr.list", func(s string) string { return strings.TrimSuffix(s, "\n") }, -1},
		{"list relative", "info/tr.list", func(s string) string { return "usr/bin/evil\n" + s }, 1},
		{"md5sums digest", "info/tr.md5sums", func(s string) string { return "xyz" + s[3:] }, 1},
		{"diversions incomplete", "diversions", func(s string) string { return s + "/usr/bin/x\n" }, 4},
		{"statoverride mode", "statoverride", func(s string) string { return "root root 999 /x\n" }, 1},
		{"log timestamp", "../../log/dpkg.log", func(s string) string { return s + "2026-13-01 00:00:00 startup archives unpack\n" }, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := filepath.Join(admin, tc.file)
			orig, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(full, orig, 0o644)
			if err := os.WriteFile(full, []byte(tc.damage(string(orig))), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = OpenDpkg(DpkgOptions{Root: h.root})
			if !errors.Is(err, ErrDpkgRecord) {
				t.Fatalf("error %v, want ErrDpkgRecord", err)
			}
			line := tc.line
			switch line {
			case -1:
				line = strings.Count(tc.damage(string(orig)), "\n")
				if !strings.HasSuffix(tc.damage(string(orig)), "\n") {
					line++
				}
			case 0:
				line = 1 + strings.Count(string(orig[:strings.Index(string(orig), "/etc/tr.conf")]), "\n")
			}
			if want := fmt.Sprintf("%s:%d: ", full, line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start with %q", err, want)
			}
		})
	}
}

// TestDpkgHostAgreesWithDpkgQuery compares Owners on this host's own dpkg
// database with dpkg-query -S for a sample of paths, both spellings on a
// merged-/usr host.
func TestDpkgHostAgreesWithDpkgQuery(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("no dpkg database on this host:", err)
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not installed:", err)
	}
	d, err := OpenDpkg(DpkgOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stride := len(d.entries)/300 + 1
	var sample []string
	for i := 0; i < len(d.entries); i += stride {
		p := d.entries[i].path
		_, from := d.divFrom[d.canon(p)]
		_, to := d.divTo[d.canon(p)]
		if from || to || strings.ContainsAny(p, "*?[]\\,:") || p == "/" {
			continue
		}
		sample = append(sample, p)
	}
	// query maps each path to the packages dpkg-query -S names for it.
	query := func(paths []string) map[string][]string {
		out, _ := exec.Command("dpkg-query", append([]string{"-S"}, paths...)...).Output() // exit 1: some not found
		m := map[string][]string{}
		for _, line := range strings.Split(string(out), "\n") {
			pkgs, p, ok := strings.Cut(line, ": ")
			if !ok || strings.HasPrefix(line, "diversion by") {
				continue
			}
			m[p] = append(m[p], strings.Split(pkgs, ", ")...)
		}
		return m
	}
	// The merged directories, found here independently of OpenDpkg.
	var merged []string
	for _, dir := range MergedUsrDirs {
		if target, err := os.Readlink(dir); err == nil && strings.TrimPrefix(target, "/") == "usr"+dir {
			merged = append(merged, dir)
		}
	}
	alias := func(p string) string {
		for _, dir := range merged {
			if rest, ok := strings.CutPrefix(p, dir); ok && (rest == "" || rest[0] == '/') {
				return "/usr" + p
			}
		}
		for _, dir := range merged {
			if rest, ok := strings.CutPrefix(p, "/usr"+dir); ok && (rest == "" || rest[0] == '/') {
				return dir + rest
			}
		}
		return ""
	}
	var aliases []string
	for _, p := range sample {
		if a := alias(p); a != "" {
			aliases = append(aliases, a)
		}
	}
	got := query(append(sample, aliases...))
	for _, p := range sample {
		want := map[string]bool{}
		for _, q := range []string{p, alias(p)} {
			for _, pkg := range got[q] {
				want[pkg] = true
			}
		}
		have := map[string]bool{}
		for _, f := range d.Owners(p) {
			have[f.Package] = true
		}
		if !reflect.DeepEqual(have, want) {
			t.Errorf("Owners(%s) = %v, dpkg-query -S says %v", p, have, want)
		}
	}
	t.Logf("%d paths compared (%d with a merged-/usr alias)", len(sample), len(aliases))
}
