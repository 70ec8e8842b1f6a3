package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIssue12Exclude: the paths the agent writes are pruned from Match
// wherever they are given (relative, through a symlinked parent, not yet
// created, under root_prefix), and a path holding the scanned tree is an
// error.
func TestIssue12Exclude(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"tree/home/src/var", "tree/real/state", "other"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(tree, "real"), filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(tree, "home", "src"))

	tests := []struct {
		name   string
		root   string // root_prefix; "" scans the host from "/"
		host   string // the path given to Exclude
		inner  string // Exclusion.Path; "" when nothing is excluded
		errIs  error
		checks map[string]bool // path (a dir) -> excluded
	}{
		{name: "relative", root: tree, host: "./var", inner: "/home/src/var",
			checks: map[string]bool{"/home/src/var": true, "/home/src/var/reports": true, "/home/src/variant": false, "/home/src": false}},
		{name: "dot-dot", root: tree, host: "../src/./var/", inner: "/home/src/var"},
		{name: "symlinked-parent", root: tree, host: filepath.Join(tree, "link", "state"), inner: "/real/state",
			checks: map[string]bool{"/real/state": true, "/link": false}},
		{name: "not-yet-created", root: tree, host: filepath.Join(tree, "link", "new", "reports"), inner: "/real/new/reports"},
		{name: "no-root-prefix", host: "./var", inner: filepath.Join(tree, "home/src/var")},
		{name: "outside-tree", root: tree, host: filepath.Join(dir, "other")},
		{name: "is-root", root: tree, host: tree, errIs: ErrExcludesRoot},
		{name: "above-root", root: tree, host: dir, errIs: ErrExcludesRoot},
		{name: "slash", host: "/", errIs: ErrExcludesRoot},
		{name: "empty", root: tree, host: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := "/ p+u+g\n"
			if tc.root != "" {
				conf = "root_prefix=" + tc.root + "\n" + conf
			}
			p, err := parseString(t, conf)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Exclude(tc.host, "agent state_dir")
			if !errors.Is(err, tc.errIs) {
				t.Fatalf("Exclude(%q): got error %v, want %v", tc.host, err, tc.errIs)
			}
			ex := p.Exclusions()
			switch {
			case tc.inner == "" && len(ex) != 0:
				t.Errorf("got exclusions %+v, want none", ex)
			case tc.inner != "" && (len(ex) != 1 || ex[0].Path != tc.inner):
				t.Errorf("got exclusions %+v, want one of %s", ex, tc.inner)
			}
			for path, want := range tc.checks {
				m := p.Match(path, TypeDir)
				if got := m.Excluded != ""; got != want {
					t.Errorf("Match(%s): got excluded %v (%+v), want %v", path, got, m, want)
				}
				if want && (m.Selected || m.Descend) {
					t.Errorf("Match(%s): excluded but selected %v, descend %v", path, m.Selected, m.Descend)
				}
				if !want && !m.Selected {
					t.Errorf("Match(%s): not selected", path)
				}
			}
		})
	}
}

// TestIssue12ExcludeLines: an excluded path's dry-init line gives the
// reason, paths the rules skip anyway keep aide's line, and an exclusion
// that holds a rule's whole tree is a notice.
func TestIssue12ExcludeLines(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseString(t, "root_prefix="+dir+"\n/ p\n/var/lib/agent/x p\n!/run\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range [][2]string{{"/var/lib/agent", "agent state_dir"}, {"/run/agent", "agent run_dir"}} {
		if err := p.Exclude(dir+e[0], e[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"/var/lib/agent", "[ ] d '/var/lib/agent': excluded: agent state_dir"},
		{"/var/lib/agent/x", "[ ] d '/var/lib/agent/x': excluded: agent state_dir"},
		{"/var/lib", "[X] d '/var/lib': selective rule: '/ (none) p' (test.conf:2: '/ p')"},
		{"/run/agent", "[ ] d '/run/agent': negative rule: '!/run (none)' (test.conf:4: '!/run')"},
	} {
		if got := DryInitLine(tc.path, TypeDir, p.Match(tc.path, TypeDir)); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	var notice string
	for _, w := range p.Warnings {
		if strings.Contains(w, "holds the tree of rule") {
			notice = w
		}
	}
	if want := "test.conf:3: agent state_dir " + dir + "/var/lib/agent holds the tree of rule '/var/lib/agent/x p': it is not scanned"; notice != want {
		t.Errorf("got notice %q, want %q", notice, want)
	}
}

func TestLiteralPrefix(t *testing.T) {
	for rx, want := range map[string]string{
		"/var/log":            "/var/log",
		"/var/log/.*":         "/var/log",
		`/etc/ld\.so\.cache$`: "/etc/ld.so.cache",
		"/etcs?":              "/etc",
		"/x/[a-z]+/y":         "/x",
		"/":                   "",
		"/.*":                 "",
		"@@{X}/a":             "",
	} {
		if got := literalPrefix(rx); got != want {
			t.Errorf("literalPrefix(%q): got %q, want %q", rx, got, want)
		}
	}
}
