package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// simpleConfig selects one tree with md5 hashes.
func simpleConfig(t *testing.T, dir, tree string) string {
	t.Helper()
	conf := filepath.Join(dir, "agent.conf")
	body := "NORMAL = p+u+g+s+md5+sha256\n" + tree + " NORMAL\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// bigTree makes a tree whose init takes a few seconds: one large sparse
// file (cheap to create, slow to hash) and some small ones.
func bigTree(t *testing.T, tree string) {
	t.Helper()
	buildTree(t, tree, []treeFile{
		{path: "a/one", kind: 'f', data: "1\n"},
		{path: "b/two", kind: 'f', data: "2\n"},
	})
	f, err := os.Create(filepath.Join(tree, "a/huge"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestInterruptKeepsBaseline sends SIGINT and SIGTERM in the middle of init
// and update: the previous baseline must stay byte-identical and no temp file
// may remain.
func TestInterruptKeepsBaseline(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  string
		sig  syscall.Signal
	}{
		{"init-SIGINT", "init", syscall.SIGINT},
		{"init-SIGTERM", "init", syscall.SIGTERM},
		{"update-SIGTERM", "update", syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tree := filepath.Join(dir, "tree")
			buildTree(t, tree, []treeFile{{path: "a/one", kind: 'f', data: "1\n"}})
			conf := simpleConfig(t, dir, tree)
			state := filepath.Join(dir, "state")
			if r := agent(t, "--config", conf, "--state-dir", state, "init"); r.code != 0 {
				t.Fatalf("first init: exit %d: %s", r.code, r.stderr)
			}
			before, err := os.ReadFile(filepath.Join(state, "baseline.db"))
			if err != nil {
				t.Fatal(err)
			}
			bigTree(t, tree)

			cmd := exec.Command(agentBin, "--config", conf, "--state-dir", state, tc.cmd)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the scan has written its temp generation.
			deadline := time.Now().Add(10 * time.Second)
			for len(tempFiles(t, state)) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			if code != exitInterrupted {
				t.Errorf("exit code %d (%v), want %d; stderr: %s", code, err, exitInterrupted, errb.String())
			}
			after, err := os.ReadFile(filepath.Join(state, "baseline.db"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("baseline.db changed after an interrupted run")
			}
			if m := tempFiles(t, state); len(m) > 0 {
				t.Errorf("temp files left: %v", m)
			}
		})
	}
}

// TestConcurrentInit: a second init while one runs exits 21.
func TestConcurrentInit(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	bigTree(t, tree)
	conf := simpleConfig(t, dir, tree)
	state := filepath.Join(dir, "state")
	first := exec.Command(agentBin, "--config", conf, "--state-dir", state, "init")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.Process.Signal(syscall.SIGTERM)
		first.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(tempFiles(t, state)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	r := agent(t, "--config", conf, "--state-dir", state, "init")
	if r.code != exitLocked {
		t.Errorf("second init: exit %d, want %d; stderr: %s", r.code, exitLocked, r.stderr)
	}
	if !strings.Contains(r.stderr, "lock") {
		t.Errorf("second init: message does not mention the lock: %q", r.stderr)
	}
}

// TestCorruptBaseline: a truncated or bit-flipped baseline gives exit 24
// with a clear message and is left in place.
func TestCorruptBaseline(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	var items []treeFile
	for i := 0; i < 300; i++ {
		items = append(items, treeFile{path: filepath.Join("d", string(rune('a'+i%26)), "f"+strings.Repeat("x", i%7)+string(rune('a'+i/26))), kind: 'f', data: strings.Repeat("y", i)})
	}
	buildTree(t, tree, items)
	conf := simpleConfig(t, dir, tree)
	state := filepath.Join(dir, "state")
	if r := agent(t, "--config", conf, "--state-dir", state, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	good, err := os.ReadFile(filepath.Join(state, "baseline.db"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"truncated-half": good[:len(good)/2],
		"truncated-4k":   good[:4096],
		"truncated-tail": good[:len(good)-4096],
		"empty":          {},
	}
	// Flip bits inside stored entries: in a key (a path) and in the value
	// right after it. Keys are paths with '/' stored as 0x00.
	for _, name := range []string{"fa", "fxxxb", "fxxxxxxc"} {
		key := []byte("\x00" + name)
		i := bytes.Index(good, key)
		if i < 0 {
			t.Fatalf("key %q not found in the baseline file", key)
		}
		for _, off := range []int{i + 2, i + len(key) + 1, i + len(key) + 8} {
			b := append([]byte(nil), good...)
			b[off] ^= 0x10
			cases["bitflip-"+name+"-"+strconv.Itoa(off-i)] = b
		}
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(state, "baseline.db")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			r := agent(t, "--config", conf, "--state-dir", state, "check")
			if r.code != exitCorrupt {
				t.Errorf("check on %s: exit %d, want %d; stderr: %s", name, r.code, exitCorrupt, r.stderr)
			}
			if r.code == exitCorrupt && !strings.Contains(r.stderr, "corrupt") {
				t.Errorf("message does not say corrupt: %q", r.stderr)
			}
			after, _ := os.ReadFile(p)
			if !bytes.Equal(after, data) {
				t.Error("corrupt baseline was replaced")
			}
		})
	}
}
