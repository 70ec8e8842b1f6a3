package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestParseHelp parses saved help pages of the agent (testdata/help/*.txt)
// and compares the result with NAME.golden.json.
func TestParseHelp(t *testing.T) {
	files, err := filepath.Glob("testdata/help/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/help/*.txt (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseHelp(string(text))
			if err != nil {
				t.Fatalf("parseHelp: %v", err)
			}
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(f, ".txt") + ".golden.json"
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
				t.Errorf("parseHelp(%s) =\n%s\nwant\n%s", f, got, want)
			}
		})
	}
}

// TestParseHelpFields checks the fields of a few pages by hand, so that the
// goldens are not the only statement of what the parser must find.
func TestParseHelpFields(t *testing.T) {
	read := func(name string) *helpPage {
		t.Helper()
		text, err := os.ReadFile(filepath.Join("testdata/help", name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseHelp(string(text))
		if err != nil {
			t.Fatalf("parseHelp(%s): %v", name, err)
		}
		return p
	}
	t.Run("app", func(t *testing.T) {
		p := read("app.txt")
		if p.Name != "agent" || p.Version == "" {
			t.Errorf("Name, Version = %q, %q; want agent and a version", p.Name, p.Version)
		}
		var cfg *flagSpec
		for i := range p.Flags {
			if p.Flags[i].Names[0] == "--config" {
				cfg = &p.Flags[i]
			}
		}
		if cfg == nil {
			t.Fatalf("no --config in %+v", p.Flags)
		}
		if strings.Join(cfg.Names, " ") != "--config -c" || cfg.Meta != "FILE" || !strings.Contains(cfg.Usage, "[$AGENT_CONFIG]") {
			t.Errorf("--config = %+v", *cfg)
		}
		if len(p.Commands) < 5 || p.Commands[0].Names[0] != "init" || p.Commands[len(p.Commands)-1].Names[0] != "help" {
			t.Errorf("Commands = %+v; want init first and help last", p.Commands)
		}
	})
	t.Run("sshval test", func(t *testing.T) {
		p := read("sshval_test.txt")
		if p.Name != "agent sshval test" || p.UsageLine != "agent sshval test [command options] --from IP -- COMMAND..." {
			t.Errorf("Name, UsageLine = %q, %q", p.Name, p.UsageLine)
		}
	})
	t.Run("sshval description", func(t *testing.T) {
		p := read("sshval.txt")
		if len(p.Description) < 3 || !strings.HasPrefix(p.Description[1], "   command=") {
			t.Errorf("Description = %q; want the indented example kept indented", p.Description)
		}
	})
	t.Run("raid check booleans", func(t *testing.T) {
		for _, f := range read("raid_check.txt").Flags {
			if f.Meta != "" {
				t.Errorf("flag %v has value %q; raid check has only boolean flags", f.Names, f.Meta)
			}
		}
	})
}

// TestParseHelpErrors: output gendoc does not understand is an error, never a
// half-read page.
func TestParseHelpErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
	}{
		{"text before sections", "hello\nNAME:\n   agent - x\n"},
		{"unknown section", "NAME:\n   agent - x\n\nEXAMPLES:\n   agent check\n"},
		{"no colon heading", "NAME:\n   agent - x\nUSAGE\n"},
		{"not a flag", "NAME:\n   agent - x\n\nOPTIONS:\n   CATEGORY\n\n   --json  x\n"},
		{"flag without dash", "NAME:\n   agent - x\n\nOPTIONS:\n   --json  x\n   --x, y  z\n"},
		{"flag values differ", "NAME:\n   agent - x\n\nOPTIONS:\n   --config FILE, -c DIR  x\n"},
		{"bad command name", "NAME:\n   agent - x\n\nCOMMANDS:\n   a b, c  usage\n"},
		{"no name", "USAGE:\n   agent\n"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseHelp(tc.text)
			if !errors.Is(err, errHelp) {
				t.Errorf("parseHelp = %+v, %v; want an errHelp error", p, err)
			}
		})
	}
}

func TestSplitColumns(t *testing.T) {
	for _, tc := range []struct {
		in, left, right string
	}{
		{"--config FILE, -c FILE   configuration FILE (AIDE syntax)", "--config FILE, -c FILE", "configuration FILE (AIDE syntax)"},
		{"help, h  Shows a list", "help, h", "Shows a list"},
		{"--json", "--json", ""},
		{"check     probe  every", "check", "probe  every"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			l, r := splitColumns(tc.in)
			if l != tc.left || r != tc.right {
				t.Errorf("splitColumns(%q) = %q, %q; want %q, %q", tc.in, l, r, tc.left, tc.right)
			}
		})
	}
}

// FuzzParseHelp: any text parses or fails with errHelp, and a parsed page
// has a name and well-formed flags and commands.
func FuzzParseHelp(f *testing.F) {
	files, _ := filepath.Glob("testdata/help/*.txt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("NAME:\n   agent - x\n\nOPTIONS:\n   --a v, -b v  y\n     more\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := parseHelp(text)
		if err != nil {
			if !errors.Is(err, errHelp) {
				t.Fatalf("error %v is not errHelp", err)
			}
			return
		}
		if p.Name == "" {
			t.Fatal("parsed page without a name")
		}
		for _, fl := range p.Flags {
			if len(fl.Names) == 0 {
				t.Fatalf("flag without names: %+v", fl)
			}
			for _, n := range fl.Names {
				if !strings.HasPrefix(n, "-") || strings.ContainsAny(n, " \t") {
					t.Fatalf("bad flag name %q", n)
				}
			}
		}
		for _, c := range p.Commands {
			if len(c.Names) == 0 {
				t.Fatalf("command without names: %+v", c)
			}
		}
	})
}
