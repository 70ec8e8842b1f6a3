package report

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// syslogListener binds a unix datagram socket in a temp dir, standing in
// for /dev/log.
func syslogListener(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// collect reads datagrams from c in a goroutine, as a syslog daemon
// would (a local datagram socket holds only a few unread messages before
// the sender blocks). Call the returned func once the sender is done: every
// datagram is then queued or read, so it drains the queue under a short
// deadline and returns what arrived.
func histCollect(t *testing.T, c *net.UnixConn) func() []string {
	t.Helper()
	ch := make(chan []string, 1)
	go func() {
		var out []string
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				ch <- out
				return
			}
			out = append(out, string(buf[:n]))
		}
	}()
	return func() []string {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		return <-ch
	}
}

// syslogNow is 2026-11-05 06:43:53 UTC: a one-digit day, to check the
// space padding of the time stamp.
var syslogNow = time.Date(2026, 11, 5, 6, 43, 53, 0, time.UTC)

func TestSyslogSend(t *testing.T) {
	tests := []struct {
		name string
		w    SyslogWriter
		sev  Severity
		msg  string
		want []string
	}{
		{
			name: "local form as glibc and aide send it",
			w:    SyslogWriter{Facility: FacilityLocal1, PID: 4242},
			sev:  SeverityNotice,
			msg:  "AIDE found differences between database and filesystem!!",
			want: []string{"<141>Nov  5 06:43:53 agent[4242]: AIDE found differences between database and filesystem!!"},
		},
		{
			name: "network form with host",
			w:    SyslogWriter{Facility: FacilityDaemon, Tag: "agent", PID: 7, Hostname: "host1"},
			sev:  SeverityInfo,
			msg:  "check: 3 added, 1 removed, 5 changed",
			want: []string{"<30>Nov  5 06:43:53 host1 agent[7]: check: 3 added, 1 removed, 5 changed"},
		},
		{
			name: "no pid",
			w:    SyslogWriter{Facility: FacilityAuth, Tag: "sshval", PID: -1},
			sev:  SeverityWarning,
			msg:  "rejected",
			want: []string{"<36>Nov  5 06:43:53 sshval: rejected"},
		},
		{
			name: "kern is zero",
			w:    SyslogWriter{PID: 1},
			sev:  SeverityEmerg,
			msg:  "x",
			want: []string{"<0>Nov  5 06:43:53 agent[1]: x"},
		},
		{
			name: "one datagram per non-empty line",
			w:    SyslogWriter{Facility: FacilityUser, PID: 9},
			sev:  SeverityNotice,
			msg:  "Summary:\r\n  Added entries:\t1\n\n\nEnd\n",
			want: []string{
				"<13>Nov  5 06:43:53 agent[9]: Summary:",
				"<13>Nov  5 06:43:53 agent[9]:   Added entries:\t1",
				"<13>Nov  5 06:43:53 agent[9]: End",
			},
		},
		{
			name: "nothing to send",
			w:    SyslogWriter{PID: 9},
			msg:  "\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path := syslogListener(t)
			tt.w.Path, tt.w.Now = path, histClock(syslogNow)
			done := histCollect(t, c)
			if err := tt.w.Send(tt.sev, tt.msg); err != nil {
				t.Fatalf("Send error: %v", err)
			}
			if got := done(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("datagrams =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestSyslogSplit(t *testing.T) {
	const head = "<13>Nov  5 06:43:53 agent[9]: "
	long := strings.Repeat("0123456789", 300)   // 3000 ASCII bytes
	utf := strings.Repeat("é", 1500)            // 3000 bytes of 2-byte runes
	odd := "x" + strings.Repeat("\u20ac", 1000) // 3-byte runes off by one
	bad := strings.Repeat("\xff", 2000)         // not UTF-8
	tests := []struct {
		name string
		line string
	}{
		{"ascii", long},
		{"two-byte runes", utf},
		{"three-byte runes", odd},
		{"invalid utf-8", bad},
		{"exactly fits", strings.Repeat("a", syslogMaxPacket-len(head))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path := syslogListener(t)
			w := SyslogWriter{Path: path, Facility: FacilityUser, PID: 9, Now: histClock(syslogNow)}
			done := histCollect(t, c)
			if err := w.Send(SeverityNotice, tt.line); err != nil {
				t.Fatal(err)
			}
			got := done()
			var joined strings.Builder
			for i, p := range got {
				if len(p) > syslogMaxPacket {
					t.Errorf("datagram %d is %d bytes, want at most %d", i, len(p), syslogMaxPacket)
				}
				if !strings.HasPrefix(p, head) {
					t.Fatalf("datagram %d = %q, want prefix %q", i, p, head)
				}
				body := p[len(head):]
				if utf8.ValidString(tt.line) && !utf8.ValidString(body) {
					t.Errorf("datagram %d splits a character: %q", i, body)
				}
				joined.WriteString(body)
			}
			if joined.String() != tt.line {
				t.Errorf("datagrams join to %d bytes, want the %d-byte line", joined.Len(), len(tt.line))
			}
			wantN := (len(tt.line) + syslogMaxPacket - len(head) - 1) / (syslogMaxPacket - len(head))
			if len(got) < wantN || len(got) > wantN+1 {
				t.Errorf("%d datagrams, want about %d", len(got), wantN)
			}
		})
	}
}

func TestSyslogUnavailable(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"missing socket", func(t *testing.T) string { return filepath.Join(t.TempDir(), "log") }},
		{"stale socket, no listener", func(t *testing.T) string {
			c, path := syslogListener(t)
			// Closing a datagram socket leaves its file behind, so
			// connect meets ECONNREFUSED, as after a daemon crash.
			c.Close()
			return path
		}},
		{"not a socket", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "log")
			histWriteFile(t, p, "")
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := SyslogWriter{Path: tt.path(t)}
			if err := w.Send(SeverityNotice, "x"); !errors.Is(err, ErrSyslogUnavailable) {
				t.Errorf("Send error = %v, want %v", err, ErrSyslogUnavailable)
			}
		})
	}
}

func TestSyslogWriteReport(t *testing.T) {
	r := sampleReport(t, KindCheck, LevelChangedAttributes)
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	head := "<141>Nov  5 06:43:53 agent[4242]: "
	var want []string
	for _, l := range strings.Split(text.String(), "\n") {
		if l != "" {
			want = append(want, head+l)
		}
	}
	c, path := syslogListener(t)
	w := SyslogWriter{Path: path, Facility: FacilityLocal1, PID: 4242, Now: histClock(syslogNow)}
	done := histCollect(t, c)
	if err := w.WriteReport(r); err != nil {
		t.Fatal(err)
	}
	got := done()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("datagrams =\n%q\nwant\n%q", got, want)
	}
	if len(want) < 10 {
		t.Errorf("sample report has only %d lines", len(want))
	}
}

func TestWriteSyslogReportBadFacility(t *testing.T) {
	r := sampleReport(t, KindCheck, LevelChangedAttributes)
	if err := WriteSyslogReport("LOG_AUTHPRIV", r); !errors.Is(err, ErrFacility) {
		t.Errorf("WriteSyslogReport(LOG_AUTHPRIV) error = %v, want %v", err, ErrFacility)
	}
}

func TestParseFacility(t *testing.T) {
	tests := []struct {
		in      string
		want    Facility
		wantErr error
	}{
		{"LOG_LOCAL0", FacilityLocal0, nil},
		{"LOG_LOCAL1", FacilityLocal1, nil},
		{"LOG_LOCAL7", FacilityLocal7, nil},
		{"LOG_USER", FacilityUser, nil},
		{"LOG_DAEMON", FacilityDaemon, nil},
		{"LOG_AUTH", FacilityAuth, nil},
		{"LOG_KERN", FacilityKern, nil},
		{"LOG_CRON", FacilityCron, nil},
		{"LOG_MAIL", FacilityMail, nil},
		{"LOG_SYSLOG", FacilitySyslog, nil},
		{"LOG_LPR", FacilityLPR, nil},
		{"LOG_NEWS", FacilityNews, nil},
		{"LOG_UUCP", FacilityUUCP, nil},
		{"log_local2", FacilityLocal2, nil}, // aide accepts any case
		{"LOG_local3", FacilityLocal3, nil},
		{"local4", FacilityLocal4, nil}, // agent only: no LOG_ prefix
		{"daemon", FacilityDaemon, nil},
		{"LOG_LOCAL5 ", FacilityLocal5, nil},
		{"LOG_AUTHPRIV", 0, ErrFacility}, // unknown to aide 0.18.3
		{"LOG_FTP", 0, ErrFacility},
		{"LOG_LOCAL8", 0, ErrFacility},
		{"LOG_", 0, ErrFacility},
		{"", 0, ErrFacility},
		{"LOG_LOG_USER", 0, ErrFacility},
		{"17", 0, ErrFacility},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFacility(tt.in)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ParseFacility(%q) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseFacility(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err == nil {
				back, err := ParseFacility(got.String())
				if err != nil || back != got {
					t.Errorf("ParseFacility(%q) = %v, %v, want %v", got.String(), back, err, got)
				}
			}
		})
	}
	if got := Facility(12).String(); got != "LOG_FACILITY(12)" {
		t.Errorf("Facility(12).String() = %q", got)
	}
}

// FuzzParseFacility checks ParseFacility never panics and that what it
// accepts has a name that parses back to it.
func FuzzParseFacility(f *testing.F) {
	for _, s := range []string{"LOG_LOCAL1", "log_user", "daemon", "LOG_AUTHPRIV", "", " LOG_KERN "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fa, err := ParseFacility(s)
		if err != nil {
			if !errors.Is(err, ErrFacility) {
				t.Errorf("ParseFacility(%q) error = %v, want %v", s, err, ErrFacility)
			}
			return
		}
		if back, err := ParseFacility(fa.String()); err != nil || back != fa {
			t.Errorf("ParseFacility(%q) = %v, but its name %q parses to %v, %v", s, fa, fa.String(), back, err)
		}
	})
}

func TestSyslogStuckDaemon(t *testing.T) {
	// Nobody reads the socket: the queue fills and Send gives up after
	// Timeout instead of hanging the run.
	_, path := syslogListener(t)
	w := SyslogWriter{Path: path, Timeout: 100 * time.Millisecond}
	start := time.Now()
	err := w.Send(SeverityNotice, strings.Repeat("line\n", 2000))
	if err == nil {
		t.Fatal("Send to a full socket succeeded")
	}
	if errors.Is(err, ErrSyslogUnavailable) {
		t.Errorf("Send error = %v, want a write error, not %v", err, ErrSyslogUnavailable)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v with a 100ms timeout", d)
	}
}
