package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// agentBin is the agent binary built once for the command-level tests.
var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agent-test-bin-")
	if err != nil {
		panic(err)
	}
	agentBin = filepath.Join(dir, "agent")
	args := []string{"build", "-o", agentBin}
	if os.Getenv("AGENT_TEST_RACE") == "1" {
		// make test-race: the binary the tests run has the race detector.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("building agent: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of a command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs name with args and returns its output and exit status; a
// failure to start it at all fails the test.
func runCmd(t *testing.T, name string, args ...string) result {
	t.Helper()
	return runPrepared(t, exec.Command(name, args...))
}

func agent(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, agentBin, args...)
}

// agentCmd prepares an agent command for a test that sets its environment.
func agentCmd(args ...string) *exec.Cmd { return exec.Command(agentBin, args...) }

// runPrepared runs a prepared command like runCmd.
func runPrepared(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return result{out.String(), errb.String(), code}
}
