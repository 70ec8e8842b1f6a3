package sshval

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestParseRulesGolden parses every testdata/rules/*.conf and compares the
// result with its .golden.json.
func TestParseRulesGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/rules/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/rules/*.conf: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			rules, err := ParseRules(bytes.NewReader(data), filepath.Base(file))
			if err != nil {
				t.Fatalf("ParseRules: %v", err)
			}
			got, err := json.MarshalIndent(rules, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".conf") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ParseRules(%s) differs from %s:\ngot:\n%s\nwant:\n%s", file, golden, got, want)
			}
		})
	}
}

// TestExampleConf: examples/sshval.conf is the classic case, written out.
func TestExampleConf(t *testing.T) {
	data, err := os.ReadFile("../examples/sshval.conf")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules(bytes.NewReader(data), "sshval.conf")
	if err != nil {
		t.Fatalf("ParseRules(examples/sshval.conf): %v", err)
	}
	if rules.Log != "/var/log/agent/sshval.log" {
		t.Errorf("Log = %q, want /var/log/agent/sshval.log", rules.Log)
	}
	if len(rules.Rules) != 1 {
		t.Fatalf("got %d rules, want 1", len(rules.Rules))
	}
	r := rules.Rules[0]
	want := Rule{
		Name: "backups", Kind: KindRsync, Line: r.Line,
		From: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Root: "/data/irsync", Push: true, Pull: true, Delete: false,
		Munge: true, Program: "/usr/bin/rsync",
	}
	if !ruleEqual(r, want) {
		t.Errorf("example rule = %+v, want %+v", r, want)
	}
}

func ruleEqual(a, b Rule) bool {
	return a.Name == b.Name && a.Kind == b.Kind && slices.Equal(a.From, b.From) && a.Line == b.Line &&
		a.Root == b.Root && a.Push == b.Push && a.Pull == b.Pull && a.Delete == b.Delete &&
		slices.Equal(a.Options, b.Options) && a.Munge == b.Munge && a.NoConfineRoot == b.NoConfineRoot &&
		a.Program == b.Program && slices.Equal(a.Args, b.Args)
}

func TestParseRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
		line int
	}{
		{"unknown kind", "shell x {\n}\n", ErrUnknown, 1},
		{"sftp rule", "sftp files {\n root /srv\n}\n", ErrSFTP, 1},
		{"no name", "rsync {\n}\n", ErrSyntax, 1},
		{"bad name", "rsync a/b {\n root /x\n push yes\n}\n", ErrValue, 1},
		{"duplicate name", "command a {\n run /bin/true\n}\ncommand a {\n run /bin/true\n}\n", ErrDuplicate, 4},
		{"unclosed block", "rsync a {\n root /x\n push yes\n", ErrSyntax, 1},
		{"stray close", "}\n", ErrSyntax, 1},
		{"close with words", "command a {\n run /bin/true\n} x\n", ErrSyntax, 3},
		{"nested block", "rsync a {\n root /x\n push yes\ncommand b {\n run /bin/true\n}\n", ErrSyntax, 4},
		{"setting outside", "root /x\n", ErrUnknown, 1},
		{"log inside", "rsync a {\n log /x\n}\n", ErrUnknown, 2},
		{"log twice", "log /a\nlog /b\n", ErrDuplicate, 2},
		{"log relative", "log var/log/x\n", ErrPath, 1},
		{"log two words", "log /a /b\n", ErrValue, 1},
		{"counters relative", "counters var/x\n", ErrPath, 1},
		{"counters slash", "counters /\n", ErrPath, 1},
		{"counters twice", "counters none\ncounters /x\n", ErrDuplicate, 2},
		{"counters inside", "command a {\n run /bin/true\n counters /x\n}\n", ErrUnknown, 3},
		{"events unknown", "events mail\n", ErrValue, 1},
		{"events relative file", "events file:x.jsonl\n", ErrValue, 1},
		{"events twice", "events syslog\nevents journal\n", ErrDuplicate, 2},
		{"unknown setting", "rsync a {\n root /x\n push yes\n readonly yes\n}\n", ErrUnknown, 4},
		{"run in rsync rule", "rsync a {\n root /x\n push yes\n run /bin/true\n}\n", ErrUnknown, 4},
		{"root in command rule", "command a {\n root /x\n run /bin/true\n}\n", ErrUnknown, 2},
		{"root relative", "rsync a {\n root data\n push yes\n}\n", ErrPath, 2},
		{"root unclean", "rsync a {\n root /data/../x\n push yes\n}\n", ErrPath, 2},
		{"root slash", "rsync a {\n root /\n push yes\n}\n", ErrPath, 2},
		{"root twice", "rsync a {\n root /x\n root /y\n push yes\n}\n", ErrDuplicate, 3},
		{"root missing", "rsync a {\n push yes\n}\n", ErrMissing, 1},
		{"direction missing", "rsync a {\n root /x\n delete no\n}\n", ErrMissing, 1},
		{"yes no", "rsync a {\n root /x\n push true\n}\n", ErrValue, 3},
		{"value missing", "rsync a {\n root /x\n push\n}\n", ErrValue, 3},
		{"bad cidr", "rsync a {\n from 10.0.0.0/33\n root /x\n push yes\n}\n", ErrAddress, 2},
		{"host bits", "rsync a {\n from 10.1.2.3/8\n root /x\n push yes\n}\n", ErrAddress, 2},
		{"hostname", "rsync a {\n from backup.example.org\n root /x\n push yes\n}\n", ErrAddress, 2},
		{"unknown option", "rsync a {\n root /x\n push yes\n options --rsh\n}\n", ErrOption, 4},
		{"refused option", "rsync a {\n root /x\n push yes\n options --log-file\n}\n", ErrOption, 4},
		{"delete option", "rsync a {\n root /x\n push yes\n options --delete\n}\n", ErrOption, 4},
		{"short option", "rsync a {\n root /x\n push yes\n options -L\n}\n", ErrOption, 4},
		{"option with value", "rsync a {\n root /x\n push yes\n options --link-dest=/x\n}\n", ErrOption, 4},
		{"files-from unconfined", "rsync a {\n root /x\n push yes\n confine-root no\n options --files-from\n}\n", ErrOption, 1},
		{"program relative", "rsync a {\n root /x\n push yes\n program rsync\n}\n", ErrPath, 4},
		{"run relative", "command a {\n run uptime\n}\n", ErrPath, 2},
		{"run missing", "command a {\n from 10.0.0.0/8\n}\n", ErrMissing, 1},
		{"bad pattern", "command a {\n run /bin/cat [x\n}\n", ErrPattern, 2},
		{"open quote", "log '/var/log\n", ErrSyntax, 1},
		{"control character", "log /var/log/a\x01b\n", ErrSyntax, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRules(strings.NewReader(tc.in), "test.conf")
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseRules(%q) = %+v, %v; want error %v", tc.in, got, err, tc.want)
			}
			if got != nil {
				t.Errorf("ParseRules returned rules with an error: %+v", got)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is no *ParseError", err)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v is no ErrorList", err)
			}
			found := false
			for _, e := range list {
				if errors.Is(e, tc.want) {
					found = found || e.Line == tc.line
				}
				if e.File != "test.conf" {
					t.Errorf("error %v names file %q, want test.conf", e, e.File)
				}
			}
			if !found {
				t.Errorf("no %v at line %d in:\n%v", tc.want, tc.line, err)
			}
		})
	}
}

// TestParseRulesCollectsAll: one pass reports every error, capped.
func TestParseRulesCollectsAll(t *testing.T) {
	in := "bogus 1\nrsync a {\n root rel\n push maybe\n}\nlog x\n"
	_, err := ParseRules(strings.NewReader(in), "x.conf")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 4 {
		t.Fatalf("ParseRules = %v, want 4 errors", err)
	}
	if got, want := list[0].Error(), "x.conf:1: "; !strings.HasPrefix(got, want) {
		t.Errorf("first error %q does not start with %q", got, want)
	}
	many := strings.Repeat("bogus\n", 500)
	_, err = ParseRules(strings.NewReader(many), "x.conf")
	if !errors.As(err, &list) || len(list) != maxErrors+1 || !errors.Is(list[maxErrors], errTooMany) {
		t.Errorf("500 bad lines gave %d errors, want %d ending in errTooMany", len(list), maxErrors+1)
	}
}

func TestLoadRules(t *testing.T) {
	const good = "rsync a {\n root /x\n push yes\n}\n"
	write := func(t *testing.T, dir string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, "sshval.conf")
		if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("safe", func(t *testing.T) {
		p := write(t, t.TempDir(), 0o644)
		rules, err := LoadRules(p)
		if err != nil {
			t.Fatalf("LoadRules: %v", err)
		}
		if rules.File != p || len(rules.Rules) != 1 {
			t.Errorf("LoadRules = %+v", rules)
		}
	})
	t.Run("parse error names the path", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.conf")
		if err := os.WriteFile(p, []byte("bogus\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadRules(p)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.File != p || pe.Line != 1 {
			t.Errorf("LoadRules = %v, want a ParseError at %s:1", err, p)
		}
	})
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"group writable", func(t *testing.T) string { return write(t, t.TempDir(), 0o664) }},
		{"world writable", func(t *testing.T) string { return write(t, t.TempDir(), 0o646) }},
		{"symlink", func(t *testing.T) string {
			dir := t.TempDir()
			p := write(t, dir, 0o644)
			l := filepath.Join(dir, "link.conf")
			if err := os.Symlink(p, l); err != nil {
				t.Fatal(err)
			}
			return l
		}},
		{"directory", func(t *testing.T) string { return t.TempDir() }},
		{"fifo", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"parent writable by others", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			return write(t, dir, 0o644)
		}},
		{"owned by another user", func(t *testing.T) string {
			if os.Geteuid() != 0 {
				t.Skip("chown to another user needs root")
			}
			p := write(t, t.TempDir(), 0o644)
			if err := os.Chown(p, 12345, 12345); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t)
			_, err := LoadRules(p)
			if !errors.Is(err, ErrUnsafeFile) {
				t.Fatalf("LoadRules(%s) = %v, want ErrUnsafeFile", p, err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != p {
				t.Errorf("error %v is no *fs.PathError for %s", err, p)
			}
		})
	}
	t.Run("sticky world-writable parent is fine", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "tmp")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadRules(write(t, dir, 0o644)); err != nil {
			t.Errorf("LoadRules: %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := LoadRules(filepath.Join(t.TempDir(), "none.conf"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadRules(missing) = %v, want fs.ErrNotExist", err)
		}
	})
}

// FuzzParseRules: ParseRules never panics, reports errors only as an
// ErrorList of ParseErrors, and what it accepts is well formed.
func FuzzParseRules(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/*.conf")
	files = append(files, "../examples/sshval.conf")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("sftp x {\n}\n}\n{\n")
	f.Fuzz(func(t *testing.T, in string) {
		rules, err := ParseRules(strings.NewReader(in), "fuzz.conf")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || len(list) > maxErrors+1 {
				t.Fatalf("error %v is not a non-empty capped ErrorList", err)
			}
			return
		}
		names := map[string]bool{}
		for _, r := range rules.Rules {
			if names[r.Name] || !ruleName.MatchString(r.Name) {
				t.Fatalf("accepted bad or duplicate name %q", r.Name)
			}
			names[r.Name] = true
			if absPath(r.Program) != nil {
				t.Fatalf("rule %q: program %q is not absolute and clean", r.Name, r.Program)
			}
			switch r.Kind {
			case KindRsync:
				if absPath(r.Root) != nil || r.Root == "/" {
					t.Fatalf("rule %q: bad root %q", r.Name, r.Root)
				}
			case KindCommand:
			default:
				t.Fatalf("rule %q: kind %q", r.Name, r.Kind)
			}
		}
	})
}
