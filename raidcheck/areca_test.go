package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The -update flag is shared by every parser's tests in this package;
// whichever test file's init runs first defines it.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func vendorUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// vendorGolden compares r's JSON with testdata/<tool>/<name>.golden.json,
// rewriting it under -update.
func vendorGolden(t *testing.T, tool, name string, r *Result) {
	t.Helper()
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", tool, name+".golden.json")
	if vendorUpdate() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the parsed result (rerun with -update if the change is intended)\ngot:\n%s", path, got)
	}
}

// vendorSamples lists the sample files of a tool, grouped by case (the
// file name up to its first dot).
func vendorSamples(t testing.TB, tool string) (files []string, cases map[string][]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", tool, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples for %s: %v", tool, err)
	}
	sort.Strings(files)
	cases = map[string][]string{}
	for _, f := range files {
		base := filepath.Base(f)
		c := base[:strings.IndexByte(base, '.')]
		cases[c] = append(cases[c], f)
	}
	return files, cases
}

func vendorInput(t testing.TB, path string) Input {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read sample: %v", err)
	}
	return Input{Name: filepath.Base(path), Data: b}
}

// vendorAllClear is what a truncated output must never be: ok with no
// component warning.
func vendorAllClear(r *Result, err error) bool {
	return err == nil && r.Verdict == OK && !r.HasWarnings()
}

// vendorCheckResult checks the invariants every parsed Result keeps.
func vendorCheckResult(t *testing.T, r *Result) {
	t.Helper()
	if r == nil {
		t.Fatal("nil result without an error")
	}
	if r.Verdict > Failed {
		t.Fatalf("invalid verdict %d", r.Verdict)
	}
	if len(r.Controllers) == 0 && r.Verdict == OK {
		t.Fatal("result with no controller is ok")
	}
	worst := OK
	if len(r.Controllers) == 0 {
		worst = Unknown // Finish: nothing judged is Unknown
	}
	for _, c := range r.Controllers {
		if c.Verdict > Failed {
			t.Fatalf("controller %s: invalid verdict %d", c.ID, c.Verdict)
		}
		worst = Worst(worst, c.Verdict)
		for _, a := range c.Arrays {
			if a.Verdict > Failed || a.Verdict > c.Verdict {
				t.Fatalf("array %s: verdict %v, controller %v", a.ID, a.Verdict, c.Verdict)
			}
			for _, d := range a.Disks {
				if d.Verdict > Failed {
					t.Fatalf("disk %s: invalid verdict %d", d.ID, d.Verdict)
				}
			}
		}
		for _, d := range c.Disks {
			if d.Verdict > Failed {
				t.Fatalf("disk %s: invalid verdict %d", d.ID, d.Verdict)
			}
		}
	}
	if worst != r.Verdict {
		t.Fatalf("result verdict %v, worst controller %v", r.Verdict, worst)
	}
}

// arecaExpected is MANIFEST.md's verdict for each Areca sample alone.
var arecaExpected = map[string]Verdict{
	"healthy-enclosure-hotspare.rsf-info.txt":           OK,
	"healthy-enclosure-hotspare.disk-info.txt":          OK,
	"rebuilding-with-failed-disk.rsf-info.txt":          Rebuilding,
	"rebuilding-with-failed-disk.disk-info.txt":         Degraded,
	"three-raidsets-passthrough.rsf-info.txt":           OK,
	"three-raidsets-passthrough.disk-info.txt":          OK,
	"vsf-two-volumes-degraded.vsf-info.txt":             Degraded,
	"vsf-two-volumes-degraded.disk-info.txt":            Degraded,
	"vsf-four-rebuilding-one-need-rebuild.vsf-info.txt": Rebuilding,
	"vsf-initializing.vsf-info.txt":                     Rebuilding,
	"vsf-checking.vsf-info.txt":                         OK,
}

// arecaCaseExpected is the verdict of each case's files given together:
// the worst of theirs.
var arecaCaseExpected = map[string]Verdict{
	"healthy-enclosure-hotspare":           OK,
	"rebuilding-with-failed-disk":          Degraded, // the failed disk still needs replacing while the set rebuilds
	"three-raidsets-passthrough":           OK,
	"vsf-two-volumes-degraded":             Degraded,
	"vsf-four-rebuilding-one-need-rebuild": Rebuilding,
	"vsf-initializing":                     Rebuilding,
	"vsf-checking":                         OK,
}

func TestParseArecaSamples(t *testing.T) {
	files, _ := vendorSamples(t, "areca")
	if len(files) != len(arecaExpected) {
		t.Errorf("%d sample files, %d expected verdicts", len(files), len(arecaExpected))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := arecaExpected[name]
			if !ok {
				t.Fatalf("no expected verdict for %s", name)
			}
			r, err := ParseAreca([]Input{vendorInput(t, f)})
			if err != nil {
				t.Fatalf("ParseAreca: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != want {
				t.Errorf("verdict %v, want %v (reason %q)", r.Verdict, want, r.Controllers[0].Reason)
			}
			if r.HasWarnings() {
				t.Errorf("unexpected warnings: %+v", r.Controllers[0].Warnings)
			}
			vendorGolden(t, "areca", strings.TrimSuffix(name, ".txt"), r)
		})
	}
}

func TestParseArecaCases(t *testing.T) {
	_, cases := vendorSamples(t, "areca")
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			want, ok := arecaCaseExpected[name]
			if !ok {
				t.Fatalf("no expected verdict for case %s", name)
			}
			var in []Input
			for _, f := range files {
				in = append(in, vendorInput(t, f))
			}
			r, err := ParseAreca(in)
			if err != nil {
				t.Fatalf("ParseAreca: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != want {
				t.Errorf("verdict %v, want %v", r.Verdict, want)
			}
			// Order must not matter.
			rev := make([]Input, len(in))
			for i := range in {
				rev[len(in)-1-i] = in[i]
			}
			r2, err := ParseAreca(rev)
			if err != nil || r2.Verdict != r.Verdict {
				t.Errorf("reversed inputs: verdict %v, %v; want %v", r2.Verdict, err, r.Verdict)
			}
			vendorGolden(t, "areca", name, r)
		})
	}
}

func arecaCase(t *testing.T, name string) *Result {
	t.Helper()
	_, cases := vendorSamples(t, "areca")
	var in []Input
	for _, f := range cases[name] {
		in = append(in, vendorInput(t, f))
	}
	r, err := ParseAreca(in)
	if err != nil {
		t.Fatalf("ParseAreca(%s): %v", name, err)
	}
	return r
}

func vendorArray(c *Controller, id string) *Array {
	for _, a := range c.Arrays {
		if a.ID == id {
			return a
		}
	}
	return nil
}

func vendorDisk(ds []*Disk, id string) *Disk {
	for _, d := range ds {
		if d.ID == id {
			return d
		}
	}
	return nil
}

func TestParseArecaDetails(t *testing.T) {
	t.Run("raid set members and hot spare", func(t *testing.T) {
		c := arecaCase(t, "healthy-enclosure-hotspare").Controllers[0]
		a := vendorArray(c, "rs1")
		if a == nil || a.Name != "Raid Set # 000" || a.Members != 23 || len(a.Disks) != 23 {
			t.Fatalf("rs1 = %+v, want 'Raid Set # 000' with 23 members and 23 disks", a)
		}
		if d := vendorDisk(a.Disks, "E2 S1"); d == nil || d.Model != "ST31500341AS" || d.Role != "member" {
			t.Errorf("E2 S1 = %+v", d)
		}
		if len(c.Disks) != 1 || c.Disks[0].ID != "E2 S22" || c.Disks[0].Role != "spare" || c.Disks[0].Verdict != OK {
			t.Errorf("loose disks = %+v, want the hot spare E2 S22 only (empty slots skipped)", c.Disks)
		}
	})
	t.Run("rebuild with a failed leftover disk", func(t *testing.T) {
		r := arecaCase(t, "rebuilding-with-failed-disk")
		c := r.Controllers[0]
		a := vendorArray(c, "rs1")
		if a == nil || a.Name != "data" || a.Verdict != Rebuilding || a.Activity != "rebuild" || len(a.Disks) != 15 {
			t.Fatalf("rs1 = %+v", a)
		}
		d := vendorDisk(c.Disks, "Ch16")
		if d == nil || d.Verdict != Degraded || d.State != "Failed" {
			t.Errorf("Ch16 = %+v, want a Degraded Failed disk", d)
		}
	})
	t.Run("pass through", func(t *testing.T) {
		c := arecaCase(t, "three-raidsets-passthrough").Controllers[0]
		if len(c.Arrays) != 3 || vendorArray(c, "rs2").Name != "data2" || len(vendorArray(c, "rs2").Disks) != 6 {
			t.Fatalf("arrays = %+v", c.Arrays)
		}
		d := vendorDisk(c.Disks, "E2 S13")
		if d == nil || d.Role != "passthrough" || d.Verdict != OK {
			t.Errorf("E2 S13 = %+v", d)
		}
	})
	t.Run("rebuild progress and need rebuild", func(t *testing.T) {
		c := arecaCase(t, "vsf-four-rebuilding-one-need-rebuild").Controllers[0]
		v1 := vendorArray(c, "vs1")
		if v1 == nil || v1.Name != "qb1" || v1.Level != "Raid6" || v1.Size != "32000.0GB" || v1.Progress != 1.5 || v1.Activity != "rebuild" || v1.Verdict != Rebuilding {
			t.Errorf("vs1 = %+v", v1)
		}
		v6 := vendorArray(c, "vs6")
		if v6 == nil || v6.State != "Need Rebuild" || v6.Verdict != Rebuilding {
			t.Errorf("vs6 = %+v", v6)
		}
		if v5 := vendorArray(c, "vs5"); v5 == nil || v5.Verdict != OK {
			t.Errorf("vs5 = %+v", v5)
		}
	})
	t.Run("checking is ok", func(t *testing.T) {
		c := arecaCase(t, "vsf-checking").Controllers[0]
		v1 := vendorArray(c, "vs1")
		if v1 == nil || v1.Activity != "check" || v1.Verdict != OK || v1.State != "Checking(0.0%)" {
			t.Errorf("vs1 = %+v", v1)
		}
		if v2 := vendorArray(c, "vs2"); v2 == nil || v2.Level != "Raid1+0" || v2.Name != "wi10d1search" {
			t.Errorf("vs2 = %+v", v2)
		}
	})
	t.Run("initializing", func(t *testing.T) {
		c := arecaCase(t, "vsf-initializing").Controllers[0]
		v2 := vendorArray(c, "vs2")
		if v2 == nil || v2.Activity != "initialize" || v2.Progress != 0.8 || v2.Verdict != Rebuilding {
			t.Errorf("vs2 = %+v", v2)
		}
	})
	t.Run("volume sets carry the disks of their raid set", func(t *testing.T) {
		c := arecaCase(t, "vsf-two-volumes-degraded").Controllers[0]
		if len(c.Arrays) != 8 {
			t.Fatalf("%d arrays, want the 8 volume sets", len(c.Arrays))
		}
		v1 := vendorArray(c, "vs1")
		if v1 == nil || v1.Verdict != Degraded || len(v1.Disks) != 9 {
			t.Errorf("vs1 = %+v with %d disks, want Degraded with 9", v1, len(v1.Disks))
		}
		failed := 0
		for _, d := range c.Disks {
			if d.State == "Failed" && d.Verdict == Degraded {
				failed++
			}
		}
		if failed != 2 {
			t.Errorf("%d failed loose disks, want 2", failed)
		}
	})
	t.Run("disk info alone makes raid sets from usage", func(t *testing.T) {
		r, err := ParseAreca([]Input{vendorInput(t, "testdata/areca/rebuilding-with-failed-disk.disk-info.txt")})
		if err != nil {
			t.Fatal(err)
		}
		a := vendorArray(r.Controllers[0], "data")
		if a == nil || len(a.Disks) != 15 || a.Verdict != OK {
			t.Errorf("data = %+v", a)
		}
	})
}

// arecaTable wraps rows in an Areca table with its closing lines.
func arecaTable(header string, rows ...string) string {
	rule := strings.Repeat("=", 79)
	return header + "\n" + rule + "\n" + strings.Join(rows, "\n") + "\n" + rule + "\nGuiErrMsg<0x00>: Success.\n"
}

const (
	arecaRSFHeader  = " #  Name             Disks TotalCap  FreeCap MinDiskCap         State"
	arecaVSFHeader  = "  # Name             Raid Name       Level   Capacity Ch/Id/Lun  State"
	arecaDiskHeader = "  # Enc# Slot#   ModelName                        Capacity  Usage"
)

func TestParseArecaMalformed(t *testing.T) {
	rule := strings.Repeat("=", 79)
	for _, tc := range []struct {
		name    string
		in      []string
		wantErr bool
		want    Verdict
	}{
		{name: "no inputs", in: nil, wantErr: true},
		{name: "empty input", in: []string{""}, wantErr: true},
		{name: "blank input", in: []string{"\n \n"}, wantErr: true},
		{name: "garbage", in: []string{"hello\nworld\n"}, wantErr: true},
		{name: "binary", in: []string{"\x00\xff\xfe=====\n#"}, wantErr: true},
		{name: "only trailer", in: []string{"GuiErrMsg<0x00>: Success.\n"}, wantErr: true},
		{name: "cli error", in: []string{"GuiErrMsg<0x0B>: Password Required.\n"}, wantErr: true},
		{name: "header with no rows", in: []string{arecaRSFHeader + "\n" + rule + "\n" + rule + "\nGuiErrMsg<0x00>: Success.\n"}, wantErr: true},
		{name: "header without rule", in: []string{arecaRSFHeader + "\n 1  a  1 1.0GB 0.0GB 1.0GB Normal\n"}, wantErr: true},
		{name: "one bad input spoils the set", in: []string{arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal"), "junk"}, wantErr: true},
		{name: "unknown raid set state", in: []string{arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    ERROR")}, want: Unknown},
		{name: "unknown volume state", in: []string{arecaTable(arecaVSFHeader, "  1 v1               data            Raid6   20000.0GB 00/00/00   Exploded(5%)")}, want: Unknown},
		{name: "bad progress", in: []string{arecaTable(arecaVSFHeader, "  1 v1               data            Raid6   20000.0GB 00/00/00   Rebuilding(x%)")}, want: Unknown},
		{name: "progress over 100", in: []string{arecaTable(arecaVSFHeader, "  1 v1               data            Raid6   20000.0GB 00/00/00   Rebuilding(150%)")}, want: Unknown},
		{name: "failed volume", in: []string{arecaTable(arecaVSFHeader, "  1 v1               data            Raid6   20000.0GB 00/00/00   Failed")}, want: Failed},
		{name: "degraded raid set", in: []string{arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Degraded")}, want: Degraded},
		{name: "unknown usage word", in: []string{arecaTable(arecaDiskHeader, "  9  02  SLOT 01 ST31500341AS                     1500.3GB  ERROR")}, want: Unknown},
		{name: "usage naming no listed raid set", in: []string{
			arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal"),
			arecaTable(arecaDiskHeader, "  9  02  SLOT 01 ST31500341AS                     1500.3GB  Raid Set # 009"),
		}, want: Unknown},
		{name: "failed hot spare", in: []string{arecaTable(arecaDiskHeader, "  9  02  SLOT 01 ST31500341AS                     1500.3GB  Failed")}, want: Degraded},
		{name: "unreadable row", in: []string{arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal", "this is not a row")}, want: Unknown},
		{name: "no closing rule", in: []string{arecaRSFHeader + "\n" + rule + "\n 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal\n"}, want: Unknown},
		{name: "partial closing rule", in: []string{arecaRSFHeader + "\n" + rule + "\n 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal\n" + rule[:40]}, want: Unknown},
		{name: "header then end", in: []string{arecaRSFHeader + "\n"}, want: Unknown},
		// N/A, "-" and empty cells report nothing: never an alert, never
		// evidence that a state is fine.
		{name: "raid set state N/A", in: []string{arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    N/A")}, want: Unknown},
		{name: "volume state dash", in: []string{arecaTable(arecaVSFHeader, "  1 v1               data            Raid6   20000.0GB 00/00/00   -")}, want: Unknown},
		{name: "raid set N/A in one input, Normal in another", in: []string{
			arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal"),
			arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    N/A"),
		}, want: OK},
		{name: "raid set N/A then Degraded", in: []string{
			arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    N/A"),
			arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Degraded"),
		}, want: Degraded},
		{name: "disk usage N/A is no raid set", in: []string{arecaTable(arecaDiskHeader, "  9  02  SLOT 01 ST31500341AS                     1500.3GB  N/A")}, want: Unknown},
		{name: "empty slots are skipped", in: []string{arecaTable(arecaDiskHeader,
			"  9  02  SLOT 01 ST31500341AS                     1500.3GB  HotSpare",
			"  10 02  SLOT 02 N.A.                                0.0GB  N.A.")}, want: OK},
		{name: "healthy with CRLF and prompt", in: []string{"# cli64 rsf info\r\n" + strings.ReplaceAll(arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal"), "\n", "\r\n")}, want: OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []Input
			for i, s := range tc.in {
				in = append(in, Input{Name: "in" + string(rune('0'+i)), Data: []byte(s)})
			}
			r, err := ParseAreca(in)
			if tc.wantErr {
				var pe *ParseError
				if !errors.Is(err, ErrParse) || !errors.As(err, &pe) || pe.Tool != ToolAreca {
					t.Fatalf("err = %v (result %+v), want a *ParseError of tool areca", err, r)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAreca: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != tc.want {
				t.Errorf("verdict %v, want %v (reason %q)", r.Verdict, tc.want, r.Controllers[0].Reason)
			}
		})
	}
}

// arecaCompleteAt is where the last table of an Areca output is complete:
// the end of its closing ===== line (the GuiErrMsg trailer is optional).
func arecaCompleteAt(data []byte) int {
	end := 0
	off := 0
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if vendorIsRule(line, '=') {
			end = off + len(strings.TrimRight(line, " \r\n"))
		}
		off += len(line)
	}
	return end
}

// TestParseArecaTruncated cuts every sample, alone and within its case, at
// every byte: a cut output is never all clear before its last table ends.
func TestParseArecaTruncated(t *testing.T) {
	_, cases := vendorSamples(t, "areca")
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			var full []Input
			for _, f := range files {
				full = append(full, vendorInput(t, f))
			}
			for i, inp := range full {
				done := arecaCompleteAt(inp.Data)
				if done == 0 {
					t.Fatalf("%s: no closing rule", inp.Name)
				}
				bad := 0
				for cut := 0; cut < len(inp.Data) && bad < 3; cut++ {
					one := Input{Name: inp.Name, Data: inp.Data[:cut]}
					r, err := ParseAreca([]Input{one})
					if err == nil {
						vendorCheckResult(t, r)
					}
					if vendorAllClear(r, err) && cut < done {
						t.Errorf("%s cut at %d of %d (table ends at %d): all clear", inp.Name, cut, len(inp.Data), done)
						bad++
					}
					together := append([]Input{}, full...)
					together[i] = one
					r, err = ParseAreca(together)
					if vendorAllClear(r, err) && cut < done {
						t.Errorf("case with %s cut at %d: all clear", inp.Name, cut)
						bad++
					}
				}
			}
		})
	}
}

func FuzzParseAreca(f *testing.F) {
	files, _ := vendorSamples(f, "areca")
	for _, p := range files {
		f.Add(vendorInput(f, p).Data)
	}
	// Several inputs in one seed, separated by NUL.
	f.Add([]byte(arecaTable(arecaRSFHeader, " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Normal") + "\x00" +
		arecaTable(arecaDiskHeader, "  9  02  SLOT 01 ST31500341AS                     1500.3GB  data")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []Input
		for i, part := range bytes.SplitN(data, []byte{0}, 4) {
			in = append(in, Input{Name: "fuzz" + string(rune('0'+i)), Data: part})
		}
		r, err := ParseAreca(in)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrParse) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		vendorCheckResult(t, r)
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
