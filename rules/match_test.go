package rules

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	const conf = `/etc p
/etc$ d u
!/etc/skip$
!/etc/fifo p
=/eq/ g
=/foo s
/var p
-/var/cache
/deep/a/b/c m
/x/[a-z]+/y$ p
`
	p, err := parseString(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path              string
		t                 FileType
		selected, descend bool
		attrs             string
		ruleLine          int // 0 = no rule
	}{
		{"/etc", TypeDir, true, true, "p", 1},
		{"/etc", TypeFile, true, false, "p", 1},
		{"/etc/hosts", TypeFile, true, false, "p", 1},
		{"/etc/skip", TypeDir, false, false, "", 3},
		{"/etc/skip/inner", TypeFile, false, false, "", 3}, // parent directory check
		{"/etc/fifo", TypeFIFO, false, false, "", 4},
		{"/etc/fifo", TypeFile, true, false, "p", 1},
		{"/eq", TypeDir, false, true, "", 0}, // the node's ancestor: walked, not selected
		{"/eq/one", TypeFile, true, false, "g", 5},
		{"/eq/dir", TypeDir, true, true, "g", 5},
		{"/eq/dir/two", TypeFile, false, false, "", 0},
		{"/foo", TypeDir, true, true, "s", 6},
		{"/foobar", TypeFile, true, false, "s", 6},
		{"/foo/child", TypeFile, false, false, "", 0},
		{"/var/cache", TypeDir, false, false, "", 8},
		{"/var/lib", TypeDir, true, true, "p", 7},
		{"/deep", TypeDir, false, true, "", 0},
		{"/deep/a/b", TypeDir, false, true, "", 0},
		{"/deep/a/b/c", TypeFile, true, false, "m", 9},
		{"/deep/a/x", TypeDir, false, false, "", 0},
		{"/x/abc", TypeDir, false, true, "", 0}, // partial regex match
		{"/x/abc/y", TypeFile, true, false, "p", 10},
		{"/x/ABC", TypeDir, false, false, "", 0},
		{"/usr", TypeDir, false, false, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.path+"/"+tc.t.String(), func(t *testing.T) {
			m := p.Match(tc.path, tc.t)
			line := 0
			if m.Rule != nil {
				line = m.Rule.Line
			}
			if m.Selected != tc.selected || m.Descend != tc.descend || m.Attrs.AIDEString() != tc.attrs || line != tc.ruleLine {
				t.Errorf("Match(%q, %v) = selected %v descend %v attrs %q rule line %d, want %v %v %q %d",
					tc.path, tc.t, m.Selected, m.Descend, m.Attrs.AIDEString(), line, tc.selected, tc.descend, tc.attrs, tc.ruleLine)
			}
		})
	}
}

func TestMatchBytes(t *testing.T) {
	p, err := parseString(t, "/u/.$ p\n/v/..$ p\n/x/\\xC3\\xA9 p\n/y/\xc3\xa9 p\n/z/[^a]$ p\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"/u/\xc3\xa9", false}, // '.' is one byte
		{"/v/\xc3\xa9", true},
		{"/x/\xc3\xa9", true},
		{"/y/\xc3\xa9", true},
		{"/z/\xc3\xa9", false},
		{"/z/b", true},
		{"/v/\xff\xfe", true}, // not UTF-8
	}
	for _, tc := range tests {
		if got := p.Match(tc.path, TypeFile).Selected; got != tc.want {
			t.Errorf("Match(%q).Selected = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestMatchLimit(t *testing.T) {
	p, err := parseString(t, "/ p\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetLimit("/etc/ssh"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path              string
		t                 FileType
		selected, descend bool
		line              string
	}{
		{"/etc", TypeDir, false, true, "[ ] d '/etc': outside of limit '/etc/ssh'"},
		{"/etc/ssh", TypeDir, true, true, "[X] d '/etc/ssh': selective rule: '/ (none) p' (test.conf:1: '/ p')"},
		{"/etc/sshd_config", TypeFile, true, false, ""},
		{"/usr", TypeDir, false, false, "[ ] d '/usr': outside of limit '/etc/ssh'"},
	}
	for _, tc := range tests {
		m := p.Match(tc.path, tc.t)
		if m.Selected != tc.selected || m.Descend != tc.descend {
			t.Errorf("Match(%q) = selected %v descend %v, want %v %v", tc.path, m.Selected, m.Descend, tc.selected, tc.descend)
		}
		if tc.line != "" {
			if got := p.DryInitLine(tc.path, tc.t, m); got != tc.line {
				t.Errorf("DryInitLine = %q\nwant          %q", got, tc.line)
			}
		}
	}
	if err := p.SetLimit("/a(?=b)"); err == nil {
		t.Error("SetLimit accepted a PCRE-only lookahead")
	}
}

func TestEscapePath(t *testing.T) {
	if got, want := EscapePath("/a\tb\nc\x7f\xff\\ d"), `/a\011b\012c\177`+"\xff"+`\ d`; got != want {
		t.Errorf("EscapePath = %q, want %q", got, want)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	p, err := Load("testdata/example-aide.conf", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Match("/warm", TypeFile)
	allocs := testing.AllocsPerRun(200, func() {
		p.Match("/tmp/aidetest/tree/etc/hosts", TypeFile)
		p.Match("/tmp/aidetest/tree/var/log/syslog", TypeFile)
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call on ASCII files, want 0", allocs)
	}
}

func BenchmarkMatch(b *testing.B) {
	p, err := Load("testdata/example-aide.conf", LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	paths := []string{"/tmp/aidetest/tree/etc/hosts", "/tmp/aidetest/tree/bin/ls", "/usr/share/" + strings.Repeat("x", 40)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.Match(paths[i%len(paths)], TypeFile)
	}
}
