package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var storCases = []struct {
	sampleCase
	dir  string
	tool string
}{
	{sampleCase{"healthy-raid1-raid10-cachevault.c0-show-all", []string{"healthy-raid1-raid10-cachevault.c0-show-all.txt"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"degraded-vd-dgrd-pd-offln.c0-show-all", []string{"degraded-vd-dgrd-pd-offln.c0-show-all.txt"}, Degraded, false}, "storcli", "storcli"},
	{sampleCase{"failed-vd-ofln-two-pd-offln.c0-show-all", []string{"failed-vd-ofln-two-pd-offln.c0-show-all.txt"}, Failed, false}, "storcli", "storcli"},
	// c2's "Needs Attention" is a controller warning on top of its Dgrd VD.
	{sampleCase{"three-controllers-one-degraded.call-show-all", []string{"three-controllers-one-degraded.call-show-all.txt"}, Degraded, true}, "storcli", "storcli"},
	{sampleCase{"hba-mpt3sas-no-raid.c0-show-all", []string{"hba-mpt3sas-no-raid.c0-show-all.txt"}, OK, false}, "storcli", "storcli"},
	// Constructed (see testdata/storcli/README.md): an IT-mode HBA whose
	// JBOD drives print N/A for every counter and the S.M.A.R.T. flag.
	{sampleCase{"constructed-it-mode-hba-sas9300-jbod-na.c0-show-all", []string{"constructed-it-mode-hba-sas9300-jbod-na.c0-show-all.txt"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"constructed-it-mode-hba-sas9300-jbod-na.c0-show-all-J", []string{"constructed-it-mode-hba-sas9300-jbod-na.c0-show-all-J.json"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"constructed-it-mode-hba-sas9300-jbod-na", []string{"constructed-it-mode-hba-sas9300-jbod-na.c0-show-all.txt", "constructed-it-mode-hba-sas9300-jbod-na.c0-show-all-J.json"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"healthy-raid6-cachevault.call-show-all-J", []string{"healthy-raid6-cachevault.call-show-all-J.json"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"healthy-raid6-cachevault.call-eall-sall-show-all-J", []string{"healthy-raid6-cachevault.call-eall-sall-show-all-J.json"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"healthy-raid6-cachevault", []string{"healthy-raid6-cachevault.call-eall-sall-show-all-J.json", "healthy-raid6-cachevault.call-show-all-J.json"}, OK, false}, "storcli", "storcli"},
	{sampleCase{"healthy-raid5-ugood-bbu.perccli-call-show-all-J", []string{"healthy-raid5-ugood-bbu.perccli-call-show-all-J.json"}, OK, false}, "perccli", "perccli"},
	// perccli2 prints nothing that tells it from storcli2.
	{sampleCase{"healthy-raid6.perccli2-call-vall-show-all-J", []string{"healthy-raid6.perccli2-call-vall-show-all-J.json"}, OK, false}, "perccli", "storcli"},
}

func TestParseStorcliSamples(t *testing.T) {
	for _, tc := range storCases {
		t.Run(tc.golden, func(t *testing.T) {
			in := megaReadInputs(t, tc.dir, tc.files...)
			r, err := ParseStorcli(in)
			if err != nil {
				t.Fatalf("ParseStorcli: %v", err)
			}
			if r.Tool != tc.tool {
				t.Errorf("Tool = %q, want %q", r.Tool, tc.tool)
			}
			if r.Verdict != tc.want {
				t.Errorf("verdict = %v, want %v", r.Verdict, tc.want)
			}
			if r.HasWarnings() != tc.warn {
				t.Errorf("HasWarnings = %v, want %v", r.HasWarnings(), tc.warn)
			}
			megaGolden(t, tc.dir, tc.golden, r)
		})
	}
}

func TestParseStorcliDetails(t *testing.T) {
	parse := func(t *testing.T, dir string, files ...string) *Result {
		t.Helper()
		r, err := ParseStorcli(megaReadInputs(t, dir, files...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("edited-degraded-not-trusting-topology", func(t *testing.T) {
		r := parse(t, "storcli", "degraded-vd-dgrd-pd-offln.c0-show-all.txt")
		a := megaArray(t, r, "c0", "v1")
		d := megaDisk(a.Disks, "24:10")
		if a.Verdict != Degraded || a.Level != "RAID10" || d == nil || d.Verdict != Degraded || d.State != "Offln" {
			t.Errorf("v1 = %v %s, disk 24:10 = %+v; want degraded RAID10 with Offln 24:10", a.Verdict, a.Level, d)
		}
		if c := r.Controllers[0]; c.Status != "Failure" || c.Reason == "" {
			t.Errorf("controller status %q reason %q, want Failure with a reason", c.Status, c.Reason)
		}
	})
	t.Run("edited-offline", func(t *testing.T) {
		r := parse(t, "storcli", "failed-vd-ofln-two-pd-offln.c0-show-all.txt")
		a := megaArray(t, r, "c0", "v1")
		if a.Verdict != Failed || a.Missing != 2 || a.Members != 14 {
			t.Errorf("v1 = %v, missing %d of %d; want failed, 2 of 14", a.Verdict, a.Missing, a.Members)
		}
		if v := megaArray(t, r, "c0", "v0").Verdict; v != OK {
			t.Errorf("v0 = %v, want ok", v)
		}
	})
	t.Run("three-controllers", func(t *testing.T) {
		r := parse(t, "storcli", "three-controllers-one-degraded.call-show-all.txt")
		if len(r.Controllers) != 3 {
			t.Fatalf("%d controllers, want 3", len(r.Controllers))
		}
		want := []Verdict{OK, OK, Degraded}
		for i, c := range r.Controllers {
			if c.ID != fmt.Sprintf("c%d", i) || c.Verdict != want[i] {
				t.Errorf("controller %d = %s %v, want c%d %v (%s)", i, c.ID, c.Verdict, i, want[i], c.Reason)
			}
		}
		a := megaArray(t, r, "c2", "v0")
		if d := megaDisk(a.Disks, "88:9"); d == nil || d.Verdict != Degraded || a.Name != "VD_0" {
			t.Errorf("c2/v0 %q disk 88:9 = %+v, want VD_0 with degraded 88:9", a.Name, d)
		}
		if !megaHasWarning(r, "controller", "Needs Attention") {
			t.Errorf("no controller warning")
		}
	})
	t.Run("hba", func(t *testing.T) {
		r := parse(t, "storcli", "hba-mpt3sas-no-raid.c0-show-all.txt")
		c := r.Controllers[0]
		if c.Verdict != OK || len(c.Arrays) != 0 || len(c.Disks) != 16 || c.Status != "OK" {
			t.Errorf("HBA = %v, %d arrays, %d disks, status %q; want ok, 0, 16, OK", c.Verdict, len(c.Arrays), len(c.Disks), c.Status)
		}
	})
	t.Run("json-with-drive-details", func(t *testing.T) {
		r := parse(t, "storcli", "healthy-raid6-cachevault.call-show-all-J.json", "healthy-raid6-cachevault.call-eall-sall-show-all-J.json")
		a := megaArray(t, r, "c0", "v0")
		if a.Level != "RAID6" || len(a.Disks) != 4 || a.Members != 4 || len(r.Controllers[0].Disks) != 0 {
			t.Errorf("v0 = %s with %d disks (%d members), %d loose; want RAID6, 4, 4, 0", a.Level, len(a.Disks), a.Members, len(r.Controllers[0].Disks))
		}
	})
	t.Run("perccli-239", func(t *testing.T) {
		r := parse(t, "perccli", "healthy-raid5-ugood-bbu.perccli-call-show-all-J.json")
		a := megaArray(t, r, "c0", "v239")
		if a.Name != "RAID5" || len(a.Disks) != 7 {
			t.Errorf("v239 = %q with %d disks, want RAID5 with 7", a.Name, len(a.Disks))
		}
		if d := megaDisk(r.Controllers[0].Disks, "252:7"); d == nil || d.State != "UGood" || d.Verdict != OK {
			t.Errorf("loose disk = %+v, want UGood ok", r.Controllers[0].Disks)
		}
	})
	t.Run("perccli2", func(t *testing.T) {
		r := parse(t, "perccli", "healthy-raid6.perccli2-call-vall-show-all-J.json")
		a := megaArray(t, r, "c0", "v1")
		if len(a.Disks) != 14 || a.Members != 14 || a.Disks[0].State != "Online" || a.Disks[0].Role != "member" {
			t.Errorf("v1 = %d disks of %d, first %+v; want 14 Online members", len(a.Disks), a.Members, a.Disks[0])
		}
	})
}

// storJSON builds a one-controller storcli JSON document.
func storJSON(status string, rd map[string]any) string {
	doc := map[string]any{"Controllers": []any{map[string]any{
		"Command Status": map[string]any{"Controller": 0, "Status": status, "Description": "None"},
		"Response Data":  rd,
	}}}
	b, _ := json.MarshalIndent(doc, "", "\t")
	return string(b) + "\n"
}

func storJSONRD(vdState string, pds ...string) map[string]any {
	var list []any
	for i, s := range pds {
		list = append(list, map[string]any{"EID:Slt": fmt.Sprintf("8:%d", i), "DID": i, "State": s, "DG": 0, "Size": "1.0 TB", "Model": "X"})
	}
	return map[string]any{
		"Basics":          map[string]any{"Controller": 0, "Model": "Test"},
		"Status":          map[string]any{"Controller Status": "Optimal"},
		"Virtual Drives":  1,
		"VD LIST":         []any{map[string]any{"DG/VD": "0/0", "TYPE": "RAID1", "State": vdState, "Size": "1.0 TB", "Name": ""}},
		"Physical Drives": len(pds),
		"PD LIST":         list,
	}
}

// storText builds a one-controller text show all with one RAID1 VD.
func storText(ctlStatus, topoState, vdState string, pds ...string) string {
	const rule = "-------------------------------------------\n"
	var b strings.Builder
	b.WriteString("Generating detailed summary of the adapter, it may take a while to complete.\n\n")
	b.WriteString("Controller = 0\nStatus = Success\nDescription = None\n\nBasics :\n======\nController = 0\nModel = Test RAID\n\n")
	b.WriteString("Version :\n=======\nDriver Name = megaraid_sas\n\nStatus :\n======\nController Status = " + ctlStatus + "\n\n")
	b.WriteString("Supported VD Operations :\n=======================\nRead Policy = Yes\n\nHwCfg :\n=====\nBBU = Absent\n\n")
	b.WriteString("Scheduled Tasks :\n===============\nOEMID = LSI\n\nDrive Groups = 1\n\nTOPOLOGY :\n========\n\n" + rule)
	b.WriteString("DG Arr Row EID:Slot DID Type  State BT Size PDC PI SED DS3 FSpace\n" + rule)
	b.WriteString(" 0 -   -   -        -   RAID1 " + topoState + " N 1.0 TB dflt N N dflt N\n")
	for i := range pds {
		fmt.Fprintf(&b, " 0 0   %d   8:%d      %d   DRIVE Onln N 1.0 TB dflt N N dflt -\n", i, i, i)
	}
	b.WriteString(rule + "\nVirtual Drives = 1\n\nVD LIST :\n=======\n\n" + rule)
	b.WriteString("DG/VD TYPE  State Access Consist Cache sCC Size Name\n" + rule)
	b.WriteString("0/0   RAID1 " + vdState + " RW Yes RWBD - 1.0 TB\n" + rule)
	fmt.Fprintf(&b, "\nPhysical Drives = %d\n\nPD LIST :\n=======\n\n%s", len(pds), rule)
	b.WriteString("EID:Slt DID State DG Size Intf Med SED PI SeSz Model Sp\n" + rule)
	for i, s := range pds {
		fmt.Fprintf(&b, "8:%d %d %s 0 1.0 TB SAS HDD N N 512B X U\n", i, i, s)
	}
	b.WriteString(rule + "\n")
	return b.String()
}

func TestParseStorcliHandMade(t *testing.T) {
	rd := func(f func(map[string]any)) map[string]any {
		m := storJSONRD("Optl", "Onln", "Onln")
		f(m)
		return m
	}
	details := func(pfc int, smart string) string {
		return storJSON("Success", map[string]any{
			"Drive /c0/e8/s0": []any{map[string]any{"EID:Slt": "8:0", "State": "Onln", "DG": 0}},
			"Drive /c0/e8/s0 - Detailed Information": map[string]any{
				"Drive /c0/e8/s0 State": map[string]any{"Predictive Failure Count": pfc, "S.M.A.R.T alert flagged by drive": smart},
			},
		})
	}
	tests := []struct {
		name string
		in   string
		want Verdict
		warn string
	}{
		{"text-healthy", storText("Optimal", "Optl", "Optl", "Onln", "Onln"), OK, ""},
		{"text-vd-dgrd-topology-optl", storText("Optimal", "Optl", "Dgrd", "Onln", "Onln"), Degraded, ""},
		{"text-vd-optl-topology-dgrd", storText("Optimal", "Dgrd", "Optl", "Onln", "Onln"), Degraded, ""},
		{"text-rebuild", storText("Optimal", "Dgrd", "Dgrd", "Onln", "Rbld"), Rebuilding, ""},
		{"text-rebuild-and-failed", storText("Optimal", "Dgrd", "Dgrd", "Onln", "Rbld", "UBad"), Degraded, ""},
		{"text-unknown-vd-state", storText("Optimal", "Optl", "ERROR", "Onln", "Onln"), Unknown, ""},
		{"text-unknown-pd-state", storText("Optimal", "Optl", "Optl", "Onln", "Weird"), Unknown, ""},
		{"text-unknown-controller-status", storText("Sleepy", "Optl", "Optl", "Onln", "Onln"), Unknown, ""},
		{"text-controller-failure", storText("Failure", "Optl", "Optl", "Onln", "Onln"), Degraded, ""},
		{"text-needs-attention-warns", storText("Needs Attention", "Optl", "Optl", "Onln", "Onln"), OK, "controller"},
		{"text-spares-jbod-ok", storText("OK", "Optl", "Optl", "Onln", "Onln", "GHS", "DHS", "JBOD", "UGood"), OK, ""},
		{"text-ofln", storText("Optimal", "OfLn", "OfLn", "Offln", "Offln"), Failed, ""},
		{"text-missing-vd-rows", strings.Replace(storText("Optimal", "Optl", "Optl", "Onln", "Onln"), "Virtual Drives = 1", "Virtual Drives = 2", 1), Unknown, ""},
		{"text-vd-header-no-rows", strings.Replace(storText("Optimal", "Optl", "Optl", "Onln", "Onln"), "0/0   RAID1 Optl RW Yes RWBD - 1.0 TB\n", "", 1), Unknown, ""},
		{"text-topology-missing-drive", strings.Replace(storText("Optimal", "Dgrd", "Dgrd", "Onln", "Onln"),
			" 0 0   1   8:1      1   DRIVE Onln", " 0 0   1   -        -   DRIVE Msng", 1), Degraded, ""},
		{"text-cachevault-degraded", storText("Optimal", "Optl", "Optl", "Onln") + "Cachevault_Info :\n===\n\n-----\nModel State Temp\n-----\nCVPM02 Degraded 37C\n-----\n", OK, "bbu"},
		{"text-foreign-ugood", strings.Replace(storText("Optimal", "Optl", "Optl", "Onln", "Onln", "UGood"), "8:2 2 UGood 0", "8:2 2 UGood F", 1), OK, "disk"},
		{"text-prompt-and-crlf", "root@h# storcli64 /c0 show all\r\n" + strings.ReplaceAll(storText("Optimal", "Optl", "Optl", "Onln", "Onln"), "\n", "\r\n"), OK, ""},
		{"json-healthy", storJSON("Success", storJSONRD("Optl", "Onln", "Onln")), OK, ""},
		{"json-pdgd-rbld", storJSON("Success", storJSONRD("Pdgd", "Onln", "Onln", "Rbld")), Rebuilding, ""},
		{"json-dgrd-failed", storJSON("Success", storJSONRD("Dgrd", "Onln", "Failed")), Degraded, ""},
		{"json-rec", storJSON("Success", storJSONRD("Rec", "Onln", "Onln")), Rebuilding, ""},
		{"json-unknown-state", storJSON("Success", storJSONRD("ERROR", "Onln", "Onln")), Unknown, ""},
		{"json-count-mismatch", storJSON("Success", rd(func(m map[string]any) { m["Virtual Drives"] = 2 })), Unknown, ""},
		{"json-failure-no-data", storJSON("Failure", map[string]any{"Description": "controller not found"}), Unknown, ""},
		{"json-predictive", details(3, "No"), OK, "disk"},
		{"json-smart", details(0, "Yes"), OK, "disk"},
		{"json-bbu-present-no-state", storJSON("Success", rd(func(m map[string]any) { m["HwCfg"] = map[string]any{"BBU": "Present"} })), Unknown, ""},
		{"json-bbu-failed", storJSON("Success", rd(func(m map[string]any) {
			m["BBU_Info"] = []any{map[string]any{"Model": "BBU", "State": "Failed"}}
		})), OK, "bbu"},
		{"json-enclosure", storJSON("Success", rd(func(m map[string]any) {
			m["Enclosure LIST"] = []any{map[string]any{"EID": 8, "State": "Critical", "PD": 2}}
		})), OK, "enclosure"},
		{"json-storcli2-failed-status", storJSON("Success", map[string]any{"Virtual Drives": []any{map[string]any{
			"VD Info": map[string]any{"DG/VD": "0/1", "TYPE": "RAID1", "State": "Dgrd", "CurrentCache": "NR,WT", "DefaultCache": "NR,WB"},
			"PDs": []any{
				map[string]any{"EID:Slt": "9:0", "State": "Conf", "Status": "Online", "DG": 0},
				map[string]any{"EID:Slt": "9:1", "State": "Conf", "Status": "Failed", "DG": 0},
			}}}}), Degraded, "cache"},
		{"json-storcli2-rebuild", storJSON("Success", map[string]any{"Virtual Drives": []any{map[string]any{
			"VD Info": map[string]any{"DG/VD": "0/1", "TYPE": "RAID1", "State": "Dgrd"},
			"PDs": []any{
				map[string]any{"EID:Slt": "9:0", "State": "Conf", "Status": "Online", "DG": 0},
				map[string]any{"EID:Slt": "9:1", "State": "Conf", "Status": "Rebuild", "DG": 0},
			}}}}), Rebuilding, ""},
		{"json-storcli2-unknown-status", storJSON("Success", map[string]any{"Virtual Drives": []any{map[string]any{
			"VD Info": map[string]any{"DG/VD": "0/1", "TYPE": "RAID1", "State": "Optl"},
			"PDs":     []any{map[string]any{"EID:Slt": "9:0", "State": "Conf", "Status": "Exploded", "DG": 0}},
		}}}), Unknown, ""},
		{"json-hba-no-vd", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "HBA"},
			"Status": map[string]any{"Controller Status": "OK"}}), OK, ""},
		// Cells storcli fills with N/A, "-" or nothing report nothing: no
		// alert, and no evidence that a state is fine.
		{"json-smart-na-not-an-alert", details(0, "N/A"), OK, ""},
		{"json-smart-yes-beside-na-counters", storJSON("Success", map[string]any{
			"Drive /c0/e8/s0": []any{map[string]any{"EID:Slt": "8:0", "State": "JBOD", "DG": "-"}},
			"Drive /c0/e8/s0 - Detailed Information": map[string]any{
				"Drive /c0/e8/s0 State": map[string]any{"Predictive Failure Count": "N/A", "Media Error Count": "N/A", "S.M.A.R.T alert flagged by drive": "Yes"},
			},
		}), OK, "disk"},
		{"text-smart-na-not-an-alert", storText("Optimal", "Optl", "Optl", "Onln") +
			"Drive /c0/e8/s0 :\n=====\n\n-----\nEID:Slt DID State DG Size Intf Med SED PI SeSz Model Sp\n-----\n8:0 0 Onln 0 1.0 TB SAS HDD N N 512B X U\n-----\n\n" +
			"Drive /c0/e8/s0 - Detailed Information :\n=====\n\nDrive /c0/e8/s0 State :\n=====\nPredictive Failure Count = N/A\nS.M.A.R.T alert flagged by drive = N/A\n", OK, ""},
		{"text-vd-state-na-topology-optl", storText("Optimal", "Optl", "N/A", "Onln", "Onln"), OK, ""},
		{"text-vd-state-na-topology-dgrd", storText("Optimal", "Dgrd", "N/A", "Onln", "Onln"), Degraded, ""},
		{"text-vd-and-topology-state-na", storText("Optimal", "-", "N/A", "Onln", "Onln"), Unknown, ""},
		{"text-topology-state-na-vd-optl", storText("Optimal", "N/A", "Optl", "Onln", "Onln"), OK, ""},
		{"text-topology-state-na-vd-dgrd", storText("Optimal", "N/A", "Dgrd", "Onln", "Offln"), Degraded, ""},
		{"text-pd-state-na-topology-onln", storText("Optimal", "Optl", "Optl", "Onln", "N/A"), OK, ""},
		{"text-topology-drive-na-pd-offln", strings.Replace(storText("Optimal", "Optl", "Optl", "Onln", "Offln"),
			" 0 0   1   8:1      1   DRIVE Onln", " 0 0   1   8:1      1   DRIVE N/A", 1), Degraded, ""},
		{"json-pd-state-na-alone", storJSON("Success", storJSONRD("Optl", "Onln", "N/A")), Unknown, ""},
		{"json-pd-state-dash-alone", storJSON("Success", storJSONRD("Optl", "Onln", "-")), Unknown, ""},
		{"json-pd-state-na-then-onln", storJSON("Success", rd(func(m map[string]any) {
			m["PD LIST"].([]any)[1].(map[string]any)["State"] = "N/A"
			m["Drive /c0/e8/s1"] = []any{map[string]any{"EID:Slt": "8:1", "State": "Onln", "DG": 0}}
		})), OK, ""},
		{"json-pd-state-onln-then-na", storJSON("Success", rd(func(m map[string]any) {
			m["Drive /c0/e8/s1"] = []any{map[string]any{"EID:Slt": "8:1", "State": "N/A", "DG": 0}}
		})), OK, ""},
		{"json-vd-state-na-alone", storJSON("Success", storJSONRD("N/A", "Onln", "Onln")), Unknown, ""},
		{"json-enclosure-state-na", storJSON("Success", rd(func(m map[string]any) {
			m["Enclosure LIST"] = []any{map[string]any{"EID": 8, "State": "N/A", "PD": 2}}
		})), OK, ""},
		{"json-hba-enclosure-information", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "HBA"},
			"Status":                map[string]any{"Controller Status": "OK"},
			"Enclosure Information": []any{map[string]any{"EID": 2, "State": "Critical", "PD": 0}},
		}), OK, "enclosure"},
		{"json-bbu-state-na", storJSON("Success", rd(func(m map[string]any) {
			m["BBU_Info"] = []any{map[string]any{"Model": "BBU", "State": "N/A"}}
		})), OK, "bbu"},
		{"json-controller-status-na-jbod", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "SAS9300-8i"},
			"Status":          map[string]any{"Controller Status": "N/A"},
			"Drive /c0/e2/s0": []any{map[string]any{"EID:Slt": "2:0", "State": "JBOD", "DG": "-"}},
		}), OK, ""},
		{"json-controller-status-na-nothing-else", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "SAS9300-8i"},
			"Status": map[string]any{"Controller Status": "N/A"}}), Unknown, ""},
		{"json-hba-jbod-onln-ugood", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "HBA"},
			"Status": map[string]any{"Controller Status": "OK"},
			"PD LIST": []any{
				map[string]any{"EID:Slt": "2:0", "State": "JBOD", "DG": "-"},
				map[string]any{"EID:Slt": "2:1", "State": "Onln", "DG": "-"},
				map[string]any{"EID:Slt": "2:2", "State": "UGood", "DG": "-"},
			}}), OK, ""},
		{"json-hba-jbod-one-ubad", storJSON("Success", map[string]any{"Basics": map[string]any{"Model": "HBA"},
			"Status": map[string]any{"Controller Status": "OK"},
			"PD LIST": []any{
				map[string]any{"EID:Slt": "2:0", "State": "JBOD", "DG": "-"},
				map[string]any{"EID:Slt": "2:1", "State": "UBad", "DG": "-"},
			}}), Degraded, ""},
		{"json-storcli2-status-na", storJSON("Success", map[string]any{"Virtual Drives": []any{map[string]any{
			"VD Info": map[string]any{"DG/VD": "0/1", "TYPE": "RAID1", "State": "Optl"},
			"PDs":     []any{map[string]any{"EID:Slt": "9:0", "State": "Conf", "Status": "N/A", "DG": 0}},
		}}}), Unknown, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseStorcli([]Input{{Name: tc.name, Data: []byte(tc.in)}})
			if err != nil {
				t.Fatalf("ParseStorcli: %v", err)
			}
			if r.Verdict != tc.want {
				b, _ := json.MarshalIndent(r, "", " ")
				t.Errorf("verdict = %v, want %v\n%s", r.Verdict, tc.want, b)
			}
			if tc.warn != "" && !megaHasWarning(r, tc.warn, "") {
				t.Errorf("no %s warning: %+v", tc.warn, r.Controllers[0].Warnings)
			}
			if tc.warn == "" && tc.want == OK && r.HasWarnings() {
				t.Errorf("unexpected warnings: %+v", r.Controllers[0].Warnings)
			}
		})
	}
}

func TestParseStorcliUnreadable(t *testing.T) {
	healthy := storJSON("Success", storJSONRD("Optl", "Onln", "Onln"))
	tests := []struct {
		name string
		in   []Input
	}{
		{"no-inputs", nil},
		{"empty", []Input{{Name: "e"}}},
		{"blank", []Input{{Name: "b", Data: []byte(" \r\n\n")}}},
		{"garbage", []Input{{Name: "g", Data: []byte("hello = world\n\x00\x01\n")}}},
		{"truncated-json", []Input{{Name: "t", Data: []byte(healthy[:len(healthy)/2])}}},
		{"json-without-controllers", []Input{{Name: "j", Data: []byte("{\n\"Controllers\" : 5, \"x\": 1}\n")}}},
		{"json-empty-controllers", []Input{{Name: "j", Data: []byte("{\"Controllers\":[]}")}}},
		{"megacli-output", []Input{{Name: "m", Data: []byte(megaLDInfo("Optimal", ""))}}},
		{"one-good-one-bad", []Input{{Name: "ok", Data: []byte(healthy)}, {Name: "bad", Data: []byte("nonsense\n")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseStorcli(tc.in)
			if !errors.Is(err, ErrParse) {
				t.Fatalf("ParseStorcli = %+v, %v; want an ErrParse error", r, err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Tool != "storcli" {
				t.Errorf("error %v is not a storcli *ParseError", err)
			}
		})
	}
}

var storRuleRe = regexp.MustCompile(`(?m)^-{5,}[ \t]*$`)

// storOKFrom returns the cut points of a sample from which an OK verdict
// is acceptable: JSON only once complete; text once the last table that
// carries a state is closed (or, for the HBA, the last drive's S.M.A.R.T.
// line is read); and, for a multi-controller text, at a boundary between
// two controllers (their outputs have no end marker: a documented limit).
func storOKFrom(data []byte) func(cut int) bool {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		end := bytes.LastIndexByte(data, '}') + 1
		return func(cut int) bool { return cut >= end }
	}
	end := 0
	if i := bytes.LastIndex(data, []byte("S.M.A.R.T alert flagged by drive = ")); i >= 0 {
		end = i + bytes.IndexByte(data[i:], '\n')
	} else {
		locs := storRuleRe.FindAllIndex(data, -1)
		end = locs[len(locs)-1][1]
	}
	type gap struct{ from, to int }
	var gaps []gap
	starts := regexp.MustCompile(`(?m)^Controller = (\d+)\r?$`).FindAllIndex(data, -1)
	for _, s := range starts {
		rules := storRuleRe.FindAllIndex(data[:s[0]], -1)
		if len(rules) == 0 {
			continue // the first controller
		}
		gaps = append(gaps, gap{rules[len(rules)-1][1], s[1]})
	}
	return func(cut int) bool {
		if cut >= end {
			return true
		}
		for _, g := range gaps {
			if cut >= g.from && cut < g.to {
				return true
			}
		}
		return false
	}
}

// TestParseStorcliTruncated cuts every sample at many points: the result
// is never OK before the output is complete.
func TestParseStorcliTruncated(t *testing.T) {
	var files []string
	for _, dir := range []string{"storcli", "perccli"} {
		for _, ext := range []string{"*.txt", "*.json"} {
			m, _ := filepath.Glob(filepath.Join("testdata", dir, ext))
			for _, f := range m {
				if !strings.HasSuffix(f, ".golden.json") {
					files = append(files, f)
				}
			}
		}
	}
	if len(files) != 11 {
		t.Fatalf("%d samples, want 11", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			okFrom := storOKFrom(data)
			for _, cut := range megaCuts(data) {
				if okFrom(cut) {
					continue
				}
				r, err := ParseStorcli([]Input{{Name: "cut", Data: data[:cut]}})
				if err != nil {
					if !errors.Is(err, ErrParse) {
						t.Fatalf("cut at %d: error %v is not ErrParse", cut, err)
					}
					continue
				}
				if r.Verdict == OK {
					t.Fatalf("cut at %d of %d: verdict ok; text before the cut ends with %q", cut, len(data), data[max(0, cut-80):cut])
				}
			}
		})
	}
}

func FuzzParseStorcli(f *testing.F) {
	for _, dir := range []string{"storcli", "perccli"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"))
		for _, file := range files {
			if strings.HasSuffix(file, ".golden.json") || strings.HasSuffix(file, ".md") {
				continue
			}
			if b, err := os.ReadFile(file); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(storText("Optimal", "Dgrd", "Dgrd", "Onln", "Rbld")))
	f.Fuzz(func(t *testing.T, data []byte) {
		half := len(data) / 2
		for _, in := range [][]Input{
			{{Name: "fuzz", Data: data}},
			{{Name: "a", Data: data[:half]}, {Name: "b", Data: data[half:]}},
		} {
			r, err := ParseStorcli(in)
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
