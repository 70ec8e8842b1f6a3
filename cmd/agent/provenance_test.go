package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"opsagent/db"
	"opsagent/internal/debtest"
)

// provenanceReport is the part of the JSON report the provenance tests read.
type provenanceDoc struct {
	N struct {
		Added, Removed, Changed int
		Unexplained             int `json:"unexplained"`
		Mismatch                int `json:"package_mismatch"`
	} `json:"number_of_entries"`
	P struct {
		Backend string                       `json:"backend"`
		Paths   map[string]map[string]string `json:"paths"`
	} `json:"provenance"`
}

// paths lists every path the report classified, sorted.
func (d *provenanceDoc) paths() []string {
	var out []string
	for p := range d.P.Paths {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (d *provenanceDoc) of(class string) []string {
	var out []string
	for p, v := range d.P.Paths {
		if v["class"] == class {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// pkgFixture is a host tree with installed packages, its agent config and
// state.
type pkgFixture struct {
	h           *debtest.Host
	conf, state string
}

func newPkgFixture(t *testing.T) *pkgFixture {
	h := debtest.NewHost(t, true)
	f := &pkgFixture{h: h, state: filepath.Join(t.TempDir(), "state")}
	var debs []string
	for _, p := range pkgVersions("1.0") {
		debs = append(debs, h.Build(p))
	}
	h.Dpkg(append([]string{"-i"}, debs...)...)
	f.conf = filepath.Join(t.TempDir(), "agent.conf")
	body := "root_prefix=" + h.Root + "\nreport_format=json\nreport_explained=list\n" +
		"NORMAL = p+u+g+s+md5+sha256\n/usr NORMAL\n/etc NORMAL\n/var/lib NORMAL\n"
	if err := os.WriteFile(f.conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// pkgVersions are the fixture's packages at a version: four programs, one
// with a conffile, one whose postinst writes state no package lists.
func pkgVersions(v string) []debtest.Deb {
	return []debtest.Deb{
		{Name: "alpha", Version: v, Files: map[string]string{"/usr/bin/alpha": "alpha " + v + "\n", "/usr/share/alpha/data": "data " + v + "\n", "/etc/alpha.conf": "setting=1\n"}, Conffiles: []string{"/etc/alpha.conf"}},
		{Name: "beta", Version: v, Files: map[string]string{"/usr/bin/beta": "beta " + v + "\n"}},
		{Name: "gamma", Version: v, Files: map[string]string{"/usr/sbin/gammad": "gammad " + v + "\n"},
			Postinst: "mkdir -p \"$DPKG_ROOT/var/lib/gamma\"\necho \"state " + v + "\" > \"$DPKG_ROOT/var/lib/gamma/state\"\n"},
		{Name: "delta", Version: v, Files: map[string]string{"/usr/bin/delta": "delta " + v + "\n"}},
	}
}

func (f *pkgFixture) run(t *testing.T, args ...string) (result, *provenanceDoc) {
	t.Helper()
	r := agent(t, append([]string{"--config", f.conf, "--state-dir", f.state}, args...)...)
	var doc provenanceDoc
	if r.code < 8 && strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("%v: report is not JSON: %v\n%s", args, err, r.stdout)
		}
	}
	return r, &doc
}

// TestPackageProvenance: after a baseline, three packages are upgraded
// (one postinst rewrites its state), one package file is trojaned and one
// unowned executable is planted. The check explains everything but the two
// planted paths, which are the only mismatch and the only unexplained
// entry; after update --packages the next check reports only them.
func TestPackageProvenance(t *testing.T) {
	f := newPkgFixture(t)
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond) // a new second for mtimes and dpkg.log
	var debs []string
	for _, p := range pkgVersions("1.1")[:3] {
		debs = append(debs, f.h.Build(p))
	}
	f.h.Dpkg(append([]string{"-i"}, debs...)...)
	time.Sleep(1100 * time.Millisecond)
	trojan := "/usr/bin/delta"
	planted := "/usr/bin/dropper"
	if err := os.WriteFile(filepath.Join(f.h.Root, trojan), []byte("#!/bin/sh\nevil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.h.Root, planted), []byte("#!/bin/sh\nevil\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	r, doc := f.run(t, "check")
	if r.code&^7 != 0 || r.code == 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	if doc.P.Backend != "dpkg" {
		t.Errorf("backend %q, want dpkg", doc.P.Backend)
	}
	if got := doc.of("package-mismatch"); !slices.Equal(got, []string{trojan}) {
		t.Errorf("package-mismatch = %q, want only %s\n%s", got, trojan, r.stdout)
	}
	if got := doc.of("unexplained"); !slices.Equal(got, []string{planted}) {
		t.Errorf("unexplained = %q, want only %s\n%s", got, planted, r.stdout)
	}
	if doc.N.Mismatch != 1 || doc.N.Unexplained != 1 {
		t.Errorf("counts: %+v", doc.N)
	}
	for _, p := range []string{"/usr/bin/alpha", "/usr/share/alpha/data", "/usr/sbin/gammad"} {
		if v := doc.P.Paths[p]; v["class"] != "package" || v["version"] != "1.1" {
			t.Errorf("%s: %v, want package at 1.1", p, v)
		}
	}
	if v := doc.P.Paths["/var/lib/gamma/state"]; v["class"] != "package-script" {
		t.Errorf("/var/lib/gamma/state: %v, want package-script", v)
	}
	if v := doc.P.Paths["/var/lib/dpkg/status"]; v["class"] != "package" {
		t.Errorf("/var/lib/dpkg/status: %v, want package", v)
	}

	// update --packages accepts what packages explain; the next check
	// shows only the two planted paths.
	up := agent(t, "--config", f.conf, "--state-dir", f.state, "update", "--packages", "--format", "plain")
	if up.code&^7 != 0 || !strings.Contains(up.stdout, "explained changes accepted") || !regexp.MustCompile(`update --packages: [1-9][0-9]* paths rescanned \([1-9][0-9]* of them unmoved and not read\), from 3 packages run since the baseline`).MatchString(up.stdout) {
		t.Fatalf("update --packages: exit %d\n%s%s", up.code, up.stdout, up.stderr)
	}
	r2, doc2 := f.run(t, "check")
	if r2.code&^7 != 0 {
		t.Fatalf("check after update --packages: exit %d: %s", r2.code, r2.stderr)
	}
	reported := doc2.paths()
	if want := []string{trojan, planted}; !slices.Equal(reported, want) {
		t.Errorf("after update --packages the check reports %q, want only %q\n%s", reported, want, r2.stdout)
	}
	if got := doc2.of("package-mismatch"); !slices.Equal(got, []string{trojan}) {
		t.Errorf("after update --packages: mismatch %q", got)
	}

	// The plain report puts the mismatch before everything else.
	rt := agent(t, "--config", f.conf, "--state-dir", f.state, "report", "show", "latest-check")
	mi, ui := strings.Index(rt.stdout, "Package mismatch (content"), strings.Index(rt.stdout, "Unexplained:\n")
	if mi < 0 || ui < mi || !strings.Contains(rt.stdout[mi:ui], trojan) || !strings.Contains(rt.stdout[ui:], planted) {
		t.Errorf("plain report order or content:\n%s", rt.stdout)
	}
}

// TestPackageProvenanceTamperedRecords: an md5sums file rewritten without a
// dpkg run (to hide a trojan) is a mismatch, and so is the file whose record
// it rewrote if its content differs from the original .deb... here the
// trojan then matches the forged record, so the forged record itself must be
// the loud line.
func TestPackageProvenanceTamperedRecords(t *testing.T) {
	f := newPkgFixture(t)
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	trojan := []byte("#!/bin/sh\nevil\n")
	if err := os.WriteFile(filepath.Join(f.h.Root, "usr/bin/beta"), trojan, 0o755); err != nil {
		t.Fatal(err)
	}
	sums := filepath.Join(f.h.Root, "var/lib/dpkg/info/beta.md5sums")
	forged := md5hex(trojan) + "  usr/bin/beta\n"
	if err := os.WriteFile(sums, []byte(forged), 0o644); err != nil {
		t.Fatal(err)
	}
	// The admin edits a conffile: unexplained, not a mismatch.
	if err := os.WriteFile(filepath.Join(f.h.Root, "etc/alpha.conf"), []byte("setting=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, doc := f.run(t, "check")
	if r.code == 0 || r.code&^7 != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	if v := doc.P.Paths["/var/lib/dpkg/info/beta.md5sums"]; v["class"] != "package-mismatch" {
		t.Errorf("forged md5sums: %v, want package-mismatch\n%s", v, r.stdout)
	}
	if v := doc.P.Paths["/etc/alpha.conf"]; v["class"] != "unexplained" || !strings.Contains(v["reason"], "configuration file") {
		t.Errorf("edited conffile: %v, want unexplained configuration file", v)
	}
}

func md5hex(b []byte) string { return fmt.Sprintf("%x", md5.Sum(b)) }

// TestPkgVerify: like debsums -c, every package file whose content differs
// from its record, exit 1; an edited conffile is listed but does not count;
// a clean host exits 0, and a host without records 3.
func TestPkgVerify(t *testing.T) {
	f := newPkgFixture(t)
	a := func(args ...string) result {
		return agent(t, append([]string{"--config", f.conf, "--state-dir", f.state, "pkg", "verify"}, args...)...)
	}
	if r := a(); r.code != 0 || r.stdout != "" {
		t.Fatalf("clean host: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	os.WriteFile(filepath.Join(f.h.Root, "usr/bin/beta"), []byte("trojan\n"), 0o755)
	os.WriteFile(filepath.Join(f.h.Root, "etc/alpha.conf"), []byte("setting=2\n"), 0o644)
	os.Remove(filepath.Join(f.h.Root, "usr/sbin/gammad"))
	r := a()
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := "/etc/alpha.conf: configuration file of alpha 1.0, edited\n" +
		"/usr/bin/beta: differs from the md5 recorded by beta 1.0\n" +
		"/usr/sbin/gammad: missing (gamma 1.0)\n"
	if r.stdout != want {
		t.Errorf("output:\n%s\nwant:\n%s", r.stdout, want)
	}
	if r := a("/usr/bin/alpha"); r.code != 0 || r.stdout != "" {
		t.Errorf("verify of a clean path: exit %d %s", r.code, r.stdout)
	}
	if r := a("/usr/bin/beta"); r.code != 1 || !strings.Contains(r.stdout, "/usr/bin/beta") {
		t.Errorf("verify of the trojaned path: exit %d %s", r.code, r.stdout)
	}
	if r := a("/usr/bin/nobody-owns-this"); r.code != exitInvalidArg {
		t.Errorf("verify of an unowned path: exit %d", r.code)
	}
	conf := filepath.Join(t.TempDir(), "agent.conf")
	os.WriteFile(conf, []byte("package_admindir=/nonexistent\nNORMAL = p+md5\n/usr NORMAL\n"), 0o600)
	if r := agent(t, "--config", conf, "pkg", "verify"); r.code != 3 || !strings.Contains(r.stderr, "no status file") {
		t.Errorf("no records: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestPkgVerifyDebs: an md5sums record rewritten on the host to match a
// trojan passes plain pkg verify, but not pkg verify --debs, which compares
// each record with the md5sums of the package's .deb (named with or
// without its epoch); a record with a line removed is caught too. Packages
// without a .deb, or whose .deb ships no md5sums, are noted on stderr.
func TestPkgVerifyDebs(t *testing.T) {
	h := debtest.NewHost(t, true)
	pkgs := []debtest.Deb{
		{Name: "alpha", Version: "1.0", MD5Sums: true, Files: map[string]string{"/usr/bin/alpha": "alpha\n", "/usr/share/alpha/data": "data\n", "/etc/alpha.conf": "setting=1\n"}, Conffiles: []string{"/etc/alpha.conf"}},
		{Name: "beta", Version: "1.0", MD5Sums: true, Files: map[string]string{"/usr/bin/beta": "beta\n"}},
		{Name: "eps", Version: "2:1.0-1", MD5Sums: true, Files: map[string]string{"/usr/bin/eps": "eps\n"}},
		{Name: "nosums", Version: "1.0", Files: map[string]string{"/usr/bin/nosums": "nosums\n"}},
		{Name: "absent", Version: "1.0", MD5Sums: true, Files: map[string]string{"/usr/bin/absent": "absent\n"}},
	}
	archive := t.TempDir()
	var debs []string
	for _, p := range pkgs {
		deb := h.Build(p)
		debs = append(debs, deb)
		switch p.Name {
		case "absent":
		case "eps": // as apt names it
			copyFile(t, deb, filepath.Join(archive, "eps_2%3a1.0-1_all.deb"), 0o644)
		default:
			copyFile(t, deb, filepath.Join(archive, filepath.Base(deb)), 0o644)
		}
	}
	h.Dpkg(append([]string{"-i"}, debs...)...)
	conf := filepath.Join(t.TempDir(), "agent.conf")
	if err := os.WriteFile(conf, []byte("root_prefix="+h.Root+"\nNORMAL = p+md5\n/usr NORMAL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func(args ...string) result {
		return agent(t, append([]string{"--config", conf, "pkg", "verify"}, args...)...)
	}
	r := verify("--debs", archive)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("clean host: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"nosums 1.0: " + filepath.Join(archive, "nosums_1.0_all.deb") + " ships no md5sums", "1 packages without a .deb in " + archive + ": not checked against archives"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}

	// Trojans whose records are forged to match: beta's and eps's
	// md5sums rewritten, alpha's data line deleted.
	trojan := []byte("#!/bin/sh\nevil\n")
	info := filepath.Join(h.Root, "var/lib/dpkg/info")
	for _, p := range []string{"usr/bin/beta", "usr/bin/eps", "usr/share/alpha/data"} {
		if err := os.WriteFile(filepath.Join(h.Root, p), trojan, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(info, "beta.md5sums"), md5hex(trojan)+"  usr/bin/beta\n")
	writeFile(t, filepath.Join(info, "eps.md5sums"), md5hex(trojan)+"  usr/bin/eps\n")
	writeFile(t, filepath.Join(info, "alpha.md5sums"), md5hex([]byte("alpha\n"))+"  usr/bin/alpha\n")

	if r := verify(); r.code != 0 || r.stdout != "" {
		t.Errorf("plain verify should trust the forged records: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = verify("--debs", archive)
	want := "/usr/bin/beta: the md5sums record of beta 1.0 differs from its .deb (forged record?)\n" +
		"/usr/bin/eps: the md5sums record of eps 2:1.0-1 differs from its .deb (forged record?)\n" +
		"/usr/share/alpha/data: the md5sums record of alpha 1.0 lacks it, its .deb lists it (removed record?)\n"
	if r.code != 1 || r.stdout != want {
		t.Errorf("--debs: exit %d, want 1; output:\n%s\nwant:\n%s\nstderr: %s", r.code, r.stdout, want, r.stderr)
	}

	// Without --debs, apt's archive dir under root_prefix is used when it
	// holds an installed package's .deb.
	apt := filepath.Join(h.Root, "var/cache/apt/archives")
	if err := os.MkdirAll(apt, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(archive, "beta_1.0_all.deb"), filepath.Join(apt, "beta_1.0_all.deb"), 0o644)
	r = verify()
	if r.code != 1 || !strings.HasPrefix(r.stdout, "/usr/bin/beta: the md5sums record of beta 1.0 differs") || !strings.Contains(r.stderr, "4 packages without a .deb in "+apt) {
		t.Errorf("default archive dir: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := verify("--debs", filepath.Join(archive, "nonexistent")); r.code != exitInvalidArg {
		t.Errorf("--debs of a missing dir: exit %d, want %d", r.code, exitInvalidArg)
	}
	if r := verify("--debs", archive, "/usr/bin/beta"); r.code != exitInvalidArg {
		t.Errorf("--debs with a PATH: exit %d, want %d", r.code, exitInvalidArg)
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dpkgFixture installs pkgs into a new merged-/usr dpkg root and writes an
// agent config scanning /usr, /etc and /var/lib there.
func dpkgFixture(t *testing.T, pkgs ...debtest.Deb) *pkgFixture {
	h := debtest.NewHost(t, true)
	f := &pkgFixture{h: h, state: filepath.Join(t.TempDir(), "state"), conf: filepath.Join(t.TempDir(), "agent.conf")}
	var debs []string
	for _, p := range pkgs {
		debs = append(debs, h.Build(p))
	}
	h.Dpkg(append([]string{"-i"}, debs...)...)
	body := "root_prefix=" + h.Root + "\nreport_format=json\nreport_explained=list\n" +
		"NORMAL = p+u+g+s+md5+sha256\n/usr NORMAL\n/etc NORMAL\n/var/lib NORMAL\n"
	if err := os.WriteFile(f.conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond) // a new second for mtimes and dpkg.log
	return f
}

// TestPackageProvenanceDiversion: after the baseline, package wrap diverts
// ctools' /usr/bin/ctool to ctool.distrib (as its preinst would) and ships
// its own /usr/bin/ctool, and the admin diverts /usr/bin/cother locally and
// writes a replacement. Each diverted file at its new name is explained by
// the package that shipped it; wrap's file by wrap; only the admin's
// replacement is unexplained.
func TestPackageProvenanceDiversion(t *testing.T) {
	f := dpkgFixture(t, debtest.Deb{Name: "ctools", Version: "1.0",
		Files: map[string]string{"/usr/bin/ctool": "ctool\n", "/usr/bin/cother": "cother\n"}})
	h := f.h
	divert := func(args ...string) {
		h.Run("dpkg-divert", append([]string{"--root=" + h.Root, "--rename"}, args...)...)
	}
	divert("--package", "wrap", "--divert", "/usr/bin/ctool.distrib", "--add", "/usr/bin/ctool")
	h.Dpkg("-i", h.Build(debtest.Deb{Name: "wrap", Version: "1.0", Files: map[string]string{"/usr/bin/ctool": "#!/bin/sh\nexec ctool.distrib \"$@\"\n"}}))
	divert("--local", "--divert", "/usr/bin/cother.distrib", "--add", "/usr/bin/cother")
	if err := os.WriteFile(filepath.Join(h.Root, "usr/bin/cother"), []byte("#!/bin/sh\nlocal\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	r, doc := f.run(t, "check")
	if r.code == 0 || r.code&^7 != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	for p, pkg := range map[string]string{"/usr/bin/ctool.distrib": "ctools", "/usr/bin/cother.distrib": "ctools", "/usr/bin/ctool": "wrap"} {
		if v := doc.P.Paths[p]; v["class"] != "package" || v["package"] != pkg || !strings.Contains(v["reason"], "matches the package") {
			t.Errorf("%s: %v, want package %s, digest matching", p, v, pkg)
		}
	}
	if got := doc.of("unexplained"); !slices.Equal(got, []string{"/usr/bin/cother"}) {
		t.Errorf("unexplained = %q, want only the admin's /usr/bin/cother\n%s", got, r.stdout)
	}
	if got := doc.of("package-mismatch"); len(got) != 0 {
		t.Errorf("package-mismatch = %q, want none\n%s", got, r.stdout)
	}
}

// TestPackageProvenanceMergedUsr: on a merged-/usr host a package may list
// its file as /bin/tool while the file lies at /usr/bin/tool (the scanner
// sees /bin only as a link). An upgrade's new content there matches the
// package's record (package), a trojan does not (package-mismatch).
func TestPackageProvenanceMergedUsr(t *testing.T) {
	tool := func(name, v string) debtest.Deb {
		return debtest.Deb{Name: name, Version: v, Files: map[string]string{"/bin/" + name: name + " " + v + "\n"}}
	}
	f := dpkgFixture(t, tool("mtool", "1.0"), tool("xtool", "1.0"))
	h := f.h
	list, err := os.ReadFile(filepath.Join(h.Root, "var/lib/dpkg/info/mtool.list"))
	if err != nil || !strings.Contains(string(list), "/bin/mtool\n") || strings.Contains(string(list), "/usr/bin/mtool") {
		t.Fatalf("mtool.list should list /bin/mtool only: %q, %v", list, err)
	}
	h.Dpkg("-i", h.Build(tool("mtool", "1.1")))
	if err := os.WriteFile(filepath.Join(h.Root, "usr/bin/xtool"), []byte("#!/bin/sh\nevil\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	r, doc := f.run(t, "check")
	if r.code == 0 || r.code&^7 != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	if v := doc.P.Paths["/usr/bin/mtool"]; v["class"] != "package" || v["package"] != "mtool" || v["version"] != "1.1" {
		t.Errorf("/usr/bin/mtool: %v, want package mtool 1.1\n%s", v, r.stdout)
	}
	if got := doc.of("package-mismatch"); !slices.Equal(got, []string{"/usr/bin/xtool"}) {
		t.Errorf("package-mismatch = %q, want only /usr/bin/xtool\n%s", got, r.stdout)
	}
	if got := doc.of("unexplained"); len(got) != 0 {
		t.Errorf("unexplained = %q, want none\n%s", got, r.stdout)
	}
}

// TestUpdatePackagesRefuses: without package records (package_check = no)
// or with --limit, update --packages changes nothing and exits 15.
func TestUpdatePackagesRefuses(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "a", kind: 'f', data: "1\n"}})
	conf := filepath.Join(dir, "agent.conf")
	os.WriteFile(conf, []byte("package_check=no\nNORMAL = p+u+g+s+md5\n"+tree+" NORMAL\n"), 0o600)
	state := filepath.Join(dir, "state")
	if r := agent(t, "--config", conf, "--state-dir", state, "init"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(tree, "a"), []byte("2\n"), 0o644)
	before, _ := os.ReadFile(filepath.Join(state, "baseline.db"))
	for _, args := range [][]string{{"update", "--packages"}, {"--limit", tree, "update", "--packages"}} {
		r := agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
		if r.code != exitInvalidArg {
			t.Errorf("%v: exit %d, want %d: %s", args, r.code, exitInvalidArg, r.stderr)
		}
		after, _ := os.ReadFile(filepath.Join(state, "baseline.db"))
		if !bytes.Equal(before, after) {
			t.Errorf("%v changed the baseline", args)
		}
	}
}

// TestUpdatePackagesScope: update --packages rescans the touched packages'
// paths, the stat areas and the changed directories of the other script
// areas, and nothing else. An upgrade that drops a file and adds a
// directory is accepted whole; a directory planted in /usr/share (a
// changed script-area directory) is rescanned, reported and kept out; a
// file edited in place in an unchanged /usr/lib directory is not looked
// at by the fast path (the next check reports it) but is by --rescan-all.
func TestUpdatePackagesScope(t *testing.T) {
	f := newPkgFixture(t)
	root := f.h.Root
	write := func(p, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		write(fmt.Sprintf("/usr/lib/bulk/f%03d", i), "bulk\n")
	}
	write("/usr/lib/site/local.py", "v1\n")
	write("/usr/local/lib/site/keep", "k\n")
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	alpha := pkgVersions("1.1")[0]
	delete(alpha.Files, "/usr/share/alpha/data")
	alpha.Files["/usr/share/alpha/new/file"] = "new\n"
	f.h.Dpkg("-i", f.h.Build(alpha))
	// Past the run's window and its slack (dpkg.log has whole seconds).
	time.Sleep(3100 * time.Millisecond)
	write("/usr/share/zz/outside", "planted\n")
	// Outside the script areas, in a directory no package owns: not
	// update --packages' business, the next check reports it.
	write("/usr/local/lib/site/planted", "planted\n")
	// In place: the directory stays as it was.
	if err := os.WriteFile(filepath.Join(root, "usr/lib/site/local.py"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	oldDigest := fileBLAKE3(t, filepath.Join(f.state, "baseline.db"))
	up, doc := f.run(t, "update", "--packages")
	if up.code&^7 != 0 || up.code == 0 {
		t.Fatalf("update --packages: exit %d: %s", up.code, up.stderr)
	}
	// The digests are those of the files (the new one is read while the
	// file is synced and renamed).
	base, next := baselineDigests(t, up.stdout)
	if newDigest := fileBLAKE3(t, filepath.Join(f.state, "baseline.db")); base != oldDigest || next != newDigest || base == next {
		t.Errorf("update --packages: report gives BLAKE3 %s for the baseline and %s for the new one, the files have %s and %s", base, next, oldDigest, newDigest)
	}
	for _, p := range []string{"/usr/share/alpha/data", "/usr/share/alpha/new", "/usr/share/alpha/new/file", "/usr/bin/alpha"} {
		if v := doc.P.Paths[p]; v["class"] != "package" {
			t.Errorf("%s: %v, want package", p, v)
		}
	}
	if got := doc.of("unexplained"); !slices.Equal(got, []string{"/usr/share/zz", "/usr/share/zz/outside"}) {
		t.Errorf("update --packages: unexplained = %q, want the planted dir and file", got)
	}
	if _, ok := doc.P.Paths["/usr/lib/site/local.py"]; ok {
		t.Error("the fast path looked at a file in an unchanged /usr/lib directory")
	}
	for p := range doc.P.Paths {
		if strings.HasPrefix(p, "/usr/local/") {
			t.Errorf("update --packages reported %s, outside the script areas and the packages", p)
		}
	}
	m := regexp.MustCompile(`(\d+) paths rescanned`).FindStringSubmatch(up.stdout + up.stderr)
	if m == nil {
		t.Fatalf("no rescan count in the notice:\n%s", up.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 || n > 100 {
		t.Errorf("%d paths rescanned, want a few dozen (the tree has over 200)", n)
	}

	r, doc2 := f.run(t, "check")
	if r.code&^7 != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	// The directory that gained the planted file is reported too where
	// its size grows with its entries (tmpfs), not on ext4.
	reported := slices.DeleteFunc(doc2.paths(), func(p string) bool { return p == "/usr/local/lib/site" })
	if want := []string{"/usr/lib/site/local.py", "/usr/local/lib/site/planted", "/usr/share/zz", "/usr/share/zz/outside"}; !slices.Equal(reported, want) {
		t.Errorf("after update --packages the check reports %q, want %q", reported, want)
	}

	// --rescan-all stats everything: the in-place edit is seen (and kept).
	all, doc3 := f.run(t, "update", "--packages", "--rescan-all")
	if all.code&^7 != 0 {
		t.Fatalf("update --packages --rescan-all: exit %d: %s", all.code, all.stderr)
	}
	if v := doc3.P.Paths["/usr/lib/site/local.py"]; v["class"] != "unexplained" {
		t.Errorf("--rescan-all: local.py %v, want unexplained", v)
	}
}

// TestProvenanceUntouchedPackage: right after a run that upgraded only
// alpha, a file of the untouched package eps is trojaned and another one
// deleted, both where the touched package's records alone would explain
// them (a script area within the run's window; a directory alpha owns).
// Both must read as what every package's records say: a mismatch and a
// missing file, in check and in update --packages, and stay in the next
// check.
func TestProvenanceUntouchedPackage(t *testing.T) {
	f := dpkgFixture(t, pkgVersions("1.0")[0], debtest.Deb{Name: "eps", Version: "1.0",
		Files: map[string]string{"/usr/lib/eps/lib.so": "eps lib\n", "/usr/share/alpha/eps-extra": "extra\n"}})
	f.h.Dpkg("-i", f.h.Build(pkgVersions("1.1")[0]))
	// Renamed into place, as dpkg would: the directory changes, so that
	// update --packages rescans it.
	lib := filepath.Join(f.h.Root, "usr/lib/eps/lib.so")
	if err := os.WriteFile(lib+".new", []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(lib+".new", lib); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.h.Root, "usr/share/alpha/eps-extra")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check"}, {"update", "--packages"}, {"check"}} {
		r, doc := f.run(t, args...)
		if r.code&^7 != 0 || r.code == 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		if v := doc.P.Paths["/usr/lib/eps/lib.so"]; v["class"] != "package-mismatch" || v["package"] != "eps" {
			t.Errorf("%v: lib.so %v, want package-mismatch of eps", args, v)
		}
		if v := doc.P.Paths["/usr/share/alpha/eps-extra"]; v["class"] != "unexplained" || !strings.Contains(v["reason"], "missing") {
			t.Errorf("%v: eps-extra %v, want unexplained, still shipped but missing", args, v)
		}
	}
}

// TestUpdatePackagesRulesChanged: update --packages keeps the unreplaced
// files of a directory a package run changed unread, but only files the
// rules still select. After a config edit that deselects such a file, also
// when an update --packages in between wrote the new rules' digest into a
// baseline that still holds the file, the file reads as a full update
// reads it (gone from the selection: reported removed); with the rules
// unchanged it is not looked at, also after an edit of options that do
// not change what a scan records (the baseline then takes the new config's
// digest, not the zero one of a mix).
func TestUpdatePackagesRulesChanged(t *testing.T) {
	// between: an update --packages after the edit, of a run that does
	// not touch /usr/bin, so that the baseline records the new rules
	// while it still holds the deselected file. options: an edit of
	// mail_on only.
	for _, c := range []struct{ edit, between, options bool }{{false, false, false}, {true, false, false}, {true, true, false}, {false, false, true}, {false, true, true}} {
		t.Run(fmt.Sprintf("edited=%v,between=%v,options=%v", c.edit, c.between, c.options), func(t *testing.T) {
			edit := c.edit
			f := newPkgFixture(t)
			local := filepath.Join(f.h.Root, "usr/bin/local-tool")
			if err := os.WriteFile(local, []byte("local\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if r, _ := f.run(t, "init"); r.code != 0 {
				t.Fatalf("init: exit %d: %s", r.code, r.stderr)
			}
			if edit {
				conf, err := os.ReadFile(f.conf)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f.conf, append(conf, "!/usr/bin/local-tool$\n"...), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if c.options {
				conf, err := os.ReadFile(f.conf)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f.conf, append(conf, "mail_on=changes\n"...), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(1100 * time.Millisecond)
			if c.between {
				f.h.Dpkg("-i", f.h.Build(pkgVersions("1.1")[2])) // gamma: /usr/sbin only
				if up, _ := f.run(t, "update", "--packages"); up.code&^7 != 0 {
					t.Fatalf("first update --packages: exit %d: %s", up.code, up.stderr)
				}
				time.Sleep(1100 * time.Millisecond)
			}
			f.h.Dpkg("-i", f.h.Build(pkgVersions("1.1")[0])) // alpha: /usr/bin changes
			up, doc := f.run(t, "update", "--packages")
			if up.code&^7 != 0 || up.code == 0 {
				t.Fatalf("update --packages: exit %d: %s", up.code, up.stderr)
			}
			// After an edit, the new baseline mixes entries of both
			// rules: its rules digest is zero.
			b, err := db.Open(filepath.Join(f.state, "baseline.db"))
			if err != nil {
				t.Fatal(err)
			}
			if mixed := b.Meta().RulesDigest == [32]byte{}; mixed != edit {
				t.Errorf("rules digest zero: %v, want %v", mixed, edit)
			}
			b.Close()
			if v := doc.P.Paths["/usr/bin/alpha"]; v["class"] != "package" {
				t.Errorf("/usr/bin/alpha: %v, want package", v)
			}
			// Deselected, it reads as removed; the classifier then takes
			// it for a file alpha's old version shipped (its old list is
			// gone), as for a full update.
			v, seen := doc.P.Paths["/usr/bin/local-tool"]
			switch {
			case edit && (!seen || doc.N.Removed == 0):
				t.Errorf("deselected /usr/bin/local-tool: %v (reported %v, %d removed), want it reported removed", v, seen, doc.N.Removed)
			case !edit && seen:
				t.Errorf("unreplaced /usr/bin/local-tool was looked at: %v", v)
			}
		})
	}
}

// TestUpdatePackagesNoSpace: update --packages on a full state file
// system exits 14, and does not hang (the copy of the baseline it amends
// fails in a goroutine of its own, while the scan runs); the baseline
// stays as it was and no temporary file is left.
func TestUpdatePackagesNoSpace(t *testing.T) {
	f := newPkgFixture(t)
	fsDir := mountTmpfs(t, "size=4m")
	f.state = filepath.Join(fsDir, "state")
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	base := filepath.Join(f.state, "baseline.db")
	before, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	f.h.Dpkg("-i", f.h.Build(pkgVersions("1.1")[0]))
	fill := filepath.Join(fsDir, "fill")
	if err := os.Mkdir(fill, 0o700); err != nil {
		t.Fatal(err)
	}
	fillBlocks(t, fsDir, fill, int64(len(before)/2))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := runPrepared(t, exec.CommandContext(ctx, agentBin, "--config", f.conf, "--state-dir", f.state, "update", "--packages"))
	if ctx.Err() != nil {
		t.Fatal("update --packages did not end within a minute")
	}
	if r.code != exitWrite {
		t.Errorf("update --packages on a full file system: exit %d, want %d; stderr: %s", r.code, exitWrite, r.stderr)
	}
	if after, err := os.ReadFile(base); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the baseline changed (%v)", err)
	}
	if m := tempFiles(t, f.state); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
