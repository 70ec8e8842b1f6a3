package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// buildAgent builds cmd/agent into a temporary directory.
func buildAgent(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("the go command is not available to build the agent")
		}
	}
	bin := filepath.Join(t.TempDir(), "agent")
	cmd := exec.Command(gobin, "build", "-o", bin, "opsagent/cmd/agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// completion asks the agent the urfave/cli way which words may follow args.
func completion(t *testing.T, agent string, args ...string) []string {
	t.Helper()
	cmd := exec.Command(agent, append(args, "--generate-bash-completion")...)
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v --generate-bash-completion: %v", agent, args, err)
	}
	return strings.Fields(string(out))
}

// TestGenerate runs gendoc against a freshly built agent and checks the man
// page against what the binary says by another route (its shell completion),
// renders the page with groff (or mandoc) expecting no warnings, and drives
// the completion script in bash.
func TestGenerate(t *testing.T) {
	agent := buildAgent(t)
	out := t.TempDir()
	args := []string{"-agent", agent, "-readme", "../../README.md", "-date", "2025-01-02", "-man", out, "-bash", out}
	var stderr bytes.Buffer
	if err := run(context.Background(), args, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	page, err := os.ReadFile(filepath.Join(out, "agent.8"))
	if err != nil {
		t.Fatal(err)
	}
	man := string(page)

	t.Run("every top-level command", func(t *testing.T) {
		var n int
		for _, c := range completion(t, agent) {
			if c == "help" || c == "h" {
				continue
			}
			n++
			if !strings.Contains(man, "\n.SS \"agent "+escape(c)+"\"\n") {
				t.Errorf("man page has no section for command %q", c)
			}
		}
		if n < 10 {
			t.Errorf("the agent completes only %d commands", n)
		}
	})
	t.Run("subcommands and their flags", func(t *testing.T) {
		for _, sub := range completion(t, agent, "raid") {
			if sub == "help" || sub == "h" {
				continue
			}
			if !strings.Contains(man, "\n.SS \"agent raid "+escape(sub)+"\"\n") {
				t.Errorf("man page has no section for raid %q", sub)
			}
		}
		if !strings.Contains(man, `\fB\-\-json\fR`) || !strings.Contains(man, `\fB\-\-config\fR \fIFILE\fR, \fB\-c\fR \fIFILE\fR`) {
			t.Error("man page lacks the --json or --config FILE, -c FILE flag lines")
		}
	})
	t.Run("sections", func(t *testing.T) {
		for _, s := range []string{".TH AGENT 8 \"2025-01-02\"", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION",
			".SH GLOBAL OPTIONS", ".SH COMMANDS", ".SH EXIT STATUS", ".SH FILES", ".SH SEE ALSO",
			"\\fBaide.conf\\fR(5)", "\n.TP\n\\fB24\\fR\n", "state_dir/baseline.db"} {
			if !strings.Contains(man, s) {
				t.Errorf("man page lacks %q", s)
			}
		}
		if strings.Contains(man, "AGENT_CONFIG=") {
			t.Error("the environment leaked into the page")
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		again := t.TempDir()
		if err := run(context.Background(), []string{"-agent", agent, "-readme", "../../README.md", "-date", "2025-01-02", "-man", again}, &stderr); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(again, "agent.8"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, page) {
			t.Error("a second run wrote a different page")
		}
	})
	t.Run("renders without warnings", func(t *testing.T) {
		checkRenders(t, filepath.Join(out, "agent.8"))
	})
	t.Run("bash completion", func(t *testing.T) {
		testCompletion(t, agent, filepath.Join(out, "agent"))
	})
}

// checkRenders formats a man page with groff (all warnings on) or, without
// groff, lints it with mandoc; any diagnostic fails the test.
func checkRenders(t *testing.T, page string) {
	t.Helper()
	var cmd *exec.Cmd
	if _, err := exec.LookPath("groff"); err == nil {
		cmd = exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", page)
	} else if _, err := exec.LookPath("mandoc"); err == nil {
		cmd = exec.Command("mandoc", "-Tlint", "-Wwarning", page)
	} else {
		t.Skip("neither groff nor mandoc is installed (apt-get install groff-base)")
	}
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("%v: %v\n%s", cmd.Args, err, out)
	}
}

// testCompletion sources the script in bash and completes a few command
// lines, as bash would at a TAB.
func testCompletion(t *testing.T, agent, script string) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	// A stand-in agent that records that it ran, for the "--" case.
	marker := filepath.Join(t.TempDir(), "ran")
	fake := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho ran >"+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		words []string // COMP_WORDS; the last one is being completed
		want  []string
	}{
		{"command", []string{agent, "ra"}, []string{"raid"}},
		{"subcommand", []string{agent, "raid", ""}, []string{"check", "parse", "help", "h"}},
		{"flags of a subcommand, hidden ones dropped", []string{agent, "raid", "check", "--"}, []string{"--json", "--mail", "--quiet", "--help"}},
		{"after global flag values", []string{agent, "--config", "/x", "raid", "ch"}, []string{"check"}},
		{"--flag=value", []string{agent, "--config", "=", "/x", "mail", ""}, []string{"flush", "test", "help", "h"}},
		{"path value left to bash", []string{agent, "--state-dir", ""}, nil},
		{"other value", []string{agent, "--workers", ""}, nil},
		{"never after --", []string{fake, "check", "--", ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var words strings.Builder
			for _, w := range tc.words {
				words.WriteString(" '" + strings.ReplaceAll(w, "'", `'\''`) + "'")
			}
			prog := "source '" + script + "'\nCOMP_WORDS=(" + words.String() + ")\nCOMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n" +
				"_agent_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
			out, err := exec.Command(bash, "-c", prog).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if !slices.Equal(got, tc.want) {
				t.Errorf("completion of %q = %q; want %q", tc.words[1:], got, tc.want)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the completion ran the agent after \"--\"")
	}
}
