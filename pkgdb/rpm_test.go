package pkgdb

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"opsagent/internal/lineerr"
)

// -update may be registered by another test file of this package; register
// it only when nobody has.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func rpmGoldenUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// rpmCheckGolden compares got with testdata/rpm/NAME.golden.json, or
// rewrites it under -update.
func rpmCheckGolden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	p := filepath.Join("testdata", "rpm", name+".golden.json")
	if rpmGoldenUpdate() {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, b, want)
	}
}

// rpmGoldenView is what the golden files show of the parsed headers:
// digests in hex and modes as ls spells them, so that a diff reads.
func rpmGoldenView(hdrs []RPMHeader) any {
	type file struct {
		Path, Package, Version, Digest, DigestAlgo string
		Conffile                                   bool
		Mode, Owner, Group, LinkTarget             string
		Size                                       int64
	}
	type pkg struct {
		Package
		Epoch, Release string
		TID            time.Time
		Files          []file
	}
	out := []pkg{}
	for _, h := range hdrs {
		p := pkg{Package: h.Package, Epoch: h.Epoch, Release: h.Release, TID: h.TID}
		for _, f := range h.Files {
			p.Files = append(p.Files, file{f.Path, f.Package, f.Version, hex.EncodeToString(f.Digest), f.DigestAlgo,
				f.Conffile, f.Mode.String(), f.Owner, f.Group, f.LinkTarget, f.Size})
		}
		out = append(out, p)
	}
	return out
}

func TestParseRPMQueryGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "rpm", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no testdata/rpm/*.txt")
	}
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".txt")
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			hdrs, err := ParseRPMQuery(f, p)
			if err != nil {
				t.Fatal(err)
			}
			rpmCheckGolden(t, name, rpmGoldenView(hdrs))
		})
	}
}

// TestParseRPMQueryFields pins the meaning of the fields the golden file
// shows only as values.
func TestParseRPMQueryFields(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "rpm", "basic.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdrs, err := ParseRPMQuery(f, "basic.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(hdrs) != 3 {
		t.Fatalf("got %d packages, want 3", len(hdrs))
	}
	byPath := map[string]File{}
	for _, h := range hdrs {
		for _, f := range h.Files {
			byPath[f.Path] = f
		}
	}
	bash, odd, key := hdrs[0], hdrs[1], hdrs[2]
	if bash.Version != "5.1.8-6.el9" || bash.Arch != "x86_64" || !bash.Installed.Equal(time.Unix(1700000100, 0)) || !bash.TID.Equal(time.Unix(1700000090, 0)) {
		t.Errorf("bash: got %+v", bash.Package)
	}
	if odd.Version != "2:1.0-3" || odd.Epoch != "2" {
		t.Errorf("odd: got version %q epoch %q, want 2:1.0-3 and 2", odd.Version, odd.Epoch)
	}
	if key.Arch != "" || len(key.Files) != 0 {
		t.Errorf("gpg-pubkey: got arch %q and %d files, want none", key.Arch, len(key.Files))
	}
	for _, tc := range []struct {
		name, path string
		check      func(File) bool
	}{
		{"sha256 digest", "/usr/bin/bash", func(f File) bool { return f.DigestAlgo == "sha256" && len(f.Digest) == 32 && f.Mode == 0o755 }},
		{"symlink", "/usr/bin/sh", func(f File) bool { return f.Mode.Type() == fs.ModeSymlink && f.LinkTarget == "bash" && f.Digest == nil }},
		{"config file", "/etc/skel/.bashrc", func(f File) bool { return f.Conffile && f.Digest != nil }},
		{"directory", "/usr/share/doc/bash", func(f File) bool { return f.Mode.IsDir() && f.Digest == nil && !f.Conffile }},
		{"not installed: no digest", "/usr/share/doc/bash/NEWS", func(f File) bool { return f.Digest == nil }},
		{"escaped quote", "/opt/odd/it's here", func(f File) bool { return f.DigestAlgo == "md5" && f.Owner == "nobody" }},
		{"newline and tab", "/opt/odd/two\nlines and\ttab", func(f File) bool { return len(f.Digest) == 16 }},
		{"ghost: no digest", "/var/log/odd.log", func(f File) bool { return f.Digest == nil && f.Mode.IsRegular() }},
		{"setuid", "/opt/odd/suid", func(f File) bool { return f.Mode == fs.ModeSetuid|0o755 && f.Group == "wheel" }},
		{"char device", "/opt/odd/console", func(f File) bool { return f.Mode == fs.ModeDevice|fs.ModeCharDevice|0o666 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := byPath[tc.path]
			if !ok {
				t.Fatalf("no record of %q", tc.path)
			}
			if !tc.check(f) {
				t.Errorf("got %+v", f)
			}
		})
	}
}

func TestParseRPMQueryDamaged(t *testing.T) {
	const p = "P 'a' - '1' '1' 'noarch' 10 10 8\n"
	const f = "F 33188 0 0 1 'root' 'root' '' '' '/x'\n"
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"truncated before E", p + f, 1},
		{"truncated inside a record", p + "F 33188 0 0", 2},
		{"truncated inside quotes", p + "F 33188 0 0 1 'root' 'ro", 2},
		{"no final newline", p + "E", 2},
		{"P inside a package", p + f + p, 3},
		{"F outside a package", f, 1},
		{"E outside a package", "E\n", 1},
		{"E with fields", p + "E 1\n", 2},
		{"unknown record", p + "X 1\n", 2},
		{"empty line", p + "\nE\n", 2},
		{"short P", "P 'a' - '1'\n", 1},
		{"empty name", "P '' - '1' '1' 'noarch' 10 10 8\n", 1},
		{"empty version", "P 'a' - '' '1' 'noarch' 10 10 8\n", 1},
		{"bad epoch", "P 'a' x '1' '1' 'noarch' 10 10 8\n", 1},
		{"bad install time", "P 'a' - '1' '1' 'noarch' 1e9 10 8\n", 1},
		{"negative tid", "P 'a' - '1' '1' 'noarch' 10 -1 8\n", 1},
		{"bad algo", "P 'a' - '1' '1' 'noarch' 10 10 sha\n", 1},
		{"short F", p + "F 33188 0\nE\n", 2},
		{"bad mode", p + "F 0x81a4 0 0 1 'root' 'root' '' '' '/x'\nE\n", 2},
		{"mode too large", p + "F 65536 0 0 1 'root' 'root' '' '' '/x'\nE\n", 2},
		{"bad flags", p + "F 33188 -1 0 1 'root' 'root' '' '' '/x'\nE\n", 2},
		{"bad state", p + "F 33188 0 999 1 'root' 'root' '' '' '/x'\nE\n", 2},
		{"bad size", p + "F 33188 0 0 (none) 'root' 'root' '' '' '/x'\nE\n", 2},
		{"digest not hex", p + "F 33188 0 0 1 'root' 'root' 'zz' '' '/x'\nE\n", 2},
		{"digest too short", p + "F 33188 0 0 1 'root' 'root' 'abcd' '' '/x'\nE\n", 2},
		{"relative path", p + "F 33188 0 0 1 'root' 'root' '' '' 'x'\nE\n", 2},
		{"stray backslash", p + "F 33188 0 0 1 'root' 'root' '' '' \\x\nE\n", 2},
		{"bytes after quotes", p + "F 33188 0 0 1 'root'x 'root' '' '' '/x'\nE\n", 2},
		{"error line after a multi-line path", p + "F 33188 0 0 1 'root' 'root' '' '' '/a\nb'\nF 1\nE\n", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdrs, err := ParseRPMQuery(strings.NewReader(tc.in), "dump")
			if err == nil {
				t.Fatalf("got %+v and no error", hdrs)
			}
			if !errors.Is(err, ErrRPMQuery) {
				t.Errorf("error %v does not unwrap to ErrRPMQuery", err)
			}
			var le *lineerr.Error
			if !errors.As(err, &le) || le.File != "dump" || le.Line != tc.line {
				t.Errorf("got error %v, want one at dump:%d", err, tc.line)
			}
		})
	}
}

func FuzzParseRPMQuery(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "rpm", "*.txt"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("P 'a' - '1' '1' 'noarch' 10 10 8\nF 33188 0 0 1 'r'\\''t' 'root' '' '' '/x'\nE\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hdrs, err := ParseRPMQuery(bytes.NewReader(data), "fuzz")
		if err != nil {
			var le *lineerr.Error
			if !errors.Is(err, ErrRPMQuery) || !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error %v is not an ErrRPMQuery at a line", err)
			}
			return
		}
		for _, h := range hdrs {
			if h.Name == "" || h.Version == "" {
				t.Fatalf("package without name or version: %+v", h.Package)
			}
			for _, f := range h.Files {
				if !strings.HasPrefix(f.Path, "/") || f.Package != h.Name || f.Version != h.Version {
					t.Fatalf("bad record %+v of %s", f, h.Name)
				}
				if (f.Digest == nil) != (f.DigestAlgo == "") || f.Digest != nil && !f.Mode.IsRegular() {
					t.Fatalf("digest without algorithm or on a non-file: %+v", f)
				}
			}
		}
	})
}

func TestParseDNFLog(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "rpm", "dnf.rpm.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runs, err := ParseDNFLog(f, "dnf.rpm.log")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	want := []Run{
		{Start: at("2024-05-01T10:00:12Z"), End: at("2024-05-01T10:00:17Z"), Ops: []Operation{
			{Time: at("2024-05-01T10:00:12Z"), Action: ActionUpgrade, Package: "openssl-libs.x86_64", OldVersion: "1:3.0.7-27.el9", NewVersion: "1:3.2.2-6.el9"},
			{Time: at("2024-05-01T10:00:13Z"), Action: ActionUpgrade, Package: "glibc.i686", OldVersion: "2.34-83.el9", NewVersion: "2.34-100.el9"},
			{Time: at("2024-05-01T10:00:13Z"), Action: ActionUpgrade, Package: "glibc.x86_64", OldVersion: "2.34-83.el9", NewVersion: "2.34-100.el9"},
			{Time: at("2024-05-01T10:00:15Z"), Action: ActionRemove, Package: "nano.x86_64", OldVersion: "5.6.1-5.el9"},
			{Time: at("2024-05-01T10:00:16Z"), Action: ActionInstall, Package: "vim-enhanced.x86_64", NewVersion: "2:8.2.2637-20.el9"},
		}},
		{Start: at("2024-05-02T09:00:05Z"), End: at("2024-05-02T09:00:06Z"), Ops: []Operation{
			{Time: at("2024-05-02T09:00:05Z"), Action: ActionInstall, Package: "htop.x86_64", NewVersion: "3.2.1-1.el9"},
		}},
		{Start: at("2024-05-02T09:30:05Z"), End: at("2024-05-02T09:30:07Z"), Ops: []Operation{
			{Time: at("2024-05-02T09:30:05Z"), Action: ActionRemove, Package: "htop.x86_64", OldVersion: "3.2.1-1.el9"},
			{Time: at("2024-05-02T09:30:06Z"), Action: ActionRemove, Package: "old-tool.noarch", OldVersion: "1.0-1.el9"},
		}},
	}
	if !reflect.DeepEqual(runs, want) {
		t.Errorf("got runs\n%+v\nwant\n%+v", runs, want)
	}
}

func TestParseDNFLogDamaged(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
	}{
		{"no arch", "x\n2024-05-01T10:00:12+0000 SUBDEBUG Upgrade: openssl\n", 2},
		{"no release", "2024-05-01T10:00:12+0000 SUBDEBUG Erase: openssl.x86_64\n", 1},
		{"no version", "2024-05-01T10:00:12+0000 SUBDEBUG Erase: openssl-1.x86_64\n", 1},
		{"empty arch", "2024-05-01T10:00:12+0000 SUBDEBUG Erase: openssl-1-1.\n", 1},
		{"line too long", "2024-05-01T10:00:12+0000 SUBDEBUG Erase: a-1-1.noarch\n" + strings.Repeat("x", 2<<20), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := ParseDNFLog(strings.NewReader(tc.in), "log")
			var le *lineerr.Error
			if !errors.Is(err, ErrDNFLog) || !errors.As(err, &le) || le.Line != tc.line {
				t.Errorf("got %+v, error %v, want an ErrDNFLog at log:%d", runs, err, tc.line)
			}
		})
	}
}

func FuzzParseDNFLog(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "rpm", "dnf.rpm.log")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runs, err := ParseDNFLog(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrDNFLog) {
				t.Fatalf("error %v is not ErrDNFLog", err)
			}
			return
		}
		for _, r := range runs {
			if len(r.Ops) == 0 || r.End.Before(r.Start) {
				t.Fatalf("bad run %+v", r)
			}
			for _, o := range r.Ops {
				if o.Package == "" || o.NewVersion == "" && o.OldVersion == "" {
					t.Fatalf("bad operation %+v", o)
				}
			}
		}
	})
}

// TestRPMMergeRuns checks that a dnf transaction and the database's
// transaction id for it make one run with the log's operations and the
// database's start, that a plain rpm transaction the log lacks stays, and
// that multilib names are spelled name.arch only where needed.
func TestRPMMergeRuns(t *testing.T) {
	t0 := time.Unix(1700000000, 0).UTC()
	hdrs := []RPMHeader{
		{Package: Package{Name: "glibc", Arch: "x86_64", Version: "2-1", Installed: t0.Add(3 * time.Second)}, TID: t0},
		{Package: Package{Name: "glibc", Arch: "i686", Version: "2-1", Installed: t0.Add(4 * time.Second)}, TID: t0},
		{Package: Package{Name: "bash", Arch: "x86_64", Version: "5-1", Installed: t0.Add(4 * time.Second)}, TID: t0},
		{Package: Package{Name: "local", Arch: "noarch", Version: "1-1", Installed: t0.Add(time.Hour)}, TID: t0.Add(time.Hour - time.Second)},
	}
	logRuns := []Run{{Start: t0.Add(3 * time.Second), End: t0.Add(5 * time.Second), Ops: []Operation{
		{Time: t0.Add(3 * time.Second), Action: ActionUpgrade, Package: "glibc.x86_64", OldVersion: "1-1", NewVersion: "2-1"},
		{Time: t0.Add(4 * time.Second), Action: ActionUpgrade, Package: "bash.x86_64", OldVersion: "4-1", NewVersion: "5-1"},
		{Time: t0.Add(4 * time.Second), Action: ActionRemove, Package: "nano.x86_64", OldVersion: "1-1"},
	}}}
	db := newRPM(hdrs, logRuns, nil)
	runs := db.Runs(time.Time{})
	want := []Run{
		{Start: t0, End: t0.Add(5 * time.Second), Ops: []Operation{
			{Time: t0.Add(3 * time.Second), Action: ActionUpgrade, Package: "glibc.x86_64", OldVersion: "1-1", NewVersion: "2-1"},
			{Time: t0.Add(4 * time.Second), Action: ActionUpgrade, Package: "bash", OldVersion: "4-1", NewVersion: "5-1"},
			{Time: t0.Add(4 * time.Second), Action: ActionRemove, Package: "nano", OldVersion: "1-1"},
		}},
		{Start: t0.Add(time.Hour - time.Second), End: t0.Add(time.Hour + time.Second), Ops: []Operation{
			{Time: t0.Add(time.Hour), Action: ActionInstall, Package: "local", NewVersion: "1-1"},
		}},
	}
	if !reflect.DeepEqual(runs, want) {
		t.Errorf("got runs\n%+v\nwant\n%+v", runs, want)
	}
	if got := db.Runs(t0.Add(time.Minute)); len(got) != 1 || got[0].Ops[0].Package != "local" {
		t.Errorf("Runs(since) got %+v, want only the later run", got)
	}
	if _, ok := db.Package("glibc"); ok {
		t.Error("Package(glibc) found one of two arches, want ambiguous")
	}
	for _, name := range []string{"glibc.i686", "glibc:i686"} {
		if p, ok := db.Package(name); !ok || p.Arch != "i686" {
			t.Errorf("Package(%s) = %+v, %v, want the i686 one", name, p, ok)
		}
	}
	if p, ok := db.Package("bash.x86_64"); !ok || p.Name != "bash" {
		t.Errorf("Package(bash.x86_64) = %+v, %v", p, ok)
	}
}
