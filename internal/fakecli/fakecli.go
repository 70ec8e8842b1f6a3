// Package fakecli writes stand-ins for the vendor command-line tools (RAID
// CLIs and the like) that tests put on a PATH of their own: a /bin/sh script
// that prints a prepared file for each argument pattern it knows and
// records how it was run. It is for tests only and never runs a real tool.
package fakecli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Case is one answer of a Tool.
type Case struct {
	// Pattern is a sh case pattern matched against the arguments joined by
	// single spaces ("$*"), written into the script as it is: quote literal
	// text with Exact.
	Pattern string
	// File is the absolute path of the file to print. A missing file makes
	// the tool fail (exit 1) with a message on stderr, so a test can switch
	// answers by changing what File names (a symlinked directory, say).
	File string
}

// Exact returns a Pattern matching exactly the argument string s.
func Exact(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Tool describes one stand-in.
type Tool struct {
	Name  string
	Cases []Case // tried in order; no match prints "NAME: unknown command" and exits 2
	Exit  int    // exit status after printing a Case's file
	Hang  bool   // sleep for 30 s instead of answering (timeout tests)
	// Record, when set, is a directory where every run appends its
	// arguments to NAME.argv (one per line, then a line "--"), and writes
	// its environment to NAME.env and its working directory to NAME.pwd.
	Record string
}

// Install writes the tool as an executable script bin/NAME.
func (f Tool) Install(t testing.TB, bin string) {
	t.Helper()
	q := func(s string) string { return Exact(s) }
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	if f.Record != "" {
		argv := q(filepath.Join(f.Record, f.Name+".argv"))
		b.WriteString("for a in \"$@\"; do printf '%s\\n' \"$a\"; done >> " + argv + "\n")
		b.WriteString("echo -- >> " + argv + "\n")
		b.WriteString("/usr/bin/env > " + q(filepath.Join(f.Record, f.Name+".env")) + "\n")
		b.WriteString("pwd > " + q(filepath.Join(f.Record, f.Name+".pwd")) + "\n")
	}
	if f.Hang {
		b.WriteString("exec /bin/sleep 30\n")
	}
	b.WriteString("case \"$*\" in\n")
	for _, c := range f.Cases {
		if !filepath.IsAbs(c.File) {
			t.Fatalf("fakecli %s: case %s: file %q is not absolute", f.Name, c.Pattern, c.File)
		}
		file := q(c.File)
		b.WriteString("  " + c.Pattern + ") if [ -r " + file + " ]; then /bin/cat " + file + "; exit " + strconv.Itoa(f.Exit) +
			"; fi; echo " + q(f.Name+": no such output: "+c.File) + " >&2; exit 1 ;;\n")
	}
	b.WriteString("  *) echo \"" + f.Name + ": unknown command: $*\" >&2; exit 2 ;;\nesac\n")
	if err := os.WriteFile(filepath.Join(bin, f.Name), []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Runs reads the argv record of tool name in the Record directory: one
// []string per run, oldest first; nil when it never ran.
func Runs(t testing.TB, record, name string) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(record, name+".argv"))
	if err != nil {
		return nil
	}
	var runs [][]string
	var cur []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "--" {
			runs = append(runs, cur)
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	return runs
}
