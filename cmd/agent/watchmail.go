package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"opsagent/report"
)

// maxWatchMailLines bounds the finding lines one watch mail lists; the
// rest are counted.
const maxWatchMailLines = 500

// watchMailer collects agent watch's findings for mail (watch_mail) and
// hands each finished mail to a goroutine of its own, so that a slow or
// dead mail server never holds up the reading of events. Mail that cannot
// be delivered is spooled as every other mail is.
type watchMailer struct {
	r     *integrityRun
	mode  string // immediate or digest
	every time.Duration
	queue chan []byte
	done  chan struct{}

	lines                     []string
	more                      int // findings beyond maxWatchMailLines
	changes, unexpl, mismatch int
	explained                 int // findings not mailed (mail_on = unexplained)
	first                     time.Time
	sent                      time.Time
}

// newWatchMailer returns nil when watch findings are not mailed: watch_mail
// = no, or no mail_to (said once on stderr).
func newWatchMailer(r *integrityRun) *watchMailer {
	o := r.pol.Options
	if o.WatchMail == "no" {
		return nil
	}
	if len(o.MailTo) == 0 {
		return nil
	}
	m := &watchMailer{r: r, mode: o.WatchMail, every: o.WatchMailEvery, queue: make(chan []byte, 4), done: make(chan struct{}), sent: time.Now()}
	if m.every <= 0 {
		m.mode = "immediate"
	}
	go func() {
		defer close(m.done)
		cfg := mailConfig(o, r.host, r.log)
		for msg := range m.queue {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*time.Minute)
			deliverMail(ctx, o, cfg, msg, r.log, r.stderr, r.alert)
			cancel()
		}
	}()
	return m
}

// add takes the findings of one burst (their lines as agent watch printed
// them, and their classes).
func (m *watchMailer) add(lines, classes []string) {
	mailAll := m.r.pol.Options.MailOn == "changes"
	for i, l := range lines {
		c := classes[i]
		if !mailAll && (c == report.ClassPackage || c == report.ClassScript) {
			m.explained++
			continue
		}
		if m.changes == 0 {
			m.first = time.Now()
		}
		m.changes++
		switch c {
		case report.ClassUnexplained:
			m.unexpl++
		case report.ClassMismatch:
			m.mismatch++
		}
		if len(m.lines) < maxWatchMailLines {
			m.lines = append(m.lines, l)
		} else {
			m.more++
		}
	}
}

// tick sends what was collected when it is due: at once with immediate,
// every watch_mail_every with digest, and always when final (agent watch
// stops: nothing collected is lost).
//
// When final, the mail of what is left goes straight to the spool, and
// so does the queue the sender has not taken yet: agent watch is being
// stopped (the daemon waits seconds, not a mail server's timeouts), and
// the spool's next flush delivers them.
func (m *watchMailer) tick(final bool) {
	if m.changes > 0 && (final || m.mode == "immediate" || time.Since(m.sent) >= m.every) {
		msg, err := m.message()
		switch {
		case err != nil:
			m.r.alert("cannot build the watch mail: %v", err)
		case final:
			m.spool(msg)
			m.reset()
		default:
			select {
			case m.queue <- msg:
				m.reset()
			default:
				// The sender is behind: keep collecting, the next
				// tick tries again with one mail for all of it.
			}
		}
	}
	if final {
		close(m.queue)
		for msg := range m.queue {
			m.spool(msg)
		}
		// The one being sent finishes or is spooled by deliverMail
		// when the process is stopped before.
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// spool keeps msg in state_dir/spool for the next flush.
func (m *watchMailer) spool(msg []byte) {
	o := m.r.pol.Options
	if name, err := mailSpool(o, m.r.log).Put(msg, errors.New("agent watch stopped before sending it")); err != nil {
		m.r.alert("watch mail not spooled: %v", err)
	} else {
		m.r.alert("watch mail spooled as %s (agent watch is stopping); the next mail flush sends it", name)
	}
}

func (m *watchMailer) reset() {
	m.lines, m.more, m.changes, m.unexpl, m.mismatch, m.explained = nil, 0, 0, 0, 0, 0
	m.sent = time.Now()
}

// message is the mail of what was collected. The subject counts the
// findings by class, the body lists them as agent watch printed them.
func (m *watchMailer) message() ([]byte, error) {
	var parts []string
	if m.unexpl > 0 {
		parts = append(parts, fmt.Sprintf("%d unexplained", m.unexpl))
	}
	if m.mismatch > 0 {
		parts = append(parts, fmt.Sprintf("%d package mismatch", m.mismatch))
	}
	if len(parts) == 0 {
		parts = append(parts, plural(m.changes, "change", "changes"))
	}
	subject := fmt.Sprintf("[agent] %s: watch: %s", m.r.host, strings.Join(parts, ", "))
	var b strings.Builder
	fmt.Fprintf(&b, "agent watch on %s: %s between %s and %s (UTC); each line is time, change, path, class as in the check report.\n\n",
		m.r.host, plural(m.changes, "finding", "findings"), m.first.UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
	for _, l := range m.lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if m.more > 0 {
		fmt.Fprintf(&b, "... and %d more findings (the next agent check lists them all)\n", m.more)
	}
	if m.explained > 0 {
		fmt.Fprintf(&b, "\n%s that package operations explain are not listed (mail_on = unexplained).\n", plural(m.explained, "change", "changes"))
	}
	cfg := mailConfig(m.r.pol.Options, m.r.host, m.r.log)
	return report.NewMessage(cfg, subject, []byte(b.String()), "", nil)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
