package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSSHValClientAddress runs `agent sshval` the way sshd runs a forced
// command, with the client address in SSH_CONNECTION, only in SSH_CLIENT
// (issue 14: every command was refused then), or in neither; and checks
// that the rejection the client sees has its format characters escaped.
func TestSSHValClientAddress(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "sshval.log")
	rules := filepath.Join(dir, "sshval.conf")
	conf := "log " + logFile + "\ncounters none\ncommand t {\n\tfrom 127.0.0.1\n\trun /bin/true\n}\n" +
		"rsync r {\n\tfrom 127.0.0.1\n\troot " + filepath.Join(dir, "root") + "\n\tpush yes\n}\n"
	if err := os.WriteFile(rules, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		env    []string
		code   int
		stderr string
	}{
		{"SSH_CONNECTION", []string{"SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22"}, 0, ""},
		{"SSH_CLIENT only", []string{"SSH_CLIENT=127.0.0.1 50000 22"}, 0, ""},
		{"SSH_CLIENT from elsewhere", []string{"SSH_CLIENT=192.0.2.1 50000 22"}, exitRejected, "source 192.0.2.1 not allowed by rule t"},
		{"neither", nil, exitRejected, "SSH_CONNECTION and SSH_CLIENT are missing"},
		{"bidi override in the reason", []string{"SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22", "SSH_ORIGINAL_COMMAND=/tmp/evil\u202e/rsync --server . x"},
			exitRejected, `program "/tmp/evil\u202e/rsync"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := agentCmd("sshval", "--rules", rules)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin", "SSH_ORIGINAL_COMMAND=true"}, tc.env...)
			res := runPrepared(t, cmd)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", res.code, tc.code, res.stderr)
			}
			if !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", res.stderr, tc.stderr)
			}
			if strings.ContainsRune(res.stderr, '\u202e') {
				t.Errorf("stderr %q holds a raw U+202E", res.stderr)
			}
		})
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(string(b), '\u202e') || !strings.Contains(string(b), `\u202e`) {
		t.Errorf("log does not escape U+202E as \\u202e:\n%s", b)
	}
}
