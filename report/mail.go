package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// DefaultSendmail is the sendmail binary used when neither smtp_url nor
// sendmail is configured.
const DefaultSendmail = "/usr/sbin/sendmail"

// DefaultMailTimeout bounds each step of a delivery (connect, each SMTP
// command, the TLS handshake, a sendmail run) when MailConfig.Timeout is 0.
const DefaultMailTimeout = 60 * time.Second

// Errors of mail delivery. Send wraps them in a *SendError naming the step.
var (
	// ErrSMTPURL: smtp_url is not smtp://host[:port] or smtps://host[:port].
	ErrSMTPURL = errors.New("report: invalid smtp_url")
	// ErrNoStartTLS: TLS is required (smtp_user is set, or smtp_tls =
	// verify) but the server does not offer STARTTLS; the credentials, and
	// with verify the message, are never sent in clear.
	ErrNoStartTLS = errors.New("report: server does not offer STARTTLS, which smtp_tls = verify (implied by smtp_user) requires")
	// ErrTLSPolicy: smtp_tls is not may, verify or none, or asks for none
	// where it cannot hold (with smtp_user, or with smtps://).
	ErrTLSPolicy = errors.New("report: invalid smtp_tls")
	// ErrCAFile: smtp_ca_file cannot be read or holds no PEM certificate.
	ErrCAFile = errors.New("report: unusable smtp_ca_file")
	// ErrNoAuthMech: the server offers neither AUTH PLAIN nor AUTH LOGIN
	// (or no AUTH at all).
	ErrNoAuthMech = errors.New("report: server offers no AUTH PLAIN or LOGIN")
	// ErrPasswordFile: smtp_password_file is missing, not a regular file, a
	// symbolic link, owned by another user, or readable by group or others.
	ErrPasswordFile = errors.New("report: unsafe password file")
)

// MailConfig is how and where to mail. The caller (the command layer)
// builds it from rules.Options: mail_to, mail_from, smtp_url, smtp_user,
// smtp_password_file and sendmail. Zero values are documented per field.
type MailConfig struct {
	To   []string // recipients, "addr" or "Name <addr>"; at least one
	From string   // sender; "" = "agent@HOST"

	// SMTPURL is "smtp://host[:port]" (port 25, STARTTLS when offered) or
	// "smtps://host[:port]" (port 465, implicit TLS). "" = run Sendmail.
	SMTPURL          string
	SMTPUser         string // "" = no AUTH
	SMTPPasswordFile string // read at each Send; mode 0600 or 0400, see ErrPasswordFile
	// SMTPTLS is the STARTTLS policy of smtp:// (TLSMay, TLSVerify,
	// TLSNone; "" = TLSMay, which becomes TLSVerify when SMTPUser is set).
	// smtps:// always verifies.
	SMTPTLS string
	// SMTPCAFile is a PEM bundle of the CAs trusted, instead of the system
	// roots, to verify the server; read at each Send. "" = system roots.
	SMTPCAFile string
	Sendmail   string // "" = DefaultSendmail; a name without '/' is looked up in PATH

	Host      string        // this host's name: EHLO, Message-ID, default From
	Timeout   time.Duration // per step; 0 = DefaultMailTimeout
	TLSConfig *tls.Config   // nil = system roots (or SMTPCAFile); ServerName defaults to the URL's host

	Now    func() time.Time // Date header; nil = time.Now
	Rand   io.Reader        // Message-ID and MIME boundary; nil = crypto/rand
	Logger *slog.Logger     // each SMTP step at debug level; nil = discard
}

// The values of MailConfig.SMTPTLS (the smtp_tls option).
const (
	// TLSMay is opportunistic TLS (RFC 7435, Postfix's
	// smtp_tls_security_level=may): STARTTLS when the server offers it,
	// and a certificate that cannot be verified does not stop delivery;
	// the connection is encrypted without authenticating the server, and
	// the logger says so once per server and reason.
	TLSMay = "may"
	// TLSVerify requires STARTTLS and a certificate that verifies against
	// the roots for the URL's host.
	TLSVerify = "verify"
	// TLSNone never starts TLS, even when offered. Refused with SMTPUser.
	TLSNone = "none"
)

// TLSPolicy returns the policy Send applies for cfg: SMTPTLS with its
// default, TLSVerify for smtps:// and whenever SMTPUser is set, "" when
// mail goes through sendmail. An error wraps ErrTLSPolicy or ErrSMTPURL.
func (cfg *MailConfig) TLSPolicy() (string, error) {
	if cfg.SMTPURL == "" {
		return "", nil
	}
	_, _, implicit, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return "", err
	}
	mode := cfg.SMTPTLS
	switch mode {
	case "", TLSMay:
		mode = TLSMay
		if implicit || cfg.SMTPUser != "" {
			mode = TLSVerify
		}
	case TLSVerify:
	case TLSNone:
		if implicit {
			return "", fmt.Errorf("%w: smtp_tls = none contradicts smtps:// (TLS from the first byte, always verified)", ErrTLSPolicy)
		}
		if cfg.SMTPUser != "" {
			return "", fmt.Errorf("%w: smtp_tls = none with smtp_user would send the password in clear text", ErrTLSPolicy)
		}
	default:
		return "", fmt.Errorf("%w %q (may, verify or none)", ErrTLSPolicy, mode)
	}
	return mode, nil
}

// SendInfo is how a delivery went out (or was tried), for `mail test`.
type SendInfo struct {
	Sendmail string // the sendmail binary run; "" for SMTP
	Server   string // SMTP: host:port dialled
	Policy   string // SMTP: the TLS policy applied (TLSMay, TLSVerify, TLSNone)
	// TLS is "starttls", "smtps", or "" when the session stayed in plain
	// text (TLSNone, or STARTTLS not offered under TLSMay).
	TLS        string
	TLSVersion string // e.g. "TLS 1.3"; "" without TLS
	// Verified: the server's certificate verified against the roots for
	// the URL's host. False with TLS only under TLSMay; then
	// VerifyError says why.
	Verified    bool
	VerifyError error
}

// unverifiedSeen keeps the servers whose unverified certificate was
// already logged, so a daemon says it once and not at every mail.
var unverifiedSeen sync.Map

func (cfg *MailConfig) now() time.Time {
	if cfg.Now == nil {
		return time.Now()
	}
	return cfg.Now()
}

func (cfg *MailConfig) timeout() time.Duration {
	if cfg.Timeout <= 0 {
		return DefaultMailTimeout
	}
	return cfg.Timeout
}

func (cfg *MailConfig) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// The steps a SendError names.
const (
	StepConfig   = "config"   // smtp_tls and smtp_ca_file, before any connection
	StepDial     = "dial"     // TCP connect and the server's greeting
	StepTLS      = "tls"      // implicit TLS handshake (smtps)
	StepHello    = "hello"    // EHLO (HELO when EHLO is refused)
	StepStartTLS = "starttls" // STARTTLS command and handshake, or its absence when required
	StepAuth     = "auth"     // password file and AUTH
	StepMail     = "mail"     // addresses and MAIL FROM
	StepRcpt     = "rcpt"     // RCPT TO
	StepData     = "data"     // DATA, the message, and the server's verdict on it
	StepQuit     = "quit"     // QUIT (logged only, see Send)
	StepSendmail = "sendmail" // running the sendmail binary
)

// SendError is a failed delivery: the step that failed and its real cause,
// unwrapped (an *smtp.SMTPError with the server's code and text, a TLS
// verification error from crypto/x509, a network error, or one of the
// sentinels above).
type SendError struct {
	Step string // one of the Step constants
	Err  error
}

func (e *SendError) Error() string { return "mail " + e.Step + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later, without changing the
// configuration, may succeed: network errors, timeouts, cancellation, SMTP
// 4xx replies and sendmail's EX_TEMPFAIL (75). SMTP 5xx replies, certificate
// errors, a missing STARTTLS or AUTH mechanism and configuration errors are
// permanent. Either way the message is spooled; the class only tells the
// caller what to say and whether waiting helps.
func (e *SendError) Temporary() bool {
	err := e.Err
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code/100 == 4
	}
	var sx *sendmailExit
	if errors.As(err, &sx) {
		return sx.code == exTempFail
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &alert):
		return false
	case errors.Is(err, ErrSMTPURL), errors.Is(err, ErrNoStartTLS), errors.Is(err, ErrTLSPolicy), errors.Is(err, ErrCAFile), errors.Is(err, ErrNoAuthMech),
		errors.Is(err, ErrPasswordFile), errors.Is(err, ErrAddress), errors.Is(err, ErrNoRecipients):
		return false
	}
	// Not net.Error alone: syscall.Errno satisfies it too, and a missing
	// sendmail binary (ENOENT) is no reason to wait.
	var op *net.OpError
	var ne net.Error
	if errors.As(err, &op) || errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// perMessage reports whether err condemns this message only: the server
// refused its content after DATA with a 5xx (too large, rejected content).
// Every other failure (connection, TLS, AUTH, sender or recipients) would
// fail the same way for every message.
func perMessage(err error) bool {
	var e *SendError
	var se *smtp.SMTPError
	return errors.As(err, &e) && e.Step == StepData && errors.As(e.Err, &se) && se.Code/100 == 5
}

// Send delivers msg (a complete message, e.g. from NewMessage) to cfg.To.
//
// With cfg.SMTPURL it speaks SMTP through go-smtp's client: connect,
// EHLO as cfg.Host, STARTTLS as cfg.TLSPolicy says (under TLSMay when the
// server offers it, verified if possible; under TLSVerify required and
// verified, before any credential; never under TLSNone; smtps:// uses
// implicit, verified TLS),
// AUTH PLAIN (or LOGIN when only that is offered) with the password from
// cfg.SMTPPasswordFile, MAIL FROM, one RCPT TO per recipient, DATA, QUIT.
// Each step is bounded by cfg.Timeout and all by ctx. Once the server has
// accepted the data, a failing QUIT is only logged: the mail is delivered,
// and reporting a failure would spool it and send it twice.
//
// Without SMTPURL it runs the sendmail binary with argv [sendmail -oi -f
// FROM -- TO...] (no shell), the message on stdin with LF line ends (the
// local convention; the MTA restores CRLF), and checks its exit status.
//
// Every error is a *SendError naming the step and wrapping the real cause.
func Send(ctx context.Context, cfg MailConfig, msg []byte) error {
	_, err := SendWithInfo(ctx, cfg, msg)
	return err
}

// SendWithInfo is Send that also tells how the message went out: the TLS
// policy, whether TLS was used and the certificate verified. The info is
// filled as far as the delivery got, also on error.
func SendWithInfo(ctx context.Context, cfg MailConfig, msg []byte) (SendInfo, error) {
	var info SendInfo
	from, to, err := cfg.addresses()
	if err != nil {
		return info, &SendError{Step: StepMail, Err: err}
	}
	if cfg.SMTPURL != "" {
		// Servers refuse unqualified addresses; sendmail's MTA
		// qualifies a bare name itself (see qualified).
		from = cfg.qualified(from)
		for i, a := range to {
			to[i] = cfg.qualified(a)
		}
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		rcpts[i] = a.Address
	}
	if cfg.SMTPURL == "" {
		info.Sendmail = cfg.Sendmail
		if info.Sendmail == "" {
			info.Sendmail = DefaultSendmail
		}
		return info, sendmail(ctx, &cfg, from.Address, rcpts, msg)
	}
	err = sendSMTP(ctx, &cfg, from.Address, rcpts, msg, &info)
	return info, err
}

// parseSMTPURL splits smtp://host[:port] or smtps://host[:port] into the
// dial address, the host name TLS verifies, and whether TLS is implicit.
func parseSMTPURL(s string) (addr, host string, implicit bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", false, fmt.Errorf("%w %q: %v", ErrSMTPURL, s, err)
	}
	port := ""
	switch u.Scheme {
	case "smtp":
		port = "25"
	case "smtps":
		port, implicit = "465", true
	default:
		return "", "", false, fmt.Errorf("%w %q: scheme must be smtp or smtps", ErrSMTPURL, s)
	}
	// The password lives in smtp_password_file, never in a URL that ends up
	// in logs and process listings.
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", false, fmt.Errorf("%w %q: only scheme, host and port are allowed", ErrSMTPURL, s)
	}
	host = u.Hostname()
	if host == "" {
		return "", "", false, fmt.Errorf("%w %q: no host", ErrSMTPURL, s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", "", false, fmt.Errorf("%w %q: bad port", ErrSMTPURL, s)
		}
		port = p
	}
	return net.JoinHostPort(host, port), host, implicit, nil
}

// smtpSession is one SMTP delivery. go-smtp's client cannot start TLS on a
// connection it has already greeted with our EHLO name, and it has no
// context support, so the session does the plain-text opening (greeting,
// EHLO, STARTTLS) itself with net/textproto, hands the connection (now TLS
// or still plain) to go-smtp with the greeting replayed, and closes the
// connection when ctx ends.
type smtpSession struct {
	ctx     context.Context
	cfg     *MailConfig
	log     *slog.Logger
	timeout time.Duration
	raw     net.Conn // the TCP connection; closing it ends everything
	policy  string   // TLSMay, TLSVerify or TLSNone
	info    *SendInfo
}

func (s *smtpSession) fail(step string, err error) error {
	if cerr := context.Cause(s.ctx); cerr != nil {
		// Closing the connection on cancellation turns the real cause
		// into "use of closed network connection"; name the cause.
		err = fmt.Errorf("%w (%v)", cerr, err)
	}
	s.log.Debug("smtp step failed", "step", step, "err", err)
	return &SendError{Step: step, Err: err}
}

func (s *smtpSession) deadline() {
	s.raw.SetDeadline(time.Now().Add(s.timeout))
}

func sendSMTP(ctx context.Context, cfg *MailConfig, from string, to []string, msg []byte, info *SendInfo) error {
	log := cfg.logger()
	addr, host, implicit, err := parseSMTPURL(cfg.SMTPURL)
	if err != nil {
		return &SendError{Step: StepDial, Err: err}
	}
	info.Server = addr
	policy, err := cfg.TLSPolicy()
	if err != nil {
		return &SendError{Step: StepConfig, Err: err}
	}
	info.Policy = policy
	var tlsConf *tls.Config
	if policy != TLSNone {
		if tlsConf, err = cfg.tlsConfig(host, policy, info); err != nil {
			return &SendError{Step: StepConfig, Err: err}
		}
	}
	var password string
	if cfg.SMTPUser != "" {
		// Read before connecting: an unsafe file is a configuration error
		// that no server needs to see.
		if password, err = readPassword(cfg.SMTPPasswordFile); err != nil {
			return &SendError{Step: StepAuth, Err: err}
		}
	}
	s := &smtpSession{ctx: ctx, cfg: cfg, log: log, timeout: cfg.timeout(), policy: policy, info: info}

	log.Debug("smtp dial", "addr", addr)
	d := net.Dialer{Timeout: s.timeout}
	s.raw, err = d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return s.fail(StepDial, err)
	}
	defer s.raw.Close()
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	defer stop()

	ehloName := mailHost(cfg.Host)
	var conn net.Conn = s.raw
	secure := false
	if implicit {
		log.Debug("smtp tls handshake", "server", tlsConf.ServerName)
		tc, err := s.handshake(tlsConf, "smtps")
		if err != nil {
			return s.fail(StepTLS, err)
		}
		conn, secure = tc, true
	} else {
		tc, err := s.opening(ehloName, tlsConf)
		if err != nil {
			return err
		}
		if tc != nil {
			conn, secure = tc, true
		}
		// go-smtp reads a greeting first; the real one is consumed.
		conn = &greetedConn{Conn: conn, r: io.MultiReader(strings.NewReader("220 "+host+" ESMTP\r\n"), conn)}
	}
	if (policy == TLSVerify || cfg.SMTPUser != "") && !secure {
		return s.fail(StepStartTLS, ErrNoStartTLS)
	}

	c := smtp.NewClient(conn)
	c.CommandTimeout = s.timeout
	c.SubmissionTimeout = s.timeout
	defer c.Close()
	log.Debug("smtp hello", "name", ehloName, "tls", secure)
	if err := c.Hello(ehloName); err != nil {
		return s.fail(StepHello, err)
	}
	if cfg.SMTPUser != "" {
		var a sasl.Client
		mech := "PLAIN"
		switch {
		case c.SupportsAuth("PLAIN"):
			a = sasl.NewPlainClient("", cfg.SMTPUser, password)
		case c.SupportsAuth("LOGIN"):
			a, mech = sasl.NewLoginClient(cfg.SMTPUser, password), "LOGIN"
		default:
			_, offered := c.Extension("AUTH")
			return s.fail(StepAuth, fmt.Errorf("%w (offered: %q)", ErrNoAuthMech, offered))
		}
		log.Debug("smtp auth", "mech", mech, "user", cfg.SMTPUser)
		if err := c.Auth(a); err != nil {
			return s.fail(StepAuth, err)
		}
	}
	log.Debug("smtp mail from", "from", from)
	if err := c.Mail(from, nil); err != nil {
		return s.fail(StepMail, err)
	}
	for _, r := range to {
		log.Debug("smtp rcpt to", "to", r)
		if err := c.Rcpt(r, nil); err != nil {
			return s.fail(StepRcpt, err)
		}
	}
	log.Debug("smtp data", "bytes", len(msg))
	w, err := c.Data()
	if err != nil {
		return s.fail(StepData, err)
	}
	// go-smtp bounds commands but not the writing of the message; allow the
	// step timeout plus a second per 64 KiB so a large report on a slow
	// link is not cut off while a stalled server still is.
	s.raw.SetDeadline(time.Now().Add(s.timeout + time.Duration(len(msg)>>16)*time.Second))
	if _, err := w.Write(msg); err != nil {
		return s.fail(StepData, err)
	}
	if err := w.Close(); err != nil {
		return s.fail(StepData, err)
	}
	if err := c.Quit(); err != nil {
		log.Debug("smtp quit failed after the message was accepted", "err", err)
	}
	return nil
}

// handshake runs the TLS client handshake on the raw connection and
// records it in s.info as kind ("starttls" or "smtps"). Under TLSMay the
// handshake does not verify (conf's VerifyConnection records the verdict)
// and an unverified certificate is logged once per server and reason.
func (s *smtpSession) handshake(conf *tls.Config, kind string) (*tls.Conn, error) {
	tc := tls.Client(s.raw, conf)
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var ve *tls.CertificateVerificationError
		if errors.As(err, &ve) {
			why := "smtp_tls = verify"
			switch {
			case kind == "smtps":
				why = "smtps:// always verifies"
			case s.cfg.SMTPUser != "" && s.cfg.SMTPTLS != TLSVerify:
				why = "smtp_user is set, which implies smtp_tls = verify"
			}
			err = fmt.Errorf("%w (certificate verification is required: %s; smtp_ca_file can name a private CA)", err, why)
		}
		return nil, err
	}
	s.raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	s.info.TLS, s.info.TLSVersion = kind, tls.VersionName(st.Version)
	if s.policy != TLSMay {
		s.info.Verified = true // the handshake verified, or it failed above
	}
	if s.info.VerifyError != nil {
		key := s.info.Server + "\x00" + s.info.VerifyError.Error()
		if _, seen := unverifiedSeen.LoadOrStore(key, true); !seen {
			s.log.Info("smtp server certificate not verified; encrypting without authenticating the server (smtp_tls = may)",
				"server", s.info.Server, "reason", s.info.VerifyError)
		}
	}
	s.log.Debug("smtp tls established", "version", s.info.TLSVersion, "verified", s.info.Verified)
	return tc, nil
}

// opening reads the greeting, says EHLO and, when the server offers it
// and conf is not nil (nil = TLSNone), starts TLS. It returns the TLS
// connection, or nil when the session stays plain (STARTTLS not offered or
// not wanted; the caller refuses that when TLS is required).
//
//	S: 220 mail.example.com ESMTP
//	C: EHLO host1
//	S: 250-mail.example.com
//	S: 250 STARTTLS
//	C: STARTTLS
//	S: 220 ready
func (s *smtpSession) opening(ehloName string, conf *tls.Config) (*tls.Conn, error) {
	needTLS := s.policy == TLSVerify
	tp := textproto.NewConn(s.raw)
	s.deadline()
	if _, _, err := tp.ReadResponse(220); err != nil {
		return nil, s.fail(StepDial, smtpError(err))
	}
	s.log.Debug("smtp ehlo", "name", ehloName)
	s.deadline()
	_, text, err := smtpCmd(tp, 250, "EHLO %s", ehloName)
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code/100 != 5 || needTLS {
			return nil, s.fail(StepHello, err)
		}
		// An old server without ESMTP: HELO, no extensions, no TLS.
		if _, _, err := smtpCmd(tp, 250, "HELO %s", ehloName); err != nil {
			return nil, s.fail(StepHello, err)
		}
		s.raw.SetDeadline(time.Time{})
		return nil, nil
	}
	if conf == nil {
		s.raw.SetDeadline(time.Time{})
		s.log.Debug("smtp not starting TLS (smtp_tls = none)", "offered", hasExtension(text, "STARTTLS"))
		return nil, nil
	}
	if !hasExtension(text, "STARTTLS") {
		s.raw.SetDeadline(time.Time{})
		if needTLS {
			smtpCmd(tp, 221, "QUIT")
			return nil, s.fail(StepStartTLS, ErrNoStartTLS)
		}
		s.log.Debug("smtp server offers no STARTTLS; continuing in plain text")
		return nil, nil
	}
	s.log.Debug("smtp starttls", "server", conf.ServerName)
	s.deadline()
	if _, _, err := smtpCmd(tp, 220, "STARTTLS"); err != nil {
		return nil, s.fail(StepStartTLS, err)
	}
	tc, err := s.handshake(conf, "starttls")
	if err != nil {
		return nil, s.fail(StepStartTLS, err)
	}
	return tc, nil
}

// smtpCmd sends one command and reads its reply, as an *smtp.SMTPError when
// the code is not the expected one.
func smtpCmd(tp *textproto.Conn, expect int, format string, args ...any) (int, string, error) {
	id, err := tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	code, text, err := tp.ReadResponse(expect)
	return code, text, smtpError(err)
}

// smtpError turns a textproto reply error into go-smtp's SMTPError, so
// callers see one type for "the server said no", whichever code read it.
func smtpError(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	}
	return err
}

// hasExtension reports whether an EHLO reply (lines after the first are
// extensions, "KEYWORD params") lists keyword.
func hasExtension(reply, keyword string) bool {
	lines := strings.Split(reply, "\n")
	for _, l := range lines[1:] {
		k, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		if strings.EqualFold(k, keyword) {
			return true
		}
	}
	return false
}

// greetedConn replays a greeting before the connection's own bytes, so
// go-smtp's client can take over a session whose opening is done.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(p []byte) (int, error) { return g.r.Read(p) }

// tlsConfig returns a copy of cfg.TLSConfig for host, TLS 1.2 or newer,
// trusting the CAs of cfg.SMTPCAFile when set. Under TLSVerify the
// handshake verifies; under TLSMay it does not, and records in info
// whether the certificate would have verified and why not.
func (cfg *MailConfig) tlsConfig(host, policy string, info *SendInfo) (*tls.Config, error) {
	var c *tls.Config
	if cfg.TLSConfig != nil {
		c = cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if cfg.SMTPCAFile != "" {
		pool, err := readCAFile(cfg.SMTPCAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if policy == TLSMay {
		roots, name := c.RootCAs, c.ServerName
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			info.VerifyError = verifyPeer(cs.PeerCertificates, roots, name)
			info.Verified = info.VerifyError == nil
			return nil
		}
	}
	return c, nil
}

// verifyPeer checks a server's certificate chain as a verifying handshake
// would: against roots (nil = the system's), for name.
func verifyPeer(chain []*x509.Certificate, roots *x509.CertPool, name string) error {
	if len(chain) == 0 {
		return errors.New("server sent no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := chain[0].Verify(opts)
	return err
}

// maxCAFile bounds smtp_ca_file; the whole Mozilla bundle is about 200 KiB.
const maxCAFile = 4 << 20

// readCAFile returns the certificates of a PEM bundle as a pool.
func readCAFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCAFile, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCAFile, path, err)
	}
	if len(b) > maxCAFile {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrCAFile, path, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: %s: no PEM certificate found", ErrCAFile, path)
	}
	return pool, nil
}

// readPassword returns the first line of the password file after checking
// that only its owner (the current user or root) can read it: a regular
// file, not a symbolic link, mode without group or other bits.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: smtp_user is set but smtp_password_file is not", ErrPasswordFile)
	}
	bad := func(why string) error {
		return &fs.PathError{Op: "smtp_password_file", Path: path, Err: fmt.Errorf("%w: %s", ErrPasswordFile, why)}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return "", bad("is a symbolic link")
	}
	// O_NOFOLLOW and the Fstat below close the window between Lstat and
	// open in which the file could be swapped.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", bad("not a regular file")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return "", bad(fmt.Sprintf("owned by uid %d, not by root or the current user (uid %d)", st.Uid, os.Geteuid()))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", bad(fmt.Sprintf("mode %04o lets group or others read it (want 0600 or 0400)", perm))
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return "", bad("empty first line")
	}
	return string(line), nil
}

// exTempFail is sysexits.h's EX_TEMPFAIL, sendmail's "try again later".
const exTempFail = 75

// sendmailExit is a sendmail run that exited non-zero, with what it said.
type sendmailExit struct {
	path   string
	code   int
	stderr string
	err    *exec.ExitError
}

func (e *sendmailExit) Error() string {
	s := fmt.Sprintf("%s: %v", e.path, e.err)
	if e.stderr != "" {
		s += ": " + e.stderr
	}
	return s
}

func (e *sendmailExit) Unwrap() error { return e.err }

// limitedBuffer keeps the first max bytes written and discards the rest, so
// a chatty sendmail cannot fill memory.
type limitedBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func sendmail(ctx context.Context, cfg *MailConfig, from string, to []string, msg []byte) error {
	path := cfg.Sendmail
	if path == "" {
		path = DefaultSendmail
	}
	args := append([]string{"-oi", "-f", from, "--"}, to...)
	cfg.logger().Debug("sendmail", "path", path, "args", args)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	c := exec.CommandContext(ctx, path, args...)
	c.Stdin = bytes.NewReader(bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n")))
	out := &limitedBuffer{max: 4096}
	c.Stdout, c.Stderr = out, out
	// A sendmail that forks a child holding the pipes open must not keep
	// us waiting past the timeout.
	c.WaitDelay = time.Second
	err := c.Run()
	if err == nil {
		return nil
	}
	if cerr := context.Cause(ctx); cerr != nil {
		return &SendError{Step: StepSendmail, Err: fmt.Errorf("%s: %w", path, cerr)}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		text := strings.Join(strings.Fields(strings.ToValidUTF8(out.b.String(), "?")), " ")
		return &SendError{Step: StepSendmail, Err: &sendmailExit{path: path, code: ee.ExitCode(), stderr: text, err: ee}}
	}
	return &SendError{Step: StepSendmail, Err: err}
}
