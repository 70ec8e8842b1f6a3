package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opsagent/examples"
	"opsagent/rules"
	"opsagent/scanner"
)

// baselineDigests returns the BLAKE3 digests (base64) a JSON report gives for
// its baseline and its new baseline.
func baselineDigests(t *testing.T, js string) (base, next string) {
	t.Helper()
	var rep struct {
		Baseline    struct{ BLAKE3 string } `json:"baseline"`
		NewBaseline struct{ BLAKE3 string } `json:"new_baseline"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, js)
	}
	return rep.Baseline.BLAKE3, rep.NewBaseline.BLAKE3
}

// fileBLAKE3 is the BLAKE3 (base64, as reports give it) of the file at path.
func fileBLAKE3(t *testing.T, path string) string {
	t.Helper()
	d, _, err := scanner.HashFile(path, rules.AttrBLAKE3.Set())
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(d.BLAKE3[:])
}

// TestIssue12OwnFilesNotReported: with state_dir, report_dir and a
// report_url file inside the scanned tree, a check right after init reports
// nothing (it used to list baseline.db, its temp file, the lock and the
// reports), the baseline's BLAKE3 is still vouched for by the reports, and a
// real change in the tree is still found.
func TestIssue12OwnFilesNotReported(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{
		{path: "etc/hosts", kind: 'f', data: "127.0.0.1 localhost\n"},
		{path: "var/lib/app/data", kind: 'f', data: "x\n"},
	})
	state := filepath.Join(tree, "var/lib/agent")
	conf := filepath.Join(dir, "agent.conf")
	body := "ALL = p+u+g+s+m+c+i+n+md5+sha256\n" +
		"state_dir=" + state + "\n" +
		"report_dir=" + filepath.Join(tree, "var/reports") + "\n" +
		"report_url=stdout\n" +
		"report_url=file:" + filepath.Join(tree, "last-report.txt") + "\n" +
		"report_format=json\n" +
		tree + " ALL\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	in := agent(t, "--config", conf, "init")
	if in.code != 0 {
		t.Fatalf("init: exit %d: %s", in.code, in.stderr)
	}
	_, initDigest := baselineDigests(t, in.stdout)
	// mtime is compared in whole seconds: let a directory the agent wrote
	// into after its scan show a different one.
	time.Sleep(1100 * time.Millisecond)
	for i := 1; i <= 2; i++ {
		r := agent(t, "--config", conf, "check")
		if r.code != 0 {
			t.Fatalf("check %d: exit %d, want 0 (the agent reports its own files?): %s\n%s", i, r.code, r.stderr, r.stdout)
		}
		base, _ := baselineDigests(t, r.stdout)
		if base != initDigest || base == "" {
			t.Errorf("check %d: baseline BLAKE3 %q, init wrote %q", i, base, initDigest)
		}
	}
	if got := fileBLAKE3(t, filepath.Join(state, "baseline.db")); got != initDigest {
		t.Errorf("baseline.db has BLAKE3 %s, the reports say %s", got, initDigest)
	}

	if err := os.WriteFile(filepath.Join(tree, "etc/hosts"), []byte("10.0.0.1 evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := agent(t, "--config", conf, "check")
	if r.code != 4 {
		t.Fatalf("check after a change: exit %d, want 4: %s\n%s", r.code, r.stderr, r.stdout)
	}
	var rep struct {
		Added, Removed, Changed map[string]string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(tree, "etc/hosts")
	if len(rep.Added)+len(rep.Removed) != 0 || len(rep.Changed) != 1 || rep.Changed[hosts] == "" {
		t.Errorf("got added %v, removed %v, changed %v; want only %s changed", rep.Added, rep.Removed, rep.Changed, hosts)
	}
}

// demoRoot is `make demo` in a temp root: the embedded default config with
// root_prefix set, and a checkout at /root/src (scanned by the default
// config) with its state in ./var. It returns the config and the checkout.
func demoRoot(t *testing.T) (conf, src string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	src = filepath.Join(root, "root/src")
	buildTree(t, root, []treeFile{
		{path: "etc/hosts", kind: 'f', data: "127.0.0.1 localhost\n"},
		{path: "root/src/Makefile", kind: 'f', data: "demo:\n"},
		{path: "root/src/bin/agent", kind: 'f', data: "binary\n"},
		{path: "root/src/var", kind: 'd'},
	})
	conf = filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, append([]byte("root_prefix="+root+"\n"), examples.AgentConf...), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, src
}

// TestIssue12Demo: `make demo`'s flow (init then check with --state-dir
// ./var, run from a checkout inside a scanned tree) reports 0 changes.
func TestIssue12Demo(t *testing.T) {
	conf, src := demoRoot(t)
	for _, cmd := range []string{"init", "check", "check"} {
		c := agentCmd("--config", conf, "--state-dir", "./var", cmd)
		c.Dir = src
		r := runPrepared(t, c)
		if r.code != 0 {
			t.Fatalf("%s: exit %d, want 0: %s\n%s", cmd, r.code, r.stderr, r.stdout)
		}
		if cmd == "check" && (strings.Contains(r.stdout, "/root/src/var") || !strings.Contains(r.stdout, "Looks okay")) {
			t.Errorf("%s reports the agent's own files:\n%s", cmd, r.stdout)
		}
	}
}

// TestIssue12DryInitConfigCheck: dry-init and config check show the agent's
// own dirs as excluded, with the reason, and dry-init lists nothing below
// them.
func TestIssue12DryInitConfigCheck(t *testing.T) {
	conf, src := demoRoot(t)
	for _, tc := range []struct{ cmd, want string }{
		{"dry-init", "[ ] d '/root/src/var': excluded: agent state_dir\n"},
		{"config check", "'/root/src/var': excluded: agent state_dir\n"},
	} {
		args := append([]string{"--config", conf, "--state-dir", "./var"}, strings.Fields(tc.cmd)...)
		c := agentCmd(args...)
		c.Dir = src
		r := runPrepared(t, c)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.cmd, r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, tc.want) {
			t.Errorf("%s does not show %q:\n%s", tc.cmd, tc.want, r.stdout)
		}
		if tc.cmd == "dry-init" && strings.Contains(r.stdout, "'/root/src/var/") {
			t.Errorf("%s lists entries below the state dir:\n%s", tc.cmd, r.stdout)
		}
		if tc.cmd == "dry-init" && !strings.Contains(r.stdout, "[X] f '/root/src/Makefile': selective rule") {
			t.Errorf("dry-init lost the checkout's own files:\n%s", r.stdout)
		}
	}
}

// TestIssue12StateDirHoldsTree: a state_dir holding the whole scanned tree
// would leave nothing to scan: a config error naming it.
func TestIssue12StateDirHoldsTree(t *testing.T) {
	conf, src := demoRoot(t)
	root := filepath.Dir(filepath.Dir(src))
	for _, state := range []string{root, filepath.Dir(root), "/"} {
		r := agent(t, "--config", conf, "--state-dir", state, "config", "check")
		if r.code != exitConfig || !strings.Contains(r.stderr, "agent state_dir "+state+" holds the scanned tree") {
			t.Errorf("state_dir %s: exit %d, want %d; stderr: %s", state, r.code, exitConfig, r.stderr)
		}
	}
}
