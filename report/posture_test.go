package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

func TestNewPrivileged(t *testing.T) {
	file := func(p string, mode uint32, caps []byte) *scanner.Entry {
		return &scanner.Entry{Path: p, Type: rules.TypeFile, Mode: 0o100000 | mode, Caps: caps}
	}
	changes := []scanner.Change{
		{Path: "/usr/bin/z-new", Kind: scanner.Added, New: file("/usr/bin/z-new", 0o4755, nil)},
		{Path: "/usr/bin/plain", Kind: scanner.Added, New: file("/usr/bin/plain", 0o755, nil)},
		{Path: "/usr/bin/gained", Kind: scanner.Changed, Old: file("/usr/bin/gained", 0o755, nil), New: file("/usr/bin/gained", 0o2755, nil)},
		{Path: "/usr/bin/kept", Kind: scanner.Changed, Old: file("/usr/bin/kept", 0o4755, nil), New: file("/usr/bin/kept", 0o4755, nil)},
		{Path: "/usr/bin/caps", Kind: scanner.Changed, Old: file("/usr/bin/caps", 0o755, nil), New: file("/usr/bin/caps", 0o755, []byte{1, 2})},
		{Path: "/usr/bin/gone", Kind: scanner.Removed, Old: file("/usr/bin/gone", 0o4755, nil)},
		{Path: "/tmp/d", Kind: scanner.Added, New: &scanner.Entry{Path: "/tmp/d", Type: rules.TypeDir, Mode: 0o41777}},
	}
	got := NewPrivileged(changes)
	var paths []string
	for _, p := range got {
		paths = append(paths, p.Path+" "+strings.Join(p.What, "+"))
	}
	want := []string{"/usr/bin/caps capabilities", "/usr/bin/gained set-gid", "/usr/bin/z-new set-uid"}
	if !slices.Equal(paths, want) {
		t.Errorf("NewPrivileged = %q, want %q", paths, want)
	}
}

func TestPostureSection(t *testing.T) {
	e := &scanner.Entry{Path: "/usr/bin/evil", Type: rules.TypeFile, Mode: 0o104755, Attrs: rules.AttrPerm.Set()}
	r := &Report{Kind: KindCheck, Start: time.Unix(0, 0), End: time.Unix(1, 0), Host: "h", Total: 3, Added: 1,
		Changes: []scanner.Change{{Path: e.Path, Kind: scanner.Added, New: e}}}
	r.Posture = &PostureInfo{Privileged: NewPrivileged(r.Changes), Findings: 2, Waived: 1, Ran: true, From: time.Unix(0, 0),
		Text: []byte("posture: 2 findings\n"), JSON: []byte(`{"format":1,"findings":2}`)}
	var text, js bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	pi, li := strings.Index(out, "Posture: 1 new privileged file, 2 posture findings (1 waived):"), strings.Index(out, "Added entries:\n")
	if pi < 0 || li < pi || !strings.Contains(out[pi:li], "added set-uid, mode 4755, uid 0, gid 0: /usr/bin/evil") || !strings.Contains(out[pi:li], "posture: 2 findings") {
		t.Errorf("posture section missing or after the lists:\n%s", out)
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Posture struct {
			Findings, Waived int
			NewPrivileged    []struct {
				Path string
				What []string
			} `json:"new_privileged"`
			Report map[string]any
		}
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	// The embedded posture report is indented with the rest, as
	// json.Indent would.
	var ind bytes.Buffer
	if err := json.Indent(&ind, js.Bytes(), "", "  "); err != nil || ind.String() != js.String() {
		t.Errorf("JSON not indented as json.Indent does (%v):\n%s\nwant:\n%s", err, js.String(), ind.String())
	}
	r.Posture.JSON = []byte(`{"format":1,`)
	if err := WriteJSON(&js, r); err == nil {
		t.Error("a posture report that is not JSON rendered without an error")
	}
	r.Posture.JSON = []byte(`{"format":1,"findings":2}`)
	if doc.Posture.Findings != 2 || doc.Posture.Waived != 1 || len(doc.Posture.NewPrivileged) != 1 ||
		doc.Posture.NewPrivileged[0].Path != "/usr/bin/evil" || doc.Posture.Report["findings"] != 2.0 {
		t.Errorf("posture JSON = %+v", doc.Posture)
	}
	if s := Subject("h", r); !strings.HasSuffix(s, ", 1 new privileged file, 2 posture findings") {
		t.Errorf("subject %q", s)
	}
	// Nothing to say: one line, no section.
	r.Posture = &PostureInfo{Waived: 3, Ran: true, From: time.Unix(0, 0)}
	text.Reset()
	WriteText(&text, r)
	if !strings.Contains(text.String(), "Posture: no new set-uid, set-gid or capability files, no posture findings (3 waived) at 1970-01-01 00:00:00 +0000\n") {
		t.Errorf("quiet posture line missing:\n%s", text.String())
	}
	if s := Subject("h", r); strings.Contains(s, "posture") {
		t.Errorf("subject %q mentions posture with nothing found", s)
	}
}
