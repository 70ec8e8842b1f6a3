package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteManEscapes: text from the binary and README that roff would read
// as requests, escapes or font changes is printed literally.
func TestWriteManEscapes(t *testing.T) {
	root := &command{Page: &helpPage{Name: "agent", Usage: "a-b", Version: "1.0", Flags: []flagSpec{
		{Names: []string{"--x", "-x"}, Meta: "FILE", Usage: `.so /etc/passwd`},
	}}}
	root.Subcommands = []*command{{Path: []string{"odd-one"}, Aliases: []string{"o"}, Page: &helpPage{
		Name: "agent odd-one", Usage: `'quoted \fB not bold`, UsageLine: "agent odd-one [command options] A\\B",
		Description: []string{".TH in text", "", `   'indented \n example`, "", "after"},
		Flags:       []flagSpec{{Names: []string{"--help", "-h"}, Usage: "show help"}},
	}}}
	m := manual{Root: root, Date: "2025-01-02",
		Exit:  [][]string{{"0", "fine `code` and \\ backslash"}},
		Files: [][]string{{"`state_dir/x`", ".dot first"}}}
	var b bytes.Buffer
	if err := writeMan(&b, m); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for i, line := range strings.Split(strings.TrimSuffix(page, "\n"), "\n") {
		if line == "" {
			t.Errorf("line %d is empty", i+1)
		}
		if (line[0] == '.' || line[0] == '\'') && !isRequest(line) {
			t.Errorf("line %d %q is read as a request", i+1, line)
		}
	}
	for _, want := range []string{`\&.so /etc/passwd`, `\&'quoted \efB not bold.`, `\&.TH in text`,
		`\fBagent odd\-one\fR [command options] A\eB`, "\\fBcode\\fR and \\e backslash", `\&.dot first`, `Alias: \fBo\fR.`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "show help") {
		t.Error("a subcommand's --help flag is listed")
	}
	path := filepath.Join(t.TempDir(), "agent.8")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	checkRenders(t, path)
}

// isRequest reports whether line is one of the requests writeMan emits.
func isRequest(line string) bool {
	for _, r := range []string{`.\"`, ".TH ", ".SH ", ".SS ", ".TP", ".PP", ".RS ", ".RE", ".nf", ".fi"} {
		if strings.HasPrefix(line, r) {
			return true
		}
	}
	return false
}
