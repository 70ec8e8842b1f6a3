package sshval

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Logging errors. Log wraps every error in one of them, so a caller can tell
// a lost syslog datagram (tolerable) from a failed log file write (the
// decision must then be turned into a rejection: every decision is logged).
var (
	// ErrLogFile marks a failure to append the line to Logger.File.
	ErrLogFile = errors.New("sshval: log file")
	// ErrSyslog marks a failure to deliver the datagram to the syslog socket,
	// including a missing /dev/log.
	ErrSyslog = errors.New("sshval: syslog")
)

const (
	// defaultSyslog is the local syslog socket of glibc, rsyslog and journald.
	defaultSyslog = "/dev/log"
	// facilityAuthpriv is LOG_AUTHPRIV (10), the facility sshd logs to.
	facilityAuthpriv = 10
	severityWarning  = 4
	severityInfo     = 6
	// maxSyslogMessage caps one datagram. rsyslog's default maxMessageSize is
	// 8k and drops the rest; a much larger datagram could also fail with
	// EMSGSIZE and lose the record altogether. The file line is never cut.
	maxSyslogMessage = 8000
	// syslogTimeout bounds the wait on a full syslog socket so a stuck
	// syslog daemon cannot hold up the connection.
	syslogTimeout = 2 * time.Second
)

// Logger writes one record per Decision to syslog and, optionally, to a log
// file. Its zero value logs to /dev/log only, with the real clock, host and
// PID. A Logger is not changed by Log and may be used from several
// goroutines.
type Logger struct {
	// File is the log file appended to; "" means no file.
	File string
	// Syslog is the path of the local syslog socket; "" means /dev/log and
	// "-" means no syslog at all.
	Syslog string
	// Host is the host name in file lines; "" means os.Hostname up to the
	// first dot.
	Host string
	// Now is the clock; nil means time.Now. Times are printed in their own
	// location, like syslog does with local time.
	Now func() time.Time
	// PID is the number in the tag sshval(PID); 0 means os.Getpid().
	PID int
}

// Log records d. The file line has the form
//
//	May 04 11:36:15 buserver3 sshval(13156): ssh command rejected from 10.1.2.3: rm -rf /x (reason: no rule allows rm)
//
// and the syslog datagram (RFC 3164 in the local form, without host name,
// facility authpriv, severity info when accepted and warning when rejected)
//
//	<84>May  4 11:36:15 sshval(13156): ssh command rejected from 10.1.2.3: rm -rf /x (reason: no rule allows rm)
//
// Message gives the text after the tag. Both are attempted even if one
// fails. Errors wrap ErrLogFile or ErrSyslog (both, joined, if both fail);
// an ErrLogFile error means d was not recorded in the file and the caller
// must fail closed.
func (l *Logger) Log(d Decision) error {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	pid := l.PID
	if pid == 0 {
		pid = os.Getpid()
	}
	tag := "sshval(" + strconv.Itoa(pid) + "): "
	msg := Message(d)

	var errs []error
	if l.File != "" {
		host := l.Host
		if host == "" {
			host = shortHostname()
		}
		line := t.Format("Jan 02 15:04:05") + " " + host + " " + tag + msg + "\n"
		if err := appendLine(l.File, line); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrLogFile, err))
		}
	}
	if l.Syslog != "-" {
		sock := l.Syslog
		if sock == "" {
			sock = defaultSyslog
		}
		sev := severityWarning
		if d.Allow {
			sev = severityInfo
		}
		pri := "<" + strconv.Itoa(facilityAuthpriv*8+sev) + ">"
		dgram := pri + t.Format(time.Stamp) + " " + tag + truncate(msg, maxSyslogMessage)
		if err := sendSyslog(sock, dgram); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrSyslog, err))
		}
	}
	return errors.Join(errs...)
}

// Message returns the text of the log record for d, the same in syslog and
// in the file:
//
//	interactive shell rejected from 10.1.2.3
//	ssh command accepted from 10.1.2.3: rsync --server -vlogDtpre.iLsfxCIvu . /data/irsync/x
//	ssh command rejected from 10.1.2.3: rm -rf /x (reason: no rule allows rm)
//
// The command is d.Command as received, and a rejection appends
// " (reason: R)" when d.Reason is set; an interactive login has no command
// and no reason. The source is "unknown" when d.From is not valid. Command
// and reason are passed through Escape, so the result is a single line.
func Message(d Decision) string {
	verdict := "rejected"
	if d.Allow {
		verdict = "accepted"
	}
	from := "unknown"
	if d.From.IsValid() {
		from = d.From.Unmap().String()
	}
	if d.Interactive {
		return "interactive shell " + verdict + " from " + from
	}
	var b strings.Builder
	b.WriteString("ssh command " + verdict + " from " + from + ": " + Escape(d.Command))
	if !d.Allow && d.Reason != "" {
		b.WriteString(" (reason: " + Escape(d.Reason) + ")")
	}
	return b.String()
}

// Escape makes s safe to log as part of one line. Every byte of an ASCII
// control character (C0 and DEL) and every byte of invalid UTF-8 is written
// as a backslash and three octal digits, as aide prints control bytes in
// its reports: a newline becomes \012 and a stray 0xff byte \377. Every
// other rune unicode.IsPrint rejects is written as \u and four hex digits
// (\U and eight above U+FFFF), the way JSON and Go spell a code point: C1
// controls (\u0085), format characters (category Cf: the bidi controls
// U+200E, U+200F, U+202A-U+202E and U+2066-U+2069, zero-width spaces, the
// soft hyphen), the line and paragraph separators U+2028 and U+2029,
// private-use and unassigned code points, and U+FFFD itself (\ufffd), so it
// reads differently from an invalid byte. Printable text, including the
// ASCII space, is kept as is, so a log line can neither be split nor
// reordered on screen. A backslash is not doubled (rsync escapes spaces
// with it and the log should show the command as sent), so a literal
// "\012" in the command reads the same as an escaped newline: the log
// stays unforgeable, not reversible.
func Escape(s string) string {
	clean := true
	for _, r := range s {
		if !keep(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case keep(r):
			b.WriteString(s[i : i+n])
		case r < utf8.RuneSelf || r == utf8.RuneError && n == 1:
			c := s[i]
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
		case r > 0xffff:
			b.WriteString(`\U`)
			for shift := 28; shift >= 0; shift -= 4 {
				b.WriteByte(hex[r>>shift&15])
			}
		default:
			b.WriteString(`\u`)
			for shift := 12; shift >= 0; shift -= 4 {
				b.WriteByte(hex[r>>shift&15])
			}
		}
		i += n
	}
	return b.String()
}

// keep reports whether r may appear in a log line unescaped. Invalid UTF-8
// decodes to U+FFFD, so that rune is always escaped (a genuine U+FFFD as
// \ufffd, an invalid byte in octal).
func keep(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= ' ' && r != 0x7f
	}
	return r != utf8.RuneError && unicode.IsPrint(r)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut
// with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

// appendLine writes line to path with one write(2) on an O_APPEND
// descriptor, so concurrent connections never interleave their records.
// O_NOFOLLOW keeps a symlink planted by the login user (who may own the
// file) from redirecting the write; O_NONBLOCK keeps a FIFO from blocking
// the open, and anything but a regular file is refused. A new file is 0600.
func appendLine(path, line string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &os.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	n, err := f.WriteString(line)
	if err == nil && n != len(line) {
		err = &os.PathError{Op: "write", Path: path, Err: errors.New("short write")}
	}
	return err
}

// sendSyslog delivers one message to the local socket at path. The socket
// is normally a datagram socket (rsyslog imuxsock, journald); for a stream
// socket (some syslog-ng setups) the message is sent NUL-terminated, as
// glibc's syslog(3) does.
func sendSyslog(path, msg string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	stream := false
	if errors.Is(err, syscall.EPROTOTYPE) {
		conn, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		stream = true
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(syslogTimeout)); err != nil {
		return err
	}
	if stream {
		msg += "\x00"
	}
	_, err = conn.Write([]byte(msg))
	return err
}
