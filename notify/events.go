package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"opsagent/report"
)

// The kinds of event (AGENT_EVENT in the journal, "event" in JSON).
const (
	EventIntegrityChange = "integrity.change"
	EventRAIDVerdict     = "raid.verdict"
	EventAOERestart      = "aoe.restart"
	EventSSHValRefusal   = "sshval.refusal"
	EventMailGiveUp      = "mail.giveup"
	EventPosture         = "posture.finding"
	// EventSuppressed is the one summary a run sends when the flood limit
	// held back some of its events.
	EventSuppressed = "events.suppressed"
)

// DefaultEventsMax is the default of events_max: the events one run sends
// before the rest are only counted in the summary.
const DefaultEventsMax = 100

// Event is one finding.
type Event struct {
	Kind     string
	Severity report.Severity
	Message  string
	// Path is a file-system path, escaped as in the JSON report
	// (report.EscapeJSONPath) before it is sent; "" for none.
	Path string
	// Fields are more key/value pairs: lower-case keys of letters, digits
	// and '_' (in the journal AGENT_<KEY>), e.g. class, change, tool.
	Fields map[string]string
}

// Events sends the events of one run to the sink chosen by the events
// option, at most Max of them, then counts the rest for the summary that
// Close sends. A nil *Events sends nothing. Methods are not safe for
// concurrent use.
type Events struct {
	sink       string // none, syslog, journal, file
	path       string
	file       *os.File
	max        int
	host       string
	now        func() time.Time
	sent       int
	suppressed map[string]int
}

// ErrEvents: the events option is malformed.
var ErrEvents = errors.New("notify: events must be none, syslog, journal or file:PATH")

// CheckEventsSpec validates the events option.
func CheckEventsSpec(spec string) error {
	switch {
	case spec == "", spec == "none", spec == "syslog", spec == "journal":
		return nil
	case strings.HasPrefix(spec, "file:") && strings.HasPrefix(spec[len("file:"):], "/"):
		return nil
	}
	return fmt.Errorf("%w (file: takes an absolute path): %q", ErrEvents, spec)
}

// OpenEvents prepares the sink of spec (events option: "" or none,
// syslog, journal, file:PATH) for one run of at most max events (0 means
// DefaultEventsMax). A file is opened for appending, created 0600, never
// through a symlink.
func OpenEvents(spec string, max int, host string) (*Events, error) {
	if err := CheckEventsSpec(spec); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = DefaultEventsMax
	}
	e := &Events{sink: spec, max: max, host: host, now: time.Now, suppressed: map[string]int{}}
	if spec == "" {
		e.sink = "none"
	}
	if p, ok := strings.CutPrefix(spec, "file:"); ok {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("notify: events file: %w", err)
		}
		e.sink, e.path, e.file = "file", p, f
	}
	return e, nil
}

// Emit sends ev, or counts it for the summary once Max events were sent.
func (e *Events) Emit(ev Event) error {
	if e == nil || e.sink == "none" {
		return nil
	}
	if e.sent >= e.max {
		e.suppressed[ev.Kind]++
		return nil
	}
	e.sent++
	return e.send(ev)
}

// Suppressed returns how many events the flood limit held back so far.
func (e *Events) Suppressed() int {
	if e == nil {
		return 0
	}
	n := 0
	for _, v := range e.suppressed {
		n += v
	}
	return n
}

// Close sends the summary of the suppressed events, if any, and closes a
// file sink.
func (e *Events) Close() error {
	if e == nil {
		return nil
	}
	var err error
	if n := e.Suppressed(); n > 0 && e.sink != "none" {
		kinds := make([]string, 0, len(e.suppressed))
		for k := range e.suppressed {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		f := map[string]string{"suppressed": strconv.Itoa(n), "sent": strconv.Itoa(e.sent)}
		var parts []string
		for _, k := range kinds {
			f["suppressed_"+strings.ReplaceAll(k, ".", "_")] = strconv.Itoa(e.suppressed[k])
			parts = append(parts, fmt.Sprintf("%d %s", e.suppressed[k], k))
		}
		err = e.send(Event{Kind: EventSuppressed, Severity: report.SeverityWarning,
			Message: fmt.Sprintf("%d more events not sent (events_max=%d): %s", n, e.max, strings.Join(parts, ", ")), Fields: f})
		e.suppressed = map[string]int{}
	}
	if e.file != nil {
		if cerr := e.file.Close(); err == nil {
			err = cerr
		}
		e.file = nil
	}
	return err
}

// JSON returns the event as one JSON object (keys sorted): event, time,
// host, severity, message, path and the fields.
func (e *Events) JSON(ev Event) []byte {
	m := map[string]string{}
	for k, v := range ev.Fields {
		m[k] = v
	}
	m["event"] = ev.Kind
	m["time"] = e.now().UTC().Format(time.RFC3339Nano)
	m["severity"] = severityName(ev.Severity)
	m["message"] = ev.Message
	if e.host != "" {
		m["host"] = e.host
	}
	if ev.Path != "" {
		m["path"] = report.EscapeJSONPath(ev.Path)
	}
	b, _ := json.Marshal(m) // map[string]string always marshals
	return b
}

func severityName(s report.Severity) string {
	names := [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}
	if int(s) < len(names) {
		return names[s]
	}
	return "info"
}

func (e *Events) send(ev Event) error {
	line := e.JSON(ev)
	switch e.sink {
	case "file":
		_, err := e.file.Write(append(line, '\n'))
		if err != nil {
			return fmt.Errorf("notify: events file %s: %w", e.path, err)
		}
		return nil
	case "syslog":
		w := report.SyslogWriter{Facility: report.FacilityDaemon, Tag: report.DefaultSyslogTag}
		return w.Send(ev.Severity, string(line))
	case "journal":
		vars := map[string]string{"SYSLOG_IDENTIFIER": report.DefaultSyslogTag, "AGENT_EVENT": ev.Kind}
		if ev.Path != "" {
			vars["AGENT_PATH"] = report.EscapeJSONPath(ev.Path)
		}
		for k, v := range ev.Fields {
			vars["AGENT_"+strings.ToUpper(k)] = v
		}
		if err := journal.Send(string(line), journal.Priority(ev.Severity), vars); err != nil {
			return fmt.Errorf("notify: journal: %w", err)
		}
		return nil
	}
	return nil
}
