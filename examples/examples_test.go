package examples

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"opsagent/aoe"
	"opsagent/rules"
	"opsagent/sshval"
)

// TestAgentConfParses: the embedded default config parses without errors or
// notices, selects the classic server trees and ignores the volatile ones.
func TestAgentConfParses(t *testing.T) {
	pol, err := rules.Parse(bytes.NewReader(AgentConf), "agent.conf", rules.LoadOptions{AgentVersion: "test", Hostname: "test"})
	if err != nil {
		t.Fatalf("Parse(agent.conf): %v", err)
	}
	if len(pol.Warnings) != 0 {
		t.Errorf("agent.conf has notices: %q", pol.Warnings)
	}
	for _, tc := range []struct {
		path     string
		typ      rules.FileType
		selected bool
	}{
		{"/etc/passwd", rules.TypeFile, true},
		{"/usr/bin/ls", rules.TypeFile, true},
		{"/var/log/syslog", rules.TypeFile, true},
		{"/proc/1/status", rules.TypeFile, false},
		{"/tmp/x", rules.TypeFile, false},
		{"/var/lib/agent/baseline.db", rules.TypeFile, false},
		{"/home/user/file", rules.TypeFile, false},
	} {
		if got := pol.Match(tc.path, tc.typ).Selected; got != tc.selected {
			t.Errorf("Match(%q).Selected = %v, want %v", tc.path, got, tc.selected)
		}
	}
	m := pol.Match("/var/log/syslog", rules.TypeFile)
	if m.Attrs.Has(rules.AttrMD5) || !m.Attrs.Has(rules.AttrUID) {
		t.Errorf("/var/log rule attrs = %v, want LOG = p+u+g", m.Attrs)
	}
}

// TestAgentConfAide: aide itself accepts the default config (one file serves
// both tools).
func TestAgentConfAide(t *testing.T) {
	if _, err := exec.LookPath("aide"); err != nil {
		t.Skip("aide is not installed (apt-get install aide)")
	}
	out, err := exec.Command("aide", "-c", filepath.Join(".", "agent.conf"), "--config-check").CombinedOutput()
	if err != nil {
		t.Errorf("aide --config-check agent.conf: %v\n%s", err, out)
	}
}

// TestEveryExampleParses parses every *.conf in this directory that is an
// agent config.
func TestEveryExampleParses(t *testing.T) {
	files, err := filepath.Glob("*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f != "agent.conf" {
			continue // other configs (sshval, vbladed) have their own parsers
		}
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
		if _, err := rules.Load(f, rules.LoadOptions{AgentVersion: "test", Hostname: "test"}); err != nil {
			t.Errorf("Load(%s): %v", f, err)
		}
	}
}

// TestVbladedConfParses: the example exports file is valid syntax (its
// files and interfaces exist only on a real storage server).
func TestVbladedConfParses(t *testing.T) {
	f, err := os.Open("vbladed.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := aoe.Parse(f, "vbladed.conf")
	if err != nil {
		t.Fatalf("Parse(vbladed.conf): %v", err)
	}
	if len(cfg.Exports) != 2 || cfg.Shelf != 1 {
		t.Errorf("vbladed.conf: shelf %d, %d exports", cfg.Shelf, len(cfg.Exports))
	}
}

// TestSSHValConfParses: the example sshval rules parse and hold the classic
// case.
func TestSSHValConfParses(t *testing.T) {
	f, err := os.Open("sshval.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules, err := sshval.ParseRules(f, "sshval.conf")
	if err != nil {
		t.Fatalf("ParseRules(sshval.conf): %v", err)
	}
	if rules.Log != "/var/log/agent/sshval.log" || len(rules.Rules) == 0 || rules.Rules[0].Root != "/data/irsync" || rules.Rules[0].Delete {
		t.Errorf("sshval.conf: log %q, rules %+v", rules.Log, rules.Rules)
	}
}

// TestAptHook: apt reads the hook (apt-config parses it) and the command it
// hands to sh is valid shell that calls update --packages.
func TestAptHook(t *testing.T) {
	aptConfig, err := exec.LookPath("apt-config")
	if err != nil {
		t.Skip("apt-config not installed (Debian package apt)")
	}
	out, err := exec.Command(aptConfig, "-c", "apt/99agent", "dump", "DPkg::Post-Invoke").CombinedOutput()
	if err != nil {
		t.Fatalf("apt-config: %v\n%s", err, out)
	}
	var cmd string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, `DPkg::Post-Invoke:: "`); ok && strings.Contains(v, "/usr/sbin/agent") {
			cmd = strings.TrimSuffix(v, `";`)
		}
	}
	if !strings.Contains(cmd, "/usr/sbin/agent --quiet update --packages --mail") {
		t.Fatalf("DPkg::Post-Invoke does not run update --packages: %q\n%s", cmd, out)
	}
	if out, err := exec.Command("/bin/sh", "-n", "-c", cmd).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}
