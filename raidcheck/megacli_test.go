package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The -update flag is shared by every parser's tests of this package;
// whichever test file initialises first defines it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func megaUpdating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// megaGolden compares r's JSON with testdata/<dir>/<name>.golden.json,
// rewriting it under -update.
func megaGolden(t *testing.T, dir, name string, r *Result) {
	t.Helper()
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", dir, name+".golden.json")
	if megaUpdating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the parse result; run go test -run %s -update and review the diff\ngot:\n%s", path, t.Name(), got)
	}
}

func megaReadInputs(t testing.TB, dir string, files ...string) []Input {
	t.Helper()
	var in []Input
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", dir, f))
		if err != nil {
			t.Fatalf("read sample: %v", err)
		}
		in = append(in, Input{Name: f, Data: b})
	}
	return in
}

// sampleCase is one row of a sample table: files parsed together, the
// MANIFEST verdict, and whether a component warning must be present (the
// "+warn(...)" rows) or absent (every other ok row).
type sampleCase struct {
	golden string
	files  []string
	want   Verdict
	warn   bool
}

var megaCases = []sampleCase{
	{"healthy-2vd-2hotspares.pdlist", []string{"healthy-2vd-2hotspares.pdlist.txt"}, OK, false},
	{"healthy-2vd-2hotspares.ldinfo", []string{"healthy-2vd-2hotspares.ldinfo.txt"}, OK, false},
	{"failed-disk-unconfigured-bad.pdlist", []string{"failed-disk-unconfigured-bad.pdlist.txt"}, Degraded, true},
	{"failed-disk-unconfigured-bad.ldinfo", []string{"failed-disk-unconfigured-bad.ldinfo.txt"}, OK, false},
	{"failed-disk-unconfigured-bad.bbustatus-faulty", []string{"failed-disk-unconfigured-bad.bbustatus-faulty.txt"}, OK, true},
	{"predictive-failure-writethrough.pdlist", []string{"predictive-failure-writethrough.pdlist.txt"}, OK, true},
	{"predictive-failure-writethrough.ldinfo", []string{"predictive-failure-writethrough.ldinfo.txt"}, OK, true},
	{"bbu-learn-cycle-active.bbustatus", []string{"bbu-learn-cycle-active.bbustatus.txt"}, OK, false},
	{"partially-degraded-raid6-failed-disk.ldpdinfo", []string{"partially-degraded-raid6-failed-disk.ldpdinfo.txt"}, Degraded, false},
	{"rebuilding-raid6-pd-rebuild.ldpdinfo", []string{"rebuilding-raid6-pd-rebuild.ldpdinfo.txt"}, Rebuilding, false},
	{"rebuilding-raid6-pd-rebuild.pdrbld-showprog", []string{"rebuilding-raid6-pd-rebuild.pdrbld-showprog.txt"}, Rebuilding, false},
	{"degraded-two-vds-two-failed-disks.ldpdinfo", []string{"degraded-two-vds-two-failed-disks.ldpdinfo.txt"}, Degraded, false},
	// The files of one case together.
	{"healthy-2vd-2hotspares", []string{"healthy-2vd-2hotspares.ldinfo.txt", "healthy-2vd-2hotspares.pdlist.txt"}, OK, false},
	{"failed-disk-unconfigured-bad", []string{"failed-disk-unconfigured-bad.bbustatus-faulty.txt",
		"failed-disk-unconfigured-bad.ldinfo.txt", "failed-disk-unconfigured-bad.pdlist.txt"}, Degraded, true},
	{"predictive-failure-writethrough", []string{"predictive-failure-writethrough.pdlist.txt", "predictive-failure-writethrough.ldinfo.txt"}, OK, true},
	{"rebuilding-raid6-pd-rebuild", []string{"rebuilding-raid6-pd-rebuild.pdrbld-showprog.txt", "rebuilding-raid6-pd-rebuild.ldpdinfo.txt"}, Rebuilding, false},
}

func TestParseMegaCliSamples(t *testing.T) {
	for _, tc := range megaCases {
		t.Run(tc.golden, func(t *testing.T) {
			in := megaReadInputs(t, "megacli", tc.files...)
			r, err := ParseMegaCli(in)
			if err != nil {
				t.Fatalf("ParseMegaCli: %v", err)
			}
			if r.Tool != "megacli" {
				t.Errorf("Tool = %q, want megacli", r.Tool)
			}
			if r.Verdict != tc.want {
				t.Errorf("verdict = %v, want %v", r.Verdict, tc.want)
			}
			if r.HasWarnings() != tc.warn {
				t.Errorf("HasWarnings = %v, want %v (%+v)", r.HasWarnings(), tc.warn, r.Controllers[0].Warnings)
			}
			// The order of the inputs must not matter.
			rev := make([]Input, len(in))
			for i := range in {
				rev[len(in)-1-i] = in[i]
			}
			r2, err := ParseMegaCli(rev)
			if err != nil || r2.Verdict != r.Verdict {
				t.Errorf("reversed inputs: verdict %v, err %v; want %v", r2.Verdict, err, r.Verdict)
			}
			megaGolden(t, "megacli", tc.golden, r)
		})
	}
}

func megaArray(t *testing.T, r *Result, ctl, id string) *Array {
	t.Helper()
	for _, c := range r.Controllers {
		if c.ID != ctl {
			continue
		}
		for _, a := range c.Arrays {
			if a.ID == id {
				return a
			}
		}
	}
	t.Fatalf("no array %s/%s", ctl, id)
	return nil
}

func megaDisk(ds []*Disk, id string) *Disk {
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func megaHasWarning(r *Result, component, substr string) bool {
	for _, c := range r.Controllers {
		for _, w := range c.Warnings {
			if w.Component == component && strings.Contains(w.Message, substr) {
				return true
			}
		}
	}
	return false
}

func TestParseMegaCliDetails(t *testing.T) {
	t.Run("rebuild-target-and-progress", func(t *testing.T) {
		r, err := ParseMegaCli(megaReadInputs(t, "megacli", "rebuilding-raid6-pd-rebuild.ldpdinfo.txt", "rebuilding-raid6-pd-rebuild.pdrbld-showprog.txt"))
		if err != nil {
			t.Fatal(err)
		}
		a := megaArray(t, r, "c0", "v2")
		if a.Verdict != Rebuilding || a.State != "Partially Degraded" || a.Level != "RAID6" || a.Activity != "rebuild" || a.Progress != 3 {
			t.Errorf("v2 = %+v, want rebuilding RAID6 Partially Degraded, rebuild 3%%", a)
		}
		d := megaDisk(a.Disks, "32:10")
		if d == nil || d.Role != "rebuild-target" || d.Verdict != Rebuilding || d.State != "Rebuild" {
			t.Errorf("disk 32:10 = %+v, want Rebuild rebuild-target", d)
		}
		if a.Members != 10 || len(a.Disks) != 10 || a.Missing != 0 {
			t.Errorf("members %d, disks %d, missing %d; want 10, 10, 0", a.Members, len(a.Disks), a.Missing)
		}
	})
	t.Run("same-failed-disk-under-two-vds", func(t *testing.T) {
		r, err := ParseMegaCli(megaReadInputs(t, "megacli", "degraded-two-vds-two-failed-disks.ldpdinfo.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"v0", "v1"} {
			a := megaArray(t, r, "c0", id)
			d := megaDisk(a.Disks, "32:1")
			if a.Verdict != Degraded || d == nil || d.Verdict != Degraded || d.State != "Failed" || a.Missing != 1 {
				t.Errorf("%s = %v (missing %d), disk 32:1 = %+v; want degraded with failed 32:1", id, a.Verdict, a.Missing, d)
			}
		}
		if v := megaArray(t, r, "c0", "v2").Verdict; v != OK {
			t.Errorf("v2 = %v, want ok", v)
		}
	})
	t.Run("unconfigured-bad-outside-vds", func(t *testing.T) {
		r, err := ParseMegaCli(megaReadInputs(t, "megacli", "failed-disk-unconfigured-bad.pdlist.txt", "failed-disk-unconfigured-bad.ldinfo.txt"))
		if err != nil {
			t.Fatal(err)
		}
		d := megaDisk(r.Controllers[0].Disks, "15:10")
		if d == nil || d.Verdict != Degraded || d.State != "Unconfigured(bad)" {
			t.Errorf("disk 15:10 = %+v, want degraded Unconfigured(bad)", d)
		}
		if v := megaArray(t, r, "c0", "v0").Verdict; v != OK {
			t.Errorf("v0 = %v, want ok", v)
		}
		if !megaHasWarning(r, "disk", "15:10: carries a foreign") {
			t.Errorf("no foreign-configuration warning: %+v", r.Controllers[0].Warnings)
		}
	})
	t.Run("warnings", func(t *testing.T) {
		r, err := ParseMegaCli(megaReadInputs(t, "megacli", "predictive-failure-writethrough.pdlist.txt",
			"predictive-failure-writethrough.ldinfo.txt", "failed-disk-unconfigured-bad.bbustatus-faulty.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct{ comp, msg string }{
			{"cache", "v0: current cache policy WriteThrough"},
			{"disk", "252:2: predictive failure count 423"},
			{"bbu", "battery state is empty"},
		} {
			if !megaHasWarning(r, w.comp, w.msg) {
				t.Errorf("no %s warning %q in %+v", w.comp, w.msg, r.Controllers[0].Warnings)
			}
		}
	})
	t.Run("old-name-layout", func(t *testing.T) {
		r, err := ParseMegaCli(megaReadInputs(t, "megacli", "healthy-2vd-2hotspares.ldinfo.txt", "healthy-2vd-2hotspares.pdlist.txt"))
		if err != nil {
			t.Fatal(err)
		}
		a := megaArray(t, r, "c0", "v1")
		if a.Name != "DATA" || a.Level != "RAID5" || a.Size != "272.25 GB" || a.Members != 3 {
			t.Errorf("v1 = %+v, want DATA RAID5 272.25 GB with 3 members", a)
		}
		spares := 0
		for _, d := range r.Controllers[0].Disks {
			if d.Role == "spare" && d.Verdict == OK {
				spares++
			}
		}
		if spares != 2 {
			t.Errorf("%d ok spares, want 2", spares)
		}
	})
}

// megaLDInfo is a one-VD -LdInfo output with the given state lines.
func megaLDInfo(state, extra string) string {
	return "Adapter 0 -- Virtual Drive Information:\nVirtual Drive: 0 (Target Id: 0)\nName                :\n" +
		"RAID Level          : Primary-1, Secondary-0, RAID Level Qualifier-0\nSize                : 1.0 TB\n" +
		"State               : " + state + "\nNumber Of Drives    : 2\nSpan Depth          : 1\n" + extra + "\nExit Code: 0x00\n"
}

// megaPDList is a -PDList output of drives with the given firmware states.
func megaPDList(states ...string) string {
	var b strings.Builder
	b.WriteString("Adapter #0\n\n")
	for i, s := range states {
		b.WriteString("Enclosure Device ID: 32\nSlot Number: " + string(rune('0'+i)) + "\nPredictive Failure Count: 0\nFirmware state: " + s + "\nForeign State: None\n\n")
	}
	b.WriteString("Exit Code: 0x00\n")
	return b.String()
}

func megaBBUStatus(state, learn string) string {
	return "BBU status for Adapter: 0\n\nBatteryType: iBBU\nBattery State     : " + state +
		"\nBBU Firmware Status:\n  Learn Cycle Active      : " + learn + "\n  Battery Replacement required : No\n\nExit Code: 0x00\n"
}

func TestParseMegaCliHandMade(t *testing.T) {
	tests := []struct {
		name   string
		inputs []string
		want   Verdict
		warn   string // component of a warning that must be present
	}{
		{"unknown-vd-state", []string{megaLDInfo("ERROR", "")}, Unknown, ""},
		{"vd-without-state", []string{strings.Replace(megaLDInfo("Optimal", ""), "State               : Optimal\n", "", 1)}, Unknown, ""},
		{"unknown-pd-state", []string{megaPDList("Online, Spun Up", "Exploded")}, Unknown, ""},
		{"offline-vd", []string{megaLDInfo("Offline", "")}, Failed, ""},
		{"degraded-vd-no-rebuild", []string{megaLDInfo("Degraded", ""), megaPDList("Online, Spun Up", "Failed")}, Degraded, ""},
		{"ldinfo-degraded-pdlist-rebuild", []string{megaLDInfo("Degraded", ""), megaPDList("Online, Spun Up", "Rebuild")}, Rebuilding, ""},
		{"rebuild-plus-failed-leftover", []string{megaLDInfo("Degraded", ""), megaPDList("Online, Spun Up", "Rebuild", "Unconfigured(bad)")}, Degraded, ""},
		{"check-consistency-is-ok", []string{megaLDInfo("Optimal", "Ongoing Progresses:\n  Check Consistency        : Completed 46%, Taken 167 min.")}, OK, ""},
		{"background-init-rebuilding", []string{megaLDInfo("Optimal", "Ongoing Progresses:\n  Background Initialization: Completed 5%, Taken 2 min.")}, Rebuilding, ""},
		{"unknown-activity", []string{megaLDInfo("Optimal", "Ongoing Progresses:\n  Frobnication : Completed 5%, Taken 2 min.")}, Unknown, ""},
		{"jbod-copyback-spare-ok", []string{megaPDList("JBOD", "Copyback", "Hotspare, Spun Up", "Unconfigured(good), Spun Up")}, OK, ""},
		{"no-vd-configured", []string{"Adapter 0 -- Virtual Drive Information:\nAdapter 0: No Virtual Drive Configured.\n\nExit Code: 0x00\n"}, OK, ""},
		{"header-without-rows", []string{"Adapter 0 -- Virtual Drive Information:\n\nExit Code: 0x00\n"}, Unknown, ""},
		{"pdlist-header-without-rows", []string{"Adapter #0\n\nExit Code: 0x00\n"}, Unknown, ""},
		{"no-exit-code", []string{strings.TrimSuffix(megaLDInfo("Optimal", ""), "Exit Code: 0x00\n")}, Unknown, ""},
		{"nonzero-exit-code", []string{strings.Replace(megaLDInfo("Optimal", ""), "0x00", "0x01", 1)}, Unknown, ""},
		{"fewer-vds-than-announced", []string{strings.Replace(megaLDInfo("Optimal", ""), "Adapter 0 -- Virtual Drive Information:\n", "Adapter #0\nNumber of Virtual Disks: 2\n", 1)}, Unknown, ""},
		{"bbu-learning-no-warning", []string{megaBBUStatus("Learning", "Yes")}, OK, ""},
		{"bbu-degraded-warns", []string{megaBBUStatus("Degraded", "No")}, OK, "bbu"},
		{"bbu-non-operational-not-learning-warns", []string{megaBBUStatus("Non Operational", "No")}, OK, "bbu"},
		{"bbu-replacement-required", []string{strings.Replace(megaBBUStatus("Optimal", "No"), "required : No", "required : Yes", 1)}, OK, "bbu"},
		{"bbu-status-failed", []string{"Adapter 0: Get BBU Status Failed.\n\nExit Code: 0x01\n"}, OK, "bbu"},
		{"two-adapters", []string{"Adapter #0\n\nEnclosure Device ID: 8\nSlot Number: 0\nFirmware state: Online, Spun Up\n\nAdapter #1\n\nEnclosure Device ID: 9\nSlot Number: 1\nFirmware state: Failed\n\nExit Code: 0x00\n"}, Degraded, ""},
		// N/A, "-" and empty cells report nothing: never an alert, never
		// evidence that a state is fine.
		{"foreign-state-na-no-warning", []string{strings.ReplaceAll(megaPDList("JBOD", "Online, Spun Up"), "Foreign State: None", "Foreign State: N/A")}, OK, ""},
		{"smart-and-predictive-na-no-warning", []string{strings.ReplaceAll(megaPDList("JBOD"), "Predictive Failure Count: 0", "Predictive Failure Count: N/A\nDrive has flagged a S.M.A.R.T alert : N/A")}, OK, ""},
		{"learn-cycle-status-na-no-warning", []string{strings.Replace(megaBBUStatus("Optimal", "No"), "  Battery Replacement", "  Learn Cycle Status      : N/A\n  Battery Replacement", 1)}, OK, ""},
		{"bbu-state-na-warns", []string{megaBBUStatus("N/A", "No")}, OK, "bbu"},
		{"pd-state-na-alone", []string{megaPDList("Online, Spun Up", "N/A")}, Unknown, ""},
		{"pd-state-na-then-online", []string{megaPDList("N/A"), megaPDList("Online, Spun Up")}, OK, ""},
		{"pd-state-online-then-na", []string{megaPDList("Online, Spun Up"), megaPDList("N/A")}, OK, ""},
		{"pd-state-na-then-failed", []string{megaPDList("N/A"), megaPDList("Failed")}, Degraded, ""},
		{"vd-state-na", []string{megaLDInfo("N/A", "")}, Unknown, ""},
		{"crlf-and-prompt", []string{"root@h:~# MegaCli64 -LdInfo -Lall -aALL\r\n" + strings.ReplaceAll(megaLDInfo("Optimal", ""), "\n", "\r\n")}, OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []Input
			for i, s := range tc.inputs {
				in = append(in, Input{Name: "hand" + string(rune('0'+i)), Data: []byte(s)})
			}
			r, err := ParseMegaCli(in)
			if err != nil {
				t.Fatalf("ParseMegaCli: %v", err)
			}
			if r.Verdict != tc.want {
				b, _ := json.MarshalIndent(r, "", " ")
				t.Errorf("verdict = %v, want %v\n%s", r.Verdict, tc.want, b)
			}
			if tc.warn != "" && !megaHasWarning(r, tc.warn, "") {
				t.Errorf("no %s warning: %+v", tc.warn, r.Controllers)
			}
			if tc.warn == "" && tc.want == OK && r.HasWarnings() {
				t.Errorf("unexpected warnings: %+v", r.Controllers[0].Warnings)
			}
		})
	}
}

func TestParseMegaCliUnreadable(t *testing.T) {
	tests := []struct {
		name string
		in   []Input
	}{
		{"no-inputs", nil},
		{"empty", []Input{{Name: "e", Data: nil}}},
		{"blank", []Input{{Name: "b", Data: []byte("\r\n   \n")}}},
		{"garbage", []Input{{Name: "g", Data: []byte("\x00\x01 hello: world\nfoo\n")}}},
		{"only-exit-code", []Input{{Name: "x", Data: []byte("Exit Code: 0x00\n")}}},
		{"other-tool", []Input{{Name: "md", Data: []byte("Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1]\n")}}},
		{"one-good-one-bad", []Input{{Name: "ok", Data: []byte(megaLDInfo("Optimal", ""))}, {Name: "bad", Data: []byte("nonsense\n")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseMegaCli(tc.in)
			if !errors.Is(err, ErrParse) {
				t.Fatalf("ParseMegaCli = %v, %v; want an ErrParse error", r, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Tool != "megacli" {
				t.Errorf("error %v is not a megacli *ParseError", err)
			}
		})
	}
}

// megaCuts returns the cut points of a truncation test: every line end
// and about 3000 more spread over the data (every third byte of a small
// sample), which keeps the test within seconds.
func megaCuts(data []byte) []int {
	var cuts []int
	step := max(3, len(data)/1500)
	for i := 0; i < len(data); i += step {
		cuts = append(cuts, i)
	}
	for i, b := range data {
		if b == '\n' {
			cuts = append(cuts, i, i+1)
		}
	}
	return cuts
}

// TestParseMegaCliTruncated cuts every sample at many points: the result
// is never OK unless the cut kept the "Exit Code: 0x00" line whole.
func TestParseMegaCliTruncated(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "megacli", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			end := bytes.LastIndex(data, []byte("Exit Code: 0x00"))
			if end < 0 {
				t.Fatal("sample has no Exit Code line")
			}
			end += len("Exit Code: 0x00")
			for _, cut := range megaCuts(data) {
				if cut >= end {
					continue
				}
				r, err := ParseMegaCli([]Input{{Name: "cut", Data: data[:cut]}})
				if err != nil {
					if !errors.Is(err, ErrParse) {
						t.Fatalf("cut at %d: error %v is not ErrParse", cut, err)
					}
					continue
				}
				if r.Verdict == OK {
					t.Fatalf("cut at %d of %d: verdict ok", cut, len(data))
				}
			}
		})
	}
}

func FuzzParseMegaCli(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "megacli", "*.txt"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(megaLDInfo("Partially Degraded", "Ongoing Progresses:\n  Rebuild : Completed 5%, Taken 2 min.")))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Also as two inputs, split in the middle, to exercise merging.
		half := len(data) / 2
		for _, in := range [][]Input{
			{{Name: "fuzz", Data: data}},
			{{Name: "a", Data: data[:half]}, {Name: "b", Data: data[half:]}},
		} {
			r, err := ParseMegaCli(in)
			if err != nil {
				if !errors.Is(err, ErrParse) {
					t.Fatalf("error %v is not ErrParse", err)
				}
				continue
			}
			if r.Verdict > Failed {
				t.Fatalf("invalid verdict %d", r.Verdict)
			}
			if len(r.Controllers) == 0 && r.Verdict == OK {
				t.Fatal("no controller but verdict ok")
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("marshal: %v", err)
			}
		}
	})
}
