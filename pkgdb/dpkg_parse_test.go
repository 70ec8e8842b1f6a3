package pkgdb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"opsagent/internal/lineerr"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "dpkg", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseDpkgStatus(t *testing.T) {
	got, err := ParseDpkgStatus(bytes.NewReader(readTestdata(t, "status")), "status")
	if err != nil {
		t.Fatal(err)
	}
	want := []DpkgStatus{
		{Package: "tp", Arch: "all", Version: "1.0", Status: "install ok installed", Line: 1,
			Conffiles: []DpkgConffile{
				{Path: "/etc/tp/tp.conf", MD5: unhex("d5e29449b9e66d5b4bb0d6ce48fbbcb1")},
				{Path: "/etc/tp/old file", MD5: unhex("0123456789abcdef0123456789abcdef"), Obsolete: true},
				{Path: "/etc/dpkg/dpkg.cfg.d/hook", RemoveOnUpgrade: true},
			}},
		{Package: "libtp", Arch: "amd64", MultiArch: "same", Version: "2:1.0-1", Status: "install ok installed", Line: 15},
		{Package: "gone", Arch: "amd64", Version: "0.9", Status: "deinstall ok config-files", Line: 21,
			Conffiles: []DpkgConffile{{Path: "/etc/gone.conf", MD5: unhex("11111111111111111111111111111111")}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if k := got[1].Key(); k != "libtp:amd64" {
		t.Errorf("Key of a Multi-Arch: same package = %q", k)
	}
	if k, s := got[2].Key(), got[2].State(); k != "gone" || s != "config-files" {
		t.Errorf("Key, State = %q, %q", k, s)
	}
}

// TestDpkgParseErrors feeds each parser damaged input: the error names
// the file and line and unwraps to ErrDpkgRecord.
func TestDpkgParseErrors(t *testing.T) {
	status := func(s string) error { _, err := ParseDpkgStatus(strings.NewReader(s), "f"); return err }
	list := func(s string) error { _, err := ParseDpkgList(strings.NewReader(s), "f"); return err }
	sums := func(s string) error { _, err := ParseDpkgMD5Sums(strings.NewReader(s), "f"); return err }
	divs := func(s string) error { _, err := ParseDpkgDiversions(strings.NewReader(s), "f"); return err }
	sos := func(s string) error { _, err := ParseDpkgStatOverrides(strings.NewReader(s), "f"); return err }
	logs := func(s string) error { _, err := ParseDpkgLog(strings.NewReader(s), "f", time.UTC); return err }
	const md5 = "d5e29449b9e66d5b4bb0d6ce48fbbcb1"
	for _, tc := range []struct {
		name  string
		parse func(string) error
		in    string
		line  int
	}{
		{"status no colon", status, "Package: a\nnonsense\n", 2},
		{"status no package", status, "Package: a\n\nVersion: 1\n", 3},
		{"status continuation first", status, " /etc/x " + md5 + "\n", 1},
		{"status repeated field", status, "Package: a\nVersion: 1\nversion: 2\n", 3},
		{"status twice", status, "Package: a\n\nPackage: b\n\nPackage: a\n", 5},
		{"status bad name", status, "Package: A b\n", 1},
		{"status short", status, "Package: a\nStatus: install ok\n", 2},
		{"conffile no digest", status, "Package: a\nConffiles:\n /etc/x\n", 3},
		{"conffile relative", status, "Package: a\nConffiles:\n etc/x " + md5 + "\n", 3},
		{"conffile short digest", status, "Package: a\nConffiles:\n /etc/x abc\n", 3},
		{"list no newline", list, "/.\n/usr", 2},
		{"list empty line", list, "/.\n\n/usr\n", 2},
		{"list relative", list, "/.\nusr\n", 2},
		{"md5sums bad hex", sums, md5 + "  a\n" + strings.Repeat("g", 32) + "  b\n", 2},
		{"md5sums one space", sums, md5 + " a\n", 1},
		{"md5sums absolute", sums, md5 + "  /a\n", 1},
		{"md5sums empty line", sums, md5 + "  a\n\n", 2},
		{"diversions incomplete", divs, "/a\n/b\n", 2},
		{"diversions relative", divs, "/a\nb\np\n", 2},
		{"diversions twice", divs, "/a\n/b\np\n/a\n/c\nq\n", 4},
		{"diversions bad package", divs, "/a\n/b\nP Q\n", 3},
		{"statoverride short", sos, "root root 0755\n", 1},
		{"statoverride mode", sos, "root root 0755 /a\nroot root 10000 /b\n", 2},
		{"statoverride relative", sos, "root root 0755 a\n", 1},
		{"log timestamp", logs, "2026-11-30 25:00:00 startup archives unpack\n", 1},
		{"log short", logs, "2026-11-30 10:00:00\n", 1},
		{"log fields", logs, "2026-11-30 10:00:00 startup archives unpack\n2026-11-30 10:00:00 upgrade tp 1.0\n", 2},
		{"log package", logs, "2026-11-30 10:00:00 remove Tp:all 1 <none>\n", 1},
		{"log conffile", logs, "2026-11-30 10:00:00 conffile /etc/x\n", 1},
		{"long line", sums, strings.Repeat("a", maxDpkgLine+1), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.parse(tc.in)
			var le *lineerr.Error
			if !errors.Is(err, ErrDpkgRecord) || !errors.As(err, &le) {
				t.Fatalf("error %v, want a *lineerr.Error wrapping ErrDpkgRecord", err)
			}
			if le.File != "f" || le.Line != tc.line {
				t.Errorf("error at %s:%d, want f:%d (%v)", le.File, le.Line, tc.line, err)
			}
		})
	}
}

func TestParseDpkgList(t *testing.T) {
	got, err := ParseDpkgList(bytes.NewReader(readTestdata(t, "tp.list")), "tp.list")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/", "/usr", "/usr/bin", "/usr/bin/tp", "/bin/a b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, err := ParseDpkgList(strings.NewReader(""), "empty"); err != nil || len(got) != 0 {
		t.Errorf("empty list: %q, %v", got, err)
	}
}

func TestParseDpkgMD5Sums(t *testing.T) {
	got, err := ParseDpkgMD5Sums(bytes.NewReader(readTestdata(t, "tp.md5sums")), "tp.md5sums")
	if err != nil {
		t.Fatal(err)
	}
	var want []DpkgSum
	for _, s := range []struct{ md5, path string }{
		{"d5e29449b9e66d5b4bb0d6ce48fbbcb1", "/etc/tp/tp.conf"},
		{"764efa883dda1e11db47671c4a3bbd9e", "/usr/bin/t p"},
	} {
		var d DpkgSum
		copy(d.MD5[:], unhex(s.md5))
		d.Path = s.path
		want = append(want, d)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseDpkgDiversions(t *testing.T) {
	got, err := ParseDpkgDiversions(bytes.NewReader(readTestdata(t, "diversions")), "diversions")
	if err != nil {
		t.Fatal(err)
	}
	want := []Diversion{
		{From: "/usr/bin/pg_config", To: "/usr/bin/pg_config.libpq-dev", By: "postgresql-common"},
		{From: "/usr/share/x", To: "/usr/share/x.local", By: ":"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseDpkgStatOverrides(t *testing.T) {
	got, err := ParseDpkgStatOverrides(bytes.NewReader(readTestdata(t, "statoverride")), "statoverride")
	if err != nil {
		t.Fatal(err)
	}
	want := []StatOverride{
		{Path: "/usr/sbin/postqueue", Owner: "root", Group: "postdrop", Mode: 0o555 | os.ModeSetgid},
		{Path: "/etc/a file", Owner: "#0", Group: "#8", Mode: 0o640},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseDpkgLog(t *testing.T) {
	loc := time.FixedZone("test", 3600)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation(dpkgLogTime, s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	got, err := ParseDpkgLog(bytes.NewReader(readTestdata(t, "dpkg.log")), "dpkg.log", loc)
	if err != nil {
		t.Fatal(err)
	}
	want := DpkgLog{Continued: true, Runs: []Run{
		{Start: at("2026-11-30 10:15:01"), End: at("2026-11-30 10:15:01")},
		{Start: at("2026-11-30 10:15:02"), End: at("2026-11-30 10:15:03"), Ops: []Operation{
			{Time: at("2026-11-30 10:15:02"), Action: ActionUpgrade, Package: "tp:all", OldVersion: "0.9", NewVersion: "1.0"},
			{Time: at("2026-11-30 10:15:03"), Action: ActionInstall, Package: "libtp:amd64", NewVersion: "2:1.0-1"},
		}},
		{Start: at("2026-11-30 10:15:04"), End: at("2026-11-30 10:15:06"), Ops: []Operation{
			{Time: at("2026-11-30 10:15:04"), Action: ActionConfigure, Package: "tp:all", NewVersion: "1.0"},
			{Time: at("2026-11-30 10:15:05"), Action: ActionTrigger, Package: "man-db:amd64", NewVersion: "2.11.2-2"},
		}},
		{Start: at("2026-12-01 08:00:00"), End: at("2026-12-01 08:00:01"), Ops: []Operation{
			{Time: at("2026-12-01 08:00:00"), Action: ActionRemove, Package: "libtp:amd64", OldVersion: "2:1.0-1"},
			{Time: at("2026-12-01 08:00:01"), Action: ActionPurge, Package: "gone:amd64", OldVersion: "0.9"},
		}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// The times are the host's wall clock in loc.
	if s := got.Runs[1].Start.UTC().Format(dpkgLogTime); s != "2026-11-30 09:15:02" {
		t.Errorf("start in UTC = %s", s)
	}

	d := &Dpkg{runs: got.Runs}
	for _, tc := range []struct {
		since string
		want  int
	}{
		{"2026-11-30 10:15:00", 4}, {"2026-11-30 10:15:03", 3}, {"2026-11-30 10:15:04", 2},
		{"2026-12-01 08:00:01", 1}, {"2026-12-01 08:00:02", 0},
	} {
		if got := d.Runs(at(tc.since)); len(got) != tc.want || len(got) > 0 && !reflect.DeepEqual(got[len(got)-1], want.Runs[3]) {
			t.Errorf("Runs(%s) = %d runs, want the last %d", tc.since, len(got), tc.want)
		}
	}
}

func TestIsCleanAbs(t *testing.T) {
	for _, p := range []string{"/", "/a", "/a/b", "/a/", "//a", "/a//b", "/.", "/a/.", "/a/..", "/./a", "/../a", "/a/.b", "/..a", "a", "", "/a b/c"} {
		if got, want := isCleanAbs(p), p != "" && p[0] == '/' && filepath.Clean(p) == p; got != want {
			t.Errorf("isCleanAbs(%q) = %v, want %v", p, got, want)
		}
		if got, want := absClean(p), path.Clean("/"+p); got != want {
			t.Errorf("absClean(%q) = %q, want %q", p, got, want)
		}
	}
}

// Fuzz targets: no input panics, errors are always ErrDpkgRecord at a
// line, and what parses has the parser's invariants.

func fuzzSeeds(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(readTestdata(f, n))
	}
}

func checkDpkgErr(t *testing.T, err error) {
	var le *lineerr.Error
	if !errors.Is(err, ErrDpkgRecord) || !errors.As(err, &le) || le.File != "fuzz" {
		t.Fatalf("error %v is not a lineerr.Error wrapping ErrDpkgRecord", err)
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	fuzzSeeds(f, "status")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgStatus(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		keys := map[string]bool{}
		for _, s := range out {
			if !validDpkgName(s.Package) || keys[s.Key()] {
				t.Fatalf("bad or repeated package %q", s.Key())
			}
			keys[s.Key()] = true
			for _, c := range s.Conffiles {
				if !isCleanAbs(c.Path) || c.MD5 != nil && len(c.MD5) != 16 {
					t.Fatalf("bad conffile %+v", c)
				}
			}
		}
	})
}

func FuzzParseDpkgList(f *testing.F) {
	fuzzSeeds(f, "tp.list")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgList(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		for _, p := range out {
			if !isCleanAbs(p) {
				t.Fatalf("path %q not clean", p)
			}
		}
	})
}

func FuzzParseDpkgMD5Sums(f *testing.F) {
	fuzzSeeds(f, "tp.md5sums")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgMD5Sums(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		for _, s := range out {
			if !isCleanAbs(s.Path) {
				t.Fatalf("path %q not clean", s.Path)
			}
		}
	})
}

func FuzzParseDpkgDiversions(f *testing.F) {
	fuzzSeeds(f, "diversions")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgDiversions(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		for _, d := range out {
			if !isCleanAbs(d.From) || !isCleanAbs(d.To) || d.By == "" {
				t.Fatalf("bad diversion %+v", d)
			}
		}
	})
}

func FuzzParseDpkgStatOverrides(f *testing.F) {
	fuzzSeeds(f, "statoverride")
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgStatOverrides(bytes.NewReader(data), "fuzz")
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		for _, s := range out {
			if !isCleanAbs(s.Path) || s.Mode&^(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
				t.Fatalf("bad override %+v", s)
			}
		}
	})
}

func FuzzParseDpkgLog(f *testing.F) {
	fuzzSeeds(f, "dpkg.log")
	for _, line := range []string{"startup archives unpack", "install a:all <none> 1", "upgrade a 1 2",
		"remove a 1 <none>", "purge a 1 <none>", "configure a 1 <none>", "trigproc a 1 <none>",
		"status installed a 1", "conffile /etc/x keep"} {
		f.Add([]byte("2026-11-30 10:15:02 " + line + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDpkgLog(bytes.NewReader(data), "fuzz", time.UTC)
		if err != nil {
			checkDpkgErr(t, err)
			return
		}
		for _, r := range out.Runs {
			for _, op := range r.Ops {
				if op.Action == "" || !validDpkgPkgArch(op.Package) {
					t.Fatalf("bad op %+v", op)
				}
			}
		}
	})
}
