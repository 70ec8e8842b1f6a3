package scanner

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"opsagent/rules"
)

// policyConf is an aide config that exercises selection, pruning and an
// anchored rule; aide 0.18.3 --init over policyTree records policyWant.
const policyConf = `NORMAL = p+u+g+s+md5
/etc NORMAL
!/etc/skip$
/bin$ p
`

var policyTree = []string{"etc/a", "etc/skip/x", "etc/sub/b", "bin/ls", "other/x"}

var policyWant = []string{"/bin", "/etc", "/etc/a", "/etc/sub", "/etc/sub/b"}

func TestScanParsedPolicy(t *testing.T) {
	root := t.TempDir()
	for _, n := range policyTree {
		writeFile(t, filepath.Join(root, n), "")
	}
	pol, err := rules.Parse(strings.NewReader(policyConf), "test.conf", rules.LoadOptions{Hostname: "h", AgentVersion: "test"})
	if err != nil {
		t.Fatalf("rules.Parse = %v", err)
	}
	var got []*Entry
	_, err = Scan(context.Background(), pol, Options{Root: root}, func(e *Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if !slices.Equal(paths, policyWant) {
		t.Errorf("paths = %q, want %q", paths, policyWant)
	}
	m := byPath(got)
	normal := attrsOf(rules.AttrPerm, rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrMD5)
	if e := m["/etc/a"]; e == nil || e.Attrs != normal || e.Digests.MD5 == [16]byte{} {
		t.Errorf("/etc/a = %+v, want attrs %v and a digest", e, normal)
	}
	if e := m["/etc"]; e == nil || e.Attrs != normal&^rules.AttrMD5.Set() {
		t.Errorf("/etc attrs = %v, want %v (no hash for a directory)", e.Attrs, normal&^rules.AttrMD5.Set())
	}

	t.Run("aide oracle", func(t *testing.T) {
		aide, err := exec.LookPath("aide")
		if err != nil {
			t.Skip("aide not installed")
		}
		dir := t.TempDir()
		conf := "database_out=file:" + filepath.Join(dir, "db") + "\ngzip_dbout=no\nroot_prefix=" + root + "\n" + policyConf
		if err := os.WriteFile(filepath.Join(dir, "conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(aide, "-c", filepath.Join(dir, "conf"), "--init").CombinedOutput(); err != nil {
			t.Fatalf("aide --init: %v\n%s", err, out)
		}
		f, err := os.Open(filepath.Join(dir, "db"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var aidePaths []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "/") {
				aidePaths = append(aidePaths, strings.Fields(line)[0])
			}
		}
		slices.SortFunc(aidePaths, keyCompare)
		if !slices.Equal(paths, aidePaths) {
			t.Errorf("scanner paths = %q, aide recorded %q", paths, aidePaths)
		}
	})
}
