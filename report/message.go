package report

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"

	"opsagent/internal/mailaddr"
)

// Errors of message building. They are wrapped with the offending value.
var (
	ErrNoRecipients = errors.New("report: no mail recipients (mail_to is empty)")
	ErrAddress      = errors.New("report: invalid mail address")
)

// MaxBodySize is the largest plain report put into a mail body (256 KiB).
// A longer report is cut at the last line end before this size, and the
// whole report is attached instead, so a mail reader never has to render
// megabytes of inline text.
const MaxBodySize = 256 << 10

// MaxAttachSize is the largest report attached to a mail (6 MiB). Base64
// grows it by a third, so with the body the message stays under Postfix's
// default message_size_limit of 10240000 bytes; a bigger report is named in
// the body instead of attached, since a server would refuse the mail (552)
// and the report would never arrive at all.
const MaxAttachSize = 6 << 20

// maxLine is RFC 5322's hard limit on a line, without its CRLF.
const maxLine = 998

// foldAt is RFC 5322's recommended line length at which headers are folded.
const foldAt = 78

// Subject returns the subject of the mail for report r of host:
//
//	[agent] HOST: integrity check: 3 added, 1 removed, 5 changed
//	[agent] HOST: integrity check: no differences
//	[agent] HOST: integrity init: baseline of 10 entries
//
// Unreadable entries add ", 2 unreadable", as in Summary. The entry count
// of a clean check is left out, so mail filters can match the whole clean
// subject.
func Subject(host string, r *Report) string {
	if s, ok := provenanceSubject(r); ok {
		return "[agent] " + host + ": " + s + postureSuffix(r)
	}
	s := Summary(r)
	if r.Kind != KindInit && !r.differences() {
		// Summary says "no differences (N entries)"; the count is noise here.
		if i := strings.Index(s, " ("); i >= 0 {
			if j := strings.IndexByte(s[i:], ')'); j >= 0 {
				s = s[:i] + s[i+j+1:]
			}
		}
	}
	return "[agent] " + host + ": " + s + postureSuffix(r)
}

// ErrorSubject returns the subject of the mail sent when a run failed:
// "[agent] HOST: integrity check failed: WHAT". what is usually the error
// text; it is cut to 200 bytes so the subject stays one readable line.
func ErrorSubject(host, what string) string {
	const max = 200
	if len(what) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(what[cut]) {
			cut--
		}
		what = what[:cut] + "..."
	}
	return "[agent] " + host + ": integrity check failed: " + what
}

// NewReportMessage builds the mail for a plain report (the bytes WriteText
// produced) with NewMessage. A report longer than MaxBodySize is cut at a
// line end, a note "report truncated, full report attached as NAME" ends the
// body, and the whole report is attached under reportName (the base name of
// the report file, e.g. "check-20260121-064308.txt"). A report larger than
// MaxAttachSize is not attached; the note then names the file on the host.
// A report that fits is sent inline only, without attachment.
func NewReportMessage(cfg MailConfig, subject string, report []byte, reportName string) ([]byte, error) {
	if len(report) <= MaxBodySize {
		return NewMessage(cfg, subject, report, "", nil)
	}
	cut := bytes.LastIndexByte(report[:MaxBodySize], '\n') + 1
	if cut == 0 {
		cut = MaxBodySize
	}
	body := make([]byte, 0, cut+200)
	body = append(body, report[:cut]...)
	if cut > 0 && body[len(body)-1] != '\n' {
		body = append(body, '\n')
	}
	if len(report) > MaxAttachSize {
		host := cfg.Host
		if host == "" {
			host = "the host"
		}
		body = fmt.Appendf(body, "\n[report truncated after %d of %d bytes; the full report is too large to mail, see %s in the report directory on %s]\n",
			cut, len(report), reportName, host)
		return NewMessage(cfg, subject, body, "", nil)
	}
	body = fmt.Appendf(body, "\n[report truncated after %d of %d bytes, full report attached as %s]\n", cut, len(report), reportName)
	return NewMessage(cfg, subject, body, reportName, report)
}

// NewMessage builds an RFC 5322 message with MIME (RFC 2045-2047) from
// cfg (From, To, Host, Now, Rand), a subject, a text body and an optional
// attachment, ready for Send or the spool.
//
// Headers: Date (cfg.Now), From (cfg.From, default "agent@HOST"), To (every
// cfg.To address), Subject (RFC 2047 Q-encoded when it is not plain ASCII,
// control characters escaped as in EscapePath so no header can be forged),
// Message-ID ("<32 random hex digits@HOST>"), MIME-Version, and
// Auto-Submitted: auto-generated (RFC 3834) so vacation responders stay
// quiet. Long headers are folded at spaces.
//
// The body is text/plain; charset=utf-8. It is sent 7bit when it is plain
// printable ASCII with lines of at most 998 bytes, which keeps the raw mail
// readable; otherwise quoted-printable, which carries any byte. Invalid
// UTF-8 (a path name in a Latin-1 file system) is therefore kept byte for
// byte, not replaced: a decoder gets back exactly the report file's bytes,
// and only a mail reader's display shows U+FFFD. Line ends become CRLF; a
// lone CR counts as a line end (the plain report has none, as EscapePath
// escapes control characters in paths).
//
// With an attachment (attachName non-empty) the message is multipart/mixed:
// the body part, then attach as a base64 text/plain part with
// "Content-Disposition: attachment; filename=attachName".
//
// NewMessage reads no clock or randomness but cfg's, so with cfg.Now and
// cfg.Rand fixed its output is fixed.
func NewMessage(cfg MailConfig, subject string, body []byte, attachName string, attach []byte) ([]byte, error) {
	from, to, err := cfg.addresses()
	if err != nil {
		return nil, err
	}
	random := cfg.Rand
	if random == nil {
		random = rand.Reader
	}
	var id [16]byte
	if _, err := io.ReadFull(random, id[:]); err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	host := mailHost(cfg.Host)

	var b bytes.Buffer
	writeHeader(&b, "Date", cfg.now().Format(time.RFC1123Z))
	writeHeader(&b, "From", cfg.qualified(from).String())
	var tos []string
	for _, a := range to {
		tos = append(tos, cfg.qualified(a).String())
	}
	writeHeader(&b, "To", strings.Join(tos, ", "))
	writeHeader(&b, "Subject", subjectValue(subject))
	writeHeader(&b, "Message-ID", "<"+hex.EncodeToString(id[:])+"@"+host+">")
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Auto-Submitted", "auto-generated")

	if attachName == "" {
		enc := bodyEncoding(body)
		writeHeader(&b, "Content-Type", "text/plain; charset=utf-8")
		writeHeader(&b, "Content-Transfer-Encoding", enc)
		b.WriteString("\r\n")
		if err := writeBody(&b, body, enc); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}

	var boundary [12]byte
	if _, err := io.ReadFull(random, boundary[:]); err != nil {
		return nil, fmt.Errorf("mime boundary: %w", err)
	}
	mw := multipart.NewWriter(&b)
	// "=_" cannot occur in quoted-printable or base64 text, so the
	// boundary never collides with a part's content.
	if err := mw.SetBoundary("=_agent_" + hex.EncodeToString(boundary[:])); err != nil {
		return nil, err
	}
	writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\nThis is a MIME message; the report is in the first part.\r\n")

	enc := bodyEncoding(body)
	part, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {enc},
		"Content-Disposition":       {"inline"},
	})
	if err != nil {
		return nil, err
	}
	if err := writeBody(part, body, enc); err != nil {
		return nil, err
	}
	name := EscapePath(attachName)
	part, err = mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {mime.FormatMediaType("text/plain", map[string]string{"charset": "utf-8", "name": name})},
		"Content-Transfer-Encoding": {"base64"},
		"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": name})},
	})
	if err != nil {
		return nil, err
	}
	if err := writeBase64(part, attach); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// addresses parses the sender and recipients. "agent@HOST", "Name <addr>"
// and a bare local user name ("root", see qualified) are accepted;
// anything else (including CR or LF, which could forge headers) is an
// error.
func (cfg MailConfig) addresses() (*mail.Address, []*mail.Address, error) {
	fromText := cfg.From
	if fromText == "" {
		fromText = "agent@" + mailHost(cfg.Host)
	}
	from, err := cfg.parseAddress(fromText)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: mail_from %q: %v", ErrAddress, fromText, err)
	}
	var to []*mail.Address
	for _, t := range cfg.To {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		a, err := cfg.parseAddress(t)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: mail_to %q: %v", ErrAddress, t, err)
		}
		to = append(to, a)
	}
	if len(to) == 0 {
		return nil, nil, ErrNoRecipients
	}
	return from, to, nil
}

// parseAddress parses one address of mail_to or mail_from; a bare local
// part ("root") is kept bare (see qualified).
func (cfg MailConfig) parseAddress(s string) (*mail.Address, error) {
	a, err := mailaddr.Parse(s)
	if err != nil {
		return nil, err
	}
	return a, fitsHeader(cfg.qualified(a))
}

// qualified returns a, a bare local part ("root") made "root@HOST". The
// headers always carry the qualified form, so every reader parses them;
// the envelope too over SMTP, as servers refuse unqualified recipients.
// Sendmail gets the bare name in the envelope: the MTA qualifies it with
// the mail domain it knows (myorigin, qualify_domain), which the host name
// may not be.
func (cfg MailConfig) qualified(a *mail.Address) *mail.Address {
	if strings.Contains(a.Address, "@") {
		return a
	}
	return &mail.Address{Name: a.Name, Address: a.Address + "@" + mailHost(cfg.Host)}
}

// fitsHeader returns an error when a word of a's header form is too long
// for a header line: such a header cannot be folded, and a line of more
// than 998 bytes breaks the message.
func fitsHeader(a *mail.Address) error {
	const room = maxLine - len("From: ") - len(",")
	for w := range strings.SplitSeq(a.String(), " ") {
		if len(w) > room {
			return fmt.Errorf("a word of %d bytes is longer than a mail header line allows", len(w))
		}
	}
	return nil
}

// mailHost returns h when it is a usable domain for Message-ID and the
// default sender (letters, digits, '-', '.'), else "localhost": a host name
// is configuration, and a strange one must not break every mail.
func mailHost(h string) string {
	if h == "" || len(h) > 253 || h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return "localhost"
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return "localhost"
		}
	}
	return h
}

// subjectValue returns the Subject header's value: subject with control
// characters escaped (EscapePath), Q-encoded (RFC 2047) when it is not
// plain ASCII. A header word cannot be folded, so when a word would not fit
// on one line of maxLine bytes (a long path without spaces), the whole
// subject is Q-encoded in words of at most 75 characters; a reader decodes
// them back to the same text.
func subjectValue(subject string) string {
	v := mime.QEncoding.Encode("utf-8", EscapePath(subject))
	const room = maxLine - len("Subject: ")
	for w := range strings.SplitSeq(v, " ") {
		if len(w) > room {
			return qEncodeWords(v)
		}
	}
	return v
}

// qEncodeWords Q-encodes s as RFC 2047 encoded words of at most 75
// characters separated by spaces, splitting s only between UTF-8
// sequences. Spaces inside s become '_', so the decoded words join back
// to s exactly.
func qEncodeWords(s string) string {
	const (
		prefix = "=?utf-8?q?"
		suffix = "?="
		room   = 75 - len(prefix) - len(suffix)
	)
	var b strings.Builder
	b.Grow(len(s) + len(s)/room*(len(prefix)+len(suffix)+1) + 16)
	n := room // encoded characters in the current word; room starts a word
	for i := 0; i < len(s); {
		size := 1
		if s[i] >= utf8.RuneSelf {
			_, size = utf8.DecodeRuneInString(s[i:])
		}
		seq := s[i : i+size]
		width := 0
		for j := 0; j < len(seq); j++ {
			width += qWidth(seq[j])
		}
		if n+width > room {
			if i > 0 {
				b.WriteString(suffix + " ")
			}
			b.WriteString(prefix)
			n = 0
		}
		for j := 0; j < len(seq); j++ {
			switch c := seq[j]; {
			case c == ' ':
				b.WriteByte('_')
			case qWidth(c) == 1:
				b.WriteByte(c)
			default:
				const hexDigits = "0123456789ABCDEF"
				b.WriteByte('=')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&15])
			}
		}
		n += width
		i += size
	}
	if len(s) > 0 {
		b.WriteString(suffix)
	}
	return b.String()
}

// qWidth is the length of byte c in an encoded word: 1 for a space (written
// as '_') and printable ASCII other than '=', '?' and '_', else 3 ("=XX").
func qWidth(c byte) int {
	if c == ' ' || c > ' ' && c <= '~' && c != '=' && c != '?' && c != '_' {
		return 1
	}
	return 3
}

// writeHeader writes "name: value" CRLF, folded at spaces so lines stay near 78
// characters. A word longer than a line is left whole (up to 998 bytes is
// legal). Callers pass values without CR or LF.
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ":"
	width := len(line)
	for i, word := range strings.Split(value, " ") {
		if i > 0 && width+1+len(word) > foldAt && width > len(name)+1 {
			b.WriteString(line)
			b.WriteString("\r\n")
			line, width = "", 0
		}
		line += " " + word
		width += 1 + len(word)
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}

// bodyEncoding chooses the Content-Transfer-Encoding of body: "7bit" when
// every byte is printable ASCII, tab or LF and no line exceeds 998 bytes,
// else "quoted-printable".
func bodyEncoding(body []byte) string {
	n := 0
	for _, c := range body {
		switch {
		case c == '\n':
			n = 0
			continue
		case c == '\t' || c >= 0x20 && c < 0x7f:
		default:
			return "quoted-printable"
		}
		n++
		if n > maxLine {
			return "quoted-printable"
		}
	}
	return "7bit"
}

// writeBody writes body in encoding enc (from bodyEncoding) with CRLF line
// ends and a final line end.
func writeBody(w io.Writer, body []byte, enc string) error {
	if enc == "7bit" {
		var b bytes.Buffer
		b.Grow(len(body) + len(body)/32 + 2)
		for len(body) > 0 {
			i := bytes.IndexByte(body, '\n')
			if i < 0 {
				b.Write(body)
				b.WriteString("\r\n")
				break
			}
			b.Write(body[:i])
			b.WriteString("\r\n")
			body = body[i+1:]
		}
		_, err := w.Write(b.Bytes())
		return err
	}
	// Line ends as LF only, a lone CR counting as one: mime/quotedprintable
	// drops the LF of a line that follows a lone CR ("a\r=\n" ends in a
	// line without CRLF; found by FuzzNewMessage).
	body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	body = bytes.ReplaceAll(body, []byte("\r"), []byte("\n"))
	qw := quotedprintable.NewWriter(w)
	if _, err := qw.Write(body); err != nil {
		return err
	}
	if len(body) > 0 && body[len(body)-1] != '\n' {
		if _, err := qw.Write([]byte{'\n'}); err != nil {
			return err
		}
	}
	return qw.Close()
}

// writeBase64 writes data base64-encoded in lines of 76 characters
// (RFC 2045's limit), each ended by CRLF.
func writeBase64(w io.Writer, data []byte) error {
	const perLine = 57 // input bytes per 76-character line
	var b bytes.Buffer
	b.Grow(base64.StdEncoding.EncodedLen(len(data)) + len(data)/perLine*2 + 2)
	line := make([]byte, 76)
	for len(data) > 0 {
		n := min(perLine, len(data))
		m := base64.StdEncoding.EncodedLen(n)
		base64.StdEncoding.Encode(line, data[:n])
		b.Write(line[:m])
		b.WriteString("\r\n")
		data = data[n:]
	}
	_, err := w.Write(b.Bytes())
	return err
}
