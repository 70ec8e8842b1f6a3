package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"opsagent/rules"
	"opsagent/scanner"
)

// upgradeReport is an update's report after a reinstall of a few packages,
// as the benchmark's update --packages writes it: n changed files, each
// with a new inode and ctime, all explained by their package.
func upgradeReport(n int) *Report {
	r := &Report{Kind: KindUpdate, Start: time.Unix(tNew, 0), AgentVersion: "0.1.0", Host: "host1",
		Config: "/etc/agent/agent.conf", Baseline: "/var/lib/agent/baseline.db", NewBaseline: "/var/lib/agent/baseline.db",
		Total: 160000, Changed: n, Level: LevelChangedAttributes}
	attrs := rules.AttrPerm.Set() | rules.AttrInode.Set() | rules.AttrNlink.Set() | rules.AttrUID.Set() |
		rules.AttrGID.Set() | rules.AttrSize.Set() | rules.AttrMtime.Set() | rules.AttrCtime.Set() | rules.AttrMD5.Set()
	p := &ProvenanceInfo{Backend: "dpkg", ByPath: map[string]Provenance{}, Explained: ExplainedSummary}
	for i := range n {
		path := fmt.Sprintf("/usr/share/icons/Adwaita/%dx%d/legacy/icon-%05d-symbolic.png", 16+i%8, 16+i%8, i)
		o := &scanner.Entry{Path: path, Type: rules.TypeFile, Attrs: attrs, Mode: 0o100644, Size: int64(512 + i),
			Nlink: 1, Inode: uint64(1_500_000 + i), Mtime: tOld * 1e9, Ctime: tOld * 1e9}
		c := *o
		c.Inode += 100_000
		c.Ctime = tNew * 1e9
		r.Changes = append(r.Changes, scanner.Change{Path: path, Kind: scanner.Changed, Old: o, New: &c,
			Changed: rules.AttrInode.Set() | rules.AttrCtime.Set()})
		p.ByPath[path] = Provenance{Class: ClassPackage, Package: "adwaita-icon-theme", Version: "43-1",
			Reason: "md5 matches the package, upgraded 43-1 \u2192 43-1 at 2026-12-07 10:39:21"}
	}
	p.Packages = []PackageChange{{Name: "adwaita-icon-theme:all", Action: "upgrade", OldVersion: "43-1", NewVersion: "43-1", Time: time.Unix(tNew, 0)}}
	r.Provenance = p
	return r
}

// BenchmarkRenderUpgrade renders a 7,600-change report the way agent
// update does: Prepare, then the text and JSON bodies (each on a report
// prepared once).
func BenchmarkRenderUpgrade(b *testing.B) {
	b.Run("prepare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			r := upgradeReport(7600)
			b.StartTimer()
			r.Prepare()
		}
	})
	for _, part := range []string{"text", "json"} {
		b.Run(part, func(b *testing.B) {
			r := upgradeReport(7600)
			r.Prepare()
			var out bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				if part == "text" {
					TextBody(&out, r)
				} else {
					JSONBody(&out, r)
				}
			}
			b.SetBytes(int64(out.Len()))
		})
	}
}

// The eight-bytes-at-a-time scans of plainJSON and EscapeJSONPath give
// what a byte by byte scan gives, whatever byte sits at whatever place of
// a long run of plain ASCII.
func TestPlainScans(t *testing.T) {
	// plainJSON's definition: encoding/json writes s as it is.
	plainRef := func(s string) bool {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		return b.String() == `"`+s+"\"\n"
	}
	escRef := func(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, `\`) }
	for n := range 20 {
		for at := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[at] = byte(c)
				s := string(b)
				if got, want := plainJSON(s), plainRef(s); got != want {
					t.Fatalf("plainJSON(%q) = %v, want %v", s, got, want)
				}
				if got, want := EscapeJSONPath(s) == s, escRef(s); got != want {
					t.Fatalf("EscapeJSONPath(%q) unchanged = %v, want %v", s, got, want)
				}
			}
		}
	}
	for _, s := range []string{"/usr/share/doc/\u2028x/long-enough", "/usr/share/icons/\u2192/arrow-right-pointing", "/a\xffb/cdefghij", "/0123456\xe2\x80\xa8/abc"} {
		if got, want := plainJSON(s), plainRef(s); got != want {
			t.Errorf("plainJSON(%q) = %v, want %v", s, got, want)
		}
	}
}

// The provenance object lists its paths in bytewise order, also when
// they are not those of the changes.
func TestProvenanceOrder(t *testing.T) {
	for _, extra := range []string{"", "/usr/a-not-a-change", "/usr/zz-not-a-change"} {
		r := upgradeReport(50)
		if extra != "" {
			r.Provenance.ByPath[extra] = Provenance{Class: ClassUnexplained, Reason: "r"}
		}
		// A path listed twice among the changes is still one key.
		r.Changes = append(r.Changes, r.Changes[3])
		var out bytes.Buffer
		if err := WriteJSON(&out, r); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Provenance struct {
				Paths json.RawMessage `json:"paths"`
			} `json:"provenance"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(doc.Provenance.Paths))
		dec.Token() // {
		var keys []string
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
		}
		distinct := len(slices.Compact(slices.Clone(keys)))
		if len(keys) != len(r.Provenance.ByPath) || distinct != len(keys) || !slices.IsSorted(keys) {
			t.Errorf("extra %q: %d keys (%d distinct) for %d paths, sorted %v", extra, len(keys), distinct, len(r.Provenance.ByPath), slices.IsSorted(keys))
		}
	}
}
