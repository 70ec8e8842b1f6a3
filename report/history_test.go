package report

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// histZone is a fixed non-UTC zone, so the tests see that names carry the
// wall clock of Now's location and not UTC.
var histZone = time.FixedZone("CET", 3600)

// histNow is 2026-11-21 10:15:00 in histZone.
var histNow = time.Date(2026, 11, 21, 10, 15, 0, 0, histZone)

// clock returns a Now func that always says t.
func histClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func histReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func histDirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestHistorySave(t *testing.T) {
	type save struct {
		kind       string
		text, json []byte
		wantID     string
	}
	tests := []struct {
		name  string
		saves []save
		want  []string // directory listing afterwards
	}{
		{
			name:  "one report",
			saves: []save{{"check", []byte("t1\n"), []byte("{}\n"), "check-20261121-101500"}},
			want:  []string{"check-20261121-101500.json", "check-20261121-101500.txt"},
		},
		{
			name: "same second gets -2 and -3",
			saves: []save{
				{"check", []byte("t1"), []byte("j1"), "check-20261121-101500"},
				{"check", []byte("t2"), []byte("j2"), "check-20261121-101500-2"},
				{"check", []byte("t3"), []byte("j3"), "check-20261121-101500-3"},
			},
			want: []string{
				"check-20261121-101500-2.json", "check-20261121-101500-2.txt",
				"check-20261121-101500-3.json", "check-20261121-101500-3.txt",
				"check-20261121-101500.json", "check-20261121-101500.txt",
			},
		},
		{
			name: "another kind in the same second needs no suffix",
			saves: []save{
				{"init", []byte("t1"), []byte("j1"), "init-20261121-101500"},
				{"check", []byte("t2"), []byte("j2"), "check-20261121-101500"},
			},
			want: []string{
				"check-20261121-101500.json", "check-20261121-101500.txt",
				"init-20261121-101500.json", "init-20261121-101500.txt",
			},
		},
		{
			name:  "text only",
			saves: []save{{"raid", []byte("array ok\n"), nil, "raid-20261121-101500"}},
			want:  []string{"raid-20261121-101500.txt"},
		},
		{
			name:  "empty text is still saved",
			saves: []save{{"check", []byte{}, []byte("{}"), "check-20261121-101500"}},
			want:  []string{"check-20261121-101500.json", "check-20261121-101500.txt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state", "reports")
			h := &History{Dir: dir, Now: histClock(histNow)}
			for _, s := range tt.saves {
				id, err := h.Save(s.kind, s.text, s.json)
				if err != nil {
					t.Fatalf("Save(%q) error: %v", s.kind, err)
				}
				if id != s.wantID {
					t.Errorf("Save(%q) = %q, want %q", s.kind, id, s.wantID)
				}
				if s.text != nil {
					if got := histReadFile(t, filepath.Join(dir, id+".txt")); got != string(s.text) {
						t.Errorf("%s.txt = %q, want %q", id, got, s.text)
					}
				}
				if s.json != nil {
					if got := histReadFile(t, filepath.Join(dir, id+".json")); got != string(s.json) {
						t.Errorf("%s.json = %q, want %q", id, got, s.json)
					}
				}
			}
			if got := histDirNames(t, dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("report_dir holds %q, want %q", got, tt.want)
			}
			for _, name := range tt.want {
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != historyFileMode {
					t.Errorf("%s mode = %v, want %v", name, fi.Mode(), fs.FileMode(historyFileMode))
				}
			}
			fi, err := os.Lstat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != fs.ModeDir|historyDirMode {
				t.Errorf("report_dir mode = %v, want %v", fi.Mode(), fs.ModeDir|historyDirMode)
			}
		})
	}
}

func TestHistorySaveStampIsNowsWallClock(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"utc", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "check-20260102-030405"},
		{"cet", histNow, "check-20261121-101500"},
		{"cet is not converted to utc", time.Date(2026, 12, 31, 23, 59, 59, 999, histZone), "check-20261231-235959"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &History{Dir: t.TempDir(), Now: histClock(tt.now)}
			id, err := h.Save("check", []byte("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.want {
				t.Errorf("Save = %q, want %q", id, tt.want)
			}
			it, err := h.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.now.Truncate(time.Second); !it.Time.Equal(want) || it.Time.Location() != tt.now.Location() {
				t.Errorf("Get(%q).Time = %v, want %v", id, it.Time, want)
			}
		})
	}
}

func TestHistorySaveUmask(t *testing.T) {
	// Save sets 0600 itself rather than trust the umask.
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	h := &History{Dir: t.TempDir(), Now: histClock(histNow)}
	id, err := h.Save("check", []byte("x"), []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".txt", ".json"} {
		fi, err := os.Lstat(filepath.Join(h.Dir, id+ext))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != historyFileMode {
			t.Errorf("%s%s mode = %v, want %v", id, ext, fi.Mode(), fs.FileMode(historyFileMode))
		}
	}
}

func TestHistorySaveNeverClobbers(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir, outside string)
		wantID  string
	}{
		{
			name: "stray json of the first id",
			prepare: func(t *testing.T, dir, _ string) {
				histWriteFile(t, filepath.Join(dir, "check-20261121-101500.json"), "stray")
			},
			wantID: "check-20261121-101500-2",
		},
		{
			name: "dangling symlink at the text name",
			prepare: func(t *testing.T, dir, outside string) {
				histSymlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, "check-20261121-101500.txt"))
			},
			wantID: "check-20261121-101500-2",
		},
		{
			name: "symlink to an existing file at the json name",
			prepare: func(t *testing.T, dir, outside string) {
				histWriteFile(t, filepath.Join(outside, "victim"), "precious")
				histSymlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, "check-20261121-101500.json"))
			},
			wantID: "check-20261121-101500-2",
		},
		{
			name: "directory at the text name",
			prepare: func(t *testing.T, dir, _ string) {
				if err := os.Mkdir(filepath.Join(dir, "check-20261121-101500.txt"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantID: "check-20261121-101500-2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			tt.prepare(t, dir, outside)
			h := &History{Dir: dir, Now: histClock(histNow)}
			id, err := h.Save("check", []byte("new text"), []byte("new json"))
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.wantID {
				t.Errorf("Save = %q, want %q", id, tt.wantID)
			}
			// Whatever the link pointed at is untouched: the file keeps
			// its content, a dangling target is still not created.
			b, err := os.ReadFile(filepath.Join(outside, "victim"))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				t.Fatal(err)
			case string(b) != "precious":
				t.Errorf("file behind the symlink now holds %q, want %q", b, "precious")
			}
			if got := histReadFile(t, filepath.Join(dir, id+".txt")); got != "new text" {
				t.Errorf("%s.txt = %q, want %q", id, got, "new text")
			}
		})
	}
}

func TestHistorySaveErrors(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		text    []byte
		prepare func(t *testing.T, root string) string // returns Dir
		wantErr error
	}{
		{name: "empty kind", kind: "", text: []byte("x"), wantErr: ErrInvalidKind},
		{name: "upper case kind", kind: "Check", text: []byte("x"), wantErr: ErrInvalidKind},
		{name: "kind with dash", kind: "ch-eck", text: []byte("x"), wantErr: ErrInvalidKind},
		{name: "kind with digit", kind: "check1", text: []byte("x"), wantErr: ErrInvalidKind},
		{name: "kind escaping the directory", kind: "../../etc/passwd", text: []byte("x"), wantErr: ErrInvalidKind},
		{name: "kind too long", kind: strings.Repeat("a", maxKindLen+1), text: []byte("x"), wantErr: ErrInvalidKind},
		{
			name: "report_dir is a symlink", kind: "check", text: []byte("x"),
			prepare: func(t *testing.T, root string) string {
				real := filepath.Join(root, "real")
				if err := os.Mkdir(real, 0o700); err != nil {
					t.Fatal(err)
				}
				histSymlink(t, real, filepath.Join(root, "link"))
				return filepath.Join(root, "link")
			},
			wantErr: ErrUnsafeDir,
		},
		{
			name: "report_dir is a file", kind: "check", text: []byte("x"),
			prepare: func(t *testing.T, root string) string {
				histWriteFile(t, filepath.Join(root, "file"), "")
				return filepath.Join(root, "file")
			},
			wantErr: syscall.ENOTDIR, // from MkdirAll
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "reports")
			if tt.prepare != nil {
				dir = tt.prepare(t, root)
			}
			h := &History{Dir: dir, Now: histClock(histNow)}
			id, err := h.Save(tt.kind, tt.text, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Save error = %v, want %v", err, tt.wantErr)
			}
			if id != "" {
				t.Errorf("Save id = %q, want none", id)
			}
			if tt.wantErr == ErrUnsafeDir {
				if names := histDirNames(t, filepath.Join(root, "real")); len(names) != 0 {
					t.Errorf("Save wrote %q through the symlink", names)
				}
			}
		})
	}
	t.Run("nothing to save", func(t *testing.T) {
		h := &History{Dir: t.TempDir(), Now: histClock(histNow)}
		if id, err := h.Save("check", nil, nil); err == nil {
			t.Errorf("Save(nil, nil) = %q, want an error", id)
		}
	})
}

func TestHistoryListGet(t *testing.T) {
	dir := t.TempDir()
	save := func(kind string, at time.Time, text string) string {
		t.Helper()
		h := &History{Dir: dir, Now: histClock(at)}
		id, err := h.Save(kind, []byte(text), []byte("{"+text+"}"))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	day := 24 * time.Hour
	save("init", histNow.Add(-3*day), "i")
	save("check", histNow.Add(-2*day), "c1")
	save("check", histNow.Add(-2*day), "c2")
	save("update", histNow.Add(-day), "u")
	save("raid", histNow, "r")
	// Things List must ignore.
	histWriteFile(t, filepath.Join(dir, "notes.txt"), "x")
	histWriteFile(t, filepath.Join(dir, "check-20261121-101500.txt.tmp-123"), "x")
	histWriteFile(t, filepath.Join(dir, "check-20261121-101500.txt.bak"), "x")
	histSymlink(t, filepath.Join(dir, "notes.txt"), filepath.Join(dir, "check-20261130-000000.txt"))
	if err := os.Mkdir(filepath.Join(dir, "check-20261130-000001.txt"), 0o700); err != nil {
		t.Fatal(err)
	}

	h := &History{Dir: dir, Now: histClock(histNow)}
	items, err := h.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "init-20261118-101500", Kind: "init", Time: histNow.Add(-3 * day), Size: 1 + 3},
		{ID: "check-20261119-101500", Kind: "check", Time: histNow.Add(-2 * day), Size: 2 + 4},
		{ID: "check-20261119-101500-2", Kind: "check", Time: histNow.Add(-2 * day), Size: 2 + 4},
		{ID: "update-20261120-101500", Kind: "update", Time: histNow.Add(-day), Size: 1 + 3},
		{ID: "raid-20261121-101500", Kind: "raid", Time: histNow, Size: 1 + 3},
	}
	for i := range want {
		want[i].TextPath = filepath.Join(dir, want[i].ID+".txt")
		want[i].JSONPath = filepath.Join(dir, want[i].ID+".json")
	}
	if !reflect.DeepEqual(items, want) {
		t.Errorf("List() =\n%+v\nwant\n%+v", items, want)
	}

	tests := []struct {
		ref     string
		wantID  string
		wantErr error
	}{
		{ref: "latest", wantID: "raid-20261121-101500"},
		{ref: "latest-check", wantID: "check-20261119-101500-2"},
		{ref: "latest-init", wantID: "init-20261118-101500"},
		{ref: "check-20261119-101500", wantID: "check-20261119-101500"},
		{ref: "check-20261119-101500-2", wantID: "check-20261119-101500-2"},
		{ref: "latest-accept", wantErr: ErrNoReport},
		{ref: "check-20261119-101501", wantErr: ErrNoReport},
		{ref: "check-20261119-101500-3", wantErr: ErrNoReport},
		{ref: "check-20261130-000000", wantErr: ErrNoReport}, // a symlink, ignored
		{ref: "", wantErr: ErrInvalidID},
		{ref: "latest-", wantErr: ErrInvalidID},
		{ref: "latest-Check", wantErr: ErrInvalidID},
		{ref: "check-20261119-101500.txt", wantErr: ErrInvalidID},
		{ref: "check-20261119-101500-1", wantErr: ErrInvalidID},
		{ref: "../../etc/passwd", wantErr: ErrInvalidID},
		{ref: "check-2026", wantErr: ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			it, err := h.Get(tt.ref)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get(%q) error = %v, want %v", tt.ref, err, tt.wantErr)
			}
			if it.ID != tt.wantID {
				t.Errorf("Get(%q) = %q, want %q", tt.ref, it.ID, tt.wantID)
			}
			if tt.wantErr == nil && histReadFile(t, it.JSONPath) != "{"+histReadFile(t, it.TextPath)+"}" {
				t.Errorf("Get(%q) paths do not belong together: %s %s", tt.ref, it.TextPath, it.JSONPath)
			}
		})
	}
}

func TestHistoryEmpty(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"missing report_dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }},
		{"empty report_dir", func(t *testing.T) string { return t.TempDir() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &History{Dir: tt.dir(t)}
			items, err := h.List()
			if err != nil || len(items) != 0 {
				t.Errorf("List() = %v, %v, want empty, nil", items, err)
			}
			if _, err := h.Get("latest"); !errors.Is(err, ErrNoReport) {
				t.Errorf("Get(latest) error = %v, want %v", err, ErrNoReport)
			}
		})
	}
	t.Run("symlinked report_dir", func(t *testing.T) {
		root := t.TempDir()
		histSymlink(t, t.TempDir(), filepath.Join(root, "link"))
		h := &History{Dir: filepath.Join(root, "link")}
		if _, err := h.List(); !errors.Is(err, ErrUnsafeDir) {
			t.Errorf("List() error = %v, want %v", err, ErrUnsafeDir)
		}
	})
}

func TestParseReportName(t *testing.T) {
	tests := []struct {
		name string
		want stampName
		ok   bool
	}{
		{"check-20261121-101500.txt", stampName{"check", "20261121-101500", 1, ".txt"}, true},
		{"check-20261121-101500-2.json", stampName{"check", "20261121-101500", 2, ".json"}, true},
		{"raid-20240229-235959-9999.txt", stampName{"raid", "20240229-235959", 9999, ".txt"}, true},
		{"check-20261121-101500-10000.txt", stampName{}, false},
		{"check-20261121-101500-1.txt", stampName{}, false},
		{"check-20261121-101500-02.txt", stampName{}, false},
		{"check-20261121-101500-.txt", stampName{}, false},
		{"check-20261121-101500.db", stampName{}, false},
		{"check-20261121-101500.txt.tmp-1", stampName{}, false},
		{"check-20261121-101500.TXT", stampName{}, false},
		{"check-20261121-101500", stampName{}, false},
		{"Check-20261121-101500.txt", stampName{}, false},
		{"-20261121-101500.txt", stampName{}, false},
		{"check-20261321-101500.txt", stampName{}, false}, // month 13
		{"check-20250229-101500.txt", stampName{}, false}, // not a leap year
		{"check-20261121-241500.txt", stampName{}, false},
		{"check-20261121-1015001.txt", stampName{}, false},
		{"check-2026112-1101500.txt", stampName{}, false},
		{"check-20261121_101500.txt", stampName{}, false},
		{"check-2026112a-101500.txt", stampName{}, false},
		{"check--20261121-101500.txt", stampName{}, false},
		{"baseline-20261121-101500.db", stampName{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseReportName(tt.name)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseReportName(%q) = %+v, %v, want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
			}
			if ok && got.format() != tt.name {
				t.Errorf("format() = %q, want %q", got.format(), tt.name)
			}
		})
	}
}

func TestParseBaselineName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"baseline-20261121-101500.db", true},
		{"baseline-20261121-101500-3.db", true},
		{"baseline.db", false},
		{"last-check.db", false},
		{"lock", false},
		{"baseline-20261121-101500.db.tmp-123", false},
		{"baseline.db.tmp-123", false},
		{"baseline-20261121-101500.txt", false},
		{"check-20261121-101500.db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := parseBaselineName(tt.name); ok != tt.ok {
				t.Errorf("parseBaselineName(%q) ok = %v, want %v", tt.name, ok, tt.ok)
			}
		})
	}
}

// FuzzParseReportName checks the name parsers never panic and that every
// name they accept formats back to itself, so one report has one name.
func FuzzParseReportName(f *testing.F) {
	seeds, err := os.Open(filepath.Join("testdata", "history", "names.txt"))
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(seeds)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	seeds.Close()
	f.Fuzz(func(t *testing.T, name string) {
		if s, ok := parseReportName(name); ok {
			if s.format() != name {
				t.Errorf("parseReportName(%q).format() = %q", name, s.format())
			}
			if s.time(time.UTC).IsZero() {
				t.Errorf("parseReportName(%q) has no time", name)
			}
		}
		if s, ok := parseBaselineName(name); ok && s.format() != name {
			t.Errorf("parseBaselineName(%q).format() = %q", name, s.format())
		}
		if s, ok := parseID(name); ok && s.id() != name {
			t.Errorf("parseID(%q).id() = %q", name, s.id())
		}
		if isStaleTempName(name) && !strings.Contains(name, histTempInfix) {
			t.Errorf("isStaleTempName(%q) without %q", name, histTempInfix)
		}
	})
}

func histWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func histSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryPrewrite: a Save after Prewrite keeps the same files as one
// without, whether the saved reports begin with what was prewritten (the
// files are appended to) or not (written whole); what is not taken, or
// discarded, leaves no temporary file behind.
func TestHistoryPrewrite(t *testing.T) {
	body, tail := strings.Repeat("body line\n", 5000), "tail\n"
	for _, tt := range []struct {
		name       string
		text, json string // what Save is given after Prewrite(body, "{body")
	}{
		{"appended", body + tail, `{body` + tail},
		{"text differs", "other " + body + tail, `{body` + tail},
		{"both differ", "x", "{}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := &History{Dir: dir, Now: histClock(histNow)}
			h.Prewrite("update", []byte(body), []byte(`{body`))
			<-h.pre.done
			pre := map[string]uint64{} // the prewritten files' inodes
			for ext, p := range h.pre.parts {
				var st syscall.Stat_t
				if p.f == nil || syscall.Fstat(int(p.f.Fd()), &st) != nil {
					t.Fatalf("%s was not prewritten", ext)
				}
				pre[ext] = st.Ino
			}
			id, err := h.Save("update", []byte(tt.text), []byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			for ext, ino := range pre {
				fi, err := os.Stat(filepath.Join(dir, id+ext))
				if err != nil {
					t.Fatal(err)
				}
				taken := fi.Sys().(*syscall.Stat_t).Ino == ino
				if want := strings.HasPrefix(map[string]string{extText: tt.text, extJSON: tt.json}[ext], map[string]string{extText: body, extJSON: "{body"}[ext]); taken != want {
					t.Errorf("%s: the prewritten file was taken: %v, want %v", ext, taken, want)
				}
			}
			if got := histReadFile(t, filepath.Join(dir, id+".txt")); got != tt.text {
				t.Errorf("%s.txt holds %d bytes, want %d", id, len(got), len(tt.text))
			}
			if got := histReadFile(t, filepath.Join(dir, id+".json")); got != tt.json {
				t.Errorf("%s.json = %q, want %q", id, got, tt.json)
			}
			if got, want := histDirNames(t, dir), []string{id + ".json", id + ".txt"}; !reflect.DeepEqual(got, want) {
				t.Errorf("report_dir holds %q, want %q", got, want)
			}
		})
	}
	t.Run("discarded", func(t *testing.T) {
		dir := t.TempDir()
		h := &History{Dir: dir, Now: histClock(histNow)}
		h.Prewrite("update", []byte(body), []byte(`{body`))
		h.DiscardPrewrite()
		if got := histDirNames(t, dir); len(got) != 0 {
			t.Errorf("report_dir holds %q after DiscardPrewrite, want nothing", got)
		}
		h.DiscardPrewrite() // twice is harmless
	})
}
