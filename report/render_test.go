package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

var update = flag.Bool("update", false, "update golden files")

func sampleReport(t *testing.T, kind Kind, level Level) *Report {
	cs := aideCases(t)
	add := file("/srv/new\xffname", 0o644, 5, tNew)
	add.Digests.BLAKE3[0] = 1
	add.Attrs |= rules.AttrBLAKE3.Set()
	rem := file(`/srv/back\slash`, 0o755, 1, tOld)
	cs = append(cs,
		scanner.Change{Path: add.Path, Kind: scanner.Added, New: add},
		scanner.Change{Path: rem.Path, Kind: scanner.Removed, Old: rem})
	r := &Report{Kind: kind, Start: time.Unix(tNew, 0), End: time.Unix(tNew+75, 0), AgentVersion: "0.1.0",
		Host: "host1", Config: "/etc/agent/agent.conf", Baseline: "/var/lib/agent/baseline.db",
		Total: 12, Added: 1, Removed: 1, Changed: len(cs) - 2, Changes: cs, Level: level,
		Problems: []Problem{{Path: "/srv/secret", Err: "open: permission denied"}}}
	r.BaselineDigest[0], r.BaselineDigest[31] = 0xab, 0xcd
	if kind == KindInit || kind == KindUpdate {
		r.NewBaseline = "/var/lib/agent/baseline.db"
		r.NewBaselineDigest[1] = 7
		if kind == KindInit {
			r.Changes, r.Added, r.Removed, r.Changed = nil, 0, 0, 0
		}
	}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kind  Kind
		level Level
	}{
		{"check", KindCheck, LevelChangedAttributes},
		{"check-entries", KindCheck, LevelAddedRemovedEntries},
		{"check-summary", KindCheck, LevelSummary},
		{"check-minimal", KindCheck, LevelMinimal},
		{"init", KindInit, LevelChangedAttributes},
		{"update", KindUpdate, LevelListEntries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport(t, tc.kind, tc.level)
			var txt, js bytes.Buffer
			if err := WriteText(&txt, r); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".txt", txt.Bytes())
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			if !json.Valid(js.Bytes()) {
				t.Errorf("invalid JSON: %s", js.Bytes())
			}
			golden(t, tc.name+".json", js.Bytes())

			// Rendered in two steps with the tail's fields learnt in
			// between (Pending), from a report prepared before its
			// provenance was known (as addChanges does) and prepared
			// again by the rendering: the same bytes.
			p := *r
			p.Provenance = nil
			p.Prepare()
			prep := p.prep
			p.Provenance = r.Provenance
			p.Prepare()
			if p.prep != prep {
				t.Error("a second Prepare replaced the first one's work")
			}
			p.End, p.BaselineDigest, p.NewBaselineDigest = time.Time{}, [32]byte{}, [32]byte{}
			var txt2, js2 bytes.Buffer
			pt, pj := TextBody(&txt2, &p), JSONBody(&js2, &p)
			p.End, p.BaselineDigest, p.NewBaselineDigest = r.End, r.BaselineDigest, r.NewBaselineDigest
			if err := errors.Join(pt.Finish(), pj.Finish()); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(txt2.Bytes(), txt.Bytes()) {
				t.Errorf("TextBody and Finish:\n%s\nWriteText:\n%s", txt2.Bytes(), txt.Bytes())
			}
			if !bytes.Equal(js2.Bytes(), js.Bytes()) {
				t.Errorf("JSONBody and Finish:\n%s\nWriteJSON:\n%s", js2.Bytes(), js.Bytes())
			}
		})
	}
}

// TestJSONRoundTrip checks that every path survives the JSON report.
func TestJSONRoundTrip(t *testing.T) {
	r := sampleReport(t, KindCheck, LevelListEntries)
	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Added, Removed, Changed map[string]string
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range []map[string]string{doc.Added, doc.Removed, doc.Changed} {
		for k := range m {
			p, err := UnescapeJSONPath(k)
			if err != nil {
				t.Errorf("UnescapeJSONPath(%q): %v", k, err)
			}
			got[p] = true
		}
	}
	for _, c := range r.Changes {
		if !got[c.Path] {
			t.Errorf("path %q lost in JSON", c.Path)
		}
	}
}

func TestEscapePath(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "/etc/passwd", "/etc/passwd"},
		{"space", "/a b", "/a b"},
		{"newline", "/new\nline", `/new\012line`},
		{"tab", "/tab\there", `/tab\011here`},
		{"ctl", "/added\001ctl", `/added\001ctl`},
		{"esc", "/esc\033[31m", `/esc\033[31m`},
		{"del", "/del\177", `/del\177`},
		{"backslash kept", `/back\slash`, `/back\slash`},
		{"non-UTF-8 raw", "/bad\xffbyte", "/bad\xffbyte"},
		{"C1 raw", "/c1\xc2\x9bx", "/c1\xc2\x9bx"},
		{"utf8", "/utf8é", "/utf8é"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EscapePath(tc.in); got != tc.want {
				t.Errorf("EscapePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEscapeJSONPath(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "/etc/passwd", "/etc/passwd"},
		{"backslash", `/a\b`, `/a\\b`},
		{"invalid byte", "/bad\xffbyte", `/bad\xffbyte`},
		{"literal escape text", `/bad\xffbyte`, `/bad\\xffbyte`},
		{"utf8", "/é", "/é"},
		{"truncated utf8", "/\xc3", `/\xc3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EscapeJSONPath(tc.in)
			if got != tc.want {
				t.Errorf("EscapeJSONPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			back, err := UnescapeJSONPath(got)
			if err != nil || back != tc.in {
				t.Errorf("UnescapeJSONPath(%q) = %q, %v, want %q", got, back, err, tc.in)
			}
		})
	}
	for _, bad := range []string{`\`, `\q`, `\x1`, `\xzz`} {
		if _, err := UnescapeJSONPath(bad); !errors.Is(err, ErrEscape) {
			t.Errorf("UnescapeJSONPath(%q) error = %v, want ErrEscape", bad, err)
		}
	}
}

func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"/etc", `/a\b`, "/bad\xff", `\xff`, "/\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		e := EscapeJSONPath(p)
		if back, err := UnescapeJSONPath(e); err != nil || back != p {
			t.Fatalf("round trip of %q: %q, %v", p, back, err)
		}
		_, _ = UnescapeJSONPath(p) // must not panic on arbitrary input
	})
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Report
		want string
	}{
		{"changes", Report{Kind: KindCheck, Added: 3, Removed: 1, Changed: 5}, "integrity check: 3 added, 1 removed, 5 changed"},
		{"clean", Report{Kind: KindCheck, Total: 10}, "integrity check: no differences (10 entries)"},
		{"init", Report{Kind: KindInit, Total: 10}, "integrity init: baseline of 10 entries"},
		{"problems", Report{Kind: KindUpdate, Changed: 1, Problems: []Problem{{"/x", "e"}}}, "integrity update: 0 added, 0 removed, 1 changed, 1 unreadable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summary(&tc.r); got != tc.want {
				t.Errorf("Summary() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for _, n := range levelNames {
		l, err := ParseLevel(n)
		if err != nil || l.String() != n {
			t.Errorf("ParseLevel(%q) = %v, %v", n, l, err)
		}
	}
	if _, err := ParseLevel("verbose"); !errors.Is(err, ErrLevel) {
		t.Errorf("ParseLevel(verbose) error = %v, want ErrLevel", err)
	}
}

func TestChangeStringIgnored(t *testing.T) {
	// aide 0.18.3 with report_ignore_changed_attrs=c+a: testdata/aide/a-ign.txt
	o, n := file("/x", 0o644, 2, tOld), file("/x", 0o644, 2, tOld)
	c := scanner.Change{Path: "/x", Kind: scanner.Changed, Old: o, New: n, Changed: rules.AttrUID.Set(), Ignored: rules.AttrCtime.Set()}
	if got, want := ChangeString(c, set(rules.AttrAtime, rules.AttrCtime)), "f =..u.:.:..... . "; got != want {
		t.Errorf("changeString = %q, want %q", got, want)
	}
}

// TestMetadataOnly: entries recorded without their content (pseudo file
// systems) are counted in one line of the text summary and one JSON key,
// and not mentioned when there are none.
func TestMetadataOnly(t *testing.T) {
	for _, kind := range []Kind{KindInit, KindCheck} {
		r := sampleReport(t, kind, LevelChangedAttributes)
		var txt, js bytes.Buffer
		if err := WriteText(&txt, r); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(txt.Bytes(), []byte("metadata only")) {
			t.Errorf("%s: notice without metadata-only entries:\n%s", kind, txt.Bytes())
		}
		r.MetadataOnly = 3
		txt.Reset()
		if err := WriteText(&txt, r); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(txt.Bytes(), []byte("Pseudo-fs entries, metadata only:\t")); n != 1 ||
			!bytes.Contains(txt.Bytes(), []byte("metadata only:\t3\n")) {
			t.Errorf("%s: %d notice lines with the count 3, want 1:\n%s", kind, n, txt.Bytes())
		}
		if err := WriteJSON(&js, r); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			N struct {
				MetadataOnly int `json:"metadata_only"`
			} `json:"number_of_entries"`
		}
		if err := json.Unmarshal(js.Bytes(), &doc); err != nil || doc.N.MetadataOnly != 3 {
			t.Errorf("%s: JSON number_of_entries.metadata_only = %d, %v; want 3", kind, doc.N.MetadataOnly, err)
		}
	}
}

// TestJSONString: the writer's strings are byte for byte what
// encoding/json (without HTML escapes) writes, on its fast path (plain
// text, non-ASCII included) and off it.
func TestJSONString(t *testing.T) {
	for _, s := range []string{"", "/etc/passwd", "upgraded 1.0 → 1.1 at 2026-12-07 10:39:21", "é\u00a0中文", "\ufffd literal",
		"quote \" and \\ backslash", "tab\tnewline\n", "\x00\x1f\x7f", "bad \xff byte", "\xc3", "sep \u2028 \u2029", "<html> & 'x'"} {
		checkJSONString(t, s)
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"/etc", "a → b", "\xff", "\u2028", `"\`} {
		f.Add(s)
	}
	f.Fuzz(checkJSONString)
}

func checkJSONString(t *testing.T, s string) {
	var got bytes.Buffer
	(&jsonWriter{b: &got}).str(s)
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	if w := strings.TrimSuffix(want.String(), "\n"); got.String() != w {
		t.Errorf("str(%q) = %s, want %s (plainJSON %v)", s, got.String(), w, plainJSON(s))
	}
}

// TestStamp: the timestamps kept by second while a report is prepared are
// those formatted each time, before and after the epoch.
func TestStamp(t *testing.T) {
	r := &Report{Location: time.FixedZone("x", -7*3600-30*60)}
	r.Prepare()
	for _, ns := range []int64{0, 1, 999_999_999, 1e9, -1, -999_999_999, -1e9, -1e9 - 1, 1_796_000_000_123_456_789, -9_000_000_000_000_000_000} {
		for range 2 { // computed, then remembered
			if got, want := r.stamp(ns), r.timestamp(time.Unix(0, ns)); got != want {
				t.Errorf("stamp(%d) = %q, want %q", ns, got, want)
			}
		}
	}
}
