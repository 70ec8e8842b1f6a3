package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPostfix is a private Postfix instance: its own config, queue and data
// directories, smtpd on two loopback ports (one with a snakeoil-like
// certificate, one with a certificate for 127.0.0.1 signed by a test CA),
// delivering agenttest@localhost and agenttest@mx.test (its own origin) to
// an mbox file.
type testPostfix struct {
	bin       string
	dir, conf string
	snakeAddr string // STARTTLS with a self-signed certificate without SANs
	caAddr    string // STARTTLS with a CA-signed certificate for 127.0.0.1
	mailbox   string
}

// freeLoopbackPort returns a 127.0.0.1 address nothing listens on yet.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPostfix starts the instance, or skips the test when Postfix cannot
// run here (not root, not installed). It is stopped at cleanup, and the
// test fails if any of its processes outlives the stop.
func startPostfix(t *testing.T, snake, ca *mailCA) *testPostfix {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a private Postfix instance")
	}
	bin, err := exec.LookPath("postfix")
	if err != nil {
		bin = "/usr/sbin/postfix"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("postfix is not installed (Debian package postfix)")
		}
	}
	if _, err := os.Stat("/usr/lib/postfix/sbin/master"); err != nil {
		t.Skip("postfix daemons not found in /usr/lib/postfix/sbin (Debian package postfix)")
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Skipf("no postfix user: %v", err)
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		t.Skipf("no postdrop group: %v", err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no nobody user for local delivery: %v", err)
	}

	// Not t.TempDir: local(8) writes the mailbox as nobody, which must be
	// able to reach it.
	dir, err := os.MkdirTemp("", "agent-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pf := &testPostfix{bin: bin, dir: dir, conf: filepath.Join(dir, "conf"), mailbox: filepath.Join(dir, "mail", "agenttest")}
	for _, d := range []string{"conf", "queue", "data", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(pfUser.Uid)
	nuid, _ := strconv.Atoi(nobody.Uid)
	ngid, _ := strconv.Atoi(nobody.Gid)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Postfix's own layout: root-owned queue and config readable by the
	// daemons after they drop privileges, data owned by postfix.
	must(os.Chmod(dir, 0o711))
	must(os.Chmod(filepath.Join(dir, "queue"), 0o755))
	must(os.Chmod(pf.conf, 0o755))
	must(os.Chown(filepath.Join(dir, "data"), uid, -1))
	must(os.Chown(filepath.Join(dir, "mail"), nuid, ngid))
	must(os.WriteFile(pf.mailbox, nil, 0o600))
	must(os.Chown(pf.mailbox, nuid, ngid))
	must(os.Chmod(filepath.Join(dir, "mail"), 0o711))

	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(pf.conf, name)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".key") {
			mode = 0o600
		}
		must(os.WriteFile(p, b, mode))
		return p
	}
	snakeKey, snakeCert := write("snakeoil.key", snake.KeyPEM), write("snakeoil.pem", snake.CertPEM)
	caKey, caCert := write("server.key", ca.KeyPEM), write("server.pem", ca.CertPEM)
	write("aliases", []byte("agenttest "+pf.mailbox+"\n"))
	pf.snakeAddr, pf.caAddr = freeLoopbackPort(t), freeLoopbackPort(t)

	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
myhostname = mx.test
mydomain = test
myorigin = mx.test
mydestination = localhost, mx.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps = texthash:%[2]s/aliases
alias_database =
local_recipient_maps = $alias_maps
smtpd_peername_lookup = no
smtpd_tls_security_level = may
smtpd_tls_chain_files = %[3]s, %[4]s
smtp_tls_security_level = none
default_transport = error:this test instance delivers locally only
relay_transport = error:this test instance delivers locally only
biff = no
`, dir, pf.conf, snakeKey, snakeCert)
	write("main.cf", []byte(main))
	// No chroot: the private queue directory has no chroot set-up.
	master := fmt.Sprintf(`%s inet n - n - - smtpd
%s inet n - n - - smtpd -o smtpd_tls_chain_files=%s,%s
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`, pf.snakeAddr, pf.caAddr, caKey, caCert)
	write("master.cf", []byte(master))

	t.Cleanup(func() { pf.stop(t) })
	out, err := pf.run("start")
	if err != nil {
		t.Fatalf("postfix start: %v: %s\nmaillog:\n%s", err, out, pf.log())
	}
	for _, addr := range []string{pf.snakeAddr, pf.caAddr} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("postfix does not listen on %s: %v\nmaillog:\n%s", addr, err, pf.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return pf
}

func (pf *testPostfix) run(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, pf.bin, append([]string{"-c", pf.conf}, args...)...).CombinedOutput()
}

func (pf *testPostfix) log() string {
	b, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
	return string(b)
}

// procs returns the pids of the processes of this instance: Postfix passes
// MAIL_CONFIG=conf to every daemon of a non-default configuration.
func (pf *testPostfix) procs() []int {
	var pids []int
	want := []byte("MAIL_CONFIG=" + pf.conf + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue // a zombie runs nothing
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// stop stops the instance and waits until none of its processes is left;
// what is left after 15 s is killed and fails the test.
func (pf *testPostfix) stop(t *testing.T) {
	if out, err := pf.run("stop"); err != nil && len(pf.procs()) > 0 {
		t.Logf("postfix stop: %v: %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(pf.procs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := pf.procs(); len(left) > 0 {
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("postfix processes %v still running 15 s after postfix stop; killed", left)
	}
}

// waitMailbox waits until the mailbox holds a message with msgID.
func (pf *testPostfix) waitMailbox(t *testing.T, msgID string) []byte {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(pf.mailbox)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(msgID)) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not in the mailbox after 30 s\nmaillog:\n%s", msgID, pf.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// messageID returns the Message-ID header of msg.
func messageID(t *testing.T, msg []byte) string {
	t.Helper()
	for _, l := range strings.Split(string(msg), "\r\n") {
		if v, ok := strings.CutPrefix(l, "Message-ID: "); ok {
			return v
		}
		if l == "" {
			break
		}
	}
	t.Fatalf("no Message-ID in %q", msg)
	return ""
}

// TestSendPostfix delivers through a real Postfix offering STARTTLS as
// Debian's default one does (a self-signed snakeoil certificate): smtp_tls
// = may delivers encrypted but unverified, verify refuses the certificate
// and spools, and with smtp_ca_file and a certificate for 127.0.0.1 verify
// delivers.
func TestSendPostfix(t *testing.T) {
	snake := newSnakeoil(t, "mx.test")
	ca := newMailCA(t)
	pf := startPostfix(t, snake, ca)
	if len(pf.procs()) == 0 {
		t.Fatal("no process of the instance found by MAIL_CONFIG: the leak check at the end would prove nothing")
	}
	caFile := pemFile(t, "ca.pem", ca.CAPEM)

	cases := []struct {
		name     string
		addr     string
		policy   string
		caFile   string
		user     string
		delivers bool
		verified bool
		logged   bool // the log says the certificate was not verified
		contains []string
	}{
		{name: "may snakeoil", addr: pf.snakeAddr, delivers: true, logged: true},
		// Said once per server and reason, not at every mail.
		{name: "explicit may snakeoil", addr: pf.snakeAddr, policy: TLSMay, delivers: true},
		{name: "verify snakeoil", addr: pf.snakeAddr, policy: TLSVerify,
			contains: []string{"doesn't contain any IP SANs", "smtp_tls = verify"}},
		{name: "verify snakeoil with ca file", addr: pf.snakeAddr, policy: TLSVerify, caFile: caFile,
			contains: []string{"doesn't contain any IP SANs"}},
		{name: "verify ca file", addr: pf.caAddr, policy: TLSVerify, caFile: caFile, delivers: true, verified: true},
		{name: "may ca file", addr: pf.caAddr, caFile: caFile, delivers: true, verified: true},
		{name: "none", addr: pf.snakeAddr, policy: TLSNone, delivers: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			cfg := mailBaseConfig()
			cfg.To = []string{"agenttest@localhost"}
			cfg.Now = nil
			cfg.Timeout = 20 * time.Second
			cfg.SMTPURL = "smtp://" + tc.addr
			cfg.SMTPTLS, cfg.SMTPCAFile = tc.policy, tc.caFile
			cfg.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
			msg, err := NewMessage(cfg, "postfix "+tc.name, []byte("report body\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			spool := &Spool{Dir: filepath.Join(t.TempDir(), "spool")}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			path, err := Deliver(ctx, cfg, spool, msg)
			if !tc.delivers {
				var se *SendError
				if !errors.As(err, &se) || se.Step != StepStartTLS || se.Temporary() {
					t.Fatalf("Deliver error %v, want a permanent error at step starttls", err)
				}
				for _, s := range tc.contains {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				items, lerr := spool.List()
				if path == "" || lerr != nil || len(items) != 1 || !strings.Contains(items[0].FirstError, tc.contains[0]) {
					t.Errorf("spooled %q: %+v, %v; want the message spooled with the cause", path, items, lerr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Deliver: %v\nmaillog:\n%s", err, pf.log())
			}
			box := pf.waitMailbox(t, messageID(t, msg))
			// Postfix's Received header says whether the session was
			// encrypted: "with ESMTPS" under TLS, "with ESMTP" without.
			i := bytes.Index(box, []byte(messageID(t, msg)))
			start := bytes.LastIndex(box[:i], []byte("\nFrom "))
			received := string(box[max(start, 0):i])
			wantProto := "with ESMTPS"
			if tc.policy == TLSNone {
				wantProto = "with ESMTP id"
			}
			if !strings.Contains(received, wantProto) {
				t.Errorf("delivered message does not say %q:\n%s", wantProto, received)
			}
			if unverified := strings.Contains(logBuf.String(), "certificate not verified"); unverified != tc.logged {
				t.Errorf("log says unverified: %v, want %v:\n%s", unverified, tc.logged, logBuf.String())
			}
		})
	}
}

// TestPostfixBareName: mail_to = agenttest and mail_from = agent (bare
// user names, as admins write mail_to = root) reach the mailbox through a
// real Postfix: over SMTP qualified with the host name, through Postfix's
// own sendmail left for the MTA to qualify with its origin (mx.test, not
// the host name localhost the headers carry).
func TestPostfixBareName(t *testing.T) {
	pf := startPostfix(t, newSnakeoil(t, "mx.test"), newMailCA(t))
	for _, tc := range []struct {
		name, smtp, sendmail string
		want                 []string // header lines as delivered
	}{
		{name: "smtp", smtp: "smtp://" + pf.snakeAddr,
			want: []string{"To: <agenttest@localhost>", "X-Original-To: agenttest@localhost", "Return-Path: <agent@localhost>"}},
		{name: "sendmail", sendmail: "/usr/sbin/sendmail",
			want: []string{"To: <agenttest@localhost>", "X-Original-To: agenttest", "Delivered-To: agenttest@mx.test", "Return-Path: <agent@mx.test>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sendmail != "" {
				if _, err := os.Stat(tc.sendmail); err != nil {
					t.Skipf("Postfix's sendmail: %v", err)
				}
				t.Setenv("MAIL_CONFIG", pf.conf)
			}
			cfg := mailBaseConfig()
			cfg.To, cfg.From, cfg.Host = []string{"agenttest"}, "agent", "localhost"
			cfg.Now = nil
			cfg.Timeout = 20 * time.Second
			cfg.SMTPURL, cfg.Sendmail = tc.smtp, tc.sendmail
			msg, err := NewMessage(cfg, "bare name over "+tc.name, []byte("report body\n"), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := Send(ctx, cfg, msg); err != nil {
				t.Fatalf("Send: %v\nmaillog:\n%s", err, pf.log())
			}
			id := messageID(t, msg)
			box := pf.waitMailbox(t, id)
			i := bytes.Index(box, []byte(id))
			start := max(bytes.LastIndex(box[:i], []byte("\nFrom ")), 0)
			end := bytes.Index(box[i:], []byte("\n\n"))
			head := string(box[start : i+max(end, 0)])
			for _, w := range tc.want {
				if !strings.Contains(head, "\n"+w+"\n") {
					t.Errorf("delivered headers lack %q:\n%s", w, head)
				}
			}
		})
	}
}
