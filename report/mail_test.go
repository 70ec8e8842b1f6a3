package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"opsagent/internal/testca"
)

type mailCA = testca.CA

func newMailCA(t *testing.T) *mailCA              { return testca.New(t) }
func newSnakeoil(t *testing.T, cn string) *mailCA { return testca.Snakeoil(t, cn) }
func pemFile(t *testing.T, name string, b []byte) string {
	return testca.PEMFile(t, name, b)
}

// mailReceived is one message the test server accepted.
type mailReceived struct {
	helo string
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// mailBackend is the go-smtp server backend of the tests: it records what
// it receives and what was tried.
type mailBackend struct {
	mechs      []string // AUTH mechanisms offered; nil = no AUTH
	user, pass string   // the credentials accepted
	// rejectData refuses a message whose data contains it, with 554.
	rejectData string

	mu       sync.Mutex
	msgs     []mailReceived
	authSeen int // AUTH commands seen
}

func (b *mailBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mailSession{b: b, c: c}, nil
}

func (b *mailBackend) messages() []mailReceived {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]mailReceived(nil), b.msgs...)
}

type mailSession struct {
	b    *mailBackend
	c    *smtp.Conn
	cur  mailReceived
	user string
}

func (s *mailSession) AuthMechanisms() []string { return s.b.mechs }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	s.b.mu.Lock()
	s.b.authSeen++
	s.b.mu.Unlock()
	check := func(user, pass string) error {
		if user != s.b.user || pass != s.b.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.user = user
		return nil
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case "LOGIN":
		return &mailLoginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// mailLoginServer is the server side of AUTH LOGIN, which go-sasl lacks.
type mailLoginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *mailLoginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(resp))
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = mailReceived{helo: s.c.Hostname(), from: from, user: s.user}
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.b.rejectData != "" && bytes.Contains(b, []byte(s.b.rejectData)) {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message content rejected"}
	}
	s.cur.data = b
	_, s.cur.tls = s.c.TLSConnectionState()
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.cur = mailReceived{} }
func (s *mailSession) Logout() error { return nil }

// mailServerMode is how the test server speaks.
type mailServerMode int

const (
	smtpModePlain    mailServerMode = iota // no TLS at all
	smtpModeStartTLS                       // STARTTLS offered
	smtpModeImplicit                       // TLS from the first byte (smtps)
)

// startMailServer runs a go-smtp server with backend be on addr ("" =
// 127.0.0.1:0) and returns its address and a stop function (also run at
// cleanup).
func startMailServer(t *testing.T, be *mailBackend, mode mailServerMode, ca *mailCA, addr string) (string, func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	switch mode {
	case smtpModePlain:
		// AUTH is advertised in clear only so the test can prove the
		// client refuses to use it.
		srv.AllowInsecureAuth = true
	case smtpModeStartTLS:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.Server}}
	case smtpModeImplicit:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{ca.Server}}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			// Close the listener too: Serve may not have registered it yet.
			srv.Close()
			l.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// mailPasswordFile writes pw to a file of the given mode and returns its path.
func mailPasswordFile(t *testing.T, pw string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp.pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func mailBaseConfig() MailConfig {
	return MailConfig{
		To:      []string{"root@example.com", "Ops Team <ops@example.com>"},
		From:    "agent@host1.example.com",
		Host:    "host1.example.com",
		Timeout: 5 * time.Second,
		Now:     func() time.Time { return time.Date(2026, 1, 21, 6, 43, 8, 0, time.UTC) },
	}
}

func TestSendSMTP(t *testing.T) {
	ca := newMailCA(t)
	trusted := &tls.Config{RootCAs: ca.Pool}
	untrusted := &tls.Config{RootCAs: x509.NewCertPool()}
	goodPW := mailPasswordFile(t, "s3cret", 0o600)
	badPW := mailPasswordFile(t, "wrong", 0o600)
	openPW := mailPasswordFile(t, "s3cret", 0o644)
	linkPW := filepath.Join(t.TempDir(), "link.pw")
	if err := os.Symlink(goodPW, linkPW); err != nil {
		t.Fatal(err)
	}

	snake := newSnakeoil(t, "mx.test")
	caFile := pemFile(t, "ca.pem", ca.CAPEM)
	snakeFile := pemFile(t, "snakeoil.pem", snake.CAPEM)
	notPEM := pemFile(t, "not.pem", []byte("not a certificate\n"))

	cases := []struct {
		name    string
		mode    mailServerMode
		srv     *mailCA // the server's certificate; nil = ca's
		mechs   []string
		tls     *tls.Config
		policy  string // smtp_tls
		caFile  string // smtp_ca_file
		user    string
		pwFile  string
		wantTLS bool
		// verified: the certificate verified (with wantTLS)
		verified bool
		// error expectations; step "" means success
		step     string
		is       error
		contains []string
		code     int
		temp     bool
		authSeen int
	}{
		{name: "plain", mode: smtpModePlain},
		{name: "starttls trusted", mode: smtpModeStartTLS, tls: trusted, wantTLS: true, verified: true},
		// Opportunistic TLS (the default without smtp_user): an
		// unverifiable certificate still encrypts and delivers.
		{name: "starttls untrusted may", mode: smtpModeStartTLS, tls: untrusted, wantTLS: true},
		{name: "starttls snakeoil may", mode: smtpModeStartTLS, srv: snake, wantTLS: true},
		{name: "starttls snakeoil explicit may", mode: smtpModeStartTLS, srv: snake, policy: TLSMay, wantTLS: true},
		{name: "starttls untrusted verify", mode: smtpModeStartTLS, tls: untrusted, policy: TLSVerify, step: StepStartTLS,
			contains: []string{"certificate signed by unknown authority", "smtp_tls = verify", "smtp_ca_file"}},
		{name: "starttls snakeoil verify", mode: smtpModeStartTLS, srv: snake, policy: TLSVerify, step: StepStartTLS,
			contains: []string{"doesn't contain any IP SANs"}},
		{name: "starttls snakeoil verify with its cert as ca file", mode: smtpModeStartTLS, srv: snake, policy: TLSVerify, caFile: snakeFile,
			step: StepStartTLS, contains: []string{"doesn't contain any IP SANs"}},
		{name: "starttls verify with ca file", mode: smtpModeStartTLS, policy: TLSVerify, caFile: caFile, wantTLS: true, verified: true},
		{name: "starttls may with ca file", mode: smtpModeStartTLS, caFile: caFile, wantTLS: true, verified: true},
		{name: "ca file without pem", mode: smtpModeStartTLS, policy: TLSVerify, caFile: notPEM, step: StepConfig, is: ErrCAFile},
		{name: "ca file missing", mode: smtpModeStartTLS, caFile: notPEM + ".missing", step: StepConfig, is: ErrCAFile},
		{name: "verify without starttls", mode: smtpModePlain, policy: TLSVerify, step: StepStartTLS, is: ErrNoStartTLS},
		{name: "none ignores starttls", mode: smtpModeStartTLS, srv: snake, policy: TLSNone},
		{name: "none with user", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, policy: TLSNone, user: "agent", pwFile: goodPW,
			step: StepConfig, is: ErrTLSPolicy, contains: []string{"password in clear text"}},
		{name: "none with smtps", mode: smtpModeImplicit, policy: TLSNone, step: StepConfig, is: ErrTLSPolicy},
		{name: "bad policy", mode: smtpModeStartTLS, policy: "sometimes", step: StepConfig, is: ErrTLSPolicy},
		{name: "smtps trusted", mode: smtpModeImplicit, tls: trusted, wantTLS: true, verified: true},
		{name: "smtps untrusted", mode: smtpModeImplicit, tls: untrusted, step: StepTLS,
			contains: []string{"certificate signed by unknown authority", "smtps:// always verifies"}},
		{name: "smtps snakeoil may still verifies", mode: smtpModeImplicit, srv: snake, policy: TLSMay, step: StepTLS,
			contains: []string{"doesn't contain any IP SANs"}},
		{name: "smtps with ca file", mode: smtpModeImplicit, caFile: caFile, wantTLS: true, verified: true},
		{name: "auth plain", mode: smtpModeStartTLS, mechs: []string{"PLAIN", "LOGIN"}, tls: trusted, user: "agent", pwFile: goodPW, wantTLS: true, verified: true, authSeen: 1},
		{name: "auth login only", mode: smtpModeStartTLS, mechs: []string{"LOGIN"}, tls: trusted, user: "agent", pwFile: goodPW, wantTLS: true, verified: true, authSeen: 1},
		{name: "auth over smtps", mode: smtpModeImplicit, mechs: []string{"PLAIN"}, tls: trusted, user: "agent", pwFile: goodPW, wantTLS: true, verified: true, authSeen: 1},
		// smtp_user makes the default policy verify: the password never
		// goes to a server that was not authenticated.
		{name: "auth untrusted", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, tls: untrusted, user: "agent", pwFile: goodPW,
			step: StepStartTLS, contains: []string{"certificate signed by unknown authority", "smtp_user is set"}},
		{name: "auth snakeoil explicit may", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, srv: snake, policy: TLSMay, user: "agent", pwFile: goodPW,
			step: StepStartTLS, contains: []string{"doesn't contain any IP SANs"}},
		{name: "auth refused 535", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, tls: trusted, user: "agent", pwFile: badPW,
			step: StepAuth, code: 535, contains: []string{"535", "Authentication credentials invalid"}, authSeen: 1},
		{name: "auth not offered", mode: smtpModeStartTLS, tls: trusted, user: "agent", pwFile: goodPW, step: StepAuth, is: ErrNoAuthMech},
		{name: "user without starttls", mode: smtpModePlain, mechs: []string{"PLAIN"}, user: "agent", pwFile: goodPW,
			step: StepStartTLS, is: ErrNoStartTLS, authSeen: 0},
		{name: "password file 0644", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, tls: trusted, user: "agent", pwFile: openPW,
			step: StepAuth, is: ErrPasswordFile, contains: []string{openPW, "mode 0644"}},
		{name: "password file symlink", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, tls: trusted, user: "agent", pwFile: linkPW,
			step: StepAuth, is: ErrPasswordFile, contains: []string{linkPW, "symbolic link"}},
		{name: "password file missing", mode: smtpModeStartTLS, mechs: []string{"PLAIN"}, tls: trusted, user: "agent",
			step: StepAuth, is: ErrPasswordFile},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := &mailBackend{mechs: tc.mechs, user: "agent", pass: "s3cret"}
			srv := tc.srv
			if srv == nil {
				srv = ca
			}
			addr, _ := startMailServer(t, be, tc.mode, srv, "")
			cfg := mailBaseConfig()
			cfg.SMTPURL = "smtp://" + addr
			if tc.mode == smtpModeImplicit {
				cfg.SMTPURL = "smtps://" + addr
			}
			cfg.TLSConfig, cfg.SMTPUser, cfg.SMTPPasswordFile = tc.tls, tc.user, tc.pwFile
			cfg.SMTPTLS, cfg.SMTPCAFile = tc.policy, tc.caFile
			msg, err := NewMessage(cfg, "test "+tc.name, []byte("report body\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			info, err := SendWithInfo(context.Background(), cfg, msg)
			got := be.messages()
			if tc.step == "" {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				wantKind := ""
				if tc.wantTLS {
					wantKind = "starttls"
					if tc.mode == smtpModeImplicit {
						wantKind = "smtps"
					}
				}
				if info.TLS != wantKind || info.Verified != tc.verified || (info.VerifyError == nil) != (tc.verified || !tc.wantTLS) ||
					tc.wantTLS && !strings.HasPrefix(info.TLSVersion, "TLS 1.") || info.Server != addr {
					t.Errorf("info = %+v, want TLS %q, verified %v", info, wantKind, tc.verified)
				}
				if len(got) != 1 {
					t.Fatalf("server received %d messages, want 1", len(got))
				}
				r := got[0]
				if !bytes.Equal(r.data, msg) {
					t.Errorf("data differs:\n got %q\nwant %q", r.data, msg)
				}
				if r.helo != cfg.Host || r.from != "agent@host1.example.com" ||
					strings.Join(r.to, ",") != "root@example.com,ops@example.com" {
					t.Errorf("envelope: helo %q from %q to %q", r.helo, r.from, r.to)
				}
				if r.tls != tc.wantTLS {
					t.Errorf("tls = %v, want %v", r.tls, tc.wantTLS)
				}
				if tc.user != "" && r.user != tc.user {
					t.Errorf("authenticated as %q, want %q", r.user, tc.user)
				}
			} else {
				var se *SendError
				if !errors.As(err, &se) {
					t.Fatalf("error %v (%T) is not a *SendError", err, err)
				}
				if se.Step != tc.step {
					t.Errorf("step = %q, want %q (%v)", se.Step, tc.step, err)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("error %v is not %v", err, tc.is)
				}
				for _, s := range tc.contains {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if strings.Contains(tc.name, "untrusted") {
					var ua x509.UnknownAuthorityError
					if !errors.As(err, &ua) {
						t.Errorf("error %v does not unwrap to x509.UnknownAuthorityError", err)
					}
				}
				if tc.code != 0 {
					var smtpErr *smtp.SMTPError
					if !errors.As(err, &smtpErr) || smtpErr.Code != tc.code {
						t.Errorf("error %v: want SMTP code %d", err, tc.code)
					}
				}
				if se.Temporary() != tc.temp {
					t.Errorf("Temporary() = %v, want %v", se.Temporary(), tc.temp)
				}
				if len(got) != 0 {
					t.Errorf("server received %d messages despite the error", len(got))
				}
			}
			be.mu.Lock()
			seen := be.authSeen
			be.mu.Unlock()
			if seen != tc.authSeen {
				t.Errorf("server saw %d AUTH commands, want %d", seen, tc.authSeen)
			}
		})
	}
}

// TestSendMayLogsOnce: under smtp_tls = may an unverified certificate is
// said once in the log, not at every mail.
func TestSendMayLogsOnce(t *testing.T) {
	be := &mailBackend{}
	addr, _ := startMailServer(t, be, smtpModeStartTLS, newSnakeoil(t, "mx.test"), "")
	var logBuf bytes.Buffer
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	for i := range 3 {
		if err := Send(context.Background(), cfg, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if got := be.messages(); len(got) != 3 || !got[0].tls {
		t.Fatalf("server received %d messages (first over TLS: %v), want 3 over TLS", len(got), len(got) > 0 && got[0].tls)
	}
	if n := strings.Count(logBuf.String(), "certificate not verified"); n != 1 || !strings.Contains(logBuf.String(), "IP SANs") {
		t.Errorf("log has %d unverified-certificate lines, want 1 naming the reason:\n%s", n, logBuf.String())
	}
}

func TestSendNetworkFailures(t *testing.T) {
	// A port that was just closed: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	// A listener that accepts but never greets: a hung server.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	cases := []struct {
		name    string
		url     string
		timeout time.Duration
		cancel  bool
		step    string
		is      error
		temp    bool
	}{
		{name: "connection refused", url: "smtp://" + closedAddr, step: StepDial, temp: true},
		{name: "server never greets", url: "smtp://" + mute.Addr().String(), timeout: 300 * time.Millisecond, step: StepDial, temp: true},
		{name: "context cancelled", url: "smtp://" + mute.Addr().String(), timeout: 10 * time.Second, cancel: true,
			step: StepDial, is: context.Canceled, temp: true},
		{name: "bad scheme", url: "http://" + closedAddr, step: StepDial, is: ErrSMTPURL},
		{name: "password in url", url: "smtp://u:p@" + closedAddr, step: StepDial, is: ErrSMTPURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mailBaseConfig()
			cfg.SMTPURL = tc.url
			if tc.timeout != 0 {
				cfg.Timeout = tc.timeout
			}
			ctx := context.Background()
			if tc.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			start := time.Now()
			err := Send(ctx, cfg, []byte("Subject: x\r\n\r\nx\r\n"))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v", d)
			}
			var se *SendError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SendError", err, err)
			}
			if se.Step != tc.step {
				t.Errorf("step = %q, want %q (%v)", se.Step, tc.step, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if se.Temporary() != tc.temp {
				t.Errorf("Temporary() = %v, want %v (%v)", se.Temporary(), tc.temp, err)
			}
		})
	}
}

// TestSendReceivedMessage sends a long report through a real server and
// reads it back as a mail reader would.
func TestSendReceivedMessage(t *testing.T) {
	be := &mailBackend{}
	addr, _ := startMailServer(t, be, smtpModePlain, nil, "")
	cfg := mailBaseConfig()
	cfg.SMTPURL = "smtp://" + addr
	report := mailBigReport(MaxBodySize + 10000)
	msg, err := NewReportMessage(cfg, "[agent] host1: integrity check: 1 added, 0 removed, 0 changed", report, "check-20260121-064308.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := Send(context.Background(), cfg, msg); err != nil {
		t.Fatal(err)
	}
	got := be.messages()
	if len(got) != 1 {
		t.Fatalf("received %d messages", len(got))
	}
	m := parseMail(t, got[0].data)
	if m.subject != "[agent] host1: integrity check: 1 added, 0 removed, 0 changed" {
		t.Errorf("subject %q", m.subject)
	}
	if !bytes.HasPrefix(m.body, report[:1000]) || !bytes.Contains(m.body, []byte("full report attached as check-20260121-064308.txt")) {
		t.Errorf("body does not hold the report head and the truncation note")
	}
	if m.attachName != "check-20260121-064308.txt" || !bytes.Equal(m.attach, report) {
		t.Errorf("attachment %q of %d bytes, want the full report of %d", m.attachName, len(m.attach), len(report))
	}
}

// mailWriteScript writes an executable shell script.
func mailWriteScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestSendmail(t *testing.T) {
	dir := t.TempDir()
	record := `printf '%s\n' "$0" "$@" > "` + dir + `/argv"
cat > "` + dir + `/stdin"
`
	mailWriteScript(t, filepath.Join(dir, "sendmail"), record+"exit 0\n")
	mailWriteScript(t, filepath.Join(dir, "sendmail-fail"), record+"echo 'sendmail: cannot connect to queue: try again' >&2\nexit 75\n")
	mailWriteScript(t, filepath.Join(dir, "sendmail-bad"), record+"echo 'sendmail: bad recipient' >&2\nexit 67\n")

	cases := []struct {
		name     string
		sendmail string
		path     bool // put dir on PATH and configure the bare name
		temp     bool
		fail     bool
		contains string
	}{
		{name: "absolute path", sendmail: filepath.Join(dir, "sendmail")},
		{name: "found on PATH", sendmail: "sendmail", path: true},
		{name: "exit 75", sendmail: filepath.Join(dir, "sendmail-fail"), fail: true, temp: true, contains: "cannot connect to queue: try again"},
		{name: "exit 67", sendmail: filepath.Join(dir, "sendmail-bad"), fail: true, contains: "exit status 67: sendmail: bad recipient"},
		{name: "missing binary", sendmail: filepath.Join(dir, "nonexistent"), fail: true, contains: "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "argv"))
			os.Remove(filepath.Join(dir, "stdin"))
			if tc.path {
				t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			}
			cfg := mailBaseConfig()
			cfg.Sendmail = tc.sendmail
			msg, err := NewMessage(cfg, "sendmail test", []byte("line one\nline two\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = Send(context.Background(), cfg, msg)
			if tc.fail {
				var se *SendError
				if !errors.As(err, &se) || se.Step != StepSendmail {
					t.Fatalf("error %v, want a *SendError at step sendmail", err)
				}
				if !strings.Contains(err.Error(), tc.contains) {
					t.Errorf("error %q does not contain %q", err, tc.contains)
				}
				if se.Temporary() != tc.temp {
					t.Errorf("Temporary() = %v, want %v", se.Temporary(), tc.temp)
				}
				if tc.name == "exit 75" {
					// The failure is spooled with sendmail's own words.
					sp := &Spool{Dir: filepath.Join(t.TempDir(), "spool")}
					path, derr := Deliver(context.Background(), cfg, sp, msg)
					if path == "" || !errors.As(derr, &se) {
						t.Fatalf("Deliver = %q, %v; want a spooled path and the cause", path, derr)
					}
					items, err := sp.List()
					if err != nil || len(items) != 1 || !strings.Contains(items[0].FirstError, "cannot connect to queue") {
						t.Errorf("spool after failed sendmail: %+v, %v", items, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			argv, err := os.ReadFile(filepath.Join(dir, "argv"))
			if err != nil {
				t.Fatal(err)
			}
			wantArgv := strings.Join([]string{tc.sendmail, "-oi", "-f", "agent@host1.example.com", "--", "root@example.com", "ops@example.com"}, "\n") + "\n"
			if tc.path {
				wantArgv = strings.Replace(wantArgv, "sendmail", filepath.Join(dir, "sendmail"), 1)
			}
			if string(argv) != wantArgv {
				t.Errorf("argv:\n got %q\nwant %q", argv, wantArgv)
			}
			stdin, err := os.ReadFile(filepath.Join(dir, "stdin"))
			if err != nil {
				t.Fatal(err)
			}
			if want := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")); !bytes.Equal(stdin, want) {
				t.Errorf("stdin:\n got %q\nwant %q", stdin, want)
			}
		})
	}
}

func TestReadPasswordOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file to another user")
	}
	p := mailPasswordFile(t, "pw", 0o600)
	if err := os.Chown(p, 12345, 12345); err != nil {
		t.Fatal(err)
	}
	_, err := readPassword(p)
	if !errors.Is(err, ErrPasswordFile) || !strings.Contains(err.Error(), "uid 12345") {
		t.Errorf("readPassword of a file owned by uid 12345: %v", err)
	}
}

func TestParseSMTPURL(t *testing.T) {
	cases := []struct {
		url, addr, host string
		implicit        bool
		bad             bool
	}{
		{url: "smtp://mail.example.com", addr: "mail.example.com:25", host: "mail.example.com"},
		{url: "smtp://mail.example.com:587", addr: "mail.example.com:587", host: "mail.example.com"},
		{url: "smtps://mail.example.com", addr: "mail.example.com:465", host: "mail.example.com", implicit: true},
		{url: "smtp://[::1]:2525", addr: "[::1]:2525", host: "::1"},
		{url: "smtp://mail.example.com/", addr: "mail.example.com:25", host: "mail.example.com"},
		{url: "mail.example.com", bad: true},
		{url: "smtp://", bad: true},
		{url: "smtp://h:0", bad: true},
		{url: "smtp://h:99999", bad: true},
		{url: "smtp://h/path", bad: true},
		{url: "smtp://h?x=1", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			addr, host, implicit, err := parseSMTPURL(tc.url)
			if tc.bad {
				if !errors.Is(err, ErrSMTPURL) {
					t.Errorf("parseSMTPURL(%q) error %v, want ErrSMTPURL", tc.url, err)
				}
				return
			}
			if err != nil || addr != tc.addr || host != tc.host || implicit != tc.implicit {
				t.Errorf("parseSMTPURL(%q) = %q, %q, %v, %v; want %q, %q, %v", tc.url, addr, host, implicit, err, tc.addr, tc.host, tc.implicit)
			}
		})
	}
}
