package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// spoolClock is an injected clock that tests move by hand.
type spoolClock struct{ t time.Time }

func (c *spoolClock) now() time.Time { return c.t }

func newTestSpool(t *testing.T) (*Spool, *spoolClock) {
	clock := &spoolClock{t: time.Date(2026, 1, 21, 6, 43, 8, 0, time.UTC)}
	return &Spool{Dir: filepath.Join(t.TempDir(), "spool"), Now: clock.now}, clock
}

// mailTo builds a message whose body is text, for config cfg.
func mailTo(t *testing.T, cfg MailConfig, text string) []byte {
	t.Helper()
	msg, err := NewMessage(cfg, text, []byte(text+"\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// bodies returns the mailSubjects the server received, in order.
func mailSubjects(t *testing.T, be *mailBackend) []string {
	var out []string
	for _, r := range be.messages() {
		out = append(out, parseMail(t, r.data).subject)
	}
	return out
}

// TestSpoolServerDownThenUp is the acceptance path: server down, report
// spooled; server up, flush delivers it once; a second flush sends nothing.
func TestSpoolServerDownThenUp(t *testing.T) {
	be := &mailBackend{}
	addr, stop := startMailServer(t, be, smtpModePlain, nil, "")
	stop() // the server is down; its port refuses connections
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	sp, clock := newTestSpool(t)

	path, err := Deliver(context.Background(), cfg, sp, mailTo(t, cfg, "first report"))
	var se *SendError
	if !errors.As(err, &se) || se.Step != StepDial || !se.Temporary() {
		t.Fatalf("Deliver with the server down: %v, want a temporary dial error", err)
	}
	if filepath.Dir(path) != sp.Dir || !strings.HasSuffix(path, ".eml") {
		t.Fatalf("spooled path %q", path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spooled file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if di, err := os.Stat(sp.Dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode %v, want 0700", di.Mode())
	}
	items, err := sp.List()
	if err != nil || len(items) != 1 || items[0].Attempts != 1 || !strings.Contains(items[0].FirstError, "mail dial") {
		t.Fatalf("List after spooling: %+v, %v", items, err)
	}

	// A second report while still down queues behind the first, without
	// trying the server again for it.
	clock.t = clock.t.Add(time.Minute)
	if _, err := Deliver(context.Background(), cfg, sp, mailTo(t, cfg, "second report")); err == nil {
		t.Fatal("Deliver succeeded with the server down")
	}

	if _, stop := startMailServer(t, be, smtpModePlain, nil, addr); stop == nil {
		t.Fatal("no server")
	}
	sent, remaining, err := sp.Flush(context.Background(), func(m []byte) error { return Send(context.Background(), cfg, m) })
	if err != nil || sent != 2 || remaining != 0 {
		t.Fatalf("Flush = %d sent, %d remaining, %v; want 2, 0, nil", sent, remaining, err)
	}
	sent, remaining, err = sp.Flush(context.Background(), func(m []byte) error { return Send(context.Background(), cfg, m) })
	if err != nil || sent != 0 || remaining != 0 {
		t.Fatalf("second Flush = %d sent, %d remaining, %v; want 0, 0, nil", sent, remaining, err)
	}
	if got := mailSubjects(t, be); strings.Join(got, "|") != "first report|second report" {
		t.Errorf("server received %q, want each report once, in order", got)
	}
	// A third report flushes (nothing) and goes straight out.
	path, err = Deliver(context.Background(), cfg, sp, mailTo(t, cfg, "third report"))
	if err != nil || path != "" {
		t.Errorf("Deliver with the server up = %q, %v", path, err)
	}
	if n := len(be.messages()); n != 3 {
		t.Errorf("server has %d messages, want 3", n)
	}
	if items, _ := sp.List(); len(items) != 0 {
		t.Errorf("spool not empty: %+v", items)
	}
}

// TestSpoolCrash simulates the two crash points of Put and one of Flush.
func TestSpoolCrash(t *testing.T) {
	be := &mailBackend{}
	addr, _ := startMailServer(t, be, smtpModePlain, nil, "")
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	send := func(m []byte) error { return Send(context.Background(), cfg, m) }

	cases := []struct {
		name      string
		setup     func(t *testing.T, sp *Spool)
		wantSent  []string
		wantFiles []string // names left in the spool dir (besides .lock)
	}{
		{name: "crash before rename, fresh temp file",
			setup: func(t *testing.T, sp *Spool) {
				spoolWriteFile(t, filepath.Join(sp.Dir, "20260121-064308.000000000-aaaaaaaa.eml.tmp-123"), mailTo(t, cfg, "half written"), time.Time{})
			},
			wantFiles: []string{"20260121-064308.000000000-aaaaaaaa.eml.tmp-123"}},
		{name: "crash before rename, old temp file",
			setup: func(t *testing.T, sp *Spool) {
				spoolWriteFile(t, filepath.Join(sp.Dir, "20260121-044308.000000000-aaaaaaaa.eml.tmp-456"), mailTo(t, cfg, "half written"),
					sp.Now().Add(-2*time.Hour))
			}},
		{name: "crash after rename, before state",
			setup: func(t *testing.T, sp *Spool) {
				spoolWriteFile(t, filepath.Join(sp.Dir, "20260121-064308.000000000-bbbbbbbb.eml"), mailTo(t, cfg, "complete"), time.Time{})
			},
			wantSent: []string{"complete"}},
		{name: "crash after sending, before delete",
			setup: func(t *testing.T, sp *Spool) {
				// Flush deleted the message but not its state: the state
				// file is an orphan and goes.
				spoolWriteFile(t, filepath.Join(sp.Dir, "20260121-064308.000000000-cccccccc.state"), []byte(`{"format":1,"attempts":1}`), time.Time{})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp, _ := newTestSpool(t)
			if err := os.MkdirAll(sp.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, sp)
			before := len(be.messages())
			if _, _, err := sp.Flush(context.Background(), send); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			var got []string
			for _, r := range be.messages()[before:] {
				got = append(got, parseMail(t, r.data).subject)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantSent) {
				t.Errorf("sent %q, want %q", got, tc.wantSent)
			}
			if files := spoolFiles(t, sp.Dir); fmt.Sprint(files) != fmt.Sprint(tc.wantFiles) {
				t.Errorf("left in the spool %q, want %q", files, tc.wantFiles)
			}
		})
	}
}

func spoolWriteFile(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if de.Name() != ".lock" {
			names = append(names, de.Name())
		}
	}
	return names
}

// TestSpoolPoison: a message the server refuses after DATA does not hold
// back the rest, and is given up on only after enough attempts and time.
func TestSpoolPoison(t *testing.T) {
	be := &mailBackend{rejectData: "POISON"}
	addr, _ := startMailServer(t, be, smtpModePlain, nil, "")
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	send := func(m []byte) error { return Send(context.Background(), cfg, m) }
	sp, clock := newTestSpool(t)
	sp.GiveUpAttempts, sp.GiveUpAge = 3, 24*time.Hour

	for _, s := range []string{"POISON report", "good report 1", "good report 2"} {
		if _, err := sp.Put(mailTo(t, cfg, s), nil); err != nil {
			t.Fatal(err)
		}
		clock.t = clock.t.Add(time.Second)
	}
	steps := []struct {
		name      string
		advance   time.Duration
		sent      int
		remaining int
		gaveUp    bool
		attempts  int
	}{
		{name: "first flush skips the poisoned head", sent: 2, remaining: 1, attempts: 1},
		{name: "second flush, still young", advance: time.Hour, remaining: 1, attempts: 2},
		{name: "third attempt but younger than GiveUpAge", advance: time.Hour, remaining: 1, attempts: 3},
		{name: "old and tried enough: given up", advance: 24 * time.Hour, gaveUp: true, attempts: 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.t = clock.t.Add(st.advance)
			sent, remaining, err := sp.Flush(context.Background(), send)
			if sent != st.sent || remaining != st.remaining {
				t.Errorf("Flush = %d sent, %d remaining; want %d, %d", sent, remaining, st.sent, st.remaining)
			}
			var se *SendError
			if !errors.As(err, &se) || se.Step != StepData || !strings.Contains(err.Error(), "554") {
				t.Errorf("Flush error %v, want the 554 after DATA", err)
			}
			if errors.Is(err, ErrGaveUp) != st.gaveUp {
				t.Errorf("Flush error %v: ErrGaveUp %v, want %v", err, errors.Is(err, ErrGaveUp), st.gaveUp)
			}
			items, lerr := sp.List()
			if lerr != nil || len(items) != 1 {
				t.Fatalf("List: %+v, %v", items, lerr)
			}
			if items[0].Failed != st.gaveUp || items[0].Attempts != st.attempts {
				t.Errorf("item %+v: want Failed %v, %d attempts", items[0], st.gaveUp, st.attempts)
			}
			if st.gaveUp && filepath.Dir(items[0].Path) != filepath.Join(sp.Dir, "failed") {
				t.Errorf("given-up message at %q", items[0].Path)
			}
		})
	}
	if got := mailSubjects(t, be); strings.Join(got, "|") != "good report 1|good report 2" {
		t.Errorf("server received %q", got)
	}
}

// TestSpoolStopsWhenDown: with the server down only the head is tried and
// every message stays, in order.
func TestSpoolStopsWhenDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	sp, clock := newTestSpool(t)
	var paths []string
	for i := range 3 {
		p, err := sp.Put(mailTo(t, cfg, fmt.Sprint("report ", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		clock.t = clock.t.Add(time.Millisecond)
	}
	tries := 0
	sent, remaining, err := sp.Flush(context.Background(), func(m []byte) error {
		tries++
		return Send(context.Background(), cfg, m)
	})
	if sent != 0 || remaining != 3 || tries != 1 {
		t.Errorf("Flush = %d sent, %d remaining after %d tries; want 0, 3, 1", sent, remaining, tries)
	}
	var se *SendError
	if !errors.As(err, &se) || se.Step != StepDial {
		t.Errorf("Flush error %v, want the dial error", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != paths[0] {
		t.Errorf("Flush error %v does not name the head message %s", err, paths[0])
	}
	items, err := sp.List()
	if err != nil || len(items) != 3 {
		t.Fatalf("List: %v, %v", items, err)
	}
	for i, it := range items {
		wantAttempts := 0
		if i == 0 {
			wantAttempts = 1
		}
		if it.Path != paths[i] || it.Attempts != wantAttempts || it.Size == 0 || it.Queued.IsZero() {
			t.Errorf("item %d: %+v, want %s with %d attempts", i, it, paths[i], wantAttempts)
		}
	}
}

func TestSpoolMissingDir(t *testing.T) {
	sp := &Spool{Dir: filepath.Join(t.TempDir(), "nope")}
	sent, remaining, err := sp.Flush(context.Background(), func([]byte) error { return errors.New("never called") })
	if sent != 0 || remaining != 0 || err != nil {
		t.Errorf("Flush of a missing spool = %d, %d, %v", sent, remaining, err)
	}
	if items, err := sp.List(); len(items) != 0 || err != nil {
		t.Errorf("List of a missing spool = %v, %v", items, err)
	}
}

func TestParseSpoolName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
		want time.Time
	}{
		{"20260121-064308.123456789-1a2b3c4d.eml", true, time.Date(2026, 1, 21, 6, 43, 8, 123456789, time.UTC)},
		{"20260121-064308.123456789-1a2b3c4d.state", false, time.Time{}},
		{"20260121-064308.123456789.eml", false, time.Time{}},
		{"garbage-that-is-long-enough-x.eml", false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseSpoolName(tc.name)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("parseSpoolName = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzSpoolState: decoding any sidecar never panics, and what decodes
// survives a round trip.
func FuzzSpoolState(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "mail", "*.state"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"format":1,"attempts":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeSpoolState(b)
		if err != nil {
			if !errors.Is(err, ErrSpoolState) {
				t.Errorf("error %v does not wrap ErrSpoolState", err)
			}
			return
		}
		sp := &Spool{Dir: t.TempDir()}
		path := filepath.Join(sp.Dir, "m.eml")
		if err := sp.writeState(path, &st); err != nil {
			t.Fatal(err)
		}
		back := sp.readState(path)
		if back.Attempts != st.Attempts || back.FirstError != st.FirstError || back.LastError != st.LastError ||
			!back.FirstAttempt.Equal(st.FirstAttempt) || !back.LastAttempt.Equal(st.LastAttempt) {
			t.Errorf("round trip: %+v became %+v", st, back)
		}
	})
}

func TestSpoolStateGolden(t *testing.T) {
	sp, _ := newTestSpool(t)
	path, err := sp.Put([]byte("Subject: x\r\n\r\nx\r\n"), &SendError{Step: StepDial, Err: errors.New("connection refused")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(statePath(path))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("mail", "spooled.state"), b)
	if !bytes.Contains(b, []byte(`"first_error":"mail dial: connection refused"`)) {
		t.Errorf("state %s", b)
	}
}

// TestDeliverQueuesBehindStuckSpool: when the spool's head fails for a
// reason every message shares (AUTH refused), Deliver spools the new
// message behind it without a second attempt, keeping the order.
func TestDeliverQueuesBehindStuckSpool(t *testing.T) {
	ca := newMailCA(t)
	be := &mailBackend{mechs: []string{"PLAIN"}, user: "agent", pass: "s3cret"}
	addr, _ := startMailServer(t, be, smtpModeStartTLS, ca, "")
	cfg := mailBaseConfig()
	cfg.SMTPURL, cfg.TLSConfig = "smtp://"+addr, &tls.Config{RootCAs: ca.Pool}
	cfg.SMTPUser, cfg.SMTPPasswordFile = "agent", mailPasswordFile(t, "wrong", 0o600)
	sp, clock := newTestSpool(t)
	if _, err := sp.Put(mailTo(t, cfg, "old report"), nil); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(time.Second)
	path, err := Deliver(context.Background(), cfg, sp, mailTo(t, cfg, "new report"))
	var smtpErr *smtp.SMTPError
	if path == "" || !errors.As(err, &smtpErr) || smtpErr.Code != 535 {
		t.Fatalf("Deliver = %q, %v; want a spooled path and the 535", path, err)
	}
	be.mu.Lock()
	seen := be.authSeen
	be.mu.Unlock()
	if seen != 1 {
		t.Errorf("server saw %d AUTH attempts, want 1 (the new mail must not be tried)", seen)
	}
	items, err := sp.List()
	if err != nil || len(items) != 2 || items[1].Path != path || items[0].Attempts != 1 || items[1].Attempts != 1 {
		t.Fatalf("spool: %+v, %v", items, err)
	}
	// Fixed password: both go out, old first.
	cfg.SMTPPasswordFile = mailPasswordFile(t, "s3cret", 0o400)
	if _, err := Deliver(context.Background(), cfg, sp, mailTo(t, cfg, "third report")); err != nil {
		t.Fatal(err)
	}
	if got := mailSubjects(t, be); strings.Join(got, "|") != "old report|new report|third report" {
		t.Errorf("server received %q", got)
	}
}
