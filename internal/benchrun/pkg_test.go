package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opsagent/pkgdb"
)

// TestChoosePackages: the first n by info-file name among those with
// enough files, whatever order dpkg's status lists them in.
func TestChoosePackages(t *testing.T) {
	files := func(n int) []string { return make([]string, n) }
	cands := []pkgCandidate{
		{Key: "zsh", Files: files(30)},
		{Key: "bash", Files: files(20)},
		{Key: "libc6:amd64", Files: files(100)},
		{Key: "adduser", Files: files(19)},
		{Key: "coreutils", Files: files(25)},
	}
	var got []string
	for _, c := range choosePackages(cands, 3, 20) {
		got = append(got, c.Key)
	}
	if want := "bash coreutils libc6:amd64"; strings.Join(got, " ") != want {
		t.Errorf("choosePackages = %q, want %q", got, want)
	}
	if got := choosePackages(cands, 10, 20); len(got) != 4 {
		t.Errorf("choosePackages(10) = %d packages, want the 4 with 20 files", len(got))
	}
	if cands[0].Key != "zsh" {
		t.Errorf("choosePackages reordered its argument")
	}
}

// TestDpkgLogRun: the lines of a reinstall run parse with pkgdb's dpkg.log
// parser as two runs (unpack, configure) holding an upgrade and a configure
// of every package at the given times.
func TestDpkgLogRun(t *testing.T) {
	pkgs := []pkgCandidate{
		{Key: "bash", Name: "bash", Arch: "amd64", Version: "5.2.15-2+b7"},
		{Key: "libc6:amd64", Name: "libc6", Arch: "amd64", Version: "2.36-9+deb12u10"},
		{Key: "tzdata", Name: "tzdata", Arch: "all", Version: "2025b-0+deb12u1"},
	}
	start := time.Date(2026, 3, 4, 10, 15, 2, 0, time.Local)
	end := start.Add(3 * time.Second)
	text := dpkgLogRun(pkgs, start, end)
	log, err := pkgdb.ParseDpkgLog(strings.NewReader(text), "dpkg.log", time.Local)
	if err != nil {
		t.Fatalf("ParseDpkgLog: %v\n%s", err, text)
	}
	if log.Continued || len(log.Runs) != 2 {
		t.Fatalf("runs = %+v (continued %v), want 2\n%s", log.Runs, log.Continued, text)
	}
	unpack, configure := log.Runs[0], log.Runs[1]
	if !unpack.Start.Equal(start) || !configure.End.Equal(end) {
		t.Errorf("windows %v-%v and %v-%v, want from %v to %v", unpack.Start, unpack.End, configure.Start, configure.End, start, end)
	}
	for i, run := range log.Runs {
		want := []pkgdb.Action{pkgdb.ActionUpgrade, pkgdb.ActionConfigure}[i]
		if len(run.Ops) != len(pkgs) {
			t.Fatalf("run %d: %d operations, want %d: %+v", i, len(run.Ops), len(pkgs), run.Ops)
		}
		for j, op := range run.Ops {
			p := pkgs[j]
			if op.Action != want || op.Package != p.Name+":"+p.Arch || op.NewVersion != p.Version {
				t.Errorf("run %d op %d = %+v, want %s of %s:%s %s", i, j, op, want, p.Name, p.Arch, p.Version)
			}
			if want == pkgdb.ActionUpgrade && op.OldVersion != p.Version {
				t.Errorf("run %d op %d: old version %q, want %q (a reinstall)", i, j, op.OldVersion, p.Version)
			}
		}
	}
}

// TestRewriteFile: content, mode (set-id bits included), owner and mtime
// stay, the inode changes, and no .dpkg-new file is left behind.
func TestRewriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	if err := os.WriteFile(name, []byte("content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, 0o4755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Lstat(name)
	if err := rewriteFile(name); err != nil {
		t.Fatal(err)
	}
	after, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "content\n" {
		t.Errorf("content %q", b)
	}
	if after.Mode() != before.Mode() || !after.ModTime().Equal(mtime) {
		t.Errorf("mode %v mtime %v, want %v %v", after.Mode(), after.ModTime(), before.Mode(), mtime)
	}
	if os.SameFile(before, after) {
		t.Errorf("same inode after the rewrite, want a new file as dpkg writes")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d entries, want 1", len(ents))
	}
}

// TestPackageBench runs the package rows on a tiny host: two packages in a
// dpkg admin dir written here, their files in the tree, one timed run. The
// changes are classified, every rewritten file as `package`, and both
// ratios are measured.
func TestPackageBench(t *testing.T) {
	dir := t.TempDir()
	agent := os.Getenv("BENCH_AGENT")
	if agent == "" {
		agent = filepath.Join(dir, "agent")
		build := exec.Command("go", "build", "-o", agent, "opsagent/cmd/agent")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/agent: %v\n%s", err, out)
		}
	}
	work := filepath.Join(dir, "work")
	tree := filepath.Join(work, "root", "usr")
	admin := filepath.Join(dir, "dpkg")
	host := filepath.Join(dir, "host")
	for _, d := range []string{filepath.Join(admin, "info"), host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(host, "bin")); err != nil {
		t.Fatal(err)
	}
	var status bytes.Buffer
	for i, pkg := range []string{"beta", "alpha", "tiny"} {
		n := 4
		if pkg == "tiny" {
			n = 2 // too few files: not chosen
		}
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.%d\n\n", pkg, i)
		var list, sums bytes.Buffer
		for _, d := range []string{"/usr", "/usr/bin", "/usr/share", "/usr/share/" + pkg} {
			fmt.Fprintln(&list, d)
		}
		for f := range n {
			p := fmt.Sprintf("/usr/share/%s/f%d", pkg, f)
			data := []byte(strings.Repeat(pkg, 100*(f+1)))
			if err := os.MkdirAll(filepath.Join(tree, "share", pkg), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, "share", pkg, fmt.Sprintf("f%d", f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&list, p)
			fmt.Fprintf(&sums, "%x  %s\n", md5.Sum(data), p[1:])
		}
		if err := os.WriteFile(filepath.Join(admin, "info", pkg+".list"), list.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(admin, "info", pkg+".md5sums"), sums.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tree, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), status.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logBuf bytes.Buffer
	cfg := config{Agent: agent, Tree: tree, Dir: work, Runs: 1, Workers: 2, Log: &logBuf,
		Pkg: true, PkgAdmin: admin, PkgHost: host, PkgCount: 15, PkgMinFiles: 3}
	res := &results{Config: cfg}
	logf := func(format string, args ...any) { fmt.Fprintf(&logBuf, format+"\n", args...) }
	if err := packageBench(ctx, cfg, res, []string{"--quiet", "--workers", "2", "--no-nice"}, logf); err != nil {
		t.Fatalf("packageBench: %v\nlog:\n%s", err, logBuf.String())
	}
	t.Logf("log:\n%s", logBuf.String())
	if res.Pkg == nil || len(res.Pkg.Pkgs) != 2 || res.Pkg.Pkgs[0].Key != "alpha" || res.Pkg.Files != 8 {
		t.Fatalf("package root %+v, want alpha and beta with 8 files", res.Pkg)
	}
	if strings.Join(res.Pkg.Merged, " ") != "/bin" {
		t.Errorf("merged-/usr links %q, want /bin", res.Pkg.Merged)
	}
	for _, name := range []string{rowPkgCheckNo, rowPkgCheckYes, rowPkgUpdate, rowPkgUpdatePkgs} {
		r := res.row(name)
		switch {
		case r == nil:
			t.Errorf("row %q missing", name)
		case !r.usable():
			t.Errorf("row %q: skip %q, err %v, %d runs", name, r.Skip, r.Err, len(r.Runs))
		case len(r.Warn) > 0:
			t.Errorf("row %q: warnings %q, want exit status 4 (changes) only", name, r.Warn)
		}
	}
	v := res.PkgVerdict
	if v == nil {
		t.Fatalf("no verification verdict; notes %q", res.Notes)
	}
	if v.Classes["package"] < 8 || v.Classes["package-mismatch"] != 0 || v.Classes["unexplained"] != 0 {
		t.Errorf("verdict %s: want the 8 files as package, nothing unexplained or mismatched", v)
	}
	if len(res.PkgChecks) != 2 {
		t.Fatalf("%d package checks, want 2", len(res.PkgChecks))
	}
	for _, c := range res.PkgChecks {
		if math.IsNaN(c.Value) || c.Value <= 0 {
			t.Errorf("check %q = %v (%s), want a value > 0", c.Name, c.Value, c.Missing)
		}
	}
	var text bytes.Buffer
	if err := res.writeText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{rowPkgUpdatePkgs, "update --packages / update", "alpha:amd64 beta:amd64", fmt.Sprintf(": %d package, 0 package-script", v.Classes["package"])} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("text:\n%s", text.String())
}
