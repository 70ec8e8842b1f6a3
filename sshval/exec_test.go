package sshval

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// hostileEnv is set in the parent so tests can show none of it reaches the
// executed program.
var hostileEnv = map[string]string{
	"SSH_ORIGINAL_COMMAND": "rm -rf /",
	"SSH_CONNECTION":       "10.1.2.3 5555 10.0.0.1 22",
	"LD_LIBRARY_PATH":      "/tmp/evil",
	"RSYNC_PARTIAL_DIR":    "/tmp/evil",
	"CVSIGNORE":            "*",
	"BASH_ENV":             "/tmp/evil.sh",
	"PATH":                 "/tmp/evil:/usr/bin:/bin",
}

func wantEnviron(t *testing.T) []string {
	t.Helper()
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		t.Skipf("no passwd entry for uid %d: %v", os.Getuid(), err)
	}
	return []string{"PATH=/usr/bin:/bin", "HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "LANG=C"}
}

func TestEnviron(t *testing.T) {
	for k, v := range hostileEnv {
		t.Setenv(k, v)
	}
	if got, want := Environ(), wantEnviron(t); !slices.Equal(got, want) {
		t.Errorf("Environ:\n got %q\nwant %q", got, want)
	}
}

func TestCommand(t *testing.T) {
	if _, err := os.Stat("/usr/bin/env"); err != nil {
		t.Skip("no /usr/bin/env")
	}
	for k, v := range hostileEnv {
		t.Setenv(k, v)
	}
	t.Run("environment is minimal", func(t *testing.T) {
		out, err := Command(Decision{Allow: true, Argv: []string{"/usr/bin/env"}}).Output()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if want := wantEnviron(t); !slices.Equal(got, want) {
			t.Errorf("env of the program:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("argv passed without a shell", func(t *testing.T) {
		if _, err := os.Stat("/usr/bin/printf"); err != nil {
			t.Skip("no /usr/bin/printf")
		}
		args := []string{"a b", "$(id)", "`id`", "x;y", "*", `\ `}
		cmd := Command(Decision{Allow: true, Argv: append([]string{"/usr/bin/printf", `%s\n`}, args...)})
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(out), strings.Join(args, "\n")+"\n"; got != want {
			t.Errorf("printf printed %q, want %q", got, want)
		}
	})
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		is   error
	}{
		{"not allowed", Decision{Argv: []string{"/usr/bin/env"}}, ErrNotAllowed},
		{"not allowed, no argv", Decision{}, ErrNotAllowed},
		{"empty argv", Decision{Allow: true}, ErrArgv},
		{"relative program", Decision{Allow: true, Argv: []string{"rsync", "--server"}}, ErrArgv},
		{"dot program", Decision{Allow: true, Argv: []string{"./rsync"}}, ErrArgv},
		{"unclean program", Decision{Allow: true, Argv: []string{"/usr/bin/../bin/env"}}, ErrArgv},
		{"empty program", Decision{Allow: true, Argv: []string{""}}, ErrArgv},
		{"NUL in argument", Decision{Allow: true, Argv: []string{"/usr/bin/env", "a\x00b"}}, ErrArgv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Exec returns before replacing the process for every case here.
			if err := Exec(tt.d); !errors.Is(err, tt.is) {
				t.Errorf("Exec: err = %v, want %v", err, tt.is)
			}
			cmd := Command(tt.d)
			if err := cmd.Run(); !errors.Is(err, tt.is) {
				t.Errorf("Command.Run: err = %v, want %v", err, tt.is)
			}
		})
	}
}

// execHelperEnv makes the test binary, started again by TestExec with
// -test.run=^TestExecHelper$, call Exec with the program it names.
const execHelperEnv = "SSHVAL_TEST_EXEC_HELPER"

// TestExecHelper is the child side of TestExec; run directly it does nothing.
func TestExecHelper(t *testing.T) {
	prog := os.Getenv(execHelperEnv)
	if prog == "" {
		t.Skip("only run as TestExec's child")
	}
	err := Exec(Decision{Allow: true, Argv: []string{prog}})
	// Only reached if exec failed.
	os.Stderr.WriteString("exec failed: " + err.Error() + "\n")
	os.Exit(3)
}

func execHelper(t *testing.T, prog string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestExecHelper$")
	cmd.Env = []string{execHelperEnv + "=" + prog}
	for k, v := range hostileEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

func TestExec(t *testing.T) {
	if _, err := os.Stat("/usr/bin/env"); err != nil {
		t.Skip("no /usr/bin/env")
	}
	t.Run("replaces the process with a minimal environment", func(t *testing.T) {
		out, err := execHelper(t, "/usr/bin/env").Output()
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if want := wantEnviron(t); !slices.Equal(got, want) {
			t.Errorf("env after Exec:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("exec failure is returned", func(t *testing.T) {
		out, err := execHelper(t, "/nonexistent/program").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "exec /nonexistent/program") {
			t.Errorf("helper: err %v, output %q; want exit 3 and the exec error", err, out)
		}
	})
}
