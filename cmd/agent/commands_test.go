package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func modTime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestCommandFlow runs init, check, accept, update, compare and db show on
// one tree and checks each outcome and exit status.
func TestCommandFlow(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{
		{path: "etc/hosts", kind: 'f', data: "127.0.0.1 localhost\n"},
		{path: "etc/motd", kind: 'f', data: "hello\n"},
	})
	conf := simpleConfig(t, dir, tree)
	state := filepath.Join(dir, "state")
	a := func(args ...string) result {
		t.Helper()
		return agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
	}
	if r := a("check"); r.code != exitIO || !strings.Contains(r.stderr, "agent init") {
		t.Errorf("check without baseline: exit %d, stderr %q; want %d and a hint to run agent init", r.code, r.stderr, exitIO)
	}
	if r := a("init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state_dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(filepath.Join(state, "baseline.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("baseline.db mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if r := a("check"); r.code != 0 || !strings.Contains(r.stdout, "NO differences") {
		t.Errorf("clean check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A change is reported until accepted.
	if err := os.WriteFile(filepath.Join(tree, "etc/motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := a("check"); r.code != 4 || !strings.Contains(r.stdout, "etc/motd") {
		t.Errorf("check after change: exit %d, want 4\n%s", r.code, r.stdout)
	}
	if r := a("check"); r.code != 4 {
		t.Errorf("second check: exit %d, want 4 (check never changes the baseline)", r.code)
	}
	if r := a("accept"); r.code != 0 {
		t.Errorf("accept: exit %d: %s", r.code, r.stderr)
	}
	if r := a("check"); r.code != 0 {
		t.Errorf("check after accept: exit %d\n%s", r.code, r.stdout)
	}

	// update reports like check, then installs the scan.
	if err := os.WriteFile(filepath.Join(tree, "etc/new"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tree, "etc/hosts")); err != nil {
		t.Fatal(err)
	}
	if r := a("update"); r.code != 1|2 {
		t.Errorf("update: exit %d, want 3 (added+removed)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := a("check"); r.code != 0 {
		t.Errorf("check after update: exit %d\n%s", r.code, r.stdout)
	}

	// Earlier generations are kept and can be compared.
	gens, _ := filepath.Glob(filepath.Join(state, "baseline-*.db"))
	if len(gens) < 2 {
		t.Fatalf("kept generations = %v, want at least 2", gens)
	}
	sort.Slice(gens, func(i, j int) bool { return modTime(t, gens[i]).Before(modTime(t, gens[j])) })
	r := a("compare", gens[0], filepath.Join(state, "baseline.db"))
	// gens[0] is the first init: motd changed, hosts removed, new added since.
	if r.code != 1|2|4 {
		t.Errorf("compare: exit %d, want 7\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = agent(t, "--config", conf, "--state-dir", state, "compare", "--format", "json", gens[0], filepath.Join(state, "baseline.db"))
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("compare --format json: not JSON: %v\n%s", err, r.stdout)
	}
	if doc["format"] != float64(1) {
		t.Errorf("JSON format = %v, want 1", doc["format"])
	}

	r = a("db", "show", filepath.Join(tree, "etc/new"))
	if r.code != 0 || !strings.Contains(r.stdout, "md5:") || !strings.Contains(r.stdout, "size:     4") {
		t.Errorf("db show: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := a("db", "show", filepath.Join(tree, "etc/none")); r.code == 0 || !strings.Contains(r.stderr, "not in baseline") {
		t.Errorf("db show of a missing path: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := agent(t, "--config", conf, "--state-dir", state, "compare", gens[0]); r.code != exitInvalidArg {
		t.Errorf("compare with one file: exit %d, want %d", r.code, exitInvalidArg)
	}
}

// TestConfigErrors: config check names file and line of every error and
// exits 17; commands refuse to run on a bad config.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.conf")
	body := "NORMAL = p+u+md6\nbogus_option=1\n/etc NORMAL\n/x[ R\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"config", "check"}, {"init"}, {"check"}, {"dry-init"}} {
		r := agent(t, append([]string{"--config", conf, "--state-dir", filepath.Join(dir, "state")}, cmd...)...)
		if r.code != exitConfig {
			t.Errorf("%v: exit %d, want %d", cmd, r.code, exitConfig)
		}
		for _, want := range []string{conf + ":1:", conf + ":2:", conf + ":4:"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: stderr does not name %q:\n%s", cmd, want, r.stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Error("a bad config created state_dir")
	}
	if r := agent(t, "--config", filepath.Join(dir, "missing.conf"), "config", "check"); r.code != exitConfig {
		t.Errorf("missing --config file: exit %d", r.code)
	}
}

// TestUpdateLimit: update --limit takes the new state of the limited part
// only; the rest keeps its baseline values.
func TestUpdateLimit(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{
		{path: "a/f", kind: 'f', data: "a\n"},
		{path: "b/f", kind: 'f', data: "b\n"},
	})
	conf := simpleConfig(t, dir, tree)
	state := filepath.Join(dir, "state")
	a := func(args ...string) result {
		t.Helper()
		return agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
	}
	if r := a("init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	for _, p := range []string{"a/f", "b/f"} {
		if err := os.WriteFile(filepath.Join(tree, p), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "a/new"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := a("--limit", tree+"/a", "update"); r.code != 1|4 {
		t.Errorf("update --limit a: exit %d, want 5\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := a("check")
	if r.code != 4 || !strings.Contains(r.stdout, tree+"/b/f") || strings.Contains(r.stdout, tree+"/a/") {
		t.Errorf("check after update --limit a: exit %d, want 4 with only b/f changed\n%s", r.code, r.stdout)
	}
}

// TestAOEConfigError: a bad exports file exits 17, names file and line of
// every error, and starts nothing.
func TestAOEConfigError(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "vbladed.conf")
	body := "SHELF=\"70000\"\n0 /nonexistent 00:16:E6:D3:ED:E51 nosuchif0 apollo\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	agentConf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(agentConf, []byte("/nothing R\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"check", "start", "supervise"} {
		r := agent(t, "--config", agentConf, "aoe", cmd, "--exports", conf, "--run-dir", filepath.Join(dir, "run"))
		if r.code != exitConfig {
			t.Errorf("aoe %s: exit %d, want %d\n%s", cmd, r.code, exitConfig, r.stderr)
		}
		for _, want := range []string{conf + ":1:", conf + ":2:"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("aoe %s: stderr does not name %s:\n%s", cmd, want, r.stderr)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "aoe")); err == nil {
		t.Error("a bad exports file created run_dir/aoe")
	}
}

// TestConfigCheckSSHValRootPush: config check warns about an sshval push
// rule without run_as, and not about one with it.
func TestConfigCheckSSHValRootPush(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "sshval.conf")
	body := "rsync backups {\n    root /data/x\n    push yes\n}\nrsync safe {\n    root /data/y\n    push yes\n    run_as backup\n}\n"
	if err := os.WriteFile(rulesFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := simpleConfig(t, dir, filepath.Join(dir, "tree"))
	r := agent(t, "--config", conf, "config", "check", "--sshval-rules", rulesFile)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "sshval push rule backups ("+rulesFile+":1) has no run_as") {
		t.Errorf("no warning for the push rule without run_as: %q", r.stderr)
	}
	if strings.Contains(r.stderr, "rule safe") {
		t.Errorf("warning for a rule with run_as: %q", r.stderr)
	}
}

// TestConfigCheckSSHValCounters: config check warns when sshval.conf counts
// decisions elsewhere than agent.conf's sshval_counters (or not at all),
// and says nothing when they agree.
func TestConfigCheckSSHValCounters(t *testing.T) {
	dir := t.TempDir()
	conf := simpleConfig(t, dir, filepath.Join(dir, "tree"))
	for _, tc := range []struct{ setting, want string }{
		{"", ""},
		{"counters /var/lib/agent-sshval\n", ""},
		{"counters /srv/counters\n", "counts sshval's decisions in /srv/counters, but sshval_counters is /var/lib/agent-sshval"},
		{"counters none\n", "keeps no decision counters (counters none)"},
	} {
		rulesFile := filepath.Join(dir, "sshval.conf")
		if err := os.WriteFile(rulesFile, []byte(tc.setting+"command up {\n    run /bin/true\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := agent(t, "--config", conf, "config", "check", "--sshval-rules", rulesFile)
		if r.code != 0 {
			t.Fatalf("%q: exit %d: %s", tc.setting, r.code, r.stderr)
		}
		got := strings.Contains(r.stderr, "counters")
		if tc.want == "" && got || tc.want != "" && !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: stderr %q, want %q", tc.setting, r.stderr, tc.want)
		}
	}
}

// TestAcceptWarnsOnRulesOnly: accept warns that last-check.db was scanned
// with other rules after an edit of the rules, not after an edit of options
// that do not change what a scan records.
func TestAcceptWarnsOnRulesOnly(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "etc/motd", kind: 'f', data: "hello\n"}})
	conf := simpleConfig(t, dir, tree)
	state := filepath.Join(dir, "state")
	a := func(args ...string) result {
		t.Helper()
		return agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
	}
	const warning = "scanned with other rules"
	appendConf := func(line string) {
		t.Helper()
		f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	if r := a("init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		edit string
		warn bool
	}{
		{edit: "report_explained = list", warn: false},
		{edit: "!" + filepath.Join(tree, "var"), warn: true},
	} {
		if err := os.WriteFile(filepath.Join(tree, "etc/motd"), []byte(tc.edit+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := a("check"); r.code != 4 {
			t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		appendConf(tc.edit)
		r := a("accept")
		if r.code != 0 {
			t.Fatalf("accept after %q: exit %d: %s", tc.edit, r.code, r.stderr)
		}
		if got := strings.Contains(r.stderr, warning); got != tc.warn {
			t.Errorf("accept after %q: warning %v, want %v; stderr %q", tc.edit, got, tc.warn, r.stderr)
		}
	}
}
