package sshtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	// ErrUnsupported is returned by Supported when the rig cannot run here
	// (not root, or a program it drives is missing).
	ErrUnsupported = errors.New("sshtest: not supported here")
	// ErrStart is returned by Start when sshd exits or stays silent
	// instead of listening.
	ErrStart = errors.New("sshtest: sshd did not start")
)

// Host is the only address the rig's sshd listens on and its clients dial.
const Host = "127.0.0.1"

// privsepDir is the directory Debian's sshd insists on before it accepts a
// connection (its privilege separation chroot). A fresh container lacks it
// because the sshd service never ran.
const privsepDir = "/run/sshd"

// startTimeout bounds the wait for sshd's "Server listening" line; sshd
// reaches it in tens of milliseconds.
const startTimeout = 10 * time.Second

// Tool returns the absolute path of one of the programs the rig runs,
// looking in /usr/sbin and /sbin too because a test's PATH often lacks
// them.
func Tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found", ErrUnsupported, name)
}

// Supported returns nil when the rig can run: root, and sshd, ssh,
// ssh-keygen, rsync, useradd and userdel present. Otherwise it returns an
// error wrapping ErrUnsupported that says what is missing, fit for t.Skip.
func Supported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root to add a user and run sshd", ErrUnsupported)
	}
	for _, name := range []string{"sshd", "ssh", "ssh-keygen", "rsync", "useradd", "userdel"} {
		if _, err := Tool(name); err != nil {
			return err
		}
	}
	return nil
}

// run runs a tool and folds its output into the error.
func run(name string, args ...string) error {
	path, err := Tool(name)
	if err != nil {
		return err
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// User is a local account the rig created.
type User struct {
	Name string
	UID  int
	GID  int
	Home string
}

// AddUser creates the account name with login shell /bin/sh and home
// directory home (created by useradd; its parent must exist and be
// reachable by the user). The password field is "*", not useradd's
// default "!": sshd without PAM refuses even key logins to accounts whose
// password starts with "!" (locked).
func AddUser(name, home string) (*User, error) {
	if err := run("useradd", "-m", "-d", home, "-s", "/bin/sh", "-p", "*",
		"-c", "opsagent sshtest", name); err != nil {
		return nil, err
	}
	u := &User{Name: name, Home: home}
	pw, err := user.Lookup(name)
	if err == nil {
		u.UID, err = strconv.Atoi(pw.Uid)
	}
	if err == nil {
		u.GID, err = strconv.Atoi(pw.Gid)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("looking up new user %s: %w", name, err), u.Remove())
	}
	return u, nil
}

// Remove kills every process still running as the user, then deletes the
// account and its home with userdel -r. Removing a user that is already
// gone is not an error.
func (u *User) Remove() error {
	if _, err := user.Lookup(u.Name); err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil
		}
		return fmt.Errorf("looking up %s: %w", u.Name, err)
	}
	var errs []error
	if u.UID > 0 {
		errs = append(errs, killUID(u.UID))
	}
	// userdel exits 12 when the home is already gone; the account is
	// still removed, which is what the check below looks at.
	err := run("userdel", "-r", u.Name)
	if _, lerr := user.Lookup(u.Name); lerr == nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killUID sends SIGKILL to every process whose real uid is uid and waits
// for them to go. Only the rig's user runs under that uid, and only
// through the rig's sshd, so these are processes the rig started.
func killUID(uid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := uidPids(uid)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of uid %d still running: %v", uid, pids)
		}
		for _, pid := range pids {
			// A process that exits between the scan and the kill
			// returns ESRCH, which is what we wanted anyway.
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uidPids lists the processes whose real uid is uid, from /proc.
func uidPids(uid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // gone meanwhile
		}
		// Uid:	1001	1001	1001	1001 (real, effective, saved, fs)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// Key is an ed25519 key pair made by ssh-keygen without a passphrase.
type Key struct {
	// Path is the private key file; the public key is Path+".pub".
	Path string
	// Public is the public key line, "ssh-ed25519 AAAA... comment".
	Public string
}

// NewKey writes a new ed25519 key pair to path and path.pub.
func NewKey(path, comment string) (*Key, error) {
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		return nil, err
	}
	return &Key{Path: path, Public: strings.TrimSpace(string(pub))}, nil
}

// Options configures Start.
type Options struct {
	// Dir holds the host key, the configuration and the pid file; it
	// must exist. Stop leaves it for the caller to remove.
	Dir string
	// User is the only account allowed to log in (AllowUsers).
	User string
	// AuthorizedKeys is the absolute path of the one authorized_keys
	// file sshd reads, for every user.
	AuthorizedKeys string
	// RootLogin lets User be root, with forced commands only
	// (PermitRootLogin forced-commands-only); otherwise root may not log in.
	RootLogin bool
}

// Server is a running sshd started by Start.
type Server struct {
	// Port is the TCP port on Host sshd listens on.
	Port int
	// Config is the path of the sshd_config it runs with.
	Config string

	cmd     *exec.Cmd
	log     *logBuffer
	done    chan struct{} // closed when sshd has exited
	waitErr error         // set before done closes
	stop    sync.Once
	stopErr error
	privsep bool // this server holds a use of privsepDir
}

// Addr returns Host:Port.
func (s *Server) Addr() string { return net.JoinHostPort(Host, strconv.Itoa(s.Port)) }

// Log returns what sshd has logged so far (-e: its log goes to stderr).
func (s *Server) Log() string { return s.log.String() }

// Config returns the sshd_config text for opts with the given port, host key
// and pid file. optional lines go last; Start drops them when this sshd
// does not know them.
func Config(opts Options, port int, hostKey, pidFile string, optional ...string) string {
	permitRoot := "PermitRootLogin no"
	if opts.RootLogin {
		permitRoot = "PermitRootLogin forced-commands-only"
	}
	lines := []string{
		"# written by opsagent internal/sshtest for one test run",
		"ListenAddress " + net.JoinHostPort(Host, strconv.Itoa(port)),
		"HostKey " + hostKey,
		"PidFile " + pidFile,
		"AuthorizedKeysFile " + opts.AuthorizedKeys,
		"AllowUsers " + opts.User,
		permitRoot,
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// Without PAM the account checks are sshd's own; the temp
		// files the test makes would fail StrictModes' ownership rules.
		"UsePAM no",
		"StrictModes no",
		"LogLevel VERBOSE",
		"PrintMotd no",
		// internal-sftp so that `ssh -s host sftp` reaches the
		// forced command as SSH_ORIGINAL_COMMAND=internal-sftp.
		"Subsystem sftp internal-sftp",
	}
	lines = append(lines, optional...)
	return strings.Join(lines, "\n") + "\n"
}

// optionalConfig are directives newer sshds know and older ones reject.
// OpenSSH 9.8 penalises source addresses whose sessions end badly; a test
// that makes dozens of refused connections from 127.0.0.1 must not be
// locked out by it.
var optionalConfig = []string{"PerSourcePenalties no"}

// Start generates a host key in opts.Dir, writes a configuration that
// listens on a free port of 127.0.0.1, and runs `sshd -D -e -f CONFIG`
// until it says it is listening. The caller must Stop it.
func Start(opts Options) (*Server, error) {
	sshd, err := Tool("sshd")
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(opts.AuthorizedKeys) {
		return nil, fmt.Errorf("sshtest: authorized keys file %q is not absolute", opts.AuthorizedKeys)
	}
	hostKey := filepath.Join(opts.Dir, "ssh_host_ed25519_key")
	if _, err := NewKey(hostKey, "sshtest host"); err != nil {
		return nil, err
	}
	if err := ensurePrivsep(); err != nil {
		return nil, err
	}
	s := &Server{Config: filepath.Join(opts.Dir, "sshd_config"), privsep: true}
	pidFile := filepath.Join(opts.Dir, "sshd.pid")
	optional, err := s.checkConfig(sshd, opts, hostKey, pidFile)
	if err != nil {
		return nil, errors.Join(err, s.releasePrivsep())
	}
	// The port is free when we ask and taken by sshd a moment later;
	// another process can win that race, so a failed bind is retried.
	var errs []error
	for range 3 {
		err := s.start(sshd, opts, hostKey, pidFile, optional)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(append(errs, s.releasePrivsep())...)
}

// checkConfig tests the configuration with `sshd -t` and returns the
// optional directives this sshd accepts.
func (s *Server) checkConfig(sshd string, opts Options, hostKey, pidFile string) ([]string, error) {
	optional := optionalConfig
	for {
		text := Config(opts, 22, hostKey, pidFile, optional...)
		if err := os.WriteFile(s.Config, []byte(text), 0o600); err != nil {
			return nil, err
		}
		out, err := exec.Command(sshd, "-t", "-f", s.Config).CombinedOutput()
		if err == nil {
			return optional, nil
		}
		if len(optional) == 0 || !bytes.Contains(out, []byte("Bad configuration option")) {
			return nil, fmt.Errorf("sshd -t -f %s: %w: %s", s.Config, err, bytes.TrimSpace(out))
		}
		optional = nil
	}
}

// start runs sshd once on a fresh free port.
func (s *Server) start(sshd string, opts Options, hostKey, pidFile string, optional []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	text := Config(opts, port, hostKey, pidFile, optional...)
	if err := os.WriteFile(s.Config, []byte(text), 0o600); err != nil {
		return err
	}
	s.Port = port
	s.log = &logBuffer{}
	s.done = make(chan struct{})
	s.waitErr = nil
	// An absolute path: sshd refuses to re-exec itself otherwise.
	s.cmd = exec.Command(sshd, "-D", "-e", "-f", s.Config)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting sshd: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	listening := fmt.Sprintf("Server listening on %s port %d", Host, port)
	deadline := time.After(startTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%w: %v\n%s", ErrStart, s.waitErr, s.log.String())
		case <-deadline:
			s.kill()
			return fmt.Errorf("%w: no %q within %v\n%s", ErrStart, listening, startTimeout, s.log.String())
		case <-tick.C:
			if strings.Contains(s.log.String(), listening) {
				return nil
			}
		}
	}
}

// freePort returns a TCP port on Host that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(Host, "0"))
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// kill stops the listening sshd: SIGTERM, then SIGKILL after five
// seconds. Sessions it forked end with their clients.
func (s *Server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Stop kills sshd. A second Stop does nothing.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		s.kill()
		s.stopErr = s.releasePrivsep()
	})
	return s.stopErr
}

// ensurePrivsep makes /run/sshd (root, 0755) unless it exists. It is left
// in place afterwards: the test binaries of several packages run at once,
// and one removing it broke another's running sshd ("Missing privilege
// separation directory", seen on a fresh CI root); openssh-server makes the
// same directory at boot.
func ensurePrivsep() error {
	if err := os.Mkdir(privsepDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// releasePrivsep marks the server as no longer needing /run/sshd, which
// stays (see ensurePrivsep).
func (s *Server) releasePrivsep() error {
	s.privsep = false
	return nil
}

// logBuffer collects sshd's output while Start and the test read it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Client drives the real ssh and rsync clients against a Server.
type Client struct {
	User string
	Port int
	// Key is the private key file; its path must not contain white space
	// or quotes, because RSH passes it through rsync's -e parsing.
	Key string
}

// Target returns "user@127.0.0.1".
func (c Client) Target() string { return c.User + "@" + Host }

// Options returns the ssh options every client command uses: only this
// key, no system or user ssh_config, no host key prompts or stored host
// keys, never a password prompt.
func (c Client) Options() []string {
	return []string{
		"-F", "/dev/null",
		"-i", c.Key,
		"-p", strconv.Itoa(c.Port),
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR",
	}
}

// SSH prepares `ssh OPTIONS ARGS...`; args name the target (Target) and
// anything around it, such as -tt, -s or the remote command.
func (c Client) SSH(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ssh", append(c.Options(), args...)...)
}

// RSH returns the remote shell command for rsync's -e: ssh with Options.
func (c Client) RSH() string { return "ssh " + strings.Join(c.Options(), " ") }

// Rsync prepares `rsync -e RSH ARGS...`.
func (c Client) Rsync(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "rsync", append([]string{"-e", c.RSH()}, args...)...)
}
