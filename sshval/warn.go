package sshval

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// Warn records a warning about the connection from from, such as a command
// that runs with only user-space path checks (Plan.Warning), in the same
// places and line form as Log, at syslog severity warning:
//
//	May 04 11:36:15 buserver3 sshval(13156): warning for 10.1.2.3: rule backups runs with confine paths: ...
//
// Errors wrap ErrLogFile or ErrSyslog as Log's do.
func (l *Logger) Warn(from netip.Addr, text string) error {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	t := now()
	pid := l.PID
	if pid == 0 {
		pid = os.Getpid()
	}
	src := "unknown"
	if from.IsValid() {
		src = from.Unmap().String()
	}
	tag := "sshval(" + strconv.Itoa(pid) + "): "
	msg := "warning for " + src + ": " + Escape(text)
	var errs []error
	if l.File != "" {
		host := l.Host
		if host == "" {
			host = shortHostname()
		}
		if err := appendLine(l.File, t.Format("Jan 02 15:04:05")+" "+host+" "+tag+msg+"\n"); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrLogFile, err))
		}
	}
	if l.Syslog != "-" {
		sock := l.Syslog
		if sock == "" {
			sock = defaultSyslog
		}
		pri := "<" + strconv.Itoa(facilityAuthpriv*8+severityWarning) + ">"
		if err := sendSyslog(sock, pri+t.Format(time.Stamp)+" "+tag+truncate(msg, maxSyslogMessage)); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrSyslog, err))
		}
	}
	return errors.Join(errs...)
}
