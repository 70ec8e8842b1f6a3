package main

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opsagent/internal/fakecli"
)

// raidSamples is where the RAID samples live (copied from shared/raid-samples).
const raidSamples = "../../raidcheck/testdata"

// fakeCLI writes an executable script named name into dir that prints the
// file the first matching pattern of argv names, from the scenario
// directory "$dir/scenario" (a symlink the test repoints).
func fakeCLI(t *testing.T, dir, name string, cases [][2]string) {
	t.Helper()
	tool := fakecli.Tool{Name: name}
	for _, c := range cases {
		tool.Cases = append(tool.Cases, fakecli.Case{Pattern: c[0], File: filepath.Join(dir, "scenario", c[1])})
	}
	tool.Install(t, dir)
}

// scenario fills a scenario directory with samples: name in scenario ->
// sample path under raidSamples.
func scenario(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, sample := range files {
		b, err := os.ReadFile(filepath.Join(raidSamples, sample))
		if err != nil {
			t.Fatalf("sample %s: %v", sample, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func useScenario(t *testing.T, bin, sc string) {
	t.Helper()
	link := filepath.Join(bin, "scenario")
	os.Remove(link)
	if err := os.Symlink(sc, link); err != nil {
		t.Fatal(err)
	}
}

// raidDirs makes dir/bin (fake CLIs), dir/proc and dir/sys (fake proc and
// sysfs roots) for a RAID probe run.
func raidDirs(t *testing.T, dir string) (bin, proc, sys string) {
	t.Helper()
	bin, proc, sys = filepath.Join(dir, "bin"), filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	for _, d := range []string{bin, proc, sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin, proc, sys
}

// TestRAIDCheckEndToEnd runs `agent raid check` against fake vendor CLIs on
// PATH and a fake /proc/mdstat, then follows the alert mails through a real
// SMTP server: degraded, no repeat before raid_alert_repeat, a repeat after
// it, recovered.
func TestRAIDCheckEndToEnd(t *testing.T) {
	if _, err := os.Stat(raidSamples); err != nil {
		t.Skipf("RAID samples not found: %v", err)
	}
	dir := t.TempDir()
	bin, proc, sys := raidDirs(t, dir)
	fakeCLI(t, bin, "cli64", [][2]string{{"*rsf*info*", "rsf"}, {"*vsf*info*", "vsf"}, {"*disk*info*", "disk"}})
	fakeCLI(t, bin, "tw_cli", [][2]string{{"show", "tw-show"}, {"info", "tw-show"}, {"*unitstatus*", "tw-units"}, {"*drivestatus*", "tw-drives"}, {"*bbustatus*", "tw-bbu"}, {"*show*all*", "tw-encl"}})
	fakeCLI(t, bin, "MegaCli64", [][2]string{{"*[Ll][Dd][Ii]nfo*", "mc-ld"}, {"*[Pp][Dd][Ll]ist*", "mc-pd"}, {"*[Bb]bu*", "mc-bbu"}})
	fakeCLI(t, bin, "storcli64", [][2]string{{"*show*all*[Jj]*", "sc-json"}, {"*show*all*", "sc-text"}})

	healthy := filepath.Join(dir, "healthy")
	scenario(t, healthy, map[string]string{
		"rsf": "areca/healthy-enclosure-hotspare.rsf-info.txt", "disk": "areca/healthy-enclosure-hotspare.disk-info.txt",
		"vsf":     "areca/vsf-checking.vsf-info.txt",
		"tw-show": "tw_cli/healthy-9650se-spare.show.txt", "tw-units": "tw_cli/healthy-9650se-spare.info-c0-unitstatus.txt",
		"tw-drives": "tw_cli/healthy-9650se-spare.info-c0-drivestatus.txt",
		"tw-bbu":    "tw_cli/verifying-raid10-verify-paused-spares.info-c0-bbustatus.txt",
		"mc-ld":     "megacli/healthy-2vd-2hotspares.ldinfo.txt", "mc-pd": "megacli/healthy-2vd-2hotspares.pdlist.txt",
		"mc-bbu":  "megacli/bbu-learn-cycle-active.bbustatus.txt",
		"sc-json": "storcli/healthy-raid6-cachevault.call-show-all-J.json",
	})
	degraded := filepath.Join(dir, "degraded")
	scenario(t, degraded, map[string]string{
		"rsf": "areca/healthy-enclosure-hotspare.rsf-info.txt", "disk": "areca/healthy-enclosure-hotspare.disk-info.txt",
		"vsf":     "areca/vsf-checking.vsf-info.txt",
		"tw-show": "tw_cli/healthy-9650se-spare.show.txt", "tw-units": "tw_cli/healthy-9650se-spare.info-c0-unitstatus.txt",
		"tw-drives": "tw_cli/healthy-9650se-spare.info-c0-drivestatus.txt",
		"tw-bbu":    "tw_cli/verifying-raid10-verify-paused-spares.info-c0-bbustatus.txt",
		"mc-ld":     "megacli/healthy-2vd-2hotspares.ldinfo.txt", "mc-pd": "megacli/healthy-2vd-2hotspares.pdlist.txt",
		"mc-bbu":  "megacli/bbu-learn-cycle-active.bbustatus.txt",
		"sc-text": "storcli/degraded-vd-dgrd-pd-offln.c0-show-all.txt",
	})
	mdHealthy, _ := os.ReadFile(filepath.Join(raidSamples, "mdstat/healthy-raid1-raid0-bitmaps.txt"))
	if err := os.WriteFile(filepath.Join(proc, "mdstat"), mdHealthy, 0o644); err != nil {
		t.Fatal(err)
	}

	sink := startSink(t, "127.0.0.1:0")
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte("mail_to=admin@example.org\nsmtp_url=smtp://"+sink.addr+"\nraid_alert_repeat=24h\n/nothing R\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	run := func(args ...string) result {
		t.Helper()
		full := append([]string{"--config", conf, "--state-dir", state, "raid", "check", "--proc-root", proc, "--sys-root", sys}, args...)
		cmd := agentCmd(full...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		return runPrepared(t, cmd)
	}

	// Healthy: exit 0, silent with --quiet, no mail.
	useScenario(t, bin, healthy)
	r := run()
	if r.code != 0 || !strings.HasPrefix(r.stdout, "RAID OK - ") {
		t.Fatalf("healthy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, tool := range []string{"areca", "tw_cli", "megacli", "storcli", "mdstat"} {
		if !strings.Contains(r.stdout, tool) {
			t.Errorf("healthy output does not mention %s:\n%s", tool, r.stdout)
		}
	}
	if r := run("--quiet", "--mail"); r.code != 0 || r.stdout != "" {
		t.Errorf("healthy --quiet: exit %d, output %q", r.code, r.stdout)
	}
	if n := len(sink.received()); n != 0 {
		t.Errorf("healthy run mailed %d messages", n)
	}

	// Degraded: exit 2, one alert mail, JSON verdict.
	useScenario(t, bin, degraded)
	r = run("--mail", "--json")
	if r.code != 2 {
		t.Fatalf("degraded: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var doc struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Verdict != "degraded" {
		t.Errorf("degraded --json: verdict %q (%v)\n%s", doc.Verdict, err, r.stdout)
	}
	subjects := func() []string {
		var out []string
		for _, m := range sink.received() {
			msg, err := mail.ReadMessage(bytes.NewReader(m))
			if err != nil {
				t.Fatalf("mail does not parse: %v", err)
			}
			out = append(out, msg.Header.Get("Subject"))
		}
		return out
	}
	if s := subjects(); len(s) != 1 || !strings.Contains(s[0], "RAID degraded") {
		t.Fatalf("after degraded: subjects %q, want one RAID degraded alert", s)
	}
	// Next tick, still degraded: no mail before raid_alert_repeat.
	run("--mail")
	if s := subjects(); len(s) != 1 {
		t.Errorf("second degraded run mailed again: %q", s)
	}
	// 25 hours later (the state file's clock moved back): the repeat.
	ageAlertState(t, filepath.Join(state, raidStateName), 25*time.Hour)
	run("--mail")
	if s := subjects(); len(s) != 2 || !strings.Contains(s[1], "RAID degraded") {
		t.Errorf("after 25h: subjects %q, want a repeat of the alert", s)
	}
	// Recovered.
	useScenario(t, bin, healthy)
	if r := run("--mail"); r.code != 0 {
		t.Errorf("recovered: exit %d", r.code)
	}
	if s := subjects(); len(s) != 3 || !strings.Contains(s[2], "recovered") {
		t.Errorf("after recovery: subjects %q, want a recovered mail", s)
	}
	run("--mail")
	if s := subjects(); len(s) != 3 {
		t.Errorf("healthy again mailed: %q", s)
	}
	// Every run kept a report.
	if r := agent(t, "--config", conf, "--state-dir", state, "report", "list"); !strings.Contains(r.stdout, "raid-") {
		t.Errorf("no raid report kept:\n%s", r.stdout)
	}
}

// ageAlertState moves every time in the alert state file back by d, as if d
// had passed.
func ageAlertState(t *testing.T, path string, d time.Duration) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for k, v := range st {
		s, ok := v.(string)
		if !ok {
			continue
		}
		if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
			st[k] = tm.Add(-d).Format(time.RFC3339Nano)
		}
	}
	out, _ := json.Marshal(st)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRAIDNoneFound: no CLI and no md array: "no RAID found", exit 0.
func TestRAIDNoneFound(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"bin", "proc", "sys"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	cmd := agentCmd("--config", filepath.Join(dir, "none.conf"), "--state-dir", filepath.Join(dir, "state"), "raid", "check",
		"--proc-root", filepath.Join(dir, "proc"), "--sys-root", filepath.Join(dir, "sys"))
	os.WriteFile(filepath.Join(dir, "none.conf"), []byte("/nothing R\n"), 0o600)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin"))
	r := runPrepared(t, cmd)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "no RAID found" {
		t.Errorf("no RAID: exit %d, output %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestRAIDParseSamples: `agent raid parse` gives every MANIFEST verdict's
// exit code for a few representative samples.
func TestRAIDParseSamples(t *testing.T) {
	for _, tc := range []struct {
		tool  string
		files []string
		code  int
	}{
		{"areca", []string{"areca/rebuilding-with-failed-disk.rsf-info.txt", "areca/rebuilding-with-failed-disk.disk-info.txt"}, 2},
		{"areca", []string{"areca/vsf-checking.vsf-info.txt"}, 0},
		{"tw_cli", []string{"tw_cli/rebuilding-raid1-drive-degraded.info-c0-unitstatus.txt", "tw_cli/rebuilding-raid1-drive-degraded.info-c0-drivestatus.txt"}, 1},
		{"megacli", []string{"megacli/rebuilding-raid6-pd-rebuild.ldpdinfo.txt"}, 1},
		{"storcli", []string{"storcli/failed-vd-ofln-two-pd-offln.c0-show-all.txt"}, 2},
		{"perccli", []string{"perccli/healthy-raid6.perccli2-call-vall-show-all-J.json"}, 0},
		{"mdstat", []string{"mdstat/degraded-raid5-failed-member.txt"}, 2},
		{"mdstat", []string{"mdstat/check-running-plus-check-delayed.txt"}, 0},
	} {
		args := []string{"raid", "parse", "--tool", tc.tool}
		for _, f := range tc.files {
			args = append(args, filepath.Join(raidSamples, f))
		}
		if r := agent(t, args...); r.code != tc.code {
			t.Errorf("raid parse --tool %s %v: exit %d, want %d\n%s%s", tc.tool, tc.files, r.code, tc.code, r.stdout, r.stderr)
		}
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	os.WriteFile(garbage, []byte("Segmentation fault\n"), 0o644)
	if r := agent(t, "raid", "parse", "--tool", "megacli", garbage); r.code != 3 {
		t.Errorf("raid parse of garbage: exit %d, want 3", r.code)
	}
}

// TestRAIDParseManifest: every sample of raidcheck/testdata/MANIFEST.md,
// given alone to `agent raid parse`, exits with the status of its expected
// verdict.
func TestRAIDParseManifest(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(raidSamples, "MANIFEST.md"))
	if err != nil {
		t.Skipf("no manifest: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 5 {
			continue
		}
		file := strings.TrimSpace(cols[1])
		expected := strings.TrimSpace(cols[3])
		dir, _, ok := strings.Cut(file, "/")
		if !ok || strings.HasPrefix(file, "-") || file == "file" {
			continue
		}
		want := -1
		switch {
		case strings.HasPrefix(expected, "ok") && strings.Contains(expected, "+warn"):
			want = 1
		case strings.HasPrefix(expected, "ok"):
			want = 0
		case strings.HasPrefix(expected, "rebuilding"):
			want = 1
		case strings.HasPrefix(expected, "degraded"), strings.HasPrefix(expected, "failed"):
			want = 2
		case strings.HasPrefix(expected, "unknown"):
			want = 3
		}
		if want < 0 {
			t.Errorf("manifest row %q: unreadable expected verdict %q", file, expected)
			continue
		}
		n++
		r := agent(t, "raid", "parse", "--tool", dir, filepath.Join(raidSamples, file))
		if r.code != want {
			t.Errorf("raid parse --tool %s %s: exit %d, want %d (%s)\n%s%s", dir, file, r.code, want, expected, r.stdout, r.stderr)
		}
	}
	// 60 real captures and 2 constructed samples.
	if n != 62 {
		t.Errorf("checked %d manifest rows, want 62", n)
	}
}
