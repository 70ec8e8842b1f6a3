package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"opsagent/internal/atomicfile"
)

// ErrCorruptState is the class of an alert state file that exists but
// cannot be read back. It is never reset silently: the admin must look.
var ErrCorruptState = errors.New("raidcheck: corrupt alert state")

// alertStateFormat versions the state file.
const alertStateFormat = 1

// stateFileMode: the file says which arrays are broken; only root reads it.
const stateFileMode = 0o600

// AlertState is what the alerting remembers between runs. The zero value
// means "never ran".
type AlertState struct {
	Verdict Verdict `json:"verdict"`
	// Warnings is true when the last run saw a component warning (BBU,
	// cache policy, predictive failure, enclosure alarm).
	Warnings bool `json:"warnings,omitempty"`
	// Since is when Verdict (and Warnings) began; zero before the first
	// run.
	Since time.Time `json:"since"`
	// LastMail is when the last mail went out; zero if never.
	LastMail time.Time `json:"last_mail"`
	// Summary is the last run's one-line summary, for the next mail.
	Summary string `json:"summary,omitempty"`
}

// clean reports whether the state needs nobody's attention.
func (s AlertState) clean() bool { return s.Verdict == OK && !s.Warnings }

// The mail kinds Decide returns.
const (
	MailAlert     = "alert"     // the state changed to something not ok
	MailRecovered = "recovered" // back to ok after not ok
	MailRepeat    = "repeat"    // still not ok, repeat interval passed
)

// Decide says whether this run mails, and what state to save. It is pure:
// the clock and the previous state come in, the next state goes out.
//
// It mails (kind MailAlert) on every change of verdict to one that is not
// OK, and when OK gains component warnings; (kind MailRecovered) when the
// verdict returns to OK without warnings from anything else; and (kind
// MailRepeat) when nothing changed but the state is still not clean and
// at least repeat has passed since the last mail (or the clock went back
// before it). Warnings that come or go while the verdict is not OK do not
// mail by themselves: the repeat carries them. It is silent when all is OK
// and unchanged, and on the very first run (zero prev) when all is OK; a
// first run that is not OK mails an alert. repeat <= 0 turns repeats off.
// summary is stored for the next run's mail.
func Decide(prev AlertState, cur Verdict, warnings bool, summary string, now time.Time, repeat time.Duration) (mail bool, kind string, next AlertState) {
	next = AlertState{Verdict: cur, Warnings: warnings, Since: prev.Since, LastMail: prev.LastMail, Summary: summary}
	first := prev.Since.IsZero()
	changed := first || cur != prev.Verdict || (cur == OK && warnings != prev.Warnings)
	if changed {
		next.Since = now
	}
	switch {
	case changed && next.clean():
		if !first && !prev.clean() {
			mail, kind = true, MailRecovered
		}
	case changed:
		mail, kind = true, MailAlert
	case !next.clean() && repeat > 0 && (now.Sub(prev.LastMail) >= repeat || now.Before(prev.LastMail)):
		mail, kind = true, MailRepeat
	}
	if mail {
		next.LastMail = now
	}
	return mail, kind, next
}

// stateFile is the JSON on disk.
type stateFile struct {
	Format int `json:"format"`
	AlertState
}

// LoadAlertState reads the state saved by SaveAlertState. A missing file
// is the zero state (first run). A file that cannot be parsed is an error
// wrapping ErrCorruptState and naming the file (*fs.PathError): it is
// never reset silently, since that would re-send or lose an alert.
func LoadAlertState(path string) (AlertState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return AlertState{}, nil
	}
	if err != nil {
		return AlertState{}, err
	}
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return AlertState{}, &fs.PathError{Op: "load alert state", Path: path, Err: fmt.Errorf("%w: %w", ErrCorruptState, err)}
	}
	if dec.More() {
		return AlertState{}, &fs.PathError{Op: "load alert state", Path: path, Err: fmt.Errorf("%w: data after the JSON object", ErrCorruptState)}
	}
	if f.Format != alertStateFormat {
		return AlertState{}, &fs.PathError{Op: "load alert state", Path: path, Err: fmt.Errorf("%w: format %d, want %d", ErrCorruptState, f.Format, alertStateFormat)}
	}
	return f.AlertState, nil
}

// SaveAlertState writes st to path atomically: a temporary file in the same
// directory, mode 0600, synced, then renamed over path, and the directory
// synced, so a crash leaves the old state or the new one, never half.
func SaveAlertState(path string, st AlertState) (err error) {
	b, err := json.MarshalIndent(stateFile{Format: alertStateFormat, AlertState: st}, "", "  ")
	if err != nil {
		return fmt.Errorf("save alert state %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), stateFileMode); err != nil {
		return fmt.Errorf("save alert state: %w", err)
	}
	return nil
}
