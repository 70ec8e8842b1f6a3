package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// twExpected is MANIFEST.md's verdict for each tw_cli sample alone; warn
// marks the `+warn(...)` rows.
var twExpected = map[string]struct {
	v    Verdict
	warn bool
}{
	"healthy-9650se-spare.show.txt":                                 {OK, false},
	"healthy-9650se-spare.info-c0-unitstatus.txt":                   {OK, false},
	"healthy-9650se-spare.info-c0-drivestatus.txt":                  {OK, false},
	"rebuilding-raid1-drive-degraded.show.txt":                      {Rebuilding, false},
	"rebuilding-raid1-drive-degraded.info-c0-unitstatus.txt":        {Rebuilding, false},
	"rebuilding-raid1-drive-degraded.info-c0-drivestatus.txt":       {Rebuilding, false},
	"verifying-raid10-verify-paused-spares.show.txt":                {OK, false},
	"verifying-raid10-verify-paused-spares.info-c0-unitstatus.txt":  {OK, false},
	"verifying-raid10-verify-paused-spares.info-c0-drivestatus.txt": {OK, false},
	"verifying-raid10-verify-paused-spares.info-c0-bbustatus.txt":   {OK, false},
	"initializing-8506-old-format.info.txt":                         {Rebuilding, false},
	"initializing-8506-old-format.info-c0-unitstatus.txt":           {Rebuilding, false},
	"enclosure-alarm-spares-3units.show.txt":                        {OK, false},
	"enclosure-alarm-spares-3units.info-c0-unitstatus.txt":          {OK, false},
	"enclosure-alarm-spares-3units.info-c0-drivestatus.txt":         {OK, false},
	"enclosure-alarm-spares-3units.c0-eX-show-all.txt":              {OK, true},
}

var twCaseExpected = map[string]struct {
	v    Verdict
	warn bool
}{
	"healthy-9650se-spare":                  {OK, false},
	"rebuilding-raid1-drive-degraded":       {Rebuilding, false},
	"verifying-raid10-verify-paused-spares": {OK, false},
	"initializing-8506-old-format":          {Rebuilding, false},
	"enclosure-alarm-spares-3units":         {OK, true},
}

func TestParseTWCLISamples(t *testing.T) {
	files, _ := vendorSamples(t, "tw_cli")
	if len(files) != len(twExpected) {
		t.Errorf("%d sample files, %d expected verdicts", len(files), len(twExpected))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := twExpected[name]
			if !ok {
				t.Fatalf("no expected verdict for %s", name)
			}
			r, err := ParseTWCLI([]Input{vendorInput(t, f)})
			if err != nil {
				t.Fatalf("ParseTWCLI: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != want.v || r.HasWarnings() != want.warn {
				t.Errorf("verdict %v warnings %v, want %v warnings %v (reason %q, warnings %+v)",
					r.Verdict, r.HasWarnings(), want.v, want.warn, r.Controllers[0].Reason, r.Controllers[0].Warnings)
			}
			vendorGolden(t, "tw_cli", strings.TrimSuffix(name, ".txt"), r)
		})
	}
}

func TestParseTWCLICases(t *testing.T) {
	_, cases := vendorSamples(t, "tw_cli")
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			want, ok := twCaseExpected[name]
			if !ok {
				t.Fatalf("no expected verdict for case %s", name)
			}
			var in []Input
			for _, f := range files {
				in = append(in, vendorInput(t, f))
			}
			r, err := ParseTWCLI(in)
			if err != nil {
				t.Fatalf("ParseTWCLI: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != want.v || r.HasWarnings() != want.warn {
				t.Errorf("verdict %v warnings %v, want %v warnings %v (reason %q)", r.Verdict, r.HasWarnings(), want.v, want.warn, r.Controllers[0].Reason)
			}
			if len(r.Controllers) != 1 || r.Controllers[0].ID != "c0" {
				t.Errorf("controllers %+v, want c0 only", r.Controllers)
			}
			rev := make([]Input, len(in))
			for i := range in {
				rev[len(in)-1-i] = in[i]
			}
			r2, err := ParseTWCLI(rev)
			if err != nil || r2.Verdict != r.Verdict {
				t.Errorf("reversed inputs: verdict %v, %v; want %v", r2.Verdict, err, r.Verdict)
			}
			vendorGolden(t, "tw_cli", name, r)
		})
	}
}

func twCase(t *testing.T, name string) *Controller {
	t.Helper()
	_, cases := vendorSamples(t, "tw_cli")
	var in []Input
	for _, f := range cases[name] {
		in = append(in, vendorInput(t, f))
	}
	r, err := ParseTWCLI(in)
	if err != nil {
		t.Fatalf("ParseTWCLI(%s): %v", name, err)
	}
	return r.Controllers[0]
}

func TestParseTWCLIDetails(t *testing.T) {
	t.Run("rebuild target", func(t *testing.T) {
		c := twCase(t, "rebuilding-raid1-drive-degraded")
		u0 := vendorArray(c, "u0")
		if u0 == nil || u0.Level != "RAID-1" || u0.Progress != 98 || u0.Activity != "rebuild" || u0.Verdict != Rebuilding {
			t.Fatalf("u0 = %+v", u0)
		}
		p0 := vendorDisk(u0.Disks, "p0")
		if p0 == nil || p0.Role != "rebuild-target" || p0.Verdict != Rebuilding || p0.State != "DEGRADED" {
			t.Errorf("p0 = %+v", p0)
		}
		if c.Model != "9650SE-2LP" {
			t.Errorf("model %q", c.Model)
		}
	})
	t.Run("verify and paused spares", func(t *testing.T) {
		c := twCase(t, "verifying-raid10-verify-paused-spares")
		u0 := vendorArray(c, "u0")
		if u0 == nil || u0.Activity != "verify" || u0.Progress != 25 || u0.Verdict != OK || len(u0.Disks) != 10 {
			t.Errorf("u0 = %+v", u0)
		}
		u1 := vendorArray(c, "u1")
		if u1 == nil || u1.Level != "SPARE" || u1.Verdict != OK || len(u1.Disks) != 1 || u1.Disks[0].Role != "spare" {
			t.Errorf("u1 = %+v", u1)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("warnings %+v", c.Warnings)
		}
	})
	t.Run("old 8506 initializing", func(t *testing.T) {
		c := twCase(t, "initializing-8506-old-format")
		u0, u2 := vendorArray(c, "u0"), vendorArray(c, "u2")
		if u0 == nil || u0.Activity != "initialize" || u0.Progress != 63 || u0.Verdict != Rebuilding {
			t.Errorf("u0 = %+v", u0)
		}
		if u2 == nil || u2.Level != "RAID-5" || u2.Verdict != Rebuilding {
			t.Errorf("u2 = %+v", u2)
		}
	})
	t.Run("enclosure alarm and free drives", func(t *testing.T) {
		c := twCase(t, "enclosure-alarm-spares-3units")
		if len(c.Arrays) != 3 || len(vendorArray(c, "u1").Disks) != 8 {
			t.Errorf("arrays %+v", c.Arrays)
		}
		p8 := vendorDisk(c.Disks, "p8")
		if p8 == nil || p8.Role != "unconfigured" || p8.Model != "SEAGATE ST3146855SS" || p8.Size != "136.73 GB" {
			t.Errorf("p8 = %+v", p8)
		}
		encl := 0
		for _, w := range c.Warnings {
			if w.Component == "enclosure" {
				encl++
			}
		}
		if encl != 4 {
			t.Errorf("enclosure warnings %+v, want 4 (two ALARM-ACTIVATED, two alarms)", c.Warnings)
		}
	})
	t.Run("old drive layout", func(t *testing.T) {
		c := twCase(t, "healthy-9650se-spare")
		if len(c.Disks) != 1 || c.Disks[0].ID != "p12" || len(vendorArray(c, "u0").Disks) != 15 {
			t.Errorf("loose disks %+v", c.Disks)
		}
	})
}

// twTable builds a tw_cli table with its dashes and closing blank line.
func twTable(header string, rows ...string) string {
	return "\n" + header + "\n" + strings.Repeat("-", 72) + "\n" + strings.Join(rows, "\n") + "\n\n"
}

const (
	twCtlHeader  = "Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU"
	twUnitHeader = "Unit  UnitType  Status         %RCmpl  %V/I/M  Stripe  Size(GB)  Cache  AVrfy"
	twPortHeader = "Port   Status           Unit   Size        Blocks        Serial"
	twBBUHeader  = "Name  OnlineState  BBUReady  Status    Volt     Temp     Hours  LastCapTest"
)

func TestParseTWCLIHandMade(t *testing.T) {
	unit := func(status string) string {
		return twTable(twUnitHeader, "u0    RAID-5    "+status+"       -       -       64K     1862.59   ON     OFF")
	}
	port := func(p, status, u string) string {
		return p + "     " + status + "               " + u + "     931.51 GB   1953525168    S246JDWZ134931"
	}
	for _, tc := range []struct {
		name     string
		in       []Input
		wantErr  bool
		want     Verdict
		warn     bool
		ctls     []string
		check    func(t *testing.T, r *Result)
		contains string // in the first controller's reason
	}{
		{name: "no inputs", wantErr: true},
		{name: "empty", in: []Input{{Name: "x"}}, wantErr: true},
		{name: "garbage", in: []Input{{Name: "x", Data: []byte("lorem ipsum\ndolor\n")}}, wantErr: true},
		{name: "cli error", in: []Input{{Name: "x", Data: []byte("Error: (CLI:003) Specified controller does not exist.\n")}}, wantErr: true},
		{name: "controller header with no rows", in: []Input{{Name: "x", Data: []byte(twTable(twCtlHeader))}}, wantErr: true},
		{name: "unit header with no rows", in: []Input{{Name: "x", Data: []byte(twTable(twUnitHeader))}}, wantErr: true},
		{name: "header without dashes", in: []Input{{Name: "x", Data: []byte(twUnitHeader + "\nu0 RAID-1 OK - - - 1 ON OFF\n\n")}}, wantErr: true},
		{name: "unknown unit state", in: []Input{{Name: "x", Data: []byte(unit("ERROR"))}}, want: Unknown, contains: "unrecognised state"},
		{name: "unit UNKNOWN", in: []Input{{Name: "x", Data: []byte(unit("UNKNOWN"))}}, want: Unknown},
		{name: "degraded unit", in: []Input{{Name: "x", Data: []byte(unit("DEGRADED"))}}, want: Degraded},
		{name: "inoperable unit", in: []Input{{Name: "x", Data: []byte(unit("INOPERABLE"))}}, want: Failed},
		{name: "paused rebuild", in: []Input{{Name: "x", Data: []byte(unit("REBUILD-PAUSED"))}}, want: Rebuilding},
		{name: "migrating", in: []Input{{Name: "x", Data: []byte(unit("MIGRATING"))}}, want: Rebuilding},
		{name: "recovery", in: []Input{{Name: "x", Data: []byte(unit("RECOVERY"))}}, want: Rebuilding},
		{name: "init paused", in: []Input{{Name: "x", Data: []byte(unit("INIT-PAUSED"))}}, want: Rebuilding},
		{name: "failed spare unit is a failed disk", in: []Input{{Name: "x", Data: []byte(twTable(twUnitHeader, "u1    SPARE     INOPERABLE     -       -       -       298.082   -      ON"))}}, want: Degraded},
		{name: "port degraded on a degraded unit", in: []Input{{Name: "x", Data: []byte(unit("DEGRADED") + twTable(twPortHeader, port("p0", "DEGRADED", "u0"), port("p1", "OK", "u0")))}}, want: Degraded,
			check: func(t *testing.T, r *Result) {
				if p0 := vendorDisk(vendorArray(r.Controllers[0], "u0").Disks, "p0"); p0.Verdict != Degraded || p0.Role != "member" {
					t.Errorf("p0 = %+v", p0)
				}
			}},
		{name: "failed disk beside a rebuild", in: []Input{{Name: "x", Data: []byte(unit("REBUILDING") + twTable(twPortHeader, port("p0", "DEGRADED", "u0"), port("p1", "DEVICE-ERROR", "u0")))}}, want: Degraded},
		{name: "unknown port state", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "ERROR", "u0")))}}, want: Unknown},
		{name: "missing member", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "OK", "u0"), "p1     NOT-PRESENT      u0     -           -             -"))}}, want: Degraded},
		{name: "empty port ignored", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "OK", "u0"), "p1     NOT-PRESENT      -      -           -             -"))}}, want: OK,
			check: func(t *testing.T, r *Result) {
				if n := len(vendorArray(r.Controllers[0], "u0").Disks) + len(r.Controllers[0].Disks); n != 1 {
					t.Errorf("%d disks, want 1", n)
				}
			}},
		{name: "degraded free drive", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "OK", "u0"), port("p1", "ECC-ERROR", "-")))}}, want: Degraded},
		{name: "smart failure is a warning", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "SMART-FAILURE", "u0")))}}, want: OK, warn: true},
		{name: "weak battery", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           Yes       WeakBat   OK       OK       0      xx-xxx-xxxx"))}}, want: OK, warn: true},
		{name: "battery learn cycle", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           No        Testing   OK       OK       0      xx-xxx-xxxx"))}}, want: OK},
		{name: "battery too hot", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           Yes       OK        OK       HIGH     72     07-May-2022"))}}, want: OK, warn: true},
		{name: "unknown battery word", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           Yes       Exploded  OK       OK       72     07-May-2022"))}}, want: Unknown},
		{name: "controller table BBU fault", in: []Input{{Name: "x", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        16       1       0       5       1      Fault"))}}, want: OK, warn: true},
		{name: "controller row short", in: []Input{{Name: "x", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        16       1"))}}, want: Unknown},
		{name: "two controllers", in: []Input{{Name: "show", Data: []byte(twTable(twCtlHeader,
			"c0    9650SE-16ML  16        16       1       0       5       1      OK",
			"c1    9750-4i      4         4        1       1       5       1      -"))}}, want: Rebuilding, ctls: []string{"c0", "c1"}},
		{name: "controller from the input name", in: []Input{
			{Name: "show", Data: []byte(twTable(twCtlHeader,
				"c0    9650SE-16ML  16        16       1       0       5       1      OK",
				"c1    9750-4i      4         2        1       0       5       1      -"))},
			{Name: "tw_cli info c1 unitstatus", Data: []byte(unit("DEGRADED"))},
			{Name: "tw_cli info c0 unitstatus", Data: []byte(unit("OK"))},
		}, want: Degraded, ctls: []string{"c0", "c1"},
			check: func(t *testing.T, r *Result) {
				if r.Controllers[0].Verdict != OK || r.Controllers[1].Verdict != Degraded {
					t.Errorf("c0 %v, c1 %v; want ok, degraded", r.Controllers[0].Verdict, r.Controllers[1].Verdict)
				}
			}},
		{name: "unit count mismatch", in: []Input{
			{Name: "show", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        16       2       0       5       1      OK"))},
			{Name: "info c0 unitstatus", Data: []byte(unit("OK"))},
		}, want: Unknown, contains: "lists 2 units"},
		{name: "c0 show: all tables in one output", in: []Input{{Name: "tw_cli /c0 show", Data: []byte(
			unit("OK") + twTable(twPortHeader, port("p0", "OK", "u0"), port("p1", "OK", "u0")) +
				twTable(twBBUHeader, "bbu   On           Yes       OK        OK       OK       255    07-May-2022"))}}, want: OK,
			check: func(t *testing.T, r *Result) {
				if len(vendorArray(r.Controllers[0], "u0").Disks) != 2 {
					t.Errorf("u0 disks %+v", vendorArray(r.Controllers[0], "u0").Disks)
				}
			}},
		{name: "sub-units of info c0 u0", in: []Input{{Name: "x", Data: []byte(twTable("Unit     UnitType  Status         %RCmpl  %V/I/M  Port  Stripe  Size(GB)",
			"u0       RAID-1    DEGRADED       -       -       -     -       465.761",
			"u0-0     DISK      OK             -       -       p0    -       465.761",
			"u0-1     DISK      DEGRADED       -       -       p1    -       465.761"))}}, want: Degraded},
		// Saved outputs lose the blank line after the last table, and the
		// final newline: the table is complete when its last row is.
		{name: "unit table without its closing blank line", in: []Input{{Name: "x", Data: []byte(strings.TrimRight(unit("OK"), "\n") + "\n")}}, want: OK},
		{name: "unit table without blank line or newline", in: []Input{{Name: "x", Data: []byte(strings.TrimRight(unit("OK"), "\n"))}}, want: OK},
		{name: "degraded unit table without blank line", in: []Input{{Name: "x", Data: []byte(strings.TrimRight(unit("DEGRADED"), "\n"))}}, want: Degraded},
		{name: "unit row cut short at the end", in: []Input{{Name: "x", Data: []byte(strings.TrimRight(unit("OK"), "\n")[:len(strings.TrimRight(unit("OK"), "\n"))-12])}}, want: Unknown, contains: "truncated"},
		{name: "drive row cut in its size at the end", in: []Input{{Name: "x", Data: []byte(strings.TrimRight(twTable(twPortHeader, port("p0", "OK", "u0"), "p1     OK               u0     931.51"), "\n"))}}, want: Unknown, contains: "truncated"},
		{name: "drive table of a case cut between rows", in: []Input{
			{Name: "show", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        2        1       0       5       1      OK"))},
			{Name: "info c0 drivestatus", Data: []byte(strings.TrimRight(twTable(twPortHeader, port("p0", "OK", "u0")), "\n"))},
		}, want: Unknown, contains: "lists 2 drives"},
		{name: "crlf and no final newline", in: []Input{{Name: "x", Data: []byte(strings.ReplaceAll(strings.TrimRight(unit("REBUILDING")+twTable(twPortHeader, port("p0", "DEGRADED", "u0"), port("p1", "OK", "u0")), "\n"), "\n", "\r\n"))}}, want: Rebuilding},
		{name: "unreadable unit row", in: []Input{{Name: "x", Data: []byte(twTable(twUnitHeader, "u0 RAID-5 OK"))}}, want: Unknown},
		{name: "enclosure fan failed", in: []Input{{Name: "/c0/e0 show all", Data: []byte("/c0/e0 Vendor = X\n" +
			twTable("Encl        Status", "/c0/e0      OK") + twTable("Fan         Status          State   Step   RPM     Identify", "fan0        FAILED          OFF     0      0       N/A") +
			twTable("Alarm     Status          State     Audibility", "alm0      OK              OFF       UNMUTE"))}}, want: OK, warn: true},
		{name: "enclosure without alarm table", in: []Input{{Name: "x", Data: []byte("/c0/e0 Vendor = X\n" + twTable("Encl        Status", "/c0/e0      OK"))}}, want: Unknown},
		{name: "unknown enclosure status", in: []Input{{Name: "x", Data: []byte("/c0/e0 Vendor = X\n" + twTable("Encl        Status", "/c0/e0      WEIRD") +
			twTable("Alarm     Status          State     Audibility", "alm0      OK              OFF       UNMUTE"))}}, want: Unknown},
		{name: "old /e0 enclosure goes to the named controller", in: []Input{{Name: "tw_cli /c1/e0 show all", Data: []byte("/e0 Vendor = X\n" + twTable("Encl        Status", "/e0      ALARM-ACTIVATED") +
			twTable("Alarm     Status          State     Audibility", "alm0      OK              OFF       UNMUTE"))}}, want: OK, warn: true, ctls: []string{"c1"}},
		// N/A, "-", UNKNOWN and empty cells report nothing: never an
		// alert, never evidence that a state is fine.
		{name: "controller table BBU N/A", in: []Input{{Name: "x", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        16       1       0       5       1      N/A"))}}, want: OK},
		{name: "battery voltage and temperature N/A", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           Yes       OK        N/A      N/A      255    07-May-2022"))}}, want: OK},
		{name: "battery status N/A is not fine", in: []Input{{Name: "x", Data: []byte(twTable(twBBUHeader, "bbu   On           N/A       N/A       N/A      N/A      N/A    N/A"))}}, want: OK, warn: true},
		{name: "unit state N/A alone", in: []Input{{Name: "x", Data: []byte(unit("N/A"))}}, want: Unknown, contains: "no state reported"},
		{name: "drive state dash alone", in: []Input{{Name: "x", Data: []byte(twTable(twPortHeader, port("p0", "-", "u0")))}}, want: Unknown},
		{name: "unit N/A in one input, OK in another", in: []Input{{Name: "a", Data: []byte(unit("OK"))}, {Name: "b", Data: []byte(unit("N/A"))}}, want: OK},
		{name: "unit N/A first, DEGRADED next", in: []Input{{Name: "a", Data: []byte(unit("N/A"))}, {Name: "b", Data: []byte(unit("DEGRADED"))}}, want: Degraded},
		{name: "drive N/A in one input, OK in another", in: []Input{
			{Name: "a", Data: []byte(twTable(twPortHeader, port("p0", "N/A", "u0")))},
			{Name: "b", Data: []byte(twTable(twPortHeader, port("p0", "OK", "u0")))}}, want: OK},
		{name: "drive OK in one input, DEVICE-ERROR in the next", in: []Input{
			{Name: "a", Data: []byte(twTable(twPortHeader, port("p0", "OK", "u0")))},
			{Name: "b", Data: []byte(twTable(twPortHeader, port("p0", "DEVICE-ERROR", "u0")))}}, want: Degraded},
		{name: "enclosure status and alarm N/A", in: []Input{{Name: "/c0/e0 show all", Data: []byte("/c0/e0 Vendor = X\n" +
			twTable("Encl        Status", "/c0/e0      N/A") + twTable("Fan         Status          State   Step   RPM     Identify", "fan0        UNKNOWN         N/A     N/A    N/A     N/A") +
			twTable("Alarm     Status          State     Audibility", "alm0      N/A             N/A       N/A"))}}, want: OK},
		{name: "cut in a header after a table", in: []Input{{Name: "x", Data: []byte(twTable(twCtlHeader, "c0    9650SE-16ML  16        16       1       0       5       1      OK") + "Enclosure     Slo")}}, want: Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseTWCLI(tc.in)
			if tc.wantErr {
				var pe *ParseError
				if !errors.Is(err, ErrParse) || !errors.As(err, &pe) || pe.Tool != ToolTWCLI {
					t.Fatalf("err = %v, want a *ParseError of tool tw_cli", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTWCLI: %v", err)
			}
			vendorCheckResult(t, r)
			if r.Verdict != tc.want || r.HasWarnings() != tc.warn {
				t.Errorf("verdict %v warnings %v, want %v warnings %v (reason %q, warnings %+v)",
					r.Verdict, r.HasWarnings(), tc.want, tc.warn, r.Controllers[0].Reason, r.Controllers[0].Warnings)
			}
			if tc.ctls != nil {
				var ids []string
				for _, c := range r.Controllers {
					ids = append(ids, c.ID)
				}
				if strings.Join(ids, ",") != strings.Join(tc.ctls, ",") {
					t.Errorf("controllers %v, want %v", ids, tc.ctls)
				}
			}
			if tc.contains != "" && !strings.Contains(r.Controllers[0].Reason+" "+vendorReasons(r), tc.contains) {
				t.Errorf("reasons %q lack %q", r.Controllers[0].Reason+" "+vendorReasons(r), tc.contains)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// vendorReasons joins the reasons of every array of r.
func vendorReasons(r *Result) string {
	var s []string
	for _, c := range r.Controllers {
		for _, a := range c.Arrays {
			s = append(s, a.Reason)
		}
	}
	return strings.Join(s, "; ")
}

// TestParseTWCLITruncated cuts every sample, alone and within its case, at
// every byte: a cut output is never all clear before its first table is
// complete, unless the cut leaves a last row with every column of its
// header (twCutInLastColumn): without a closing blank line, such a cut
// cannot be told from a saved output that lost its blank line.
func TestParseTWCLITruncated(t *testing.T) {
	_, cases := vendorSamples(t, "tw_cli")
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			var full []Input
			for _, f := range files {
				full = append(full, vendorInput(t, f))
			}
			for i, inp := range full {
				done := twCompleteAt(inp.Data)
				bad := 0
				for cut := 0; cut < len(inp.Data) && bad < 3; cut++ {
					one := Input{Name: inp.Name, Data: inp.Data[:cut]}
					r, err := ParseTWCLI([]Input{one})
					if err == nil {
						vendorCheckResult(t, r)
					}
					benign := twCutInLastColumn(inp.Data, cut)
					if vendorAllClear(r, err) && cut < done && !benign {
						t.Errorf("%s cut at %d of %d: all clear", inp.Name, cut, len(inp.Data))
						bad++
					}
					together := append([]Input{}, full...)
					together[i] = one
					r, err = ParseTWCLI(together)
					if vendorAllClear(r, err) && cut < done && !benign {
						t.Errorf("case with %s cut at %d: all clear", inp.Name, cut)
						bad++
					}
				}
			}
		})
	}
}

// twCutInLastColumn reports whether data cut at cut ends in a table row
// (right after a ---- rule and a header, or other rows) that still has a
// value for every column of its header, a drive size ("931.51 GB")
// counting for two words.
func twCutInLastColumn(data []byte, cut int) bool {
	kept := strings.TrimRight(string(data[:cut]), " \t\r\n")
	lines := strings.Split(strings.ReplaceAll(kept, "\r\n", "\n"), "\n")
	last := len(lines) - 1
	// Find the header: the line above the rule above the block of rows.
	i := last
	for i > 0 && strings.TrimSpace(lines[i]) != "" && !vendorIsRule(lines[i], '-') {
		i--
	}
	if i == last || i < 1 || !vendorIsRule(lines[i], '-') {
		return false
	}
	header := strings.Fields(lines[i-1])
	row := strings.Fields(lines[last])
	need := len(header)
	if (header[0] == "Port" || header[0] == "VPort") && len(row) > 3 && row[3] != "-" {
		need++
	}
	return len(row) >= need
}

// twCompleteAt is where the first table of a tw_cli output is complete and
// shown to have ended: past the blank line after its rows, or at the end
// of the last row when no blank line follows.
func twCompleteAt(data []byte) int {
	off, ruled, rows := 0, false, false
	for _, line := range strings.SplitAfter(string(data), "\n") {
		off += len(line)
		switch {
		case line == "":
			// after the final newline
		case !ruled:
			ruled = vendorIsRule(line, '-')
		case strings.TrimSpace(line) != "":
			rows = true
		case rows:
			return off
		}
	}
	return len(bytes.TrimRight(data, " \t\r\n"))
}

func FuzzParseTWCLI(f *testing.F) {
	files, _ := vendorSamples(f, "tw_cli")
	for _, p := range files {
		f.Add(vendorInput(f, p).Data)
	}
	f.Add([]byte(twTable(twCtlHeader, "c0    9650SE-2LP   2         2        1       1       1       1      -") + "\x00" +
		twTable(twUnitHeader, "u0    RAID-1    REBUILDING     98%     -       -       465.651   OFF    OFF") + "\x00" +
		twTable(twPortHeader, "p0     DEGRADED         u0     465.76 GB   976773168     9QM1SHZY")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in []Input
		for i, part := range bytes.SplitN(data, []byte{0}, 4) {
			in = append(in, Input{Name: "fuzz c" + string(rune('0'+i)), Data: part})
		}
		r, err := ParseTWCLI(in)
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
