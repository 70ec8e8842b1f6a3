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

// The -update flag regenerates golden files. Several test files of this
// package want it, so it is registered here only when no other file has
// (package-level flag.Bool vars run before any init).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

// mdGoldenUpdate reports whether -update was given.
func mdGoldenUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// mdCheckGolden compares got with the golden file, or rewrites it under
// -update.
func mdCheckGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if mdGoldenUpdate() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the parsed result (run with -update after checking):\ngot:\n%s", path, got)
	}
}

func readMdstatSample(t testing.TB, name string) Input {
	t.Helper()
	p := filepath.Join("testdata", "mdstat", name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Name: name, Data: b}
}

func mdArrayByID(r *Result, id string) *Array {
	for _, c := range r.Controllers {
		for _, a := range c.Arrays {
			if a.ID == id {
				return a
			}
		}
	}
	return nil
}

type mdArrayWant struct {
	verdict  Verdict
	activity string
	missing  int
}

func TestParseMdstatSamples(t *testing.T) {
	tests := []struct {
		file   string
		want   Verdict
		arrays map[string]mdArrayWant
	}{
		{"healthy-raid1-raid0-bitmaps.txt", OK, map[string]mdArrayWant{
			"md4": {verdict: OK}, "md1": {verdict: OK}, "md2": {verdict: OK},
		}},
		{"degraded-raid5-failed-member.txt", Degraded, map[string]mdArrayWant{
			"md0": {verdict: Degraded, missing: 1},
		}},
		{"degraded-raid6-missing-member-no-recovery.txt", Degraded, map[string]mdArrayWant{
			"md0": {verdict: Degraded, missing: 1},
		}},
		{"recovery-raid1-one-array.txt", Rebuilding, map[string]mdArrayWant{
			"md0": {verdict: Rebuilding, activity: "recovery", missing: 1},
			"md1": {verdict: OK},
		}},
		{"recovery-plus-resync-delayed-degraded.txt", Rebuilding, map[string]mdArrayWant{
			"md0": {verdict: Rebuilding, activity: "recovery", missing: 1},
			"md1": {verdict: Rebuilding, activity: "resync delayed", missing: 1},
		}},
		{"recovery-raid6-two-missing.txt", Rebuilding, map[string]mdArrayWant{
			"md0": {verdict: Rebuilding, activity: "recovery", missing: 2},
		}},
		{"reshape-raid6-grow.txt", Rebuilding, map[string]mdArrayWant{
			"md0": {verdict: Rebuilding, activity: "reshape", missing: 2},
		}},
		{"resync-two-raid1.txt", Rebuilding, map[string]mdArrayWant{
			"md0": {verdict: OK},
			"md1": {verdict: Rebuilding, activity: "resync"},
			"md2": {verdict: Rebuilding, activity: "resync"},
		}},
		{"check-running-plus-check-delayed.txt", OK, map[string]mdArrayWant{
			"md0": {verdict: OK, activity: "check"},
			"md1": {verdict: OK, activity: "check delayed"},
		}},
		{"failed-spare-array-clean.txt", Degraded, map[string]mdArrayWant{
			"md1": {verdict: Degraded},
			"md0": {verdict: OK},
		}},
		{"imsm-external-container-inactive.txt", OK, map[string]mdArrayWant{
			"md0":   {verdict: OK},
			"md127": {verdict: OK},
		}},
		{"procfs-fixture-many-states.txt", Failed, map[string]mdArrayWant{
			"md3":   {verdict: OK},
			"md4":   {verdict: Failed},
			"md6":   {verdict: Degraded, activity: "recovery", missing: 1}, // (F) member still needs replacing
			"md8":   {verdict: Rebuilding, activity: "resync"},
			"md201": {verdict: OK, activity: "check"},
			"md7":   {verdict: Degraded, missing: 1},
			"md9":   {verdict: Degraded, activity: "check delayed"}, // two (F) members
			"md10":  {verdict: OK},
			"md11":  {verdict: Degraded, activity: "resync pending"}, // (F) member
			"md126": {verdict: OK},
			"md219": {verdict: OK},
			"md120": {verdict: OK},
			"md101": {verdict: OK},
			"md42":  {verdict: Rebuilding, activity: "reshape", missing: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".txt"), func(t *testing.T) {
			in := readMdstatSample(t, tt.file)
			r, err := ParseMdstat([]Input{in})
			if err != nil {
				t.Fatalf("ParseMdstat(%s) error: %v", tt.file, err)
			}
			if r.Verdict != tt.want {
				t.Errorf("ParseMdstat(%s) verdict = %v, want %v", tt.file, r.Verdict, tt.want)
			}
			if r.Tool != ToolMdstat || len(r.Controllers) != 1 || r.Controllers[0].ID != "md" {
				t.Errorf("ParseMdstat(%s): tool %q, %d controllers, want mdstat with one controller md", tt.file, r.Tool, len(r.Controllers))
			}
			for id, w := range tt.arrays {
				a := mdArrayByID(r, id)
				if a == nil {
					t.Errorf("array %s missing", id)
					continue
				}
				if a.Verdict != w.verdict || a.Activity != w.activity || a.Missing != w.missing {
					t.Errorf("array %s = %v/%q/missing %d (%s), want %v/%q/missing %d",
						id, a.Verdict, a.Activity, a.Missing, a.Reason, w.verdict, w.activity, w.missing)
				}
				if a.Verdict != OK && a.Reason == "" {
					t.Errorf("array %s is %v without a reason", id, a.Verdict)
				}
			}
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			mdCheckGolden(t, filepath.Join("testdata", "mdstat", strings.TrimSuffix(tt.file, ".txt")+".golden.json"), got)
		})
	}
}

func TestParseMdstatDisks(t *testing.T) {
	r, err := ParseMdstat([]Input{readMdstatSample(t, "procfs-fixture-many-states.txt")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		array, disk string
		state, role string
		verdict     Verdict
	}{
		{"md6", "sdb2", "faulty", "member", Degraded},
		{"md6", "sdc", "spare", "spare", OK},
		{"md6", "sda2", "active", "member", OK},
		{"md219", "sdb", "spare", "member", OK},
		{"md4", "sda3", "faulty", "member", Degraded},
	}
	for _, tt := range tests {
		t.Run(tt.array+"/"+tt.disk, func(t *testing.T) {
			a := mdArrayByID(r, tt.array)
			if a == nil {
				t.Fatalf("array %s missing", tt.array)
			}
			for _, d := range a.Disks {
				if d.ID == tt.disk {
					if d.State != tt.state || d.Role != tt.role || d.Verdict != tt.verdict {
						t.Errorf("disk %s = %q/%q/%v, want %q/%q/%v", d.ID, d.State, d.Role, d.Verdict, tt.state, tt.role, tt.verdict)
					}
					return
				}
			}
			t.Errorf("disk %s not in array %s", tt.disk, tt.array)
		})
	}
}

// TestParseMdstatTogether gives two snapshots at once: one controller each,
// the verdict the worse of both.
func TestParseMdstatTogether(t *testing.T) {
	a := readMdstatSample(t, "healthy-raid1-raid0-bitmaps.txt")
	b := readMdstatSample(t, "degraded-raid5-failed-member.txt")
	r, err := ParseMdstat([]Input{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Degraded {
		t.Errorf("verdict = %v, want degraded", r.Verdict)
	}
	if len(r.Controllers) != 2 || r.Controllers[0].ID != "md:"+a.Name || r.Controllers[1].ID != "md:"+b.Name {
		t.Errorf("controllers = %d, want md:%s and md:%s", len(r.Controllers), a.Name, b.Name)
	}
}

// TestParseMdstatNoArrays: md loaded but no array is a valid result with no
// controller and no error, which the probe drops.
func TestParseMdstatNoArrays(t *testing.T) {
	tests := []struct {
		name, data string
	}{
		{"bare", "Personalities : \nunused devices: <none>\n"},
		{"personalities", "Personalities : [raid1] [raid6] [raid5] [raid4] \nunused devices: <none>\n"},
		{"prompt", "# cat /proc/mdstat\nPersonalities : [raid1]\nunused devices: <none>"},
		{"crlf", "Personalities : [raid1]\r\nunused devices: <none>\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseMdstat([]Input{{Name: tt.name, Data: []byte(tt.data)}})
			if err != nil {
				t.Fatalf("ParseMdstat error: %v", err)
			}
			if len(r.Controllers) != 0 {
				t.Errorf("controllers = %d, want 0", len(r.Controllers))
			}
			if r.Verdict == OK {
				t.Error("a result with no controller is OK, want it to fail closed")
			}
		})
	}
}

// TestParseMdstatHandMade covers states the samples do not have.
func TestParseMdstatHandMade(t *testing.T) {
	const end = "\nunused devices: <none>\n"
	tests := []struct {
		name, data string
		want       Verdict
	}{
		{"auto-read-only clean", "Personalities : [raid1]\nmd2 : active (auto-read-only) raid1 sda6[0] sdb6[1]\n      4200952 blocks super 1.0 [2/2] [UU]\n      bitmap: 0/9 pages [0KB], 256KB chunk\n" + end, OK},
		{"resync pending", "Personalities : [raid1]\nmd2 : active (auto-read-only) raid1 sda6[0] sdb6[1]\n      4200952 blocks super 1.0 [2/2] [UU]\n      \tresync=PENDING\n" + end, Rebuilding},
		{"delayed without check", "Personalities : [raid1]\nmd1 : active raid1 sda2[0] sdb2[1]\n      46728 blocks super 1.1 [2/2] [UU]\n        resync=DELAYED\n" + end, Rebuilding},
		{"cluster remote resync", "Personalities : [raid1]\nmd1 : active raid1 sda2[0] sdb2[1]\n      46728 blocks super 1.2 [2/2] [UU]\n      \tresync=REMOTE\n" + end, Rebuilding},
		{"check on degraded", "Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n      2097 blocks [2/1] [U_]\n      [=>...]  check =  6.4% (1/2) finish=3.3min speed=97293K/sec\n" + end, Degraded},
		{"write-mostly", "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1](W)\n      2097 blocks [2/2] [UU]\n" + end, OK},
		{"write-mostly faulty", "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1](W)(F)\n      2097 blocks [2/1] [U_]\n" + end, Degraded},
		{"replacement", "Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[1] sdc1[2](R)\n      2097 blocks [2/2] [UU]\n      [=>...]  recovery =  6.4% (1/2) finish=3.3min speed=97293K/sec\n" + end, Rebuilding},
		{"raid10", "Personalities : [raid10]\nmd0 : active raid10 sdd1[3] sdc1[2] sdb1[1] sda1[0]\n      976510976 blocks super 1.2 512K chunks 2 near-copies [4/4] [UUUU]\n" + end, OK},
		{"read-only raid0", "Personalities : [raid0]\nmd101 : active (read-only) raid0 sdb[2] sdd[1] sdc[0]\n      322560 blocks super 1.2 512k chunks\n" + end, OK},
		{"ddf container", "Personalities : [raid1]\nmd127 : inactive sdb[1](S) sda[0](S)\n      2210 blocks super external:ddf\n" + end, OK},
		{"inactive spares only", "Personalities : [raid1]\nmd0 : inactive sdb1[1](S) sda1[0](S)\n      3906764976 blocks super 1.2\n" + end, Failed},
		{"inactive no disks", "Personalities : [raid1]\nmd0 : inactive \n" + end, Failed},
		{"container with faulty", "Personalities : [raid1]\nmd0 : inactive sda[1](S) sdb[0](F)\n      5288 blocks super external:imsm\n" + end, Failed},
		{"no working member", "Personalities : [raid1]\nmd0 : active raid1 sda1[0](F)\n      2097 blocks [2/0] [__]\n" + end, Failed},
		{"subarray of container", "Personalities : [raid1]\nmd126 : active raid1 sda[1] sdb[0]\n      976759808 blocks super external:/md127/0 [2/1] [_U]\n" + end, Degraded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseMdstat([]Input{{Name: tt.name, Data: []byte(tt.data)}})
			if err != nil {
				t.Fatalf("ParseMdstat error: %v", err)
			}
			if r.Verdict != tt.want {
				t.Errorf("verdict = %v, want %v\n%s", r.Verdict, tt.want, mdDump(r))
			}
		})
	}
}

func mdDump(r *Result) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

// TestParseMdstatMalformed: hostile and broken inputs are an error or
// Unknown (or worse), never OK.
func TestParseMdstatMalformed(t *testing.T) {
	const end = "\nunused devices: <none>\n"
	const head = "Personalities : [raid1]\n"
	tests := []struct {
		name    string
		data    string
		wantErr bool
	}{
		{"empty", "", true},
		{"blank lines", "\n\n  \n", true},
		{"garbage", "hello world\nthis is not mdstat\n", true},
		{"binary", "\x00\x01\x02\xff\xfe", true},
		{"prompt only", "# cat /proc/mdstat\n", true},
		{"personalities only", head, true},
		{"unknown state word", head + "md0 : broken raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"unknown ro word", head + "md0 : active (frozen) raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"unknown personality", head + "md0 : active raid7 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"unknown activity", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n      [=>...]  repair =  6.4% (1/2)\n" + end, false},
		{"unknown queued state", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n      resync=FROZEN\n" + end, false},
		{"unknown flag", head + "md0 : active raid1 sda1[0](X) sdb1[1]\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"unknown member status", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UD]\n" + end, false},
		{"bad member count", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/3] [UU]\n" + end, false},
		{"bad member token", head + "md0 : active raid1 sda1[0] sdb1\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"indented junk", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n      something odd\n" + end, false},
		{"top-level junk", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n\nERROR reading md\n" + end, false},
		{"stray indented line", head + "\n      2097 blocks [2/2] [UU]\n" + end, false},
		{"header only", head + "md0 : active raid1 sda1[0] sdb1[1]\n" + end, false},
		{"raid1 without counts", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks super 1.2\n" + end, false},
		{"no trailer", head + "md0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n", false},
		{"array after trailer", head + "unused devices: <none>\nmd0 : active raid1 sda1[0] sdb1[1]\n      2097 blocks [2/2] [UU]\n", false},
		{"junk with trailer, no arrays", head + "oops\n" + end, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseMdstat([]Input{{Name: tt.name, Data: []byte(tt.data)}})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseMdstat = %v, want an error", r.Verdict)
				}
				var pe *ParseError
				if !errors.Is(err, ErrParse) || !errors.As(err, &pe) || pe.Tool != ToolMdstat || pe.Name != tt.name {
					t.Errorf("error %v is not a *ParseError for mdstat/%s", err, tt.name)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMdstat error: %v", err)
			}
			if r.Verdict < Unknown {
				t.Errorf("verdict = %v, want unknown or worse\n%s", r.Verdict, mdDump(r))
			}
		})
	}
	if _, err := ParseMdstat(nil); !errors.Is(err, ErrParse) {
		t.Errorf("ParseMdstat(nil) error = %v, want ErrParse", err)
	}
}

// TestParseMdstatTruncated cuts every sample at every byte: a cut before
// the closing "unused devices:" line is never OK.
func TestParseMdstatTruncated(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "mdstat", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			complete := len(data)
			if i := bytes.Index(data, []byte("unused devices:")); i >= 0 {
				complete = i + len("unused devices:")
			}
			for cut := 0; cut < complete; cut++ {
				r, err := ParseMdstat([]Input{{Name: "cut", Data: data[:cut]}})
				if err == nil && r.Verdict == OK {
					t.Errorf("cut at %d of %d: verdict ok\n%s", cut, len(data), data[:cut])
					return
				}
			}
		})
	}
}

func FuzzParseMdstat(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "mdstat", "*.txt"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Personalities : \nunused devices: <none>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseMdstat([]Input{{Name: "fuzz", Data: data}})
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error %v is not ErrParse", err)
			}
			return
		}
		if r.Verdict > Failed {
			t.Fatalf("invalid verdict %d", r.Verdict)
		}
		if len(r.Controllers) == 0 && r.Verdict == OK {
			t.Fatal("no controller but verdict ok")
		}
		for _, c := range r.Controllers {
			if c.Verdict > Failed {
				t.Fatalf("invalid controller verdict %d", c.Verdict)
			}
			for _, a := range c.Arrays {
				if a.Verdict > Failed {
					t.Fatalf("invalid array verdict %d", a.Verdict)
				}
				if a.Verdict > r.Verdict {
					t.Fatalf("array %s is %v but the result only %v", a.ID, a.Verdict, r.Verdict)
				}
			}
		}
	})
}
