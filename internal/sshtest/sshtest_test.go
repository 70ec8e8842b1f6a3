package sshtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	opts := Options{Dir: "/d", User: "u1", AuthorizedKeys: "/d/keys"}
	text := Config(opts, 2222, "/d/hk", "/d/pid", "PerSourcePenalties no")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, tc := range []struct{ name, line string }{
		{"loopback only", "ListenAddress 127.0.0.1:2222"},
		{"own host key", "HostKey /d/hk"},
		{"pid file", "PidFile /d/pid"},
		{"keys file", "AuthorizedKeysFile /d/keys"},
		{"only the test user", "AllowUsers u1"},
		{"no root", "PermitRootLogin no"},
		{"no passwords", "PasswordAuthentication no"},
		{"no PAM", "UsePAM no"},
		{"temp file modes", "StrictModes no"},
		{"verbose log", "LogLevel VERBOSE"},
		{"sftp subsystem", "Subsystem sftp internal-sftp"},
		{"optional last", "PerSourcePenalties no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, l := range lines {
				if l == tc.line {
					return
				}
			}
			t.Errorf("config lacks %q:\n%s", tc.line, text)
		})
	}
	if got := lines[len(lines)-1]; got != "PerSourcePenalties no" {
		t.Errorf("last line %q, want the optional directive", got)
	}
}

func TestClient(t *testing.T) {
	c := Client{User: "u1", Port: 2222, Key: "/k/id"}
	if got, want := c.Target(), "u1@127.0.0.1"; got != want {
		t.Errorf("Target() = %q, want %q", got, want)
	}
	rsh := c.RSH()
	for _, want := range []string{"ssh ", "-i /k/id", "-p 2222", "-F /dev/null", "BatchMode=yes", "IdentitiesOnly=yes"} {
		if !strings.Contains(rsh, want) {
			t.Errorf("RSH() = %q, lacks %q", rsh, want)
		}
	}
	args := c.Rsync(context.Background(), "-a", "x/", c.Target()+":y/").Args
	if len(args) < 3 || args[1] != "-e" || args[2] != rsh {
		t.Errorf("Rsync args %q, want rsync -e RSH ...", args)
	}
}

// TestServer runs the whole rig: a user whose key is forced to echo
// SSH_ORIGINAL_COMMAND, an sshd, a client; then tears it down and checks
// that nothing is left.
func TestServer(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The user's home lives here, so the user must be able to reach it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("agst%d", os.Getpid())
	u, err := AddUser(name, filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := u.Remove(); err != nil {
			t.Error(err)
		}
	})
	key, err := NewKey(filepath.Join(dir, "id"), "sshtest client")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key.Public, "ssh-ed25519 AAAA") {
		t.Fatalf("public key %q", key.Public)
	}
	keys := filepath.Join(dir, "authorized_keys")
	forced := `command="echo \"[$SSH_ORIGINAL_COMMAND]\"",restrict ` + key.Public + "\n"
	if err := os.WriteFile(keys, []byte(forced), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(Options{Dir: dir, User: name, AuthorizedKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	if _, err := os.Stat(privsepDir); err != nil {
		t.Errorf("privilege separation directory: %v", err)
	}
	c := Client{User: name, Port: srv.Port, Key: key.Path}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct{ name, cmd, want string }{
		{"plain", "hello", "[hello]"},
		{"spaces kept", "a  b", "[a  b]"},
		{"operators not run", "x; id", "[x; id]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.SSH(ctx, c.Target(), tc.cmd).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh: %v\n%s\nsshd log:\n%s", err, out, srv.Log())
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("exit status passes through", func(t *testing.T) {
		keysExit := `command="exit 7",restrict ` + key.Public + "\n"
		if err := os.WriteFile(keys, []byte(keysExit), 0o644); err != nil {
			t.Fatal(err)
		}
		err := c.SSH(ctx, c.Target(), "anything").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("ssh exit: %v, want status 7", err)
		}
	})
	t.Run("log", func(t *testing.T) {
		if !strings.Contains(srv.Log(), "Accepted publickey for "+name) {
			t.Errorf("sshd log lacks the accepted login:\n%s", srv.Log())
		}
	})

	t.Run("teardown", func(t *testing.T) {
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		// Left in place: another test binary's sshd may need it.
		if _, err := os.Stat(privsepDir); err != nil {
			t.Errorf("%s is gone after Stop: %v", privsepDir, err)
		}
		if conn, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Stop", srv.Addr())
		}
		if err := u.Remove(); err != nil {
			t.Fatal(err)
		}
		if _, err := user.Lookup(name); err == nil {
			t.Errorf("user %s still exists after Remove", name)
		}
		if _, err := os.Stat(u.Home); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("home %s still there: %v", u.Home, err)
		}
		if err := u.Remove(); err != nil {
			t.Errorf("second Remove: %v", err)
		}
	})
}
