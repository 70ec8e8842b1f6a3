package fakecli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestTool(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(out, []byte("answer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Tool{Name: "cli", Exit: 3, Record: dir, Cases: []Case{
		{Pattern: Exact("it's info"), File: out},
		{Pattern: "*missing*", File: filepath.Join(dir, "none")},
	}}.Install(t, dir)
	run := func(args ...string) (string, int) {
		b, err := exec.Command(filepath.Join(dir, "cli"), args...).Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(b), code
	}
	if got, code := run("it's", "info"); got != "answer\n" || code != 3 {
		t.Errorf("known case: %q exit %d", got, code)
	}
	if _, code := run("x", "missing"); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
	if _, code := run("other"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	want := [][]string{{"it's", "info"}, {"x", "missing"}, {"other"}}
	if got := Runs(t, dir, "cli"); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Errorf("runs = %q, want %q", got, want)
	}
}
