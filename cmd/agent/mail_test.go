package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"opsagent/internal/testca"
)

// smtpSink is a real SMTP server (go-smtp) on 127.0.0.1 that keeps what it
// receives.
type smtpSink struct {
	mu   sync.Mutex
	msgs [][]byte
	srv  *smtp.Server
	addr string
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct{ s *smtpSink }

func (x *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, b)
	x.s.mu.Unlock()
	return nil
}
func (x *sinkSession) Reset()        {}
func (x *sinkSession) Logout() error { return nil }

func (s *smtpSink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// startSink serves on addr ("127.0.0.1:0" for any port).
func startSink(t *testing.T, addr string) *smtpSink {
	t.Helper()
	s := &smtpSink{}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go s.srv.Serve(l)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// freePort returns a loopback address nothing listens on (yet).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func mailConf(t *testing.T, dir, tree, smtpAddr, extra string) string {
	t.Helper()
	conf := filepath.Join(dir, "agent.conf")
	body := "mail_to=admin@example.org\nmail_from=agent@example.org\nsmtp_url=smtp://" + smtpAddr + "\n" + extra +
		"NORMAL = p+u+g+s+md5\n" + tree + " NORMAL\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestMailSpoolFlush: a report that cannot be mailed is spooled, the check
// keeps its own exit code, and `mail flush` delivers it exactly once when the
// server is back.
func TestMailSpoolFlush(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "etc/motd", kind: 'f', data: "hello\n"}})
	addr := freePort(t)
	conf := mailConf(t, dir, tree, addr, "")
	state := filepath.Join(dir, "state")
	a := func(args ...string) result {
		t.Helper()
		return agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
	}
	if r := a("init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Server down: spooled, exit code still the check's.
	r := a("check", "--mail")
	if r.code != 4 {
		t.Errorf("check --mail with the server down: exit %d, want 4\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "spooled as "+filepath.Join(state, "spool")) {
		t.Errorf("no warning naming the spooled file: %q", r.stderr)
	}
	if r := a("mail", "flush"); r.code != 1 {
		t.Errorf("mail flush with the server down: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}

	sink := startSink(t, addr)
	if r := a("mail", "flush"); r.code != 0 {
		t.Fatalf("mail flush: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := a("mail", "flush"); r.code != 0 {
		t.Errorf("second mail flush: exit %d", r.code)
	}
	got := sink.received()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want exactly 1", len(got))
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got[0]))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	subj := msg.Header.Get("Subject")
	// With package records (dpkg or rpm) the subject counts the
	// unexplained changes (the tree is no package's); without, the kinds.
	if !strings.Contains(subj, "integrity check: 0 added, 0 removed, 1 changed") && !strings.Contains(subj, "integrity check: 1 unexplained") || !strings.HasPrefix(subj, "[agent] ") {
		t.Errorf("Subject = %q", subj)
	}
	for _, h := range []string{"Date", "Message-Id", "From", "To", "Mime-Version"} {
		if msg.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}

	// With the server up, the next report goes straight out; a clean check
	// sends nothing without mail_clean.
	if r := a("update", "--mail"); r.code != 4 {
		t.Errorf("update --mail: exit %d", r.code)
	}
	if r := a("check", "--mail"); r.code != 0 {
		t.Errorf("clean check --mail: exit %d", r.code)
	}
	if n := len(sink.received()); n != 2 {
		t.Errorf("server received %d messages, want 2 (the update; a clean check sends none)", n)
	}
}

// TestMailSendmail: without smtp_url the sendmail binary gets the message
// on stdin and the recipients in argv, never through a shell.
func TestMailSendmail(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	buildTree(t, tree, []treeFile{{path: "f", kind: 'f', data: "x\n"}})
	rec := filepath.Join(dir, "rec")
	script := filepath.Join(dir, "sendmail")
	body := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + rec + ".argv\ncat > " + rec + ".stdin\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.conf")
	cfg := "mail_to=root@example.org, ops@example.org\nmail_from=agent@example.org\nsendmail=" + script + "\nNORMAL = p+u+g+s+md5\n" + tree + " NORMAL\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "state"), "init", "--mail"); r.code != 0 {
		t.Fatalf("init --mail: exit %d: %s", r.code, r.stderr)
	}
	argv, err := os.ReadFile(rec + ".argv")
	if err != nil {
		t.Fatalf("sendmail was not run: %v", err)
	}
	if got, want := string(argv), "-oi\n-f\nagent@example.org\n--\nroot@example.org\nops@example.org\n"; got != want {
		t.Errorf("sendmail argv = %q, want %q", got, want)
	}
	stdin, _ := os.ReadFile(rec + ".stdin")
	msg, err := mail.ReadMessage(bytes.NewReader(stdin))
	if err != nil {
		t.Fatalf("message on stdin does not parse: %v\n%s", err, stdin)
	}
	if s := msg.Header.Get("Subject"); !strings.Contains(s, "integrity init") {
		t.Errorf("Subject = %q", s)
	}
}

// TestMailTest: `mail test` delivers to a working server and names the
// failing step and its real cause otherwise.
func TestMailTest(t *testing.T) {
	dir := t.TempDir()
	sink := startSink(t, "127.0.0.1:0")
	conf := mailConf(t, dir, filepath.Join(dir, "tree"), sink.addr, "")
	if r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "s1"), "mail", "test"); r.code != 0 || len(sink.received()) != 1 {
		t.Errorf("mail test: exit %d, %d received\n%s", r.code, len(sink.received()), r.stderr)
	}
	down := mailConf(t, dir, filepath.Join(dir, "tree"), freePort(t), "")
	r := agent(t, "--config", down, "--state-dir", filepath.Join(dir, "s2"), "mail", "test")
	if r.code == 0 || !strings.Contains(r.stderr, `step "dial"`) || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("mail test to a closed port: exit %d, stderr %q", r.code, r.stderr)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clear := mailConf(t, dir, filepath.Join(dir, "tree"), sink.addr, "smtp_user=agent\nsmtp_password_file="+pw+"\n")
	r = agent(t, "--config", clear, "--state-dir", filepath.Join(dir, "s3"), "mail", "test")
	if r.code == 0 || !strings.Contains(r.stderr, `step "starttls"`) {
		t.Errorf("mail test with a user but no STARTTLS: exit %d, stderr %q (credentials must never go in clear)", r.code, r.stderr)
	}
}

// testCA returns a CA certificate as PEM and a server certificate it signed
// for 127.0.0.1.
func testCA(t *testing.T) (caPEM []byte, server tls.Certificate) {
	ca := testca.New(t)
	return ca.CAPEM, ca.Server
}

// TestMailTestTLS: `mail test` says which smtp_tls policy applied and
// whether the certificate was verified; by default (may) a certificate of
// an unknown CA still delivers, verify refuses it unless smtp_ca_file names
// the CA, and smtp_tls = none with smtp_user is a config error at its line.
func TestMailTestTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, cert := testCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sink := &smtpSink{}
	sink.srv = smtp.NewServer(sink)
	sink.srv.Domain = "localhost"
	sink.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go sink.srv.Serve(l)
	t.Cleanup(func() { sink.srv.Close() })
	addr := l.Addr().String()

	cases := []struct {
		name   string
		extra  string
		ok     bool
		output []string // in stdout when ok, stderr otherwise
	}{
		{name: "default may", ok: true,
			output: []string{"via " + addr, "smtp_tls = may", "starttls TLS 1.", "certificate NOT verified", "unknown authority"}},
		{name: "verify", extra: "smtp_tls=verify\n",
			output: []string{`step "starttls"`, "smtp_tls = verify", "certificate signed by unknown authority"}},
		{name: "verify with ca file", extra: "smtp_tls=verify\nsmtp_ca_file=" + caFile + "\n", ok: true,
			output: []string{"smtp_tls = verify", "starttls TLS 1.", "certificate verified"}},
		{name: "none", extra: "smtp_tls=none\n", ok: true, output: []string{"smtp_tls = none", "plain text (no TLS)"}},
		{name: "none with user", extra: "smtp_user=agent\nsmtp_tls=none\n",
			output: []string{"agent.conf:5:", "password in clear text"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(sink.received())
			conf := mailConf(t, dir, filepath.Join(dir, "tree"), addr, tc.extra)
			r := agent(t, "--config", conf, "--state-dir", filepath.Join(dir, "s"+strconv.Itoa(i)), "mail", "test")
			out := r.stdout
			if !tc.ok {
				out = r.stderr
			}
			if (r.code == 0) != tc.ok {
				t.Fatalf("mail test: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, s := range tc.output {
				if !strings.Contains(out, s) {
					t.Errorf("output does not mention %q:\n%s", s, out)
				}
			}
			want := before
			if tc.ok {
				want++
			}
			if n := len(sink.received()); n != want {
				t.Errorf("server has %d messages, want %d", n, want)
			}
		})
	}
}

// TestMailDirectDeliveryMetrics: a report mailed directly (check --mail)
// counts in agent_mail.prom like a spool flush: a failure when the server
// is down (the mail is spooled), a delivery when it is up; the flush time
// stays that of the last flush.
func TestMailDirectDeliveryMetrics(t *testing.T) {
	dir := t.TempDir()
	tree, metrics := filepath.Join(dir, "tree"), filepath.Join(dir, "metrics")
	buildTree(t, tree, []treeFile{{path: "etc/motd", kind: 'f', data: "hello\n"}})
	if err := os.MkdirAll(metrics, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	conf := mailConf(t, dir, tree, addr, "metrics_dir = "+metrics+"\n")
	state := filepath.Join(dir, "state")
	a := func(args ...string) result {
		t.Helper()
		return agent(t, append([]string{"--config", conf, "--state-dir", state}, args...)...)
	}
	if r := a("init"); r.code != 0 {
		t.Fatalf("init: exit %d: %s", r.code, r.stderr)
	}
	prom := func() string {
		b, err := os.ReadFile(filepath.Join(metrics, "agent_mail.prom"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	os.WriteFile(filepath.Join(tree, "etc/motd"), []byte("changed\n"), 0o644)
	if r := a("check", "--mail"); r.code != 4 {
		t.Fatalf("check --mail, server down: exit %d: %s", r.code, r.stderr)
	}
	if p := prom(); !strings.Contains(p, "agent_mail_failures_total 1\n") || !strings.Contains(p, "agent_mail_spool_messages 1\n") {
		t.Errorf("after a failed delivery:\n%s", p)
	}
	startSink(t, addr)
	os.WriteFile(filepath.Join(tree, "etc/motd"), []byte("changed again\n"), 0o644)
	if r := a("check", "--mail"); r.code != 4 {
		t.Fatalf("check --mail: exit %d: %s", r.code, r.stderr)
	}
	if p := prom(); !strings.Contains(p, "agent_mail_deliveries_total 1\n") || !strings.Contains(p, "agent_mail_failures_total 1\n") ||
		!strings.Contains(p, "agent_mail_flush_timestamp_seconds 0\n") {
		t.Errorf("after a delivery:\n%s", p)
	}
}
