package raidcheck

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"opsagent/internal/fakecli"
)

// probeFake is a shell script standing in for a vendor CLI: for each known
// argv (joined by spaces) it cats a file, anything else is an error. It
// records every argv (one argument per line, then "--") in NAME.argv, its
// environment in NAME.env and its working directory in NAME.pwd.
type probeFake struct {
	name  string
	cmds  map[string]string // argv → file to print
	exit  int               // exit status after printing
	sleep bool              // hang instead of answering
}

// install writes the script into bin; its records land in rec.
func (f probeFake) install(t *testing.T, bin, rec string) {
	t.Helper()
	tool := fakecli.Tool{Name: f.name, Exit: f.exit, Hang: f.sleep, Record: rec}
	keys := slices.Sorted(maps.Keys(f.cmds))
	for _, k := range keys {
		abs, err := filepath.Abs(f.cmds[k])
		if err != nil {
			t.Fatal(err)
		}
		tool.Cases = append(tool.Cases, fakecli.Case{Pattern: fakecli.Exact(k), File: abs})
	}
	tool.Install(t, bin)
}

// probeArgv reads a fake's argv record: one []string per run.
func probeArgv(t *testing.T, rec, name string) [][]string { return fakecli.Runs(t, rec, name) }

// probeHermetic skips the test if a real vendor CLI sits in one of the
// usual install paths: the probe would find it.
func probeHermetic(t *testing.T) {
	t.Helper()
	for _, tl := range tools {
		for _, p := range tl.paths {
			if isExecutable(p) {
				t.Skipf("a real %s is installed at %s; the probe tests need a host without one", tl.name, p)
			}
		}
	}
}

type probeFixture struct {
	bin, rec, proc, sys string
	probe               *Probe
}

func newProbeFixture(t *testing.T) *probeFixture {
	t.Helper()
	probeHermetic(t)
	root := t.TempDir()
	e := &probeFixture{
		bin:  filepath.Join(root, "bin"),
		rec:  filepath.Join(root, "rec"),
		proc: filepath.Join(root, "proc"),
		sys:  filepath.Join(root, "sys"),
	}
	for _, d := range []string{e.bin, e.rec, e.proc, e.sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.probe = &Probe{
		PathEnv:   e.bin,
		ExtraDirs: []string{},
		ProcRoot:  e.proc,
		SysRoot:   e.sys,
		Timeout:   20 * time.Second,
	}
	return e
}

func (e *probeFixture) write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func probeToolNames(rs []*Result) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Tool)
	}
	return names
}

func probeSample(tool, file string) string { return filepath.Join("testdata", tool, file) }

// TestProbeRun runs fake cli64, tw_cli, MegaCli64 and storcli64 printing
// real samples, with a fake /proc/mdstat.
func TestProbeRun(t *testing.T) {
	e := newProbeFixture(t)
	fakes := []probeFake{
		{name: "cli64", cmds: map[string]string{
			"rsf info":  probeSample("areca", "healthy-enclosure-hotspare.rsf-info.txt"),
			"vsf info":  probeSample("areca", "vsf-two-volumes-degraded.vsf-info.txt"),
			"disk info": probeSample("areca", "vsf-two-volumes-degraded.disk-info.txt"),
		}},
		{name: "tw_cli", cmds: map[string]string{
			"show":                probeSample("tw_cli", "verifying-raid10-verify-paused-spares.show.txt"),
			"info c0 unitstatus":  probeSample("tw_cli", "verifying-raid10-verify-paused-spares.info-c0-unitstatus.txt"),
			"info c0 drivestatus": probeSample("tw_cli", "verifying-raid10-verify-paused-spares.info-c0-drivestatus.txt"),
			"info c0 bbustatus":   probeSample("tw_cli", "verifying-raid10-verify-paused-spares.info-c0-bbustatus.txt"),
		}},
		// MegaCli exits non-zero with good output: still parsed.
		{name: "MegaCli64", exit: 1, cmds: map[string]string{
			"-LdInfo -Lall -aALL -NoLog":            probeSample("megacli", "healthy-2vd-2hotspares.ldinfo.txt"),
			"-PDList -aALL -NoLog":                  probeSample("megacli", "healthy-2vd-2hotspares.pdlist.txt"),
			"-AdpBbuCmd -GetBbuStatus -aALL -NoLog": probeSample("megacli", "bbu-learn-cycle-active.bbustatus.txt"),
		}},
		{name: "storcli64", cmds: map[string]string{
			"/call show all J": probeSample("storcli", "healthy-raid6-cachevault.call-show-all-J.json"),
		}},
	}
	for _, f := range fakes {
		f.install(t, e.bin, e.rec)
	}
	md, err := os.ReadFile(probeSample("mdstat", "recovery-raid1-one-array.txt"))
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, filepath.Join(e.proc, "mdstat"), string(md))
	t.Setenv("LANG", "de_DE.UTF-8")

	rs, err := e.probe.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantTools := []string{"areca", "tw_cli", "megacli", "storcli", "mdstat"}
	if got := probeToolNames(rs); !slices.Equal(got, wantTools) {
		t.Fatalf("results for %v, want %v", got, wantTools)
	}
	want := map[string]Verdict{"areca": Degraded, "tw_cli": OK, "megacli": OK, "storcli": OK, "mdstat": Rebuilding}
	for _, r := range rs {
		if r.Verdict != want[r.Tool] || r.Err != "" {
			t.Errorf("%s: verdict %v err %q, want %v and no error", r.Tool, r.Verdict, r.Err, want[r.Tool])
		}
	}

	t.Run("argv", func(t *testing.T) {
		tests := []struct {
			name string
			want [][]string
		}{
			{"cli64", [][]string{{"rsf", "info"}, {"vsf", "info"}, {"disk", "info"}}},
			{"tw_cli", [][]string{{"show"}, {"info", "c0", "unitstatus"}, {"info", "c0", "drivestatus"}, {"info", "c0", "bbustatus"}}},
			{"MegaCli64", [][]string{{"-LdInfo", "-Lall", "-aALL", "-NoLog"}, {"-PDList", "-aALL", "-NoLog"}, {"-AdpBbuCmd", "-GetBbuStatus", "-aALL", "-NoLog"}}},
			{"storcli64", [][]string{{"/call", "show", "all", "J"}}},
		}
		for _, tt := range tests {
			got := probeArgv(t, e.rec, tt.name)
			if !slices.EqualFunc(got, tt.want, slices.Equal[[]string]) {
				t.Errorf("%s ran %q, want %q", tt.name, got, tt.want)
			}
		}
	})
	t.Run("environment", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(e.rec, "cli64.env"))
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Split(strings.TrimSpace(string(b)), "\n")
		if !slices.Contains(env, "LC_ALL=C") || !slices.Contains(env, "PATH="+e.bin) {
			t.Errorf("environment %q lacks LC_ALL=C or PATH=%s", env, e.bin)
		}
		for _, kv := range env {
			if strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "HOME=") {
				t.Errorf("environment leaks %s", kv)
			}
		}
	})
	t.Run("working directory", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(e.rec, "storcli64.pwd"))
		if err != nil {
			t.Fatal(err)
		}
		wd, _ := os.Getwd()
		dir := strings.TrimSpace(string(b))
		if dir == wd {
			t.Errorf("CLI ran in the agent's working directory %s", wd)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CLI working directory %s left behind (%v)", dir, err)
		}
	})
}

// TestProbeDetection: a detected controller without its CLI is Unknown with
// the reason; an HBA driver alone, or nothing, gives no result.
func TestProbeDetection(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // relative to the env root: proc/..., sys/...
		dirs  []string
		fakes []probeFake
		want  map[string]string // tool → Err
	}{
		{
			name:  "nothing",
			files: map[string]string{"proc/scsi/scsi": "Attached devices:\n"},
			want:  map[string]string{},
		},
		{
			name: "arcmsr scsi_host",
			files: map[string]string{
				"sys/class/scsi_host/host0/proc_name": "arcmsr\n",
				"sys/class/scsi_host/host1/proc_name": "ahci\n",
			},
			want: map[string]string{"areca": "controller detected (arcmsr) but cli64 not found"},
		},
		{
			name: "3ware PCI binding",
			dirs: []string{"sys/bus/pci/drivers/3w-9xxx/0000:03:00.0", "sys/bus/pci/drivers/3w-9xxx/module"},
			want: map[string]string{"tw_cli": "controller detected (3w-9xxx) but tw_cli not found"},
		},
		{
			name: "driver loaded without a device",
			dirs: []string{"sys/bus/pci/drivers/megaraid_sas/module"},
			want: map[string]string{},
		},
		{
			name: "scsi vendor",
			files: map[string]string{"proc/scsi/scsi": "Attached devices:\nHost: scsi0 Channel: 02 Id: 00 Lun: 00\n  Vendor: DELL     Model: PERC H730P Mini  Rev: 4.30\n  Type:   Direct-Access                    ANSI  SCSI revision: 05\n" +
				"Host: scsi1 Channel: 00 Id: 00 Lun: 00\n  Vendor: Areca    Model: ARC-1880-VOL#000 Rev: R001\n"},
			want: map[string]string{
				"areca":   "controller detected (scsi Areca ARC-1880-VOL#000) but cli64 not found",
				"storcli": "controller detected (scsi DELL PERC H730P Mini) but storcli64 not found",
			},
		},
		{
			name:  "HBA only",
			files: map[string]string{"sys/class/scsi_host/host0/proc_name": "mpt3sas\n"},
			dirs:  []string{"sys/bus/pci/drivers/mpt3sas/0000:01:00.0"},
			want:  map[string]string{},
		},
		{
			name:  "megaraid with MegaCli installed",
			files: map[string]string{"sys/class/scsi_host/host0/proc_name": "megaraid_sas\n"},
			fakes: []probeFake{{name: "MegaCli64", cmds: map[string]string{
				"-LdInfo -Lall -aALL -NoLog":            probeSample("megacli", "healthy-2vd-2hotspares.ldinfo.txt"),
				"-PDList -aALL -NoLog":                  probeSample("megacli", "healthy-2vd-2hotspares.pdlist.txt"),
				"-AdpBbuCmd -GetBbuStatus -aALL -NoLog": probeSample("megacli", "bbu-learn-cycle-active.bbustatus.txt"),
			}}},
			want: map[string]string{"megacli": ""},
		},
		{
			name:  "mdstat without arrays",
			files: map[string]string{"proc/mdstat": "Personalities : [raid1]\nunused devices: <none>\n"},
			want:  map[string]string{},
		},
		{
			name:  "mdstat unreadable",
			files: map[string]string{"proc/mdstat": "this is not mdstat\n"},
			want:  map[string]string{"mdstat": "*"}, // any error text
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newProbeFixture(t)
			root := filepath.Dir(e.bin)
			for p, data := range tt.files {
				e.write(t, filepath.Join(root, p), data)
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tt.fakes {
				f.install(t, e.bin, e.rec)
			}
			rs, err := e.probe.Run(context.Background())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := map[string]string{}
			for _, r := range rs {
				got[r.Tool] = r.Err
				if r.Err != "" && r.Verdict != Unknown {
					t.Errorf("%s has error %q but verdict %v, want unknown", r.Tool, r.Err, r.Verdict)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("results %v, want %v", got, tt.want)
			}
			for tool, wantErr := range tt.want {
				if g, ok := got[tool]; !ok || g != wantErr && !(wantErr == "*" && g != "") {
					t.Errorf("%s: err %q (present %v), want %q", tool, g, ok, wantErr)
				}
			}
		})
	}
}

// TestProbeTimeout: a CLI that hangs is killed after Timeout and its tool
// is Unknown.
func TestProbeTimeout(t *testing.T) {
	e := newProbeFixture(t)
	probeFake{name: "cli64", sleep: true}.install(t, e.bin, e.rec)
	e.probe.Timeout = 200 * time.Millisecond
	start := time.Now()
	rs, err := e.probe.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v with a 200ms timeout", d)
	}
	if len(rs) != 1 || rs[0].Tool != "areca" || rs[0].Verdict != Unknown || !strings.Contains(rs[0].Err, "timed out") {
		t.Fatalf("results = %+v, want one unknown areca result that timed out", rs)
	}
	// The error itself is ErrTimeout.
	_, err = e.probe.runCommand(context.Background(), filepath.Join(e.bin, "cli64"), t.TempDir(), []string{"rsf", "info"})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("command error = %v, want ErrTimeout", err)
	}
}

// TestProbeCommandErrors: exit status and output decide what an error is.
func TestProbeCommandErrors(t *testing.T) {
	e := newProbeFixture(t)
	md := probeSample("mdstat", "healthy-raid1-raid0-bitmaps.txt")
	probeFake{name: "ok1", exit: 1, cmds: map[string]string{"x": md}}.install(t, e.bin, e.rec)
	probeFake{name: "empty", cmds: map[string]string{"x": "/dev/null"}}.install(t, e.bin, e.rec)
	dir := t.TempDir()
	tests := []struct {
		name, bin string
		args      []string
		wantErr   bool
		wantMsg   string
	}{
		{"non-zero exit with output", "ok1", []string{"x"}, false, ""},
		{"non-zero exit without output", "ok1", []string{"y"}, true, "ok1: unknown command: y"},
		{"zero exit without output", "empty", []string{"x"}, true, "no output"},
		{"missing binary", "nosuch", []string{"x"}, true, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := e.probe.runCommand(context.Background(), filepath.Join(e.bin, tt.bin), dir, tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("command err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not carry %q", err, tt.wantMsg)
			}
			if wantName := tt.bin + " " + strings.Join(tt.args, " "); in.Name != wantName {
				t.Errorf("input name %q, want %q", in.Name, wantName)
			}
		})
	}
}

// TestProbeStorcliFallback: when the JSON output does not parse, the text
// command runs and is parsed instead.
func TestProbeStorcliFallback(t *testing.T) {
	e := newProbeFixture(t)
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("Status = Failure\nDescription = syntax error\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	probeFake{name: "storcli64", cmds: map[string]string{
		"/call show all J": garbage,
		"/call show all":   probeSample("storcli", "three-controllers-one-degraded.call-show-all.txt"),
	}}.install(t, e.bin, e.rec)
	rs, err := e.probe.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Tool != "storcli" || rs[0].Verdict != Degraded || rs[0].Err != "" {
		t.Fatalf("results = %s, want one degraded storcli result", probeDumpAll(rs))
	}
	want := [][]string{{"/call", "show", "all", "J"}, {"/call", "show", "all"}}
	if got := probeArgv(t, e.rec, "storcli64"); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Errorf("storcli64 ran %q, want %q", got, want)
	}
}

// TestProbeOptionalCommand: a battery query that fails costs a warning, not
// the tool.
func TestProbeOptionalCommand(t *testing.T) {
	e := newProbeFixture(t)
	probeFake{name: "MegaCli64", cmds: map[string]string{
		"-LdInfo -Lall -aALL -NoLog": probeSample("megacli", "healthy-2vd-2hotspares.ldinfo.txt"),
		"-PDList -aALL -NoLog":       probeSample("megacli", "healthy-2vd-2hotspares.pdlist.txt"),
	}}.install(t, e.bin, e.rec)
	rs, err := e.probe.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Verdict != OK || !rs[0].HasWarnings() {
		t.Fatalf("results = %s, want one ok megacli result with a warning", probeDumpAll(rs))
	}
}

func probeDumpAll(rs []*Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, mdDump(r))
	}
	return "[" + strings.Join(s, ",\n") + "]"
}

func TestProbeCancelled(t *testing.T) {
	e := newProbeFixture(t)
	probeFake{name: "cli64", sleep: true}.install(t, e.bin, e.rec)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.probe.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run(cancelled) error = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := e.probe.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run(deadline) error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v after its context ended", d)
	}
}

func TestProbeLookup(t *testing.T) {
	root := t.TempDir()
	a, b, x := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "x")
	for _, d := range []string{a, b, x} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(path string, mode os.FileMode) {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(a, "cli32"), 0o755)
	mk(filepath.Join(b, "cli64"), 0o755)
	mk(filepath.Join(a, "tw_cli"), 0o644) // not executable
	mk(filepath.Join(x, "tw_cli"), 0o755)
	if err := os.Mkdir(filepath.Join(a, "storcli64"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	probeHermetic(t)
	areca, twcli, storcli := tools[0], tools[1], tools[3]
	tests := []struct {
		name  string
		probe Probe
		tool  tool
		want  string
	}{
		{"preferred name first", Probe{PathEnv: a + ":" + b, ExtraDirs: []string{}}, areca, filepath.Join(b, "cli64")},
		{"other name", Probe{PathEnv: a, ExtraDirs: []string{}}, areca, filepath.Join(a, "cli32")},
		{"not executable, extra dir", Probe{PathEnv: a, ExtraDirs: []string{x}}, twcli, filepath.Join(x, "tw_cli")},
		{"not executable, no extra", Probe{PathEnv: a, ExtraDirs: []string{}}, twcli, ""},
		{"directory", Probe{PathEnv: a, ExtraDirs: []string{}}, storcli, ""},
		{"relative PATH entry skipped", Probe{PathEnv: "a", ExtraDirs: []string{}}, areca, ""},
	}
	t.Chdir(root)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.probe.lookup(tt.tool); got != tt.want {
				t.Errorf("lookup(%s) = %q, want %q", tt.tool.name, got, tt.want)
			}
		})
	}
}

func TestTwcliCommands(t *testing.T) {
	args := func(cmds []cliCommand) []string {
		var s []string
		for _, c := range cmds {
			s = append(s, strings.Join(c.args, " "))
		}
		return s
	}
	tests := []struct {
		file string
		want []string
	}{
		{"healthy-9650se-spare.show.txt", []string{"info c0 unitstatus", "info c0 drivestatus", "info c0 bbustatus"}},
		{"initializing-8506-old-format.info.txt", []string{"info c0 unitstatus", "info c0 drivestatus"}},
		{"enclosure-alarm-spares-3units.show.txt", []string{"info c0 unitstatus", "info c0 drivestatus", "info c0 bbustatus", "/c0/e0 show all", "/c0/e1 show all"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(probeSample("tw_cli", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := args(twcliCommands(b)); !slices.Equal(got, tt.want) {
				t.Errorf("twcliCommands = %q, want %q", got, tt.want)
			}
		})
	}
	two := "Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU\n" +
		"------------------------------------------------------------------------\n" +
		"c0    9650SE-16ML  16        16       1       0       5       1      OK\n" +
		"c1    9650SE-2LP   2         2        1       0       5       1      -\n"
	want := []string{"info c0 unitstatus", "info c0 drivestatus", "info c0 bbustatus", "info c1 unitstatus", "info c1 drivestatus"}
	if got := args(twcliCommands([]byte(two))); !slices.Equal(got, want) {
		t.Errorf("two controllers: twcliCommands = %q, want %q", got, want)
	}
}

func TestTools(t *testing.T) {
	want := []string{"areca", "tw_cli", "megacli", "storcli", "perccli", "mdstat"}
	if got := Tools(); !slices.Equal(got, want) {
		t.Errorf("Tools() = %q, want %q", got, want)
	}
}

func TestParseTool(t *testing.T) {
	read := func(tool, file string) Input {
		b, err := os.ReadFile(probeSample(tool, file))
		if err != nil {
			t.Fatal(err)
		}
		return Input{Name: file, Data: b}
	}
	tests := []struct {
		tool string
		in   []Input
		want Verdict
	}{
		{"mdstat", []Input{read("mdstat", "degraded-raid5-failed-member.txt")}, Degraded},
		{"areca", []Input{read("areca", "vsf-checking.vsf-info.txt")}, OK},
		{"megacli", []Input{read("megacli", "partially-degraded-raid6-failed-disk.ldpdinfo.txt")}, Degraded},
		{"perccli", []Input{read("perccli", "healthy-raid5-ugood-bbu.perccli-call-show-all-J.json")}, OK},
		{"storcli", []Input{read("storcli", "failed-vd-ofln-two-pd-offln.c0-show-all.txt")}, Failed},
		{"tw_cli", []Input{read("tw_cli", "rebuilding-raid1-drive-degraded.info-c0-unitstatus.txt")}, Rebuilding},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			r, err := ParseTool(tt.tool, tt.in)
			if err != nil {
				t.Fatalf("ParseTool(%s) error: %v", tt.tool, err)
			}
			if r.Tool != tt.tool || r.Verdict != tt.want {
				t.Errorf("ParseTool(%s) = tool %q verdict %v, want %v", tt.tool, r.Tool, r.Verdict, tt.want)
			}
		})
	}
	if _, err := ParseTool("hpacucli", nil); !errors.Is(err, ErrUnknownTool) {
		t.Errorf("ParseTool(hpacucli) error = %v, want ErrUnknownTool", err)
	}
}

// TestLazyRegexps compiles every parser expression: they are compiled on
// first use, so a bad one would otherwise panic only when its parser runs.
func TestLazyRegexps(t *testing.T) {
	if len(lazyRegexps) < 35 {
		t.Errorf("%d expressions registered, want at least 35", len(lazyRegexps))
	}
	for _, f := range lazyRegexps {
		if f() == nil || f() != f() {
			t.Errorf("expression compiled to nil or twice")
		}
	}
}
