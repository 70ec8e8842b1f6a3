package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"opsagent/db"
	"opsagent/scanner"
)

// TestWorkersSameOutput: the baseline and the check report are the same for
// 1, 2 and 8 workers.
func TestWorkersSameOutput(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	var items []treeFile
	for i := 0; i < 400; i++ {
		items = append(items, treeFile{
			path: fmt.Sprintf("d%d/sub%d/f%03d", i%7, i%3, i),
			kind: 'f', data: strings.Repeat(fmt.Sprint(i), i*13),
		})
	}
	buildTree(t, tree, items)
	conf := simpleConfig(t, dir, tree)

	var entries [][]*scanner.Entry
	var reports []string
	for _, w := range []string{"1", "2", "8"} {
		state := filepath.Join(dir, "state"+w)
		if r := agent(t, "--config", conf, "--state-dir", state, "--workers", w, "init"); r.code != 0 {
			t.Fatalf("init --workers %s: exit %d: %s", w, r.code, r.stderr)
		}
		b, err := db.Open(filepath.Join(state, "baseline.db"))
		if err != nil {
			t.Fatal(err)
		}
		var es []*scanner.Entry
		if err := b.Each(func(e *scanner.Entry) error { es = append(es, e); return nil }); err != nil {
			t.Fatal(err)
		}
		b.Close()
		entries = append(entries, es)
	}
	// Change some files, then check with each worker count against the
	// first baseline.
	for i := 0; i < 400; i += 37 {
		p := filepath.Join(tree, items[i].path)
		if err := os.WriteFile(p, []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []string{"1", "2", "8"} {
		r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "state1"), "--workers", w, "check")
		if r.code != 4 {
			t.Fatalf("check --workers %s: exit %d: %s", w, r.code, r.stderr)
		}
		reports = append(reports, stripVolatile(r.stdout))
	}
	for i := 1; i < len(entries); i++ {
		if len(entries[i]) != len(entries[0]) {
			t.Fatalf("baseline %d has %d entries, baseline 0 has %d", i, len(entries[i]), len(entries[0]))
		}
		for j := range entries[0] {
			a, b := *entries[0][j], *entries[i][j]
			// Access times move as the earlier runs read the files.
			a.Atime, b.Atime = 0, 0
			if !reflect.DeepEqual(a, b) {
				t.Errorf("entry %d differs between 1 and more workers:\n%+v\n%+v", j, a, b)
				break
			}
		}
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] != reports[0] {
			t.Errorf("check report with worker count #%d differs:\n%s\n---\n%s", i, reports[0], reports[i])
		}
	}
}

// stripVolatile drops the lines of a report that name times and digests.
func stripVolatile(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Start timestamp:") || strings.HasPrefix(l, "End timestamp:") ||
			strings.HasPrefix(l, " BLAKE3") || strings.HasPrefix(l, "             ") && !strings.Contains(l, "|") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
