package rules

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// treeSpec is a fixture tree: paths relative to the root; a trailing "/"
// is a directory, "->target" a symlink, "|" a fifo, anything else a file.
var treeSpec = []string{
	"etc/", "etc/hosts", "etc/passwd", "etc/skip/", "etc/skip/inner", "etc/sub/", "etc/sub/a",
	"etc/fifo|", "etc/link->hosts", "etc/x.gz",
	"bin/", "bin/ls", "bin/sh->ls", "bin/sub/", "bin/sub/tool",
	"eq/", "eq/one", "eq/dir/", "eq/dir/two",
	"foo/", "foo/child", "foobar/", "foobar/x", "foox",
	"var/", "var/log/", "var/log/syslog", "var/log/old.gz", "var/log/keep/", "var/log/keep/a.gz",
	"sp ace/", "sp ace/f g", "sp ace/h",
	"deep/", "deep/a/", "deep/a/b/", "deep/a/b/c", "deep/a/b/cd/", "deep/a/b/cd/e", "deep/a/z",
	"other/", "other/file",
	"pre/", "pre/etc/", "pre/etc/conf", "pre/skip/", "pre/skip/s",
	"prune/", "prune/in/", "prune/in/f", "prune/keep", "prune/x/",
}

func buildTree(t *testing.T, root string, spec []string) {
	t.Helper()
	for _, s := range spec {
		p := filepath.Join(root, strings.TrimSuffix(strings.TrimSuffix(s, "/"), "|"))
		var err error
		switch {
		case strings.HasSuffix(s, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasSuffix(s, "|"):
			err = syscall.Mkfifo(p, 0o644)
		case strings.Contains(s, "->"):
			name, target, _ := strings.Cut(s, "->")
			err = os.Symlink(target, filepath.Join(root, name))
		default:
			err = os.WriteFile(p, []byte(s), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// aideOracle skips the test when aide is not installed.
func aideOracle(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("aide")
	if err != nil {
		t.Skip("aide is not on PATH: differential tests need the real aide 0.18.3")
	}
	return path
}

func typeOf(fi os.FileInfo) FileType {
	return TypeFromMode(uint32(fi.Sys().(*syscall.Stat_t).Mode))
}

// walkLines walks the file system from / the way aide's scan does, using
// Match/Descend, and returns the dry-init lines of entries under root.
func walkLines(t *testing.T, p *Policy, root string) []string {
	t.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			path := strings.TrimSuffix(dir, "/") + "/" + e.Name()
			fi, err := os.Lstat(path)
			if err != nil {
				continue
			}
			ft := typeOf(fi)
			m := p.Match(path, ft)
			if root == "" || path == root || strings.HasPrefix(path, root+"/") {
				out = append(out, p.DryInitLine(path, ft, m))
			}
			if m.Descend && (root == "" || root == path || strings.HasPrefix(root, path+"/") || strings.HasPrefix(path, root+"/")) {
				walk(path)
			}
		}
	}
	if root == "" {
		// aide checks the root directory itself, then always reads it
		out = append(out, p.DryInitLine("/", TypeDir, p.Match("/", TypeDir)))
	}
	walk("/")
	sort.Strings(out)
	return out
}

var dryLine = regexp.MustCompile(`^\[[X ]\] . '(.*)': `)

func aideDryInit(t *testing.T, aide, conf, root string, extra ...string) []string {
	t.Helper()
	args := append([]string{"-c", conf, "--dry-init"}, extra...)
	cmd := exec.Command(aide, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("aide %v: %v\n%s", args, err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := dryLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if root == "" || m[1] == root || strings.HasPrefix(m[1], root+"/") {
			lines = append(lines, sc.Text())
		}
	}
	sort.Strings(lines)
	return lines
}

func diffLines(want, got []string) string {
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	var b strings.Builder
	for _, l := range want {
		if !g[l] {
			b.WriteString("-" + l + "\n")
		}
	}
	for _, l := range got {
		if !w[l] {
			b.WriteString("+" + l + "\n")
		}
	}
	return b.String()
}

// oracleConfigs use @@{T} for the tree root without its leading slash.
var oracleConfigs = []struct {
	name    string
	conf    string
	forAide func(string) string // rewrite for aide (e.g. -/re → !/re)
	files   map[string]string   // extra files relative to the config dir
	limits  []string            // --limit regexes relative to the root
}{
	{
		name: "every-kind",
		conf: `NORMAL = p+u+g+s+md5
DIR = p+u+g
/@@{T}/etc NORMAL
/@@{T}/etc$ d DIR
!/@@{T}/etc/skip$
!/@@{T}/etc/fifo p
!/@@{T}/etc/.*\\.gz$ f
/@@{T}/bin f,l NORMAL
=/@@{T}/eq/ DIR
=/@@{T}/foo DIR
/@@{T}/var 0 DIR
!/@@{T}/var/log/.*\\.gz$ f
/@@{T}/sp\ ace NORMAL
!/@@{T}/sp\ ace/h
/@@{T}/deep/a/b/c NORMAL
/@@{T}/deep/a/b/c.*/e$ u
/@@{T}/de[e]p/a/z$ p
`,
		limits: []string{"/@@{T}/etc", "/@@{T}/deep/a/b/cd", "/@@{T}/(var|bin)/"},
	},
	{
		name: "macros-includes",
		conf: `@@define G p+u
@@define SUB etc
@@ifdef NOPE
/@@{T}/never p
@@else
@@define NOAGENT 1
@@endif
@@if not defined NOPE
/@@{T}/@@{SUB}/sub p+u
@@endif
@@ifndef NOAGENT
/@@{T}/never p
@@else
/@@{T}/other f p
@@endif
@@if exists /@@{T}/etc/hosts
/@@{T}/etc/hosts$ u+g
@@endif
@@if hostname no-such-host-xyz
/@@{T}/bin p
@@endif
@@ifnhost no-such-host-xyz
/@@{T}/eq/one$ p
@@endif
@@include @@{DIR}/inc.d ^[a-z]+$ /@@{T}/pre
@@include @@{DIR}/single.conf
`,
		files: map[string]string{
			"inc.d/aaa":   "/etc p+s\n!/skip\n",
			"inc.d/Upper": "/never p\n",
			"single.conf": "=/@@{T}/foobar/ p\n",
			"inc.d/zzz":   "/etc/conf$ f u\n",
		},
	},
	{
		name: "prune",
		conf: `/@@{T}/prune p+u
-/@@{T}/prune/in$
-/@@{T}/prune/x d
`,
		forAide: func(s string) string {
			return strings.NewReplacer("-/@@{T}/prune/in$", "!/@@{T}/prune/in$", "-/@@{T}/prune/x d", "!/@@{T}/prune/x$").Replace(s)
		},
		limits: []string{"/@@{T}/prune/k"},
	},
}

func TestOracleDryInit(t *testing.T) {
	aide := aideOracle(t)
	for _, tc := range oracleConfigs {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			buildTree(t, root, treeSpec)
			T := strings.TrimPrefix(root, "/")
			head := "@@define T " + T + "\n@@define DIR " + dir + "\ndatabase_out=file:" + dir + "/db.out\ngzip_dbout=no\n"
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "@@{T}", T)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			agentConf := filepath.Join(dir, "agent.conf")
			if err := os.WriteFile(agentConf, []byte(head+tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			aideText := head + tc.conf
			if tc.forAide != nil {
				aideText = tc.forAide(aideText)
			}
			aideConf := filepath.Join(dir, "aide.conf")
			if err := os.WriteFile(aideConf, []byte(aideText), 0o644); err != nil {
				t.Fatal(err)
			}
			pa, err := Load(agentConf, LoadOptions{AgentVersion: "test"})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := aideDryInit(t, aide, aideConf, root)
			got := walkLines(t, pa, root)
			if sel := countSelected(want); len(want) < 10 || sel == 0 || sel == len(want) {
				t.Fatalf("aide --dry-init printed %d lines under the root, %d selected: the fixture tests nothing", len(want), sel)
			}
			t.Logf("%d entries, %d selected", len(want), countSelected(want))
			if tc.forAide != nil {
				// the rule text differs (-/re vs !/re): compare selections only
				want, got = stripRules(want), stripRules(got)
			} else {
				got = renameConf(got, agentConf, aideConf)
			}
			if d := diffLines(want, got); d != "" {
				t.Errorf("dry-init differs (-aide +agent):\n%s", d)
			}
			for _, lim := range tc.limits {
				lim = strings.ReplaceAll(lim, "@@{T}", T)
				if err := pa.SetLimit(lim); err != nil {
					t.Fatal(err)
				}
				want := aideDryInit(t, aide, aideConf, root, "--limit", lim)
				got := walkLines(t, pa, root)
				if tc.forAide != nil {
					want, got = stripRules(want), stripRules(got)
				} else {
					got = renameConf(got, agentConf, aideConf)
				}
				if d := diffLines(want, got); d != "" {
					t.Errorf("dry-init --limit %s differs (-aide +agent):\n%s", lim, d)
				}
			}
			if err := pa.SetLimit(""); err != nil {
				t.Fatal(err)
			}
			// --path-check on every fixture path and a few that do not exist.
			paths := []string{root + "/nonexistent", root + "/etc/nope", root + "/foobarbaz"}
			for _, s := range treeSpec {
				name, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(s, "/"), "|"), "->")
				paths = append(paths, filepath.Join(root, name))
			}
			for _, path := range paths {
				ft := TypeFile
				if fi, err := os.Lstat(path); err == nil {
					ft = typeOf(fi)
				}
				cmd := exec.Command(aide, "-c", aideConf, "--path-check="+string(ft.Letter())+":"+path)
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if got := pa.Match(path, ft).Selected; got != (code == 0) {
					t.Errorf("Match(%q, %c).Selected = %v, aide --path-check exit %d", path, ft.Letter(), got, code)
				}
			}
		})
	}
}

// stripRules keeps "[X] f '/path'" of dry-init lines.
func stripRules(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if j := strings.Index(l, "': "); j >= 0 {
			l = l[:j+1]
		}
		out[i] = l
	}
	sort.Strings(out)
	return out
}

func renameConf(lines []string, from, to string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.ReplaceAll(l, "("+from+":", "("+to+":")
	}
	sort.Strings(out)
	return out
}

func countSelected(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "[X]") {
			n++
		}
	}
	return n
}

// TestOracleDebian compares the selection of Debian's shipped config (with
// its executed snippets) with aide's on real system paths.
func TestOracleDebian(t *testing.T) {
	aide := aideOracle(t)
	const conf = "/etc/aide/aide.conf"
	if _, err := os.Stat(conf); err != nil {
		t.Skip("Debian's /etc/aide/aide.conf is not installed")
	}
	p, err := Load(conf, LoadOptions{AgentVersion: "test"})
	if err != nil {
		t.Fatalf("Load(%s): %v", conf, err)
	}
	for _, lim := range []string{"/etc/(a|s)", "/var/(log|lib/dpkg/[a-s])", "/run", "/usr/sbin/a"} {
		t.Run(lim, func(t *testing.T) {
			if err := p.SetLimit(lim); err != nil {
				t.Fatal(err)
			}
			want := stripRules(aideDryInit(t, aide, conf, "", "--limit", lim))
			got := stripRules(walkLines(t, p, ""))
			if d := diffLines(want, got); d != "" {
				t.Errorf("dry-init --limit %s differs (-aide +agent):\n%s", lim, d)
			}
			t.Logf("%d entries, %d selected", len(want), countSelected(want))
		})
	}
}
