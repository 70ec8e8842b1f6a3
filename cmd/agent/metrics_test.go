package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"opsagent/notify"
)

// startNodeExporter runs the Debian prometheus-node-exporter with only the
// textfile collector on dir, on its own loopback port (never the :9100 of
// a node exporter the package may have started), and returns its
// /metrics URL.
func startNodeExporter(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Skip("prometheus-node-exporter not installed (Debian package prometheus-node-exporter)")
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+dir)
	var logb strings.Builder
	cmd.Stdout, cmd.Stderr = &logb, &logb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr + "/metrics"
	for range 100 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node exporter did not come up on %s:\n%s", addr, logb.String())
	return ""
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := notify.Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("scrape: %v\n%s", err, b)
	}
	return mfs
}

// TestIssue17NodeExporter: after a check with changes, a degraded RAID
// probe and a supervised export, the real node_exporter serves the agent's
// series with the right values and no textfile error.
func TestIssue17NodeExporter(t *testing.T) {
	if _, err := os.Stat(raidSamples); err != nil {
		t.Skipf("RAID samples not found: %v", err)
	}
	dir := t.TempDir()
	metricsDir := filepath.Join(dir, "metrics")
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{metricsDir, tree} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(tree, "keep"), "one\n", 0o644)
	write(filepath.Join(tree, "gone"), "two\n", 0o644)
	// A fake vblade: the supervisor and the observer are real, the AoE
	// data path is tested with the real vblade in aoe_integration_test.
	vblade := filepath.Join(dir, "vblade")
	write(vblade, "#!/bin/sh\nwhile :; do sleep 1; done\n", 0o755)
	img := filepath.Join(dir, "disk.img")
	write(img, strings.Repeat("\x00", 4096), 0o600)
	exports := filepath.Join(dir, "vbladed.conf")
	write(exports, "SHELF=\"7\"\n3 "+img+" 02:00:00:00:00:01 lo disk0\n", 0o600)
	events := filepath.Join(dir, "events.jsonl")
	conf := filepath.Join(dir, "agent.conf")
	write(conf, strings.Join([]string{
		"state_dir=" + filepath.Join(dir, "state"), "metrics_dir=" + metricsDir, "events=file:" + events,
		"package_check=no", "sshval_counters=" + filepath.Join(dir, "sshval-counters"), "vblade=" + vblade, "aoe_config=" + exports, "run_dir=" + filepath.Join(dir, "run"),
		tree + " p+u+g+s+sha256", ""}, "\n"), 0o600)

	if r := agent(t, "--config", conf, "init", "-q"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	os.Remove(filepath.Join(tree, "gone"))
	write(filepath.Join(tree, "keep"), "changed\n", 0o644)
	write(filepath.Join(tree, "new"), "three\n", 0o644)
	if r := agent(t, "--config", conf, "check", "-q"); r.code != 7 {
		t.Fatalf("check: exit %d, want 7: %s", r.code, r.stderr)
	}

	bin, proc, sys := raidDirs(t, dir)
	fakeCLI(t, bin, "storcli64", [][2]string{{"*show*all*[Jj]*", "sc-json"}, {"*show*all*", "sc-text"}})
	sc := filepath.Join(dir, "degraded")
	scenario(t, sc, map[string]string{"sc-text": "storcli/degraded-vd-dgrd-pd-offln.c0-show-all.txt"})
	useScenario(t, bin, sc)
	md, _ := os.ReadFile(filepath.Join(raidSamples, "mdstat/healthy-raid1-raid0-bitmaps.txt"))
	write(filepath.Join(proc, "mdstat"), string(md), 0o644)
	raid := func() result {
		cmd := agentCmd("--config", conf, "raid", "check", "-q", "--proc-root", proc, "--sys-root", sys)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		return runPrepared(t, cmd)
	}
	if r := raid(); r.code != 2 {
		t.Fatalf("raid check: exit %d, want 2: %s %s", r.code, r.stdout, r.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	sup := exec.CommandContext(ctx, agentBin, "--config", conf, "aoe", "supervise")
	sup.Cancel = func() error { return sup.Process.Signal(syscall.SIGTERM) }
	sup.WaitDelay = 15 * time.Second
	var supLog strings.Builder
	sup.Stderr = &supLog
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); sup.Wait() }()
	aoeFile := filepath.Join(metricsDir, notify.FileName(notify.JobAOE))
	waitFor := func(what string, ok func(map[string]*dto.MetricFamily) bool) {
		t.Helper()
		for range 100 {
			if mfs, err := notify.ReadFile(aoeFile); err == nil && ok(mfs) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: not in %s; supervisor log:\n%s", what, aoeFile, supLog.String())
	}
	exp := []string{"alias", "disk0", "shelf", "7", "slot", "3"}
	waitFor("export up", func(m map[string]*dto.MetricFamily) bool {
		v, _ := notify.Value(m, "agent_aoe_export_up", exp...)
		return v == 1
	})
	// Kill the vblade: the supervisor restarts it; the file counts it.
	st := agent(t, "--config", conf, "aoe", "status", "--json")
	var status []struct{ PID int }
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil || len(status) != 1 || status[0].PID <= 0 {
		t.Fatalf("aoe status: %v: %s", err, st.stdout)
	}
	syscall.Kill(status[0].PID, syscall.SIGKILL)
	waitFor("one restart", func(m map[string]*dto.MetricFamily) bool {
		v, _ := notify.Value(m, "agent_aoe_export_restarts_total", exp...)
		up, _ := notify.Value(m, "agent_aoe_export_up", exp...)
		return v == 1 && up == 1
	})

	url := startNodeExporter(t, metricsDir)
	mfs := scrape(t, url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"node_textfile_scrape_error", nil, 0},
		{"agent_integrity_exit_code", nil, 7},
		{"agent_integrity_changes", []string{"kind", "added"}, 1},
		{"agent_integrity_changes", []string{"kind", "removed"}, 1},
		{"agent_integrity_changes", []string{"kind", "changed"}, 1},
		{"agent_integrity_changes_by_class", []string{"class", "unexplained"}, 3},
		{"agent_integrity_entries_scanned", nil, 3},
		{"agent_raid_verdict", []string{"verdict", "degraded"}, 1},
		{"agent_raid_verdict", []string{"verdict", "ok"}, 0},
		{"agent_raid_tool_probe_error", []string{"tool", "storcli"}, 0},
		{"agent_raid_controller_verdict", []string{"tool", "mdstat", "controller", "md", "verdict", "ok"}, 1},
		{"agent_aoe_supervisor_up", nil, 1},
		{"agent_aoe_export_up", exp, 1},
		{"agent_aoe_export_restarts_total", exp, 1},
		{"agent_aoe_export_flapping", exp, 0},
	} {
		if v, ok := notify.Value(mfs, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if v, _ := notify.Value(mfs, "agent_aoe_export_last_restart_timestamp_seconds", exp...); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last restart %v, want within the last minute", v)
	}
	if v, _ := notify.Value(mfs, "agent_integrity_last_success_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v, want within the last minute", v)
	}
	degradedArray := false
	for _, m := range mfs["agent_raid_array_verdict"].GetMetric() {
		l := map[string]string{}
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["tool"] == "storcli" && l["verdict"] == "degraded" && m.GetGauge().GetValue() == 1 {
			degradedArray = true
		}
	}
	if !degradedArray {
		t.Error("no storcli array with verdict degraded")
	}

	// The storcli controller disappears: a probe error, not a healthy host.
	os.Remove(filepath.Join(bin, "storcli64"))
	if r := raid(); r.code != 0 {
		t.Fatalf("raid check without storcli: exit %d: %s", r.code, r.stderr)
	}
	mfs = scrape(t, url)
	if v, _ := notify.Value(mfs, "agent_raid_verdict", "verdict", "unknown"); v != 1 {
		t.Errorf("after the controller vanished: verdict unknown = %v, want 1", v)
	}
	if v, _ := notify.Value(mfs, "node_textfile_scrape_error"); v != 0 {
		t.Errorf("node_textfile_scrape_error %v", v)
	}
	var cid string
	for _, m := range mfs["agent_raid_controller_probe_error"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "controller" && m.GetGauge().GetValue() == 1 {
				cid = lp.GetValue()
			}
		}
	}
	if cid == "" {
		t.Error("the vanished storcli controller has no probe error")
	}

	// agent metrics prints every job; --check validates them.
	r := agent(t, "--config", conf, "metrics")
	if r.code != 0 || !strings.Contains(r.stdout, "agent_integrity_exit_code 7") || !strings.Contains(r.stdout, "agent_aoe_export_up{") ||
		(os.Geteuid() == 0 && !strings.Contains(r.stdout, "agent_sshval_counter_files 0\n")) {
		t.Errorf("agent metrics: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := agent(t, "--config", conf, "metrics", "--check"); r.code != 0 {
		t.Errorf("metrics --check: exit %d: %s", r.code, r.stderr)
	}
	write(filepath.Join(metricsDir, notify.FileName(notify.JobMail)), "agent_mail_spool_messages{ 1\n", 0o644)
	if r := agent(t, "--config", conf, "metrics", "--check"); r.code != 1 || !strings.Contains(r.stderr, "agent_mail.prom") {
		t.Errorf("metrics --check on a bad file: exit %d, want 1: %s", r.code, r.stderr)
	}

	// Events: the integrity changes and the RAID verdict changes.
	b, _ := os.ReadFile(events)
	for _, want := range []string{`"event":"integrity.change"`, `"event":"raid.verdict"`, `"event":"aoe.restart"`, `"class":"unexplained"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("events file lacks %s:\n%s", want, b)
		}
	}
}

// TestIssue17KillWhileWriting: killing agent processes at random moments
// while they write their metrics never leaves a partial .prom file: a
// reader parses every *.prom throughout.
func TestIssue17KillWhileWriting(t *testing.T) {
	dir := t.TempDir()
	metricsDir := filepath.Join(dir, "metrics")
	proc := filepath.Join(dir, "proc")
	for _, d := range []string{metricsDir, proc} {
		os.MkdirAll(d, 0o755)
	}
	md, err := os.ReadFile(filepath.Join(raidSamples, "mdstat/degraded-raid5-failed-member.txt"))
	if err != nil {
		t.Skipf("RAID samples: %v", err)
	}
	os.WriteFile(filepath.Join(proc, "mdstat"), md, 0o644)
	conf := filepath.Join(dir, "agent.conf")
	os.WriteFile(conf, []byte("state_dir="+filepath.Join(dir, "state")+"\nmetrics_dir="+metricsDir+"\n/nothing R\n"), 0o600)

	done := make(chan struct{})
	bad := make(chan string, 1)
	reads := 0
	go func() {
		defer close(bad)
		for {
			select {
			case <-done:
				return
			default:
			}
			names, _ := filepath.Glob(filepath.Join(metricsDir, "*.prom"))
			for _, n := range names {
				mfs, err := notify.ReadFile(n)
				if err == nil && len(mfs) == 0 {
					err = fmt.Errorf("empty")
				}
				if err != nil && !os.IsNotExist(err) {
					bad <- fmt.Sprintf("%s: %v", n, err)
					return
				}
				reads++
			}
		}
	}()
	for i := range 60 {
		cmd := agentCmd("--config", conf, "raid", "check", "-q", "--proc-root", proc, "--sys-root", filepath.Join(dir, "sys"))
		cmd.Env = append(os.Environ(), "PATH=/nonexistent")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			time.Sleep(time.Duration(rand.IntN(15000)) * time.Microsecond)
			cmd.Process.Signal(syscall.SIGKILL)
		}
		cmd.Wait()
	}
	close(done)
	if msg, ok := <-bad; ok {
		t.Fatalf("a reader saw a partial metrics file: %s", msg)
	}
	names, _ := filepath.Glob(filepath.Join(metricsDir, "*"))
	for _, n := range names {
		if strings.HasSuffix(n, ".prom") {
			if _, err := notify.ReadFile(n); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		} else if !strings.Contains(filepath.Base(n), ".prom.tmp-") {
			t.Errorf("unexpected file %s", n)
		}
	}
	if reads == 0 {
		t.Error("the reader never read a file")
	}
}
