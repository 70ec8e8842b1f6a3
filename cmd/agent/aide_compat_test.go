package main

import (
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// aideCompatConf is the config of the issue 12 differential tests: a
// Debian-like group with I on the docs and I+compressed (and ANF, growing)
// on the logs, as in Debian's aide.conf log groups.
const aideCompatConf = `database_in=file:@@DB@@/aide.db
database_out=file:@@DB@@/aide.db.new
report_url=stdout
MyFull = p+i+l+n+u+g+s+b+m+c+md5+sha256
/@@TREE@@/doc MyFull+I
/@@TREE@@/log/active\.log$ f MyFull+growing+ANF+I
/@@TREE@@/log MyFull+I+compressed
/@@TREE@@/acl p+u+g+acl
`

// aideCompatRun inits both tools on tree, applies mutate, checks with both
// and returns the two reports and exit codes.
func aideCompatRun(t *testing.T, items []treeFile, prepare, mutate func(root string)) (ra, rg result) {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, items)
	if prepare != nil {
		prepare(tree)
	}
	r := strings.NewReplacer("@@TREE@@", strings.TrimPrefix(tree, "/"), "@@DB@@", dir)
	conf := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(conf, []byte(r.Replace(aideCompatConf)), 0o600); err != nil {
		t.Fatal(err)
	}
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
	mutate(tree)
	ra = runCmd(t, "aide", "-c", conf, "--check")
	rg = agent(t, "--config", conf, "--state-dir", state, "check")
	return ra, rg
}

// sameVerdicts requires the same exit code and the same added, removed and
// changed entries; wantCode pins aide's own verdict so that the test fails
// loudly if the oracle changes.
func sameVerdicts(t *testing.T, ra, rg result, wantCode int) {
	t.Helper()
	if ra.code != wantCode {
		t.Errorf("aide exit %d, the test expects %d:\n%s%s", ra.code, wantCode, ra.stdout, ra.stderr)
	}
	if rg.code != ra.code {
		t.Errorf("exit code: agent %d, aide %d", rg.code, ra.code)
	}
	want, got := reportEntries(ra.stdout), reportEntries(rg.stdout)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reports differ\n%s\n--- aide report:\n%s\n--- agent report:\n%s%s", diffLines(want, got), ra.stdout, rg.stdout, rg.stderr)
	}
}

// backdate sets the mtime of the tree's directories to the past, so that a
// change to a directory's contents shows in its mtime however fast the test.
func backdate(t *testing.T, root string, dirs ...string) {
	t.Helper()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range dirs {
		if err := os.Chtimes(filepath.Join(root, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// gzipLike compresses src into dst as gzip(1) does: same mode, owner and
// mtime, then removes src.
func gzipLike(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dst, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
}

func compatTree() []treeFile {
	var items []treeFile
	items = append(items,
		treeFile{path: "doc/x/AUTHORS", kind: 'f', data: "the authors\n"},
		treeFile{path: "doc/x/OTHER", kind: 'f', data: "other\n"},
		treeFile{path: "doc/y/README", kind: 'f', data: "readme\n"},
		treeFile{path: "log/active.log", kind: 'f', data: "first line\n"},
		treeFile{path: "acl/f", kind: 'f', data: "acl\n"},
	)
	for _, n := range []string{"app1", "app2", "app3", "app4"} {
		items = append(items, treeFile{path: "log/" + n + ".log", kind: 'f', data: strings.Repeat(n+" line\n", 200)})
	}
	return items
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestIssue12MoveI: under MyFull+I a renamed file is neither added nor
// removed (aide matches it by inode in the same directory); its directory
// changed. A file moved to another directory, or changed on the way, is
// still reported.
func TestIssue12MoveI(t *testing.T) {
	needAide(t)
	ra, rg := aideCompatRun(t, compatTree(), func(root string) { backdate(t, root, "doc/x", "doc/y") }, func(root string) {
		p := func(s string) string { return filepath.Join(root, s) }
		mustDo(t, os.Rename(p("doc/x/AUTHORS"), p("doc/x/AUTHORS.moved")))
		mustDo(t, os.Rename(p("doc/y/README"), p("doc/x/README"))) // other directory: added + removed
		mustDo(t, os.Rename(p("doc/x/OTHER"), p("doc/x/OTHER.2")))
		mustDo(t, os.WriteFile(p("doc/x/OTHER.2"), []byte("tampered\n"), 0o644)) // moved and changed
	})
	sameVerdicts(t, ra, rg, 7)
}

// TestIssue12MoveIExact is the issue's own case: only the rename.
func TestIssue12MoveIExact(t *testing.T) {
	needAide(t)
	ra, rg := aideCompatRun(t, compatTree(), func(root string) { backdate(t, root, "doc/x") }, func(root string) {
		mustDo(t, os.Rename(filepath.Join(root, "doc/x/AUTHORS"), filepath.Join(root, "doc/x/AUTHORS.moved")))
	})
	sameVerdicts(t, ra, rg, 4)
}

// TestIssue12Compressed: under +I+compressed, gzip of a log and a rename
// are not reported (aide matches the gzip file by the digests of its
// decompressed content); a logrotate of an ANF+I active log neither; a
// compressed copy with other content is.
func TestIssue12Compressed(t *testing.T) {
	needAide(t)
	ra, rg := aideCompatRun(t, compatTree(), func(root string) { backdate(t, root, "log") }, func(root string) {
		p := func(s string) string { return filepath.Join(root, s) }
		gzipLike(t, p("log/app1.log"), p("log/app1.log.gz"))
		mustDo(t, os.Rename(p("log/app2.log"), p("log/app2.log.1")))
		mustDo(t, os.Rename(p("log/active.log"), p("log/active.log.1"))) // logrotate
		mustDo(t, os.WriteFile(p("log/active.log"), []byte("new log\n"), 0o640))
		mustDo(t, os.WriteFile(p("log/app3.log"), []byte("tampered before compression\n"), 0o644))
		gzipLike(t, p("log/app3.log"), p("log/app3.log.gz"))
	})
	sameVerdicts(t, ra, rg, 7)
}

// TestIssue12CompressedExact is the issue's own case.
func TestIssue12CompressedExact(t *testing.T) {
	needAide(t)
	ra, rg := aideCompatRun(t, compatTree(), func(root string) { backdate(t, root, "log") }, func(root string) {
		p := func(s string) string { return filepath.Join(root, s) }
		gzipLike(t, p("log/app1.log"), p("log/app1.log.gz"))
		mustDo(t, os.Rename(p("log/app2.log"), p("log/app2.log.1")))
	})
	sameVerdicts(t, ra, rg, 4)
}

// detailLines returns the lines of the detailed section of a plain report.
func detailLines(report string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(report, "\n") {
		switch {
		case strings.HasPrefix(l, "Detailed information"):
			in = true
			continue
		case strings.HasPrefix(l, "The attributes of the"), strings.HasPrefix(l, "----"):
			if in && strings.HasPrefix(l, "The attributes") {
				in = false
			}
			continue
		}
		if in && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestIssue12ACLNames: named ACL entries print user and group names, as
// aide's acl_to_text does.
func TestIssue12ACLNames(t *testing.T) {
	needAide(t)
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Skip("setfacl is not installed (apt-get install acl)")
	}
	ra, rg := aideCompatRun(t, compatTree(), nil, func(root string) {
		out, err := exec.Command("setfacl", "-m", "u:nobody:r,g:nogroup:rw", filepath.Join(root, "acl/f")).CombinedOutput()
		if err != nil {
			t.Skipf("setfacl: %v: %s (file system without ACLs?)", err, out)
		}
	})
	sameVerdicts(t, ra, rg, 4)
	want, got := detailLines(ra.stdout), detailLines(rg.stdout)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("details differ\n--- aide:\n%s\n--- agent:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// TestIssue12ConfigCheckIgnored: config check names each aide option the
// agent does not act on, with the reason; report_append appends.
func TestIssue12ConfigCheckIgnored(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report.txt")
	conf := filepath.Join(dir, "agent.conf")
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "f", kind: 'f', data: "x\n"}})
	mustDo(t, os.WriteFile(conf, []byte("gzip_dbout=yes\nreport_ignore_e2fsattrs=ai\nreport_append=yes\nreport_url=file:"+out+"\n"+tree+" p+u+g\n"), 0o600))
	r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "state"), "config", "check")
	if r.code != 0 {
		t.Fatalf("config check: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		conf + ":1: gzip_dbout is ignored: the baseline is a bbolt file",
		conf + ":2: report_ignore_e2fsattrs is ignored: ",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("config check stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "report_append is ignored") {
		t.Errorf("report_append is implemented, yet listed:\n%s", r.stderr)
	}
	for i := 0; i < 2; i++ {
		if r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "state"), "init"); r.code != 0 {
			t.Fatalf("init: exit %d\n%s", r.code, r.stderr)
		}
	}
	b, err := os.ReadFile(out)
	mustDo(t, err)
	if n := strings.Count(string(b), "Start timestamp"); n != 2 {
		t.Errorf("report_append: %d reports in %s, want 2:\n%s", n, out, b)
	}
}
