package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The differential tests run the real aide 0.18.3 and the agent on the same
// tree with the same config, and require the same verdicts.

func needAide(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("aide"); err != nil {
		t.Skip("aide is not installed (apt-get install aide): the differential oracle is missing")
	}
}

// diffConfig uses every selection-line kind aide 0.18 has: regular,
// type-restricted, equals (with and without trailing slash), negative
// (restricted and not), macros and an include.
const diffConfig = `# differential test config
@@define TREE @@TREE@@
database_in=file:@@DB@@/aide.db
database_out=file:@@DB@@/aide.db.new
gzip_dbout=no
report_url=stdout
NORMAL = p+u+g+s+md5
LOG = p+u+g
DIR = p+u+g+md5
BIN = NORMAL+sha256+i+n+m+c
FULL = p+i+l+n+u+g+s+b+m+c+md5+sha1+sha256+sha512+ftype
@@include @@DB@@/extra.conf
/@@{TREE}/etc NORMAL
/@@{TREE}/bin f BIN
/@@{TREE}/bin$ d DIR
/@@{TREE}/var/log LOG
=/@@{TREE}/var/log$ DIR
!/@@{TREE}/tmp
/@@{TREE}/data 0 FULL
!/@@{TREE}/data/cache f
!/@@{TREE}/data/skip$
=/@@{TREE}/eq/ NORMAL
=/@@{TREE}/top NORMAL
/@@{TREE}/odd\ names NORMAL+ftype
@@ifdef AGENT
/@@{TREE}/agentonly R
@@else
/@@{TREE}/aideonly R
@@endif
`

const diffExtra = `/@@{TREE}/links L
/@@{TREE}/special R
`

type treeFile struct {
	path string
	kind byte // f file, d dir, l symlink, p fifo
	data string
	mode os.FileMode
}

func buildTree(t *testing.T, root string, items []treeFile) {
	t.Helper()
	for _, it := range items {
		p := filepath.Join(root, it.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch it.kind {
		case 'f':
			err = os.WriteFile(p, []byte(it.data), 0o644)
		case 'd':
			err = os.MkdirAll(p, 0o755)
		case 'l':
			err = os.Symlink(it.data, p)
		case 'p':
			err = syscall.Mkfifo(p, 0o644)
		}
		if err != nil {
			t.Fatalf("build %s: %v", it.path, err)
		}
		if it.mode != 0 {
			if err := os.Chmod(p, it.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var diffTree = []treeFile{
	{path: "etc/hosts", kind: 'f', data: "127.0.0.1 localhost\n"},
	{path: "etc/passwd", kind: 'f', data: "root:x:0:0::/root:/bin/sh\n"},
	{path: "etc/same-size", kind: 'f', data: "aaaa\n"},
	{path: "etc/owner", kind: 'f', data: "x\n"},
	{path: "etc/group-owned", kind: 'f', data: "x\n"},
	{path: "etc/app.conf", kind: 'f', data: "gone soon\n"},
	{path: "etc/sub/dir/file", kind: 'f', data: "deep\n"},
	{path: "etc/olddir/inner", kind: 'f', data: "will be removed with its dir\n"},
	{path: "etc/becomes-dir", kind: 'f', data: "a file now\n"},
	{path: "etc/fifo", kind: 'p'},
	{path: "bin/true", kind: 'f', data: "#!/bin/sh\nexit 0\n", mode: 0o755},
	{path: "bin/false", kind: 'f', data: "#!/bin/sh\nexit 1\n", mode: 0o755},
	{path: "bin/sub/tool", kind: 'f', data: "tool\n"},
	{path: "var/log/app.log", kind: 'f', data: "line 1\n"},
	{path: "var/log/other.log", kind: 'f', data: "other\n"},
	{path: "tmp/scratch", kind: 'f', data: "ignored\n"},
	{path: "data/a", kind: 'f', data: "data a\n"},
	{path: "data/mtime-only", kind: 'f', data: "m\n"},
	{path: "data/cache/c1", kind: 'f', data: "cache file\n"},
	{path: "data/cache/subdir/c2", kind: 'f', data: "cache file 2\n"},
	{path: "data/skip/inside", kind: 'f', data: "pruned\n"},
	{path: "data/link", kind: 'l', data: "a"},
	{path: "eq/child", kind: 'f', data: "child\n"},
	{path: "eq/sub/grandchild", kind: 'f', data: "grandchild\n"},
	{path: "top", kind: 'f', data: "top\n"},
	{path: "topper", kind: 'f', data: "topper\n"},
	{path: "odd names/with space", kind: 'f', data: "s\n"},
	{path: "odd names/new\nline", kind: 'f', data: "n\n"},
	{path: "odd names/tab\there", kind: 'f', data: "t\n"},
	{path: "odd names/back\\slash", kind: 'f', data: "b\n"},
	{path: "odd names/bad\xffbyte", kind: 'f', data: "x\n"},
	{path: "odd names/utf8-\u00e9t\u00e9", kind: 'f', data: "u\n"},
	{path: "links/l1", kind: 'l', data: "/etc/hosts"},
	{path: "links/l2", kind: 'l', data: "nowhere"},
	{path: "special/fifo", kind: 'p'},
	{path: "special/file", kind: 'f', data: "special\n"},
	{path: "agentonly/x", kind: 'f', data: "x\n"},
	{path: "aideonly/x", kind: 'f', data: "x\n"},
}

// mutate applies every kind of change the differential test covers.
func mutate(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("etc/hosts"), []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)) // size + content
	must(os.WriteFile(p("etc/same-size"), []byte("bbbb\n"), 0o644))                           // content, same size
	must(os.Chmod(p("etc/passwd"), 0o600))                                                    // perm
	must(os.Chown(p("etc/owner"), 65534, 0))                                                  // uid
	must(os.Chown(p("etc/group-owned"), 0, 65534))                                            // gid
	must(os.Remove(p("etc/app.conf")))                                                        // removed file
	must(os.WriteFile(p("etc/new.conf"), []byte("new\n"), 0o644))                             // added file
	must(os.RemoveAll(p("etc/olddir")))                                                       // removed dir
	must(os.MkdirAll(p("etc/newdir/nested"), 0o755))                                          // added dirs
	must(os.WriteFile(p("etc/newdir/nested/f"), []byte("f\n"), 0o644))
	must(os.Remove(p("etc/becomes-dir"))) // file replaced by a directory
	must(os.Mkdir(p("etc/becomes-dir"), 0o755))
	must(os.Remove(p("bin/true"))) // replaced: new inode
	must(os.WriteFile(p("bin/true"), []byte("#!/bin/sh\n# new\nexit 0\n"), 0o755))
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	must(os.Chtimes(p("bin/false"), old, old))       // mtime only (ctime follows)
	must(os.Chtimes(p("data/mtime-only"), old, old)) // mtime only
	f, err := os.OpenFile(p("var/log/app.log"), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteString("line 2\n") // LOG: not reported
	must(err)
	must(f.Close())
	must(os.Chown(p("var/log/other.log"), 65534, 65534))
	must(os.WriteFile(p("tmp/new-ignored"), []byte("x"), 0o644))       // under !
	must(os.WriteFile(p("data/cache/c1"), []byte("changed\n"), 0o644)) // restricted ! (files dropped)
	must(os.WriteFile(p("data/skip/inside"), []byte("changed too\n"), 0o644))
	must(os.Remove(p("data/link"))) // symlink target
	must(os.Symlink("mtime-only", p("data/link")))
	must(os.Remove(p("links/l2")))
	must(os.Symlink("somewhere-else", p("links/l2")))
	must(os.WriteFile(p("eq/child"), []byte("child changed\n"), 0o644))
	must(os.WriteFile(p("eq/sub/grandchild"), []byte("not selected\n"), 0o644))
	must(os.WriteFile(p("topper"), []byte("topper changed\n"), 0o644))
	must(os.WriteFile(p("odd names/with space"), []byte("changed\n"), 0o644))
	must(os.WriteFile(p("odd names/new\nline"), []byte("changed\n"), 0o644))
	must(os.Remove(p("odd names/bad\xffbyte")))
	must(os.WriteFile(p("odd names/added\xfe\x01ctl"), []byte("x\n"), 0o644))
	must(os.Remove(p("special/fifo"))) // fifo replaced by a file
	must(os.WriteFile(p("special/fifo"), []byte("now a file\n"), 0o644))
	must(syscall.Mkfifo(p("special/newfifo"), 0o600))
	must(os.WriteFile(p("agentonly/x"), []byte("changed\n"), 0o644))
	must(os.WriteFile(p("aideonly/x"), []byte("changed\n"), 0o644))
}

// reportEntries parses the Added/Removed/Changed sections of a plain report
// into "section\x00changestring\x00path" keys.
func reportEntries(report string) []string {
	var out []string
	section := ""
	for _, line := range strings.Split(report, "\n") {
		switch line {
		case "Added entries:":
			section = "added"
			continue
		case "Removed entries:":
			section = "removed"
			continue
		case "Changed entries:":
			section = "changed"
			continue
		}
		if strings.HasPrefix(line, "Detailed information") || strings.HasPrefix(line, "The attributes of the") {
			section = ""
		}
		if section == "" || len(line) < 21 || line[18:20] != ": " {
			continue
		}
		out = append(out, section+"\x00"+line[:18]+"\x00"+line[20:])
	}
	sort.Strings(out)
	return out
}

// treeFiltered keeps the entries whose path lies under the test tree and
// drops the other tree's agent/aide-only branch, so the two tools' reports
// can be compared.
func filterTool(entries []string, skip string) []string {
	var out []string
	for _, e := range entries {
		if strings.Contains(e, skip) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func writeDiffConfig(t *testing.T, dir, tree string) string {
	t.Helper()
	r := strings.NewReplacer("@@TREE@@", strings.TrimPrefix(tree, "/"), "@@DB@@", dir)
	conf := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(conf, []byte(r.Replace(diffConfig)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra.conf"), []byte(diffExtra), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestDifferentialCheck(t *testing.T) {
	needAide(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: the changes include chown")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, diffTree)
	conf := writeDiffConfig(t, dir, tree)
	state := filepath.Join(dir, "state")

	if r := runCmd(t, "aide", "-c", conf, "--init"); r.code != 0 {
		t.Fatalf("aide --init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if err := os.Rename(filepath.Join(dir, "aide.db.new"), filepath.Join(dir, "aide.db")); err != nil {
		t.Fatal(err)
	}
	if r := agent(t, "--config", conf, "--state-dir", state, "init"); r.code != 0 {
		t.Fatalf("agent init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A clean check agrees first.
	ra := runCmd(t, "aide", "-c", conf, "--check")
	rg := agent(t, "--config", conf, "--state-dir", state, "check")
	if ra.code != 0 || rg.code != 0 {
		t.Fatalf("clean check: aide exit %d, agent exit %d\naide:\n%s\nagent:\n%s%s", ra.code, rg.code, ra.stdout, rg.stdout, rg.stderr)
	}

	mutate(t, tree)
	ra = runCmd(t, "aide", "-c", conf, "--check")
	rg = agent(t, "--config", conf, "--state-dir", state, "check")
	if rg.code != ra.code {
		t.Errorf("exit code: agent %d, aide %d", rg.code, ra.code)
	}
	want := filterTool(filterTool(reportEntries(ra.stdout), "/aideonly/"), "/agentonly/")
	gotAll := reportEntries(rg.stdout)
	got := filterTool(filterTool(gotAll, "/aideonly/"), "/agentonly/")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reports differ\n%s\n--- aide report:\n%s\n--- agent report:\n%s", diffLines(want, got), ra.stdout, rg.stdout)
	}
	if !strings.Contains(strings.Join(gotAll, "\n"), "/agentonly/x") {
		t.Errorf("agent did not take the @@ifdef AGENT branch:\n%s", rg.stdout)
	}

	// --limit restricts both tools to the same part of the tree.
	for _, limit := range []string{tree + "/etc", tree + "/odd", tree + "/data/c"} {
		ra := runCmd(t, "aide", "-c", conf, "--check", "--limit", limit)
		rg := agent(t, "--config", conf, "--state-dir", state, "--limit", limit, "check")
		if rg.code != ra.code {
			t.Errorf("--limit %s: exit code: agent %d, aide %d", limit, rg.code, ra.code)
		}
		want, got := reportEntries(ra.stdout), reportEntries(rg.stdout)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("--limit %s: reports differ\n%s", limit, diffLines(want, got))
		}
	}
}

// diffLines lists the keys only one side has, "-" for want and "+" for got.
func diffLines(want, got []string) string {
	w := map[string]bool{}
	for _, s := range want {
		w[s] = true
	}
	g := map[string]bool{}
	for _, s := range got {
		g[s] = true
	}
	var b strings.Builder
	for _, s := range want {
		if !g[s] {
			fmt.Fprintf(&b, "- aide only:  %q\n", strings.ReplaceAll(s, "\x00", " | "))
		}
	}
	for _, s := range got {
		if !w[s] {
			fmt.Fprintf(&b, "+ agent only: %q\n", strings.ReplaceAll(s, "\x00", " | "))
		}
	}
	return b.String()
}

// dryInitLines keeps the dry-init lines of paths under tree, sorted.
func dryInitLines(out, tree string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		i := strings.Index(l, "'")
		if i < 0 || !strings.HasPrefix(l[i+1:], tree) {
			continue
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

func TestDifferentialDryInit(t *testing.T) {
	needAide(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, diffTree)
	conf := writeDiffConfig(t, dir, tree)
	for _, limit := range []string{"", tree + "/etc", tree + "/data/c"} {
		t.Run("limit="+filepath.Base(limit), func(t *testing.T) {
			aargs := []string{"-c", conf, "--dry-init"}
			gargs := []string{"--config", conf, "--state-dir", filepath.Join(dir, "state")}
			if limit != "" {
				aargs = append(aargs, "--limit", limit)
				gargs = append(gargs, "--limit", limit)
			}
			ra := runCmd(t, "aide", aargs...)
			rg := agent(t, append(gargs, "dry-init")...)
			if rg.code != 0 {
				t.Fatalf("agent dry-init: exit %d: %s", rg.code, rg.stderr)
			}
			// The @@ifdef AGENT branch differs by design.
			want := filterTool(filterTool(dryInitLines(ra.stdout, tree), "/aideonly"), "/agentonly")
			got := filterTool(filterTool(dryInitLines(rg.stdout, tree), "/aideonly"), "/agentonly")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("dry-init differs\n%s", diffLines(want, got))
			}
		})
	}
}

// selectedPaths returns the sorted set of "[X]" (selected) lines' type and
// path, and of all lines' paths, from dry-init output.
func dryInitSets(out string) (selected, all []string) {
	for _, l := range strings.Split(out, "\n") {
		if len(l) < 8 || l[0] != '[' {
			continue
		}
		rest := l[6:]
		end := strings.Index(rest, "': ")
		if end < 0 {
			continue
		}
		key := l[4:5] + " " + rest[:end]
		all = append(all, key)
		if l[1] == 'X' {
			selected = append(selected, key)
		}
	}
	sort.Strings(selected)
	sort.Strings(all)
	return selected, all
}

// TestDebianConfig: Debian's shipped aide.conf (with aide.conf.d and its
// executable snippets) loads, and dry-init --limit /etc selects the same
// paths as aide's.
func TestDebianConfig(t *testing.T) {
	needAide(t)
	const conf = "/etc/aide/aide.conf"
	if _, err := os.Stat(conf); err != nil {
		t.Skip("Debian's /etc/aide/aide.conf is not installed (apt-get install aide)")
	}
	state := t.TempDir()
	if r := agent(t, "--config", conf, "--state-dir", state, "config", "check"); r.code != 0 {
		t.Fatalf("agent config check %s: exit %d\n%s%s", conf, r.code, r.stdout, r.stderr)
	}
	ra := runCmd(t, "aide", "-c", conf, "--dry-init", "--limit", "/etc")
	rg := agent(t, "--config", conf, "--state-dir", state, "--limit", "/etc", "dry-init")
	if rg.code != 0 {
		t.Fatalf("agent dry-init: exit %d: %s", rg.code, rg.stderr)
	}
	wantSel, wantAll := dryInitSets(ra.stdout)
	gotSel, gotAll := dryInitSets(rg.stdout)
	if len(wantSel) == 0 {
		t.Fatalf("aide selected nothing under /etc:\n%s%s", ra.stdout, ra.stderr)
	}
	if strings.Join(gotSel, "\n") != strings.Join(wantSel, "\n") {
		t.Errorf("selected paths differ\n%s", diffLines(wantSel, gotSel))
	}
	if strings.Join(gotAll, "\n") != strings.Join(wantAll, "\n") {
		t.Errorf("visited paths differ\n%s", diffLines(wantAll, gotAll))
	}
}

// TestExampleAideConf: the reference example config passes config check.
func TestExampleAideConf(t *testing.T) {
	conf := filepath.Join("testdata", "example-aide.conf")
	r := agent(t, "--config", conf, "--state-dir", t.TempDir(), "config", "check")
	if r.code != 0 {
		t.Errorf("agent config check %s: exit %d\n%s%s", conf, r.code, r.stdout, r.stderr)
	}
}
