package report

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

// stampAt names a file stamped at t: kind-YYYYMMDD-HHMMSS + ext.
func histStampAt(kind string, t time.Time, ext string) string {
	return kind + "-" + t.Format(stampLayout) + ext
}

// pruneFixture is one file or link Prune may meet.
type pruneFixture struct {
	dir   string // "reports" or "state"
	name  string
	mtime time.Time // zero: now
	link  string    // non-empty: a symlink to this path (relative to the test root)
	isDir bool
}

func buildPruneTree(t *testing.T, root string, fx []pruneFixture) {
	t.Helper()
	for _, d := range []string{"reports", "state", "outside"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	histWriteFile(t, filepath.Join(root, "outside", "target"), "precious")
	for _, f := range fx {
		path := filepath.Join(root, f.dir, f.name)
		switch {
		case f.link != "":
			histSymlink(t, filepath.Join(root, f.link), path)
			continue
		case f.isDir:
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		default:
			histWriteFile(t, path, f.name)
		}
		if !f.mtime.IsZero() {
			if err := os.Chtimes(path, f.mtime, f.mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// remaining lists what is left under root's reports and state dirs, as
// "dir/name".
func histRemaining(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"reports", "state"} {
		for _, n := range histDirNames(t, filepath.Join(root, d)) {
			out = append(out, d+"/"+n)
		}
	}
	sort.Strings(out)
	return out
}

func TestPrune(t *testing.T) {
	const maxAge = 2160 * time.Hour // the default report_maxage, 90 days
	now := histNow
	cutoff := now.Add(-maxAge)
	old := cutoff.Add(-time.Second)
	ancient := time.Date(1990, 1, 1, 0, 0, 0, 0, histZone)
	young := cutoff.Add(time.Second)

	// Files every case starts from.
	tree := []pruneFixture{
		// Reports: older than report_maxage go, the rest stay.
		{dir: "reports", name: histStampAt("check", old, ".txt")},
		{dir: "reports", name: histStampAt("check", old, ".json")},
		{dir: "reports", name: histStampAt("check", old, "-2.txt")},
		{dir: "reports", name: histStampAt("init", ancient, ".json")},
		{dir: "reports", name: histStampAt("check", cutoff, ".txt")}, // exactly max age: not older
		{dir: "reports", name: histStampAt("check", young, ".txt")},
		{dir: "reports", name: histStampAt("update", now, ".json")},
		// The name decides, not the mtime.
		{dir: "reports", name: histStampAt("raid", young, ".txt"), mtime: ancient},
		{dir: "reports", name: histStampAt("raid", old, ".txt"), mtime: now},
		// Temporary files: an hour old goes, a fresh one (a Save in
		// progress) stays.
		{dir: "reports", name: histStampAt("check", now, ".txt.tmp-111"), mtime: now.Add(-2 * time.Hour)},
		{dir: "reports", name: histStampAt("check", now, ".json.tmp-222"), mtime: now.Add(-time.Minute)},
		// Not ours, never touched however old.
		{dir: "reports", name: "notes.txt", mtime: ancient},
		{dir: "reports", name: histStampAt("check", ancient, ".txt.bak"), mtime: ancient},
		{dir: "reports", name: histStampAt("Check", ancient, ".txt"), mtime: ancient},
		{dir: "reports", name: "aide.log.20110315-162841", mtime: ancient},
		{dir: "reports", name: "x.tmp-1", mtime: ancient},
		{dir: "reports", name: histStampAt("check", ancient, ".db"), mtime: ancient},
		// A symlink named like an old report is skipped, not followed.
		{dir: "reports", name: histStampAt("check", ancient, "-3.txt"), link: "outside/target"},
		{dir: "reports", name: histStampAt("check", ancient, "-4.txt.tmp-1"), link: "outside/target"},
		// A directory named like a report is not a report.
		{dir: "reports", name: histStampAt("check", ancient, "-5.txt"), isDir: true},
		// state_dir: old generations go; the active baseline,
		// last-check.db and the lock stay however old.
		{dir: "state", name: histStampAt("baseline", old, ".db")},
		{dir: "state", name: histStampAt("baseline", ancient, "-2.db")},
		{dir: "state", name: histStampAt("baseline", young, ".db")},
		{dir: "state", name: "baseline.db", mtime: ancient},
		{dir: "state", name: "last-check.db", mtime: ancient},
		{dir: "state", name: "lock", mtime: ancient},
		{dir: "state", name: "baseline.db.tmp-123", mtime: ancient},
		{dir: "state", name: histStampAt("baseline", ancient, ".db.tmp-9"), mtime: ancient},
		{dir: "state", name: histStampAt("check", ancient, ".txt"), mtime: ancient}, // a report, but not in report_dir
		{dir: "state", name: histStampAt("baseline", ancient, "-3.db"), link: "outside/target"},
	}
	// What is left in every case with pruning on.
	kept := []string{
		"reports/" + histStampAt("check", cutoff, ".txt"),
		"reports/" + histStampAt("check", young, ".txt"),
		"reports/" + histStampAt("update", now, ".json"),
		"reports/" + histStampAt("raid", young, ".txt"),
		"reports/" + histStampAt("check", now, ".json.tmp-222"),
		"reports/notes.txt",
		"reports/" + histStampAt("check", ancient, ".txt.bak"),
		"reports/" + histStampAt("Check", ancient, ".txt"),
		"reports/aide.log.20110315-162841",
		"reports/x.tmp-1",
		"reports/" + histStampAt("check", ancient, ".db"),
		"reports/" + histStampAt("check", ancient, "-3.txt"),
		"reports/" + histStampAt("check", ancient, "-4.txt.tmp-1"),
		"reports/" + histStampAt("check", ancient, "-5.txt"),
		"state/" + histStampAt("baseline", young, ".db"),
		"state/baseline.db",
		"state/last-check.db",
		"state/lock",
		"state/baseline.db.tmp-123",
		"state/" + histStampAt("baseline", ancient, ".db.tmp-9"),
		"state/" + histStampAt("check", ancient, ".txt"),
		"state/" + histStampAt("baseline", ancient, "-3.db"),
	}
	removedAll := []string{
		"reports/" + histStampAt("check", old, ".txt"),
		"reports/" + histStampAt("check", old, ".json"),
		"reports/" + histStampAt("check", old, "-2.txt"),
		"reports/" + histStampAt("init", ancient, ".json"),
		"reports/" + histStampAt("raid", old, ".txt"),
		"reports/" + histStampAt("check", now, ".txt.tmp-111"),
		"state/" + histStampAt("baseline", old, ".db"),
		"state/" + histStampAt("baseline", ancient, "-2.db"),
	}
	tempOnly := []string{"reports/" + histStampAt("check", now, ".txt.tmp-111")}
	minus := func(all, drop []string) []string {
		var out []string
	next:
		for _, a := range all {
			for _, d := range drop {
				if a == d {
					continue next
				}
			}
			out = append(out, a)
		}
		return out
	}
	plus := func(a, b []string) []string {
		out := append(append([]string(nil), a...), b...)
		sort.Strings(out)
		return out
	}

	tests := []struct {
		name        string
		maxAge      time.Duration
		active      string // relative to root; "" = state/baseline.db
		extra       func(t *testing.T, root string)
		wantRemoved []string
	}{
		{name: "default max age", maxAge: maxAge, wantRemoved: removedAll},
		{name: "zero max age prunes only stale temp files", maxAge: 0, wantRemoved: tempOnly},
		{name: "negative max age prunes only stale temp files", maxAge: -time.Hour, wantRemoved: tempOnly},
		{
			name:   "active baseline under a kept name is never pruned",
			maxAge: maxAge, active: "state/" + histStampAt("baseline", ancient, "-2.db"),
			wantRemoved: minus(removedAll, []string{"state/" + histStampAt("baseline", ancient, "-2.db")}),
		},
		{
			name:   "a hard link to the active baseline is never pruned",
			maxAge: maxAge,
			extra: func(t *testing.T, root string) {
				// Replace the old generation by a second name of baseline.db.
				p := filepath.Join(root, "state", histStampAt("baseline", old, ".db"))
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(filepath.Join(root, "state", "baseline.db"), p); err != nil {
					t.Fatal(err)
				}
			},
			wantRemoved: minus(removedAll, []string{"state/" + histStampAt("baseline", old, ".db")}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			buildPruneTree(t, root, tree)
			if tt.extra != nil {
				tt.extra(t, root)
			}
			active := tt.active
			if active == "" {
				active = "state/baseline.db"
			}
			removed, err := Prune(filepath.Join(root, "reports"), filepath.Join(root, "state"), tt.maxAge, now, filepath.Join(root, active))
			if err != nil {
				t.Fatalf("Prune error: %v", err)
			}
			var got []string
			for _, p := range removed {
				rel, err := filepath.Rel(root, p)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rel)
			}
			want := append([]string(nil), tt.wantRemoved...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Prune removed\n%q\nwant\n%q", got, want)
			}
			// Everything not removed is still there.
			wantLeft := plus(kept, minus(removedAll, tt.wantRemoved))
			if left := histRemaining(t, root); !reflect.DeepEqual(left, wantLeft) {
				t.Errorf("left behind\n%q\nwant\n%q", left, wantLeft)
			}
			if got := histReadFile(t, filepath.Join(root, "outside", "target")); got != "precious" {
				t.Errorf("symlink target now holds %q", got)
			}
			// A second pass finds nothing more to do.
			again, err := Prune(filepath.Join(root, "reports"), filepath.Join(root, "state"), tt.maxAge, now, filepath.Join(root, active))
			if err != nil || len(again) != 0 {
				t.Errorf("second Prune = %q, %v, want nothing", again, err)
			}
		})
	}
}

func TestPruneDirs(t *testing.T) {
	now := histNow
	old := now.Add(-48 * time.Hour)
	tests := []struct {
		name    string
		setup   func(t *testing.T, root string) (reportDir, stateDir string)
		want    []string // removed, relative to root
		wantErr error
	}{
		{
			name: "report_dir is state_dir",
			setup: func(t *testing.T, root string) (string, string) {
				d := filepath.Join(root, "state")
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
				histWriteFile(t, filepath.Join(d, histStampAt("check", old, ".txt")), "")
				histWriteFile(t, filepath.Join(d, histStampAt("baseline", old, ".db")), "")
				histWriteFile(t, filepath.Join(d, histStampAt("baseline", old, ".txt")), "")
				histWriteFile(t, filepath.Join(d, "baseline.db"), "")
				return d, d + "/"
			},
			want: []string{
				"state/" + histStampAt("baseline", old, ".db"),
				"state/" + histStampAt("baseline", old, ".txt"),
				"state/" + histStampAt("check", old, ".txt"),
			},
		},
		{
			name: "missing directories",
			setup: func(t *testing.T, root string) (string, string) {
				return filepath.Join(root, "none", "reports"), filepath.Join(root, "none")
			},
		},
		{
			name: "empty names skip both",
			setup: func(t *testing.T, root string) (string, string) {
				return "", ""
			},
		},
		{
			name: "symlinked report_dir is refused, state_dir still pruned",
			setup: func(t *testing.T, root string) (string, string) {
				real := filepath.Join(root, "real")
				state := filepath.Join(root, "state")
				for _, d := range []string{real, state} {
					if err := os.Mkdir(d, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				histWriteFile(t, filepath.Join(real, histStampAt("check", old, ".txt")), "")
				histWriteFile(t, filepath.Join(state, histStampAt("baseline", old, ".db")), "")
				histSymlink(t, real, filepath.Join(root, "link"))
				return filepath.Join(root, "link"), state
			},
			want:    []string{"state/" + histStampAt("baseline", old, ".db")},
			wantErr: ErrUnsafeDir,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			rd, sd := tt.setup(t, root)
			removed, err := Prune(rd, sd, time.Hour, now, filepath.Join(sd, "baseline.db"))
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Errorf("Prune error = %v, want %v", err, tt.wantErr)
			}
			var got []string
			for _, p := range removed {
				rel, _ := filepath.Rel(root, p)
				got = append(got, rel)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Prune removed %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPruneWithHistory(t *testing.T) {
	// Reports Save writes are what Prune removes, with the same clock.
	dir := t.TempDir()
	day := 24 * time.Hour
	var ids []string
	for _, age := range []time.Duration{100 * day, 91 * day, 89 * day, time.Hour} {
		h := &History{Dir: dir, Now: histClock(histNow.Add(-age))}
		id, err := h.Save("check", []byte("t"), []byte("j"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	removed, err := Prune(dir, "", 90*day, histNow, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 4 {
		t.Errorf("Prune removed %q, want the 4 files of %q", removed, ids[:2])
	}
	h := &History{Dir: dir, Now: histClock(histNow)}
	items, err := h.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ID)
	}
	if !reflect.DeepEqual(got, ids[2:]) {
		t.Errorf("List after Prune = %q, want %q", got, ids[2:])
	}
}
