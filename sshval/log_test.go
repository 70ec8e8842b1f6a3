package sshval

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	logTime = time.Date(2026, time.May, 4, 11, 36, 15, 0, time.UTC)
	logFrom = netip.MustParseAddr("10.1.2.3")
)

func testLogger(file, sock string) *Logger {
	return &Logger{File: file, Syslog: sock, Host: "buserver3", PID: 13156, Now: func() time.Time { return logTime }}
}

func TestMessage(t *testing.T) {
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"rejected", Decision{From: logFrom, Command: "rm -rf /x", Reason: "no rule allows rm"},
			"ssh command rejected from 10.1.2.3: rm -rf /x (reason: no rule allows rm)"},
		{"rejected without reason", Decision{From: logFrom, Command: "rm -rf /some/path"},
			"ssh command rejected from 10.1.2.3: rm -rf /some/path"},
		{"interactive", Decision{From: logFrom, Interactive: true, Reason: "interactive login"},
			"interactive shell rejected from 10.1.2.3"},
		{"accepted", Decision{Allow: true, From: logFrom, Command: `rsync --server -vlogDtpre.iLsfxCIvu . /data/irsync/my\ dir`, Reason: "rule irsync"},
			`ssh command accepted from 10.1.2.3: rsync --server -vlogDtpre.iLsfxCIvu . /data/irsync/my\ dir`},
		{"newline cannot forge a line", Decision{From: logFrom, Command: "rsync --server . /x\nMay 04 11:36:15 buserver3 sshval(1): ssh command accepted from 10.0.0.1: x"},
			`ssh command rejected from 10.1.2.3: rsync --server . /x\012May 04 11:36:15 buserver3 sshval(1): ssh command accepted from 10.0.0.1: x`},
		{"control characters in reason", Decision{From: logFrom, Command: "a\tb", Reason: "bad \x00 char"},
			`ssh command rejected from 10.1.2.3: a\011b (reason: bad \000 char)`},
		{"no source", Decision{Command: "ls"}, "ssh command rejected from unknown: ls"},
		{"IPv6 source", Decision{From: netip.MustParseAddr("2001:db8::1"), Command: "ls"}, "ssh command rejected from 2001:db8::1: ls"},
		{"4in6 source", Decision{From: netip.MustParseAddr("::ffff:10.1.2.3"), Command: "ls"}, "ssh command rejected from 10.1.2.3: ls"},
		{"empty command", Decision{From: logFrom}, "ssh command rejected from 10.1.2.3: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.d); got != tt.want {
				t.Errorf("Message:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "rsync --server . /data", "rsync --server . /data"},
		{"backslash kept", `a\ b`, `a\ b`},
		{"newline", "a\nb", `a\012b`},
		{"carriage return", "a\rb", `a\015b`},
		{"NUL", "\x00", `\000`},
		{"escape sequence", "\x1b[2J", `\033[2J`},
		{"DEL", "\x7f", `\177`},
		{"invalid UTF-8", "a\xffb\xc3", `a\377b\303`},
		{"UTF-8 kept", "Grüße/日本", "Grüße/日本"},
		{"C1 control NEL", "a\u0085b", `a\u0085b`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"paragraph separator", "a\u2029b", `a\u2029b`},
		{"bidi override", "a\u202eb", `a\u202eb`},
		{"bidi embeddings and marks", "\u200e\u200f\u202a\u202b\u202c\u202d", `\u200e\u200f\u202a\u202b\u202c\u202d`},
		{"bidi isolates", "x\u2066\u2067\u2068\u2069y", `x\u2066\u2067\u2068\u2069y`},
		{"reversed file name", "rsync . evil\u202etxt.exe", `rsync . evil\u202etxt.exe`},
		{"zero width space and joiner", "a\u200bb\u200dc", `a\u200bb\u200dc`},
		{"soft hyphen", "a\u00adb", `a\u00adb`},
		{"byte order mark", "\ufeffx", `\ufeffx`},
		{"tag character above U+FFFF", "a\U000e0041b", `a\U000e0041b`},
		{"private use above U+FFFF", "\U000f0000", `\U000f0000`},
		{"replacement character", "\ufffd", `\ufffd`},
		{"replacement character and invalid byte differ", "\ufffd\xef", `\ufffd\357`},
		{"truncated sequence", "a\xe2\x80", `a\342\200`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"a\nb", "\xff\xfe", "a\u2028", `x\012`, "Grüße"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		for _, r := range got {
			if !keep(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, got, r)
			}
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, got)
		}
		if !strings.Contains(got, `\`) && got != s {
			t.Fatalf("Escape(%q) = %q changed text without escaping", s, got)
		}
	})
}

func TestLogFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sshval.log")
	l := testLogger(file, "-")
	decisions := []Decision{
		{From: logFrom, Command: "rm -rf /some/path", Reason: "no rule allows rm"},
		{From: logFrom, Interactive: true},
		{Allow: true, From: logFrom, Command: "rsync --server -vlogDtpre.iLsfxCIvu . /data/irsync/x"},
		{From: logFrom, Command: "ls\n; id"},
	}
	for _, d := range decisions {
		if err := l.Log(d); err != nil {
			t.Fatalf("Log: %v", err)
		}
	}
	want := "May 04 11:36:15 buserver3 sshval(13156): ssh command rejected from 10.1.2.3: rm -rf /some/path (reason: no rule allows rm)\n" +
		"May 04 11:36:15 buserver3 sshval(13156): interactive shell rejected from 10.1.2.3\n" +
		"May 04 11:36:15 buserver3 sshval(13156): ssh command accepted from 10.1.2.3: rsync --server -vlogDtpre.iLsfxCIvu . /data/irsync/x\n" +
		`May 04 11:36:15 buserver3 sshval(13156): ssh command rejected from 10.1.2.3: ls\012; id` + "\n"
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("log file:\n got %q\nwant %q", got, want)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new log file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestLogFileKeepsModeAndAppends(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sshval.log")
	putFile(t, file, "old line\n")
	if err := os.Chmod(file, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := testLogger(file, "-").Log(Decision{From: logFrom, Interactive: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	if want := "old line\nMay 04 11:36:15 buserver3 sshval(13156): interactive shell rejected from 10.1.2.3\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
}

func TestLogFileDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sshval.log")
	before := time.Now()
	if err := (&Logger{File: file, Syslog: "-"}).Log(Decision{From: logFrom, Interactive: true}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	host := shortHostname()
	wantTag := " " + host + " sshval(" + strconv.Itoa(os.Getpid()) + "): interactive shell"
	if !strings.Contains(string(got), wantTag) || strings.Contains(host, ".") {
		t.Errorf("line %q lacks %q", got, wantTag)
	}
	if _, err := time.Parse("Jan 02 15:04:05", string(got[:15])); err != nil || string(got[:3]) != before.Format("Jan") {
		t.Errorf("line %q does not start with the current time", got)
	}
}

func TestLogFileErrors(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	putFile(t, target, "")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		is   error
	}{
		{"symlink refused", link, syscall.ELOOP},
		{"fifo refused", fifo, nil},
		{"directory refused", dir, syscall.EISDIR},
		{"missing directory", filepath.Join(dir, "no", "such.log"), fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testLogger(tt.file, "-").Log(Decision{From: logFrom, Command: "x"})
			if !errors.Is(err, ErrLogFile) {
				t.Fatalf("err = %v, want ErrLogFile", err)
			}
			if errors.Is(err, ErrSyslog) {
				t.Errorf("err = %v also claims ErrSyslog", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.is)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != tt.file {
				t.Errorf("err = %v, want a *fs.PathError for %s", err, tt.file)
			}
		})
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Errorf("symlink target written: %q", b)
	}
}

// listenSyslog binds a datagram socket like /dev/log in a temp dir.
func listenSyslog(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}

func readDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSyslogDatagram(t *testing.T) {
	conn, sock := listenSyslog(t)
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"rejected is authpriv.warning", Decision{From: logFrom, Command: "rm -rf /x"},
			"<84>May  4 11:36:15 sshval(13156): ssh command rejected from 10.1.2.3: rm -rf /x"},
		{"accepted is authpriv.info", Decision{Allow: true, From: logFrom, Command: "rsync --server --sender -vlogDtpre.iLsfxCIvu . /data/irsync/x"},
			"<86>May  4 11:36:15 sshval(13156): ssh command accepted from 10.1.2.3: rsync --server --sender -vlogDtpre.iLsfxCIvu . /data/irsync/x"},
		{"interactive", Decision{From: logFrom, Interactive: true},
			"<84>May  4 11:36:15 sshval(13156): interactive shell rejected from 10.1.2.3"},
		{"escaped", Decision{From: logFrom, Command: "a\nb", Reason: "newline"},
			`<84>May  4 11:36:15 sshval(13156): ssh command rejected from 10.1.2.3: a\012b (reason: newline)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := testLogger("", sock).Log(tt.d); err != nil {
				t.Fatal(err)
			}
			if got := readDatagram(t, conn); got != tt.want {
				t.Errorf("datagram:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	t.Run("two-digit day", func(t *testing.T) {
		l := testLogger("", sock)
		l.Now = func() time.Time { return time.Date(2026, time.December, 24, 1, 2, 3, 0, time.UTC) }
		if err := l.Log(Decision{From: logFrom, Interactive: true}); err != nil {
			t.Fatal(err)
		}
		want := "<84>Dec 24 01:02:03 sshval(13156): interactive shell rejected from 10.1.2.3"
		if got := readDatagram(t, conn); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("long command truncated", func(t *testing.T) {
		cmd := "rsync --server . /" + strings.Repeat("é", 10000)
		if err := testLogger("", sock).Log(Decision{From: logFrom, Command: cmd}); err != nil {
			t.Fatal(err)
		}
		got := readDatagram(t, conn)
		head := "<84>May  4 11:36:15 sshval(13156): "
		if !strings.HasPrefix(got, head) || len(got)-len(head) > maxSyslogMessage || !strings.HasSuffix(got, "é...") {
			t.Errorf("got %d bytes ending %q, want at most %d after the tag, ending in é...", len(got), got[len(got)-10:], maxSyslogMessage)
		}
	})
}

func TestSyslogAndFileTogether(t *testing.T) {
	conn, sock := listenSyslog(t)
	file := filepath.Join(t.TempDir(), "sshval.log")
	if err := testLogger(file, sock).Log(Decision{From: logFrom, Command: "id"}); err != nil {
		t.Fatal(err)
	}
	if got, want := readDatagram(t, conn), "<84>May  4 11:36:15 sshval(13156): ssh command rejected from 10.1.2.3: id"; got != want {
		t.Errorf("datagram %q, want %q", got, want)
	}
	if got, _ := os.ReadFile(file); string(got) != "May 04 11:36:15 buserver3 sshval(13156): ssh command rejected from 10.1.2.3: id\n" {
		t.Errorf("file %q", got)
	}
}

func TestSyslogStreamSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b []byte
		buf := make([]byte, 1024)
		for {
			n, err := c.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(b)
	}()
	if err := testLogger("", path).Log(Decision{From: logFrom, Interactive: true}); err != nil {
		t.Fatal(err)
	}
	if g, want := <-got, "<84>May  4 11:36:15 sshval(13156): interactive shell rejected from 10.1.2.3\x00"; g != want {
		t.Errorf("stream got %q, want %q", g, want)
	}
}

func TestSyslogErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sshval.log")
	t.Run("missing socket is ErrSyslog only", func(t *testing.T) {
		err := testLogger(file, filepath.Join(dir, "nolog")).Log(Decision{From: logFrom, Interactive: true})
		if !errors.Is(err, ErrSyslog) || errors.Is(err, ErrLogFile) {
			t.Errorf("err = %v, want ErrSyslog and not ErrLogFile", err)
		}
		if b, _ := os.ReadFile(file); len(b) == 0 {
			t.Error("file line not written when syslog failed")
		}
	})
	t.Run("both fail", func(t *testing.T) {
		err := testLogger(dir, filepath.Join(dir, "nolog")).Log(Decision{From: logFrom, Interactive: true})
		if !errors.Is(err, ErrSyslog) || !errors.Is(err, ErrLogFile) {
			t.Errorf("err = %v, want both ErrSyslog and ErrLogFile", err)
		}
	})
	t.Run("syslog off", func(t *testing.T) {
		if err := testLogger("", "-").Log(Decision{From: logFrom, Interactive: true}); err != nil {
			t.Errorf("err = %v, want nil", err)
		}
	})
}
