package raidcheck

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDecide runs sequences of probe results through Decide with an
// injected clock, carrying the state from step to step.
func TestDecide(t *testing.T) {
	t0 := time.Date(2025, 5, 4, 6, 25, 0, 0, time.UTC)
	const day = 24 * time.Hour
	type step struct {
		at       time.Duration // after t0
		verdict  Verdict
		warnings bool
		mail     bool
		kind     string
	}
	tests := []struct {
		name   string
		repeat time.Duration
		steps  []step
	}{
		{"first run ok is silent, ok stays silent", day, []step{
			{0, OK, false, false, ""},
			{day, OK, false, false, ""},
			{30 * day, OK, false, false, ""},
		}},
		{"first run not ok alerts", day, []step{
			{0, Degraded, false, true, MailAlert},
		}},
		{"degraded, repeat after 24h, not before, recovered, silent", day, []step{
			{0, OK, false, false, ""},
			{1 * time.Hour, Degraded, false, true, MailAlert},
			{2 * time.Hour, Degraded, false, false, ""},
			{day, Degraded, false, false, ""},                    // 23h after the mail
			{day + time.Hour, Degraded, false, true, MailRepeat}, // 24h after it
			{day + 2*time.Hour, Degraded, false, false, ""},
			{2*day + time.Hour, Degraded, false, true, MailRepeat},
			{2*day + 2*time.Hour, OK, false, true, MailRecovered},
			{3 * day, OK, false, false, ""},
			{10 * day, OK, false, false, ""},
		}},
		{"degraded then failed is a change", day, []step{
			{0, Degraded, false, true, MailAlert},
			{time.Hour, Failed, false, true, MailAlert},
			{2 * time.Hour, Failed, false, false, ""},
		}},
		{"rebuilding then ok then degraded", day, []step{
			{0, Rebuilding, false, true, MailAlert},
			{time.Hour, OK, false, true, MailRecovered},
			{2 * time.Hour, Degraded, false, true, MailAlert},
		}},
		{"unknown alerts and repeats", day, []step{
			{0, OK, false, false, ""},
			{time.Hour, Unknown, false, true, MailAlert},
			{day + time.Hour, Unknown, false, true, MailRepeat},
		}},
		{"warnings on ok alert, clear to recovered", day, []step{
			{0, OK, false, false, ""},
			{time.Hour, OK, true, true, MailAlert},
			{2 * time.Hour, OK, true, false, ""},
			{day + time.Hour, OK, true, true, MailRepeat},
			{day + 2*time.Hour, OK, false, true, MailRecovered},
		}},
		{"warnings coming and going while degraded do not mail", day, []step{
			{0, Degraded, false, true, MailAlert},
			{time.Hour, Degraded, true, false, ""},
			{2 * time.Hour, Degraded, false, false, ""},
		}},
		{"degraded with warnings to ok with warnings is a change", day, []step{
			{0, Degraded, true, true, MailAlert},
			{time.Hour, OK, true, true, MailAlert},
		}},
		{"clock set back repeats", day, []step{
			{10 * day, Degraded, false, true, MailAlert},
			{time.Hour, Degraded, false, true, MailRepeat},
		}},
		{"repeat off", 0, []step{
			{0, Degraded, false, true, MailAlert},
			{10 * day, Degraded, false, false, ""},
			{11 * day, OK, false, true, MailRecovered},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st AlertState
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				prev := st
				mail, kind, next := Decide(prev, s.verdict, s.warnings, "summary", now, tt.repeat)
				if mail != s.mail || kind != s.kind {
					t.Errorf("step %d (%v at +%v): Decide = %v %q, want %v %q", i, s.verdict, s.at, mail, kind, s.mail, s.kind)
				}
				if next.Verdict != s.verdict || next.Warnings != s.warnings || next.Summary != "summary" {
					t.Errorf("step %d: next = %+v", i, next)
				}
				if mail && !next.LastMail.Equal(now) || !mail && !next.LastMail.Equal(prev.LastMail) {
					t.Errorf("step %d: LastMail = %v, want %v", i, next.LastMail, now)
				}
				changedVerdict := prev.Since.IsZero() || prev.Verdict != s.verdict
				if changedVerdict && !next.Since.Equal(now) {
					t.Errorf("step %d: Since = %v, want %v", i, next.Since, now)
				}
				if !changedVerdict && s.warnings == prev.Warnings && !next.Since.Equal(prev.Since) {
					t.Errorf("step %d: Since moved from %v to %v", i, prev.Since, next.Since)
				}
				st = next
			}
		})
	}
}

func TestAlertStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "raid-alert.json")

	st, err := LoadAlertState(path)
	if err != nil || st != (AlertState{}) {
		t.Fatalf("LoadAlertState(missing) = %+v, %v, want zero state and nil", st, err)
	}
	want := AlertState{
		Verdict:  Degraded,
		Warnings: true,
		Since:    time.Date(2025, 5, 4, 6, 25, 0, 0, time.UTC),
		LastMail: time.Date(2025, 5, 5, 6, 25, 0, 0, time.UTC),
		Summary:  "c0/v0 RAID5 degraded",
	}
	if err := SaveAlertState(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	got, err := LoadAlertState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Since.Equal(want.Since) || !got.LastMail.Equal(want.LastMail) || got.Verdict != want.Verdict || got.Warnings != want.Warnings || got.Summary != want.Summary {
		t.Errorf("round trip = %+v, want %+v", got, want)
	}
	// Overwrite: still one file, no temporary left behind.
	want.Verdict = OK
	if err := SaveAlertState(path, want); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after two saves, want 1", len(ents))
	}
	if got, _ := LoadAlertState(path); got.Verdict != OK {
		t.Errorf("after overwrite verdict = %v, want ok", got.Verdict)
	}
}

func TestLoadAlertStateCorrupt(t *testing.T) {
	tests := []struct {
		name, data string
	}{
		{"empty", ""},
		{"garbage", "not json at all"},
		{"truncated", `{"format": 1, "verdict": "degraded", "since": "2025-05-04T06:2`},
		{"unknown verdict", `{"format": 1, "verdict": "sad", "since": "2025-05-04T06:25:00Z", "last_mail": "0001-01-01T00:00:00Z"}`},
		{"bad time", `{"format": 1, "verdict": "ok", "since": "yesterday", "last_mail": "0001-01-01T00:00:00Z"}`},
		{"wrong format", `{"format": 2, "verdict": "ok", "since": "2025-05-04T06:25:00Z", "last_mail": "0001-01-01T00:00:00Z"}`},
		{"no format", `{"verdict": "ok", "since": "2025-05-04T06:25:00Z", "last_mail": "0001-01-01T00:00:00Z"}`},
		{"unknown field", `{"format": 1, "verdict": "ok", "colour": "red", "since": "2025-05-04T06:25:00Z", "last_mail": "0001-01-01T00:00:00Z"}`},
		{"trailing data", `{"format": 1, "verdict": "ok", "since": "2025-05-04T06:25:00Z", "last_mail": "0001-01-01T00:00:00Z"} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadAlertState(path)
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("LoadAlertState = %v, want ErrCorruptState", err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != path {
				t.Errorf("error %v does not name %s", err, path)
			}
			// The corrupt file is left alone for the admin.
			if b, _ := os.ReadFile(path); string(b) != tt.data {
				t.Error("corrupt state file was modified")
			}
		})
	}
}

func TestAlertStateFileErrors(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: loading fails, not zero state.
	if _, err := LoadAlertState(dir); err == nil {
		t.Error("LoadAlertState(a directory) = nil error")
	}
	// Saving into a missing directory fails and leaves nothing behind.
	if err := SaveAlertState(filepath.Join(dir, "missing", "state.json"), AlertState{}); err == nil {
		t.Error("SaveAlertState into a missing directory = nil error")
	}
	// Saving over a directory fails; the temporary file is removed.
	target := filepath.Join(dir, "isdir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SaveAlertState(target, AlertState{}); err == nil {
		t.Error("SaveAlertState over a non-empty directory = nil error")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries left in %s, want only isdir", len(ents), dir)
	}
}
