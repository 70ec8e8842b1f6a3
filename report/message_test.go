package report

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// mailSeqReader is a deterministic stand-in for crypto/rand in goldens.
type mailSeqReader struct{ n byte }

func (s *mailSeqReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.n
		s.n++
	}
	return len(p), nil
}

// parsedMail is a message as a mail reader sees it.
type parsedMail struct {
	header     mail.Header
	subject    string
	body       []byte // LF line ends
	attachName string
	attach     []byte
}

var messageIDRe = regexp.MustCompile(`^<[0-9a-f]{32}@[A-Za-z0-9.-]+>$`)

// parseMail parses msg with net/mail and mime/multipart, checks what every
// message must satisfy (CRLF lines of at most 998 bytes, Date, Message-ID,
// From, To, MIME-Version) and returns its parts.
func parseMail(t testing.TB, msg []byte) parsedMail {
	t.Helper()
	for i, line := range bytes.SplitAfter(msg, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasSuffix(line, []byte("\r\n")) || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
			t.Fatalf("line %d not CRLF-terminated or has a bare CR: %q", i+1, line)
		}
		if len(line)-2 > maxLine {
			t.Fatalf("line %d has %d bytes", i+1, len(line)-2)
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("net/mail: %v", err)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if id := m.Header.Get("Message-ID"); !messageIDRe.MatchString(id) {
		t.Errorf("Message-ID %q", id)
	}
	if _, err := m.Header.AddressList("From"); err != nil {
		t.Errorf("From: %v", err)
	}
	if _, err := m.Header.AddressList("To"); err != nil {
		t.Errorf("To: %v", err)
	}
	if v := m.Header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Errorf("Subject: %v", err)
	}
	p := parsedMail{header: m.Header, subject: subject}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	switch mt {
	case "text/plain":
		p.body = mailDecodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)
	case "multipart/mixed":
		mr := multipart.NewReader(m.Body, params["boundary"])
		for i := 0; ; i++ {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			data := mailDecodePart(t, part.Header.Get("Content-Transfer-Encoding"), part)
			disp, dparams, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			if disp == "attachment" {
				p.attachName, p.attach = dparams["filename"], data
			} else {
				p.body = data
			}
		}
	default:
		t.Fatalf("Content-Type %q", mt)
	}
	return p
}

func mailDecodePart(t testing.TB, cte string, r io.Reader) []byte {
	t.Helper()
	switch strings.ToLower(cte) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		d, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
		if err != nil {
			t.Fatalf("base64: %v", err)
		}
		return d
	case "7bit", "8bit", "":
	default:
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", cte, err)
	}
	if strings.ToLower(cte) == "base64" {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// mailBigReport returns a plain-report-like text of at least n bytes.
func mailBigReport(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Start timestamp: 2026-01-21 06:43:08 +0000 (agent 0.1.0)\nAIDE found differences between database and filesystem!!\n\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "f+++++++++++++++++: /srv/data/dir%04d/file-with-a-longish-name-%06d.dat\n", i/100, i)
	}
	return b.Bytes()
}

func mailGoldenConfig() MailConfig {
	cfg := mailBaseConfig()
	cfg.Rand = &mailSeqReader{}
	return cfg
}

func TestNewMessageGolden(t *testing.T) {
	cases := []struct {
		name       string
		subject    string
		body       []byte
		attachName string
		attach     []byte
		cte        string
	}{
		{name: "plain", subject: "[agent] host1: integrity check: 3 added, 1 removed, 5 changed",
			body: []byte("AIDE found differences between database and filesystem!!\n\nSummary:\n  Total number of entries:\t12\n"), cte: "7bit"},
		{name: "latin1-path", subject: "[agent] hôst1: integrity check: 1 added, 0 removed, 0 changed",
			body: []byte("Added entries:\n\nf++++++++++++++++: /srv/caf\xe9 = \xff\xfe and a trailing space \n" +
				strings.Repeat("x", 1200) + "\n"), cte: "quoted-printable"},
		{name: "no-final-newline", subject: "[agent] host1: integrity check: no differences", body: []byte("one line"), cte: "7bit"},
		{name: "attachment", subject: "[agent] host1: integrity check: 1 added, 0 removed, 0 changed",
			body: []byte("head of the report\n\n[report truncated]\n"), attachName: "check-20260121-064308.txt",
			attach: []byte("head of the report\nthe rest, with caf\xe9\n"), cte: "7bit"},
		{name: "forged-subject", subject: "x\r\nBcc: victim@example.com", body: []byte("b\n"), cte: "7bit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := NewMessage(mailGoldenConfig(), tc.subject, tc.body, tc.attachName, tc.attach)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("mail", tc.name+".eml"), msg)
			m := parseMail(t, msg)
			if want := EscapePath(tc.subject); m.subject != want {
				t.Errorf("subject %q, want %q", m.subject, want)
			}
			if m.header.Get("Bcc") != "" {
				t.Errorf("a header was forged: Bcc %q", m.header.Get("Bcc"))
			}
			wantBody := tc.body
			if !bytes.HasSuffix(wantBody, []byte("\n")) {
				wantBody = append(append([]byte(nil), wantBody...), '\n')
			}
			if !bytes.Equal(m.body, wantBody) {
				t.Errorf("body:\n got %q\nwant %q", m.body, wantBody)
			}
			if m.attachName != tc.attachName || !bytes.Equal(m.attach, tc.attach) {
				t.Errorf("attachment %q %q, want %q %q", m.attachName, m.attach, tc.attachName, tc.attach)
			}
			cte := m.header.Get("Content-Transfer-Encoding")
			if tc.attachName != "" {
				cte = "7bit" // checked in the golden
			}
			if cte != tc.cte {
				t.Errorf("Content-Transfer-Encoding %q, want %q", cte, tc.cte)
			}
			if d, _ := m.header.Date(); !d.Equal(time.Date(2026, 1, 21, 6, 43, 8, 0, time.UTC)) {
				t.Errorf("Date %v", d)
			}
		})
	}
}

func TestNewMessageErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*MailConfig)
		is   error
	}{
		{name: "no recipients", edit: func(c *MailConfig) { c.To = nil }, is: ErrNoRecipients},
		{name: "blank recipients", edit: func(c *MailConfig) { c.To = []string{" ", ""} }, is: ErrNoRecipients},
		{name: "recipient with header injection", edit: func(c *MailConfig) { c.To = []string{"a@b\r\nBcc: c@d"} }, is: ErrAddress},
		{name: "bad sender", edit: func(c *MailConfig) { c.From = "not an address" }, is: ErrAddress},
		{name: "recipient too long for a header line", edit: func(c *MailConfig) { c.To = []string{strings.Repeat("a", 995) + "@b"} }, is: ErrAddress},
		{name: "sender too long for a header line", edit: func(c *MailConfig) { c.From = "x@" + strings.Repeat("b", 995) }, is: ErrAddress},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mailGoldenConfig()
			tc.edit(&cfg)
			if _, err := NewMessage(cfg, "s", []byte("b"), "", nil); !errors.Is(err, tc.is) {
				t.Errorf("NewMessage error %v, want %v", err, tc.is)
			}
		})
	}
}

func TestDefaultFrom(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"host1.example.com", "<agent@host1.example.com>"},
		{"", "<agent@localhost>"},
		{"bad host\n", "<agent@localhost>"},
	} {
		t.Run(tc.want+"/"+tc.host, func(t *testing.T) {
			cfg := mailGoldenConfig()
			cfg.From, cfg.Host = "", tc.host
			msg, err := NewMessage(cfg, "s", []byte("b\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			m := parseMail(t, msg)
			if got := m.header.Get("From"); got != tc.want {
				t.Errorf("From %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	cases := []struct {
		name string
		r    *Report
		want string
	}{
		{name: "differences", r: &Report{Kind: KindCheck, Total: 9, Added: 3, Removed: 1, Changed: 5},
			want: "[agent] host1: integrity check: 3 added, 1 removed, 5 changed"},
		{name: "clean", r: &Report{Kind: KindCheck, Total: 9}, want: "[agent] host1: integrity check: no differences"},
		{name: "clean with unreadable", r: &Report{Kind: KindCheck, Total: 9, Problems: []Problem{{Path: "/x"}}},
			want: "[agent] host1: integrity check: no differences, 1 unreadable"},
		{name: "init", r: &Report{Kind: KindInit, Total: 10}, want: "[agent] host1: integrity init: baseline of 10 entries"},
		{name: "update", r: &Report{Kind: KindUpdate, Total: 10, Changed: 2},
			want: "[agent] host1: integrity update: 0 added, 0 removed, 2 changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Subject("host1", tc.r); got != tc.want {
				t.Errorf("Subject = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("error", func(t *testing.T) {
		if got, want := ErrorSubject("host1", "open baseline: no such file"), "[agent] host1: integrity check failed: open baseline: no such file"; got != want {
			t.Errorf("ErrorSubject = %q, want %q", got, want)
		}
		long := ErrorSubject("host1", strings.Repeat("é", 300))
		if len(long) > 260 || !strings.HasSuffix(long, "...") || !strings.Contains(long, "é...") {
			t.Errorf("long ErrorSubject not cut on a rune boundary: %q", long)
		}
	})
}

func TestNewReportMessage(t *testing.T) {
	cases := []struct {
		name      string
		size      int
		attached  bool
		note      string
		maxBody   int
		bodyIsAll bool
	}{
		{name: "small inline", size: 5000, bodyIsAll: true},
		{name: "just fits", size: MaxBodySize, bodyIsAll: true},
		{name: "cut and attached", size: MaxBodySize + 1, attached: true, note: "full report attached as check.txt"},
		{name: "too large to attach", size: MaxAttachSize + 1, note: "too large to mail, see check.txt in the report directory on host1.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			report := mailBigReport(tc.size)[:tc.size]
			msg, err := NewReportMessage(mailGoldenConfig(), "s", report, "check.txt")
			if err != nil {
				t.Fatal(err)
			}
			m := parseMail(t, msg)
			if tc.bodyIsAll {
				if !bytes.Equal(m.body, report) && !bytes.Equal(m.body, append(report, '\n')) {
					t.Errorf("body is not the report")
				}
				if m.attachName != "" {
					t.Errorf("unexpected attachment %q", m.attachName)
				}
				return
			}
			body, note, ok := bytes.Cut(m.body, []byte("\n\n[report truncated"))
			if !ok {
				t.Fatalf("no truncation note at the end of the body")
			}
			if len(body) > MaxBodySize || !bytes.HasPrefix(report, body) || report[len(body)] != '\n' {
				t.Errorf("body of %d bytes is not the report cut at a line end", len(body))
			}
			if !bytes.Contains(note, []byte(tc.note)) {
				t.Errorf("note %q does not say %q", note, tc.note)
			}
			if tc.attached != (m.attachName == "check.txt") || tc.attached && !bytes.Equal(m.attach, report) {
				t.Errorf("attachment %q (%d bytes), want attached=%v", m.attachName, len(m.attach), tc.attached)
			}
		})
	}
}

// TestLongSubject: a subject word too long for a header line (found by
// FuzzNewMessage: a 990-byte word made a 999-byte line) is sent as
// encoded words that decode to the same subject.
func TestLongSubject(t *testing.T) {
	long := strings.Repeat("a", 990)
	for name, subject := range map[string]string{
		"one word":            long,
		"after words":         "[agent] host1: " + long + " end",
		"spaces and specials": "x  " + strings.Repeat("é=?_ /", 200) + strings.Repeat("b", 1000) + "  y",
		"not utf-8":           strings.Repeat("\xff\xe9a", 400),
		"control":             strings.Repeat("\x01", 400),
		"just fits":           strings.Repeat("c", maxLine-len("Subject: ")),
	} {
		t.Run(name, func(t *testing.T) {
			msg, err := NewMessage(mailGoldenConfig(), subject, []byte("b\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			m := parseMail(t, msg)
			if want := EscapePath(subject); m.subject != want {
				t.Errorf("subject decodes to %q, want %q", m.subject, want)
			}
			raw := m.header.Get("Subject")
			if fits := name == "just fits"; fits != !strings.Contains(raw, "=?") {
				t.Errorf("raw subject %.80q: encoded=%v", raw, !fits)
			}
		})
	}
}

// FuzzNewMessage checks that any subject and body make a message net/mail
// parses, with lines within limits, whose decoded body is the input.
func FuzzNewMessage(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add("[agent] host1: integrity check", b, false)
		}
	}
	f.Add("sujet ünicode \xff", []byte("caf\xe9\r\nx\n"+strings.Repeat("=", 2000)), true)
	f.Add(strings.Repeat("a", 990), []byte("x\n"), false)
	f.Fuzz(func(t *testing.T, subject string, body []byte, attach bool) {
		name := ""
		var data []byte
		if attach {
			name, data = "r.txt", body
		}
		msg, err := NewMessage(mailGoldenConfig(), subject, body, name, data)
		if err != nil {
			t.Fatal(err)
		}
		m := parseMail(t, msg)
		// A reader joins folded lines with one space; text that looks like
		// an encoded word is decoded by any reader, so it is left out.
		if !strings.Contains(subject, "=?") && !slices.Equal(strings.Fields(m.subject), strings.Fields(EscapePath(subject))) {
			t.Errorf("subject:\n got %q\nwant %q", m.subject, EscapePath(subject))
		}
		// Line ends normalise to LF; a lone CR counts as one (see NewMessage).
		want := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
		if bodyEncoding(body) != "7bit" {
			want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		}
		if len(want) > 0 && want[len(want)-1] != '\n' {
			want = append(want, '\n')
		}
		if !bytes.Equal(m.body, want) {
			t.Errorf("body:\n got %q\nwant %q", m.body, want)
		}
		if attach && !bytes.Equal(m.attach, body) {
			t.Errorf("attachment differs")
		}
	})
}

// TestEximAccepts hands messages to a real MTA: exim's -bh mode runs a
// full SMTP session with the host's configuration (all checks, no
// delivery) and prints the verdict.
func TestEximAccepts(t *testing.T) {
	exim, err := exec.LookPath("exim4")
	if err != nil {
		if exim, err = exec.LookPath("exim"); err != nil {
			t.Skip("exim is not installed")
		}
	}
	big, err := NewReportMessage(mailGoldenConfig(), "[agent] hôst1: integrity check: 1 added", mailBigReport(MaxBodySize+5000), "check.txt")
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[string][]byte{"report with attachment": big}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "mail", "*.eml"))
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		msgs[filepath.Base(g)] = b
	}
	for name, msg := range msgs {
		t.Run(name, func(t *testing.T) {
			var in bytes.Buffer
			in.WriteString("EHLO host1.example.com\r\nMAIL FROM:<agent@host1.example.com>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n")
			for _, line := range bytes.SplitAfter(msg, []byte("\r\n")) {
				if bytes.HasPrefix(line, []byte(".")) {
					in.WriteByte('.')
				}
				in.Write(line)
			}
			in.WriteString(".\r\nQUIT\r\n")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, exim, "-bh", "127.0.0.1")
			cmd.Stdin = &in
			out, _ := cmd.CombinedOutput()
			if !regexp.MustCompile(`(?m)^250 OK id=`).Match(out) {
				t.Errorf("exim did not accept the message:\n%s", out)
			}
		})
	}
}

// TestBareNames: a bare user name in mail_to or mail_from is qualified
// with the host in the headers (the envelope: TestPostfixBareName).
func TestBareNames(t *testing.T) {
	for _, tc := range []struct {
		smtp, to, from string
	}{
		{smtp: "", to: "<root@host1.example.com>, <ops@example.com>", from: "<agent@host1.example.com>"},
		{smtp: "smtp://127.0.0.1", to: "<root@host1.example.com>, <ops@example.com>", from: "<agent@host1.example.com>"},
	} {
		cfg := mailGoldenConfig()
		cfg.To, cfg.From, cfg.SMTPURL = []string{"root", "ops@example.com"}, "agent", tc.smtp
		msg, err := NewMessage(cfg, "s", []byte("b\n"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		m := parseMail(t, msg)
		if got := m.header.Get("To"); got != tc.to {
			t.Errorf("smtp_url %q: To %q, want %q", tc.smtp, got, tc.to)
		}
		if got := m.header.Get("From"); got != tc.from {
			t.Errorf("smtp_url %q: From %q, want %q", tc.smtp, got, tc.from)
		}
	}
}
