package report

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"opsagent/internal/atomicfile"
)

// ErrGaveUp is returned (joined with the others) by Flush when it moved a
// message the server keeps refusing into the spool's failed/ directory.
var ErrGaveUp = errors.New("report: gave up on a spooled mail")

// ErrSpoolState is returned by decodeSpoolState for a sidecar it cannot
// read; Flush and List then treat the message as never attempted.
var ErrSpoolState = errors.New("report: malformed spool state")

// Defaults of Spool's give-up policy.
const (
	DefaultGiveUpAttempts = 5
	DefaultGiveUpAge      = 72 * time.Hour
)

// tmpMaxAge is how old a temporary file of an interrupted Put must be
// before Flush removes it: far longer than any Put takes, so a Put running
// in another process is never disturbed.
const tmpMaxAge = time.Hour

// spoolFailedDir is the subdirectory of messages Flush gave up on.
const spoolFailedDir = "failed"

// Spool is the on-disk queue of mails that could not be delivered
// (state_dir/spool). A message is a file NAME.eml holding the exact bytes
// to send, named
//
//	20260121-064308.123456789-1a2b3c4d.eml
//
// (UTC queue time with nanoseconds, then random hex), so that sorting names
// sorts by age. Beside it, NAME.state records the delivery attempts as JSON:
//
//	{"format":1,"attempts":2,"first_attempt":"2026-01-21T06:43:08Z","first_error":"mail dial: ...","last_attempt":"...","last_error":"..."}
//
// Crash safety: both files are written to a temporary "*.tmp-*" file in the
// same directory, synced, renamed and the directory synced. A crash before
// the rename leaves only a temporary file, which Flush never sends and
// removes once it is an hour old; a crash after it leaves a complete
// message, which the next Flush sends. The state file is written after the
// message, so a message without one counts as never attempted. Flush
// deletes a message only after the server accepted it, so a crash between
// acceptance and deletion sends it twice (with the same Message-ID, which
// lets mail readers drop the copy); a message is never lost.
//
// Give-up policy: the spool is retried oldest first and stays in order.
// A failure that would hit every message (server down, TLS, AUTH, sender
// or recipients refused, 4xx) stops the flush, and the message stays at the
// head. A failure of this message alone (a 5xx after DATA: too large,
// content refused) skips to the next one, so one poisoned message cannot
// hold back the rest; once such a message has failed GiveUpAttempts times
// and was queued more than GiveUpAge ago, it is moved to failed/ and
// reported (ErrGaveUp, a warning in Logger). Nothing is ever deleted unsent.
//
// Methods may be called from several goroutines and processes: Flush
// holds an exclusive lock on Dir/.lock; Put needs none.
type Spool struct {
	Dir            string           // created 0700 by Put
	Now            func() time.Time // nil = time.Now
	Logger         *slog.Logger     // warnings (given up, unreadable state); nil = discard
	GiveUpAttempts int              // 0 = DefaultGiveUpAttempts
	GiveUpAge      time.Duration    // 0 = DefaultGiveUpAge
}

// SpoolItem describes one spooled message.
type SpoolItem struct {
	Path        string    // the .eml file
	Queued      time.Time // from the name, UTC
	Size        int64     // bytes
	Attempts    int       // delivery attempts that failed, including the first
	FirstError  string    // why the first delivery failed
	LastError   string    // why the last one failed
	LastAttempt time.Time // zero when never retried
	Failed      bool      // in failed/: given up, kept for the admin
}

// spoolState is the sidecar NAME.state.
type spoolState struct {
	Format       int       `json:"format"`
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	FirstError   string    `json:"first_error,omitempty"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// spoolStateFormat is the version of the sidecar format.
const spoolStateFormat = 1

func (s *Spool) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Spool) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Put stores msg in the spool and returns its path. cause is why it could
// not be delivered (nil when it was never tried); it is recorded as the
// first failure. Once Put returns a path the message survives a crash.
func (s *Spool) Put(msg []byte, cause error) (string, error) {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", err
	}
	now := s.now().UTC()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s.%09d-%s", now.Format("20060102-150405"), now.Nanosecond(), hex.EncodeToString(rnd[:]))
	path := filepath.Join(s.Dir, base+".eml")
	if err := atomicfile.WriteFile(path, msg, 0o600); err != nil {
		return "", err
	}
	st := spoolState{Format: spoolStateFormat}
	if cause != nil {
		st.Attempts, st.FirstAttempt, st.FirstError = 1, now, cause.Error()
	}
	if err := s.writeState(path, &st); err != nil {
		// The message is safe; only its history is missing.
		s.logger().Warn("spool: state not written", "path", path, "err", err)
	}
	return path, nil
}

// statePath returns the sidecar of message path.
func statePath(path string) string { return strings.TrimSuffix(path, ".eml") + ".state" }

func (s *Spool) writeState(path string, st *spoolState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(statePath(path), append(b, '\n'), 0o600)
}

// readState returns the sidecar of message path; a missing or unreadable
// one is a message never attempted (a warning for the latter).
func (s *Spool) readState(path string) spoolState {
	b, err := os.ReadFile(statePath(path))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.logger().Warn("spool: state unreadable", "path", statePath(path), "err", err)
		}
		return spoolState{Format: spoolStateFormat}
	}
	st, err := decodeSpoolState(b)
	if err != nil {
		s.logger().Warn("spool: state unreadable", "path", statePath(path), "err", err)
		return spoolState{Format: spoolStateFormat}
	}
	return st
}

// decodeSpoolState parses a sidecar. Unknown formats and negative counts
// are errors wrapping ErrSpoolState.
func decodeSpoolState(b []byte) (spoolState, error) {
	var st spoolState
	if err := json.Unmarshal(b, &st); err != nil {
		return spoolState{}, fmt.Errorf("%w: %v", ErrSpoolState, err)
	}
	if st.Format != spoolStateFormat {
		return spoolState{}, fmt.Errorf("%w: format %d", ErrSpoolState, st.Format)
	}
	if st.Attempts < 0 {
		return spoolState{}, fmt.Errorf("%w: %d attempts", ErrSpoolState, st.Attempts)
	}
	return st, nil
}

// parseSpoolName returns the queue time encoded in a spool file name
// ("20260121-064308.123456789-1a2b3c4d.eml"), or false.
func parseSpoolName(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, ".eml")
	if !ok || len(base) < len("20060102-150405.000000000-") {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102-150405.000000000", base[:25])
	if err != nil || base[25] != '-' {
		return time.Time{}, false
	}
	return t, true
}

// spoolPending returns the names of the messages waiting in dir, oldest first.
func spoolPending(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() && strings.HasSuffix(de.Name(), ".eml") {
			names = append(names, de.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// List returns the spooled messages: those waiting, oldest first, then
// those given up on (Failed), oldest first. A missing spool is empty.
func (s *Spool) List() ([]SpoolItem, error) {
	var items []SpoolItem
	for _, sub := range []struct {
		dir    string
		failed bool
	}{{s.Dir, false}, {filepath.Join(s.Dir, spoolFailedDir), true}} {
		names, err := spoolPending(sub.dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			path := filepath.Join(sub.dir, n)
			fi, err := os.Stat(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // sent by a concurrent Flush
				}
				return nil, err
			}
			queued, ok := parseSpoolName(n)
			if !ok {
				queued = fi.ModTime().UTC()
			}
			st := s.readState(path)
			items = append(items, SpoolItem{Path: path, Queued: queued, Size: fi.Size(), Attempts: st.Attempts,
				FirstError: st.FirstError, LastError: st.LastError, LastAttempt: st.LastAttempt, Failed: sub.failed})
		}
	}
	return items, nil
}

// Flush tries to send every waiting message with send, oldest first (see
// Spool for the order and give-up policy), and returns how many were sent
// and how many still wait. A message is deleted only after send returned
// nil. The error joins the failure that stopped the flush and those of
// skipped or given-up messages, each naming its file (fs.PathError with Op
// "send"); it unwraps to the *SendError. ctx only stops the loop between
// messages (send has its own).
func (s *Spool) Flush(ctx context.Context, send func([]byte) error) (sent, remaining int, err error) {
	sent, remaining, _, err = s.flush(ctx, send)
	return sent, remaining, err
}

// flush is Flush that also returns the failure that stopped it early, if
// any, so Deliver knows the new message would only queue behind it.
func (s *Spool) flush(ctx context.Context, send func([]byte) error) (sent, remaining int, stop, err error) {
	if _, err := os.Stat(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil, nil
	}
	unlock, err := lockSpool(ctx, s.Dir)
	if err != nil {
		return 0, 0, nil, err
	}
	defer unlock()
	s.clean()
	names, err := spoolPending(s.Dir)
	if err != nil {
		return 0, 0, nil, err
	}
	var errs []error
	for i, n := range names {
		if cerr := ctx.Err(); cerr != nil {
			stop = cerr
			errs = append(errs, cerr)
			remaining += len(names) - i
			break
		}
		path := filepath.Join(s.Dir, n)
		msg, rerr := os.ReadFile(path)
		if errors.Is(rerr, fs.ErrNotExist) {
			continue
		}
		if rerr != nil {
			// Unreadable here means unreadable next time too: skip, keep.
			errs = append(errs, rerr)
			remaining++
			continue
		}
		serr := send(msg)
		if serr == nil {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				// Still on disk, so it would be sent again: stop here.
				errs = append(errs, err)
				remaining += len(names) - i
				stop = err
				break
			}
			os.Remove(statePath(path))
			atomicfile.SyncDir(s.Dir)
			sent++
			continue
		}
		failure := &fs.PathError{Op: "send", Path: path, Err: serr}
		errs = append(errs, failure)
		st := s.recordFailure(path, serr)
		if !perMessage(serr) {
			stop = serr
			remaining += len(names) - i
			break
		}
		queued, ok := parseSpoolName(n)
		if ok && st.Attempts >= s.giveUpAttempts() && s.now().Sub(queued) >= s.giveUpAge() {
			to, merr := s.giveUp(path)
			if merr != nil {
				errs = append(errs, merr)
				remaining++
				continue
			}
			s.logger().Warn("spool: gave up on a mail the server keeps refusing", "path", to, "attempts", st.Attempts, "err", serr)
			errs = append(errs, fmt.Errorf("%w: %s after %d attempts: %w", ErrGaveUp, to, st.Attempts, serr))
			continue
		}
		remaining++
	}
	return sent, remaining, stop, errors.Join(errs...)
}

func (s *Spool) giveUpAttempts() int {
	if s.GiveUpAttempts <= 0 {
		return DefaultGiveUpAttempts
	}
	return s.GiveUpAttempts
}

func (s *Spool) giveUpAge() time.Duration {
	if s.GiveUpAge <= 0 {
		return DefaultGiveUpAge
	}
	return s.GiveUpAge
}

// recordFailure counts a failed attempt in the sidecar of path.
func (s *Spool) recordFailure(path string, cause error) spoolState {
	st := s.readState(path)
	now := s.now().UTC()
	st.Attempts++
	if st.FirstError == "" {
		st.FirstAttempt, st.FirstError = now, cause.Error()
	} else {
		st.LastAttempt, st.LastError = now, cause.Error()
	}
	if err := s.writeState(path, &st); err != nil {
		s.logger().Warn("spool: state not written", "path", path, "err", err)
	}
	return st
}

// giveUp moves message path and its state into failed/ and returns the new
// path.
func (s *Spool) giveUp(path string) (string, error) {
	dir := filepath.Join(s.Dir, spoolFailedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	to := filepath.Join(dir, filepath.Base(path))
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	if err := os.Rename(statePath(path), statePath(to)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.logger().Warn("spool: state not moved", "path", statePath(path), "err", err)
	}
	atomicfile.SyncDir(dir)
	atomicfile.SyncDir(s.Dir)
	return to, nil
}

// clean removes what interrupted work left behind: temporary files older
// than tmpMaxAge and state files whose message is gone.
func (s *Spool) clean() {
	des, err := os.ReadDir(s.Dir)
	if err != nil {
		return
	}
	have := map[string]bool{}
	for _, de := range des {
		have[de.Name()] = true
	}
	now := s.now()
	for _, de := range des {
		n := de.Name()
		path := filepath.Join(s.Dir, n)
		switch {
		case strings.Contains(n, atomicfile.TempInfix):
			fi, err := de.Info()
			if err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > tmpMaxAge {
				s.logger().Debug("spool: removing an interrupted write", "path", path)
				os.Remove(path)
			}
		case strings.HasSuffix(n, ".state"):
			if !have[strings.TrimSuffix(n, ".state")+".eml"] {
				os.Remove(path)
			}
		}
	}
}

// Deliver sends msg as Send does, never losing it: it first flushes spool
// (older mails go first), then sends msg; when that fails, or when the
// flush stopped on a failure that msg would only queue behind (server down,
// AUTH refused), msg is put in spool and Deliver returns its path with the
// cause (a *SendError). err is nil only when the server accepted msg.
// Problems of older spooled messages are logged as warnings to cfg.Logger,
// not returned. If even the spool cannot be written, the path is "" and
// the error joins both causes; the caller must then show the report
// another way. A nil spool only sends.
func Deliver(ctx context.Context, cfg MailConfig, spool *Spool, msg []byte) (spooledPath string, err error) {
	if spool == nil {
		return "", Send(ctx, cfg, msg)
	}
	send := func(m []byte) error { return Send(ctx, cfg, m) }
	sent, remaining, stop, ferr := spool.flush(ctx, send)
	if sent > 0 {
		cfg.logger().Info("mail spool flushed", "sent", sent, "remaining", remaining)
	}
	if ferr != nil {
		cfg.logger().Warn("mail spool not empty", "remaining", remaining, "err", ferr)
	}
	if stop != nil {
		err = stop
	} else {
		err = send(msg)
		if err == nil {
			return "", nil
		}
	}
	path, perr := spool.Put(msg, err)
	if perr != nil {
		return "", errors.Join(err, perr)
	}
	return path, err
}
