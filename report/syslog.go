package report

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of the syslog writer; test with errors.Is.
var (
	// ErrFacility means a facility name is not one ParseFacility knows.
	ErrFacility = errors.New("report: unknown syslog facility")
	// ErrSyslogUnavailable means the syslog socket could not be reached
	// (no /dev/log in a container, no daemon listening). A caller that
	// only logs a summary line may ignore it.
	ErrSyslogUnavailable = errors.New("report: syslog socket unavailable")
)

// Facility is a syslog facility with its syslog(3) number (LOG_LOCAL1 is
// 17). The zero value is LOG_KERN, as in syslog(3); use ParseFacility or a
// constant.
type Facility uint8

// The facilities aide 0.18.3 knows by name, with their syslog(3) numbers.
const (
	FacilityKern   Facility = 0
	FacilityUser   Facility = 1
	FacilityMail   Facility = 2
	FacilityDaemon Facility = 3
	FacilityAuth   Facility = 4
	FacilitySyslog Facility = 5
	FacilityLPR    Facility = 6
	FacilityNews   Facility = 7
	FacilityUUCP   Facility = 8
	FacilityCron   Facility = 9
	FacilityLocal0 Facility = 16
	FacilityLocal1 Facility = 17
	FacilityLocal2 Facility = 18
	FacilityLocal3 Facility = 19
	FacilityLocal4 Facility = 20
	FacilityLocal5 Facility = 21
	FacilityLocal6 Facility = 22
	FacilityLocal7 Facility = 23
)

// facilityNames lists the names without the LOG_ prefix. aide 0.18.3
// knows exactly these (it has no AUTHPRIV or FTP: LOG_AUTHPRIV makes it
// warn and use LOG_LOCAL0).
var facilityNames = []struct {
	name string
	f    Facility
}{
	{"kern", FacilityKern}, {"user", FacilityUser}, {"mail", FacilityMail},
	{"daemon", FacilityDaemon}, {"auth", FacilityAuth}, {"syslog", FacilitySyslog},
	{"lpr", FacilityLPR}, {"news", FacilityNews}, {"uucp", FacilityUUCP},
	{"cron", FacilityCron},
	{"local0", FacilityLocal0}, {"local1", FacilityLocal1}, {"local2", FacilityLocal2},
	{"local3", FacilityLocal3}, {"local4", FacilityLocal4}, {"local5", FacilityLocal5},
	{"local6", FacilityLocal6}, {"local7", FacilityLocal7},
}

// ParseFacility parses the facility of report_url=syslog:LOG_LOCAL1: a
// name of syslog(3) as aide 0.18.3 knows it (LOG_KERN, LOG_USER, LOG_MAIL,
// LOG_DAEMON, LOG_AUTH, LOG_SYSLOG, LOG_LPR, LOG_NEWS, LOG_UUCP, LOG_CRON,
// LOG_LOCAL0..LOG_LOCAL7), in any case as aide accepts it (log_local1), and
// also without the LOG_ prefix (local1), which aide does not accept.
// Surrounding blanks are ignored. Anything else wraps ErrFacility; aide
// itself warns `Syslog facility "X" is unknown, using default` and uses
// LOG_LOCAL0 (also for an empty name, silently), so a caller that wants
// aide's leniency falls back to FacilityLocal0.
func ParseFacility(s string) (Facility, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	n = strings.TrimPrefix(n, "log_")
	for _, f := range facilityNames {
		if f.name == n {
			return f.f, nil
		}
	}
	return 0, fmt.Errorf("syslog facility %q: %w", s, ErrFacility)
}

// String returns the syslog(3) name, e.g. "LOG_LOCAL1".
func (f Facility) String() string {
	for _, n := range facilityNames {
		if n.f == f {
			return "LOG_" + strings.ToUpper(n.name)
		}
	}
	return "LOG_FACILITY(" + strconv.Itoa(int(f)) + ")"
}

// Severity is a syslog severity (syslog(3)'s level), 0 (emergency) to 7
// (debug).
type Severity uint8

// The severities of syslog(3).
const (
	SeverityEmerg   Severity = 0
	SeverityAlert   Severity = 1
	SeverityCrit    Severity = 2
	SeverityErr     Severity = 3
	SeverityWarning Severity = 4
	SeverityNotice  Severity = 5
	SeverityInfo    Severity = 6
	SeverityDebug   Severity = 7
)

// DefaultSyslogPath is the local syslog socket on Linux (rsyslog's
// imuxsock, syslog-ng, journald's /dev/log). There is no fallback to
// /var/run/syslog, which only BSDs and macOS use.
const DefaultSyslogPath = "/dev/log"

// DefaultSyslogTag is the tag the agent logs under.
const DefaultSyslogTag = "agent"

// syslogMaxPacket is RFC 3164's limit on a whole packet (§4.1: "MUST be
// 1024 bytes or less"). Longer lines are split so no daemon truncates them.
const syslogMaxPacket = 1024

// syslogMinChunk keeps a split making progress when a huge tag or host
// leaves less room than this for the message.
const syslogMinChunk = 64

// defaultSyslogTimeout bounds one Send: a local datagram socket blocks when
// the daemon's queue is full, and a stuck syslogd must not hang a check.
const defaultSyslogTimeout = 5 * time.Second

// SyslogWriter sends messages to a local syslog socket as RFC 3164
// datagrams in the local form glibc's syslog(3) uses, which is also what
// aide sends:
//
//	<141>Nov 21 06:43:53 agent[4242]: Summary:
//
// The time stamp is Now in its own location (local time for time.Now), with
// a space-padded day. There is no host name: a daemon reading /dev/log adds
// the local host itself, and rsyslog and journald would take a host name
// sent there for the tag. Set Hostname for a socket that forwards to a
// relay expecting the network form (<PRI>Mmm dd hh:mm:ss host tag[pid]:
// msg).
//
// Each Send dials the socket, writes, and closes it, so a SyslogWriter
// holds no connection and is safe for concurrent use; a daemon restart
// between runs costs nothing.
type SyslogWriter struct {
	// Path is the socket (a unix datagram socket). "" means /dev/log.
	Path string
	// Facility is the facility of every message; see ParseFacility.
	Facility Facility
	// Tag names the program, e.g. "agent". "" means DefaultSyslogTag.
	Tag string
	// PID follows the tag in brackets, "agent[4242]". 0 means
	// os.Getpid(); negative leaves out the brackets.
	PID int
	// Hostname, if set, is written after the time stamp (network form).
	Hostname string
	// Now is the clock of the time stamps. Nil means time.Now.
	Now func() time.Time
	// Timeout bounds one Send. Zero means 5 s.
	Timeout time.Duration
}

// Syslog sends msg to /dev/log with the given facility and severity under
// tag[pid] of this process. A msg of several lines becomes one datagram per
// non-empty line. A missing or dead /dev/log wraps ErrSyslogUnavailable.
func Syslog(facility Facility, sev Severity, tag, msg string) error {
	w := SyslogWriter{Facility: facility, Tag: tag}
	return w.Send(sev, msg)
}

// WriteSyslogReport sends r's plain report (WriteText) to /dev/log, one
// datagram per non-empty line at severity notice, as report_url=
// syslog:LOG_LOCAL1 asks. The facility is parsed with ParseFacility; an
// unknown one wraps ErrFacility and nothing is sent (check it when the
// config is loaded).
func WriteSyslogReport(facility string, r *Report) error {
	f, err := ParseFacility(facility)
	if err != nil {
		return err
	}
	w := SyslogWriter{Facility: f}
	return w.WriteReport(r)
}

// WriteReport sends r's plain report, one datagram per non-empty line at
// severity notice (the level aide uses for its report). aide sends each
// chunk of its output as one message with the newlines inside, which
// syslog daemons mangle (#012); a line per message reads well in
// /var/log/syslog and journalctl. Blank lines are left out because they
// carry nothing in a log.
func (w *SyslogWriter) WriteReport(r *Report) error {
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		return err
	}
	return w.Send(SeverityNotice, b.String())
}

// Send sends msg at severity sev: one datagram per non-empty line (a
// trailing "\r" is dropped), each line split into several datagrams when
// the packet would exceed RFC 3164's 1024 bytes, on a UTF-8 boundary where
// the text is UTF-8. A socket that cannot be reached wraps
// ErrSyslogUnavailable; a failed or timed-out write is returned as it is,
// after the datagrams before it were sent.
func (w *SyslogWriter) Send(sev Severity, msg string) error {
	path := w.Path
	if path == "" {
		path = DefaultSyslogPath
	}
	lines := w.packets(sev, msg)
	if len(lines) == 0 {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("syslog %s: %w: %w", path, ErrSyslogUnavailable, err)
	}
	defer conn.Close()
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = defaultSyslogTimeout
	}
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("syslog %s: %w", path, err)
	}
	for _, p := range lines {
		if _, err := conn.Write(p); err != nil {
			return fmt.Errorf("syslog %s: %w", path, err)
		}
	}
	return nil
}

// packets formats msg into datagrams: header + one piece of one line each.
func (w *SyslogWriter) packets(sev Severity, msg string) [][]byte {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	tag := w.Tag
	if tag == "" {
		tag = DefaultSyslogTag
	}
	pid := w.PID
	if pid == 0 {
		pid = os.Getpid()
	}
	pri := int(w.Facility&0x1f)<<3 | int(sev&7)
	head := "<" + strconv.Itoa(pri) + ">" + now().Format(time.Stamp) + " "
	if w.Hostname != "" {
		head += w.Hostname + " "
	}
	head += tag
	if pid > 0 {
		head += "[" + strconv.Itoa(pid) + "]"
	}
	head += ": "
	room := max(syslogMaxPacket-len(head), syslogMinChunk)

	var out [][]byte
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSuffix(line, "\r")
		for line != "" {
			n := splitAt(line, room)
			out = append(out, []byte(head+line[:n]))
			line = line[n:]
		}
	}
	return out
}

// splitAt returns how many bytes of s (at most room) go in one datagram:
// all of s if it fits, else room bytes moved back to the start of a UTF-8
// character if that start is near (invalid UTF-8 is cut anywhere).
func splitAt(s string, room int) int {
	if len(s) <= room {
		return len(s)
	}
	for n := room; n > room-utf8.UTFMax && n > 0; n-- {
		if utf8.RuneStart(s[n]) {
			return n
		}
	}
	return room
}
