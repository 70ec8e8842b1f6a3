package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"opsagent/internal/rpmtest"
)

// TestPackageProvenanceRPM: the classification end to end with a real rpm
// database at /var/lib/rpm inside root_prefix. After a baseline, alpha is
// upgraded, one file of beta is trojaned and one unowned executable is
// planted: the check's only mismatch is the trojan, its only unexplained
// entry the planted file, and the upgraded files are explained by alpha.
func TestPackageProvenanceRPM(t *testing.T) {
	h := rpmtest.NewHost(t, true)
	alpha := func(v string) rpmtest.Pkg {
		return rpmtest.Pkg{Name: "alpha", Version: v, Files: map[string]string{"/usr/bin/alpha": "alpha " + v + "\n", "/usr/share/alpha/data": "data " + v + "\n"}}
	}
	built := h.Build(alpha("1.0"), alpha("1.1"), rpmtest.Pkg{Name: "beta", Version: "1.0",
		Files: map[string]string{"/usr/bin/beta": "beta\n", "/etc/beta.conf": "setting=1\n"}, Config: []string{"/etc/beta.conf"}})
	h.RPM("-i", built[0], built[2])

	conf := filepath.Join(t.TempDir(), "agent.conf")
	state := filepath.Join(t.TempDir(), "state")
	body := "root_prefix=" + h.Root + "\nreport_format=json\nreport_explained=list\n" +
		"NORMAL = p+u+g+s+md5+sha256\n/usr NORMAL\n/etc NORMAL\n/var/lib NORMAL\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &pkgFixture{conf: conf, state: state}
	if r, _ := f.run(t, "init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond) // rpm's transaction ids are seconds
	h.RPM("-U", built[1])
	time.Sleep(1100 * time.Millisecond)
	trojan, planted := "/usr/bin/beta", "/usr/bin/dropper"
	for _, p := range []string{trojan, planted} {
		if err := os.WriteFile(filepath.Join(h.Root, p), []byte("#!/bin/sh\nevil\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	r, doc := f.run(t, "check")
	if r.code == 0 || r.code&^7 != 0 {
		t.Fatalf("check: exit %d: %s", r.code, r.stderr)
	}
	if doc.P.Backend != "rpm" {
		t.Fatalf("backend %q, want rpm\n%s", doc.P.Backend, r.stdout)
	}
	if got := doc.of("package-mismatch"); !slices.Equal(got, []string{trojan}) {
		t.Errorf("package-mismatch = %q, want only %s\n%s", got, trojan, r.stdout)
	}
	if got := doc.of("unexplained"); !slices.Equal(got, []string{planted}) {
		t.Errorf("unexplained = %q, want only %s\n%s", got, planted, r.stdout)
	}
	for _, p := range []string{"/usr/bin/alpha", "/usr/share/alpha/data"} {
		if v := doc.P.Paths[p]; v["class"] != "package" || v["package"] != "alpha" || v["version"] != "1.1-1" {
			t.Errorf("%s: %v, want package alpha 1.1-1", p, v)
		}
	}
	if doc.N.Mismatch != 1 || doc.N.Unexplained != 1 {
		t.Errorf("counts: %+v", doc.N)
	}
}
