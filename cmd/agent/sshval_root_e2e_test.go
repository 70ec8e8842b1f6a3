package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"opsagent/internal/sshtest"
)

// sshvalRootRig is sshd letting root log in with forced commands only, each
// key forced to `agent sshval` with its own one-rule rules file, so that
// sshval and rsync run as root (issue 14).
type sshvalRootRig struct {
	dir, log, src string
	roots         map[string]string // rule name -> root
	clients       map[string]sshtest.Client
}

// rootRules are the rules of the rig, by name: the settings inside the
// block besides root and push.
var rootRules = map[string]string{
	"plain":  "delete no",
	"devs":   "devices yes",
	"owners": "owners yes",
	"keep":   "overwrite no",
}

// Owner of the client's plain files, neither root nor an account sshval
// knows.
const rootRigUID = 12345

func newSSHValRootRig(t *testing.T) *sshvalRootRig {
	t.Helper()
	if err := sshtest.Supported(); err != nil {
		t.Skip("sshval end-to-end test as root needs root, sshd, ssh, ssh-keygen, rsync: ", err)
	}
	dir, err := os.MkdirTemp("", "agent-sshval-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &sshvalRootRig{dir: dir, roots: map[string]string{}, clients: map[string]sshtest.Client{}}
	for _, d := range []string{"bin", "etc", "log", "data", "keys", "sshd"} {
		mkdirOwned(t, filepath.Join(dir, d), 0o755, 0, 0)
	}
	agent := filepath.Join(dir, "bin", "agent")
	copyFile(t, agentBin, agent, 0o755)
	r.log = filepath.Join(dir, "log", "sshval.log")

	// The client's tree: a device node, a FIFO, a set-uid root binary, a
	// root-owned file and a file of another owner.
	r.src = filepath.Join(dir, "src")
	mkdirOwned(t, r.src, 0o755, 0, 0)
	writeOwned(t, filepath.Join(r.src, "suid"), "#!/bin/sh\nid\n", 0o755, 0, 0)
	// os.Chmod takes os.ModeSetuid, not 04000; say it the kernel's way.
	if err := syscall.Chmod(filepath.Join(r.src, "suid"), 0o4755); err != nil {
		t.Fatal(err)
	}
	writeOwned(t, filepath.Join(r.src, "rootfile"), "root's\n", 0o644, 0, 0)
	writeOwned(t, filepath.Join(r.src, "plain"), "new content\n", 0o644, rootRigUID, rootRigUID)
	if err := unix.Mkfifo(filepath.Join(r.src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(r.src, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skip("cannot make a device node here (a container without CAP_MKNOD?): ", err)
	}

	var authorized strings.Builder
	for name, settings := range rootRules {
		root := filepath.Join(dir, "data", name)
		mkdirOwned(t, root, 0o755, 0, 0)
		r.roots[name] = root
		rules := fmt.Sprintf("log %s\ncounters none\nrsync %s {\n\tfrom 127.0.0.0/8\n\troot %s\n\tpush yes\n\t%s\n}\n", r.log, name, root, settings)
		conf := filepath.Join(dir, "etc", name+".conf")
		writeOwned(t, conf, rules, 0o644, 0, 0)
		key, err := sshtest.NewKey(filepath.Join(dir, "keys", name), "agent-sshval-root "+name)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&authorized, "command=%q,restrict %s\n", agent+" sshval --rules "+conf, key.Public)
		r.clients[name] = sshtest.Client{User: "root", Key: key.Path}
	}
	keysFile := filepath.Join(dir, "etc", "authorized_keys")
	writeOwned(t, keysFile, authorized.String(), 0o644, 0, 0)
	srv, err := sshtest.Start(sshtest.Options{Dir: filepath.Join(dir, "sshd"), User: "root", AuthorizedKeys: keysFile, RootLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd log:\n%s", srv.Log())
		}
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	for name, c := range r.clients {
		c.Port = srv.Port
		r.clients[name] = c
	}
	return r
}

// push runs `rsync ARGS... SRC/ root@127.0.0.1:DEST/` with the key of rule
// and returns the client's result and the log lines it left.
func (r *sshvalRootRig) push(t *testing.T, rule, dest string, args ...string) (result, string) {
	t.Helper()
	fi, err := os.Stat(r.log)
	mark := int64(0)
	if err == nil {
		mark = fi.Size()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := r.clients[rule]
	argv := append(append([]string{}, args...), r.src+"/", c.Target()+":"+dest+"/")
	res := runPrepared(t, c.Rsync(ctx, argv...))
	b, err := os.ReadFile(r.log)
	if err != nil {
		t.Fatal(err)
	}
	return res, strings.TrimSpace(string(b[mark:]))
}

// stat returns the Lstat of path, or nil if it does not exist.
func stat(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		if err == syscall.ENOENT {
			return nil
		}
		t.Fatal(err)
	}
	return &st
}

// TestSSHValRoot pushes a tree holding a device node, a FIFO, a set-uid
// root binary and a root-owned file through real ssh, sshd, agent sshval
// and rsync, all as root: without "devices yes" and "owners yes" none of
// them arrives as such (the options are refused, the s bits stripped);
// with them they do. It also checks --force under "delete no" and that
// "overwrite no" leaves an existing file byte-identical.
func TestSSHValRoot(t *testing.T) {
	r := newSSHValRootRig(t)
	refused := func(t *testing.T, res result, log, reason string) {
		t.Helper()
		if res.code == 0 {
			t.Errorf("push succeeded, want a refusal\nstderr: %s", res.stderr)
		}
		if !strings.Contains(res.stderr, "sshval: rejected") {
			t.Errorf("client stderr does not show the rejection: %s", res.stderr)
		}
		if !strings.Contains(log, "ssh command rejected") || !strings.Contains(log, reason) {
			t.Errorf("log %q, want a rejection with %q", log, reason)
		}
	}
	ok := func(t *testing.T, res result, log string) {
		t.Helper()
		if res.code != 0 {
			t.Fatalf("push failed: exit %d\nstderr: %s\nlog: %s", res.code, res.stderr, log)
		}
		if !strings.Contains(log, "ssh command accepted") {
			t.Errorf("log %q, want an acceptance", log)
		}
	}
	mode := func(t *testing.T, path string, want uint32) {
		t.Helper()
		st := stat(t, path)
		if st == nil {
			t.Errorf("%s missing", path)
		} else if st.Mode != want {
			t.Errorf("%s: mode %o, want %o", path, st.Mode, want)
		}
	}
	owner := func(t *testing.T, path string, want uint32) {
		t.Helper()
		if st := stat(t, path); st == nil {
			t.Errorf("%s missing", path)
		} else if st.Uid != want {
			t.Errorf("%s: owner %d, want %d", path, st.Uid, want)
		}
	}
	plain, devs, owners, keep := r.roots["plain"], r.roots["devs"], r.roots["owners"], r.roots["keep"]

	// Each push is refused with the reason, and nothing lands.
	for _, tc := range []struct {
		name, dir string
		args      []string
		reason    string
	}{
		{"rsync -a refused for -D", "a", []string{"-a"}, "-D not allowed by rule plain"},
		{"-rD refused: no device node, no FIFO", "d", []string{"-rD"}, "-D not allowed"},
		{"--specials refused", "sp", []string{"-r", "--specials"}, "--specials not allowed"},
		{"-o refused: no root-owned file by the client's choice", "o", []string{"-rlpto"}, "-o not allowed"},
		{"--usermap to root refused", "um", []string{"-rlpt", "--usermap=*:root"}, "maps to user root"},
		{"--chown to root refused", "ch", []string{"-rlpt", "--chown=root:root"}, "maps to user root"},
		{"-M--super refused", "su", []string{"-rlpt", "-M--super"}, "--super not allowed"},
		{"-M--chmod=u+s refused", "cm", []string{"-rlpt", "-M--chmod=u+s"}, "adds set-uid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, log := r.push(t, "plain", tc.dir, tc.args...)
			refused(t, res, log, tc.reason)
			absent(t, filepath.Join(plain, tc.dir))
		})
	}
	t.Run("-rlpt: the set-uid bit is stripped", func(t *testing.T) {
		res, log := r.push(t, "plain", "p", "-rlpt")
		ok(t, res, log)
		mode(t, filepath.Join(plain, "p", "suid"), syscall.S_IFREG|0o755)
		absent(t, filepath.Join(plain, "p", "null"), filepath.Join(plain, "p", "fifo"))
	})
	t.Run("client --chmod=u+s: stripped too", func(t *testing.T) {
		res, log := r.push(t, "plain", "pc", "-rlpt", "--chmod=u+s")
		ok(t, res, log)
		mode(t, filepath.Join(plain, "pc", "plain"), syscall.S_IFREG|0o644)
		mode(t, filepath.Join(plain, "pc", "suid"), syscall.S_IFREG|0o755)
	})
	t.Run("--chown to one account: nothing root-owned", func(t *testing.T) {
		res, log := r.push(t, "plain", "co", "-rlpt", "--chown=65534:65534")
		ok(t, res, log)
		for _, f := range []string{"suid", "rootfile", "plain"} {
			owner(t, filepath.Join(plain, "co", f), 65534)
		}
		mode(t, filepath.Join(plain, "co", "suid"), syscall.S_IFREG|0o755)
	})
	t.Run("devices yes: device node and FIFO arrive", func(t *testing.T) {
		res, log := r.push(t, "devs", "d", "-rD")
		ok(t, res, log)
		if st := stat(t, filepath.Join(devs, "d", "null")); st == nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("devs/d/null: %+v, want the character device 1,3", st)
		}
		if st := stat(t, filepath.Join(devs, "d", "fifo")); st == nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
			t.Errorf("devs/d/fifo: %+v, want a FIFO", st)
		}
	})
	t.Run("owners yes: owners and the set-uid bit arrive", func(t *testing.T) {
		res, log := r.push(t, "owners", "o", "-rlptgo")
		ok(t, res, log)
		mode(t, filepath.Join(owners, "o", "suid"), syscall.S_IFREG|0o4755)
		owner(t, filepath.Join(owners, "o", "suid"), 0)
		owner(t, filepath.Join(owners, "o", "rootfile"), 0)
		owner(t, filepath.Join(owners, "o", "plain"), rootRigUID)
	})
	t.Run("--force refused under delete no", func(t *testing.T) {
		// A non-empty directory where the client has a file: --force
		// would delete it to put the file there.
		victim := filepath.Join(plain, "f", "plain")
		mkdirOwned(t, victim, 0o755, 0, 0)
		writeOwned(t, filepath.Join(victim, "kept"), "kept\n", 0o644, 0, 0)
		res, log := r.push(t, "plain", "f", "-rlpt", "--force")
		refused(t, res, log, "--force not allowed by rule plain")
		if b, err := os.ReadFile(filepath.Join(victim, "kept")); err != nil || string(b) != "kept\n" {
			t.Errorf("%s/kept after a refused --force: %q, %v", victim, b, err)
		}
	})
	t.Run("overwrite no keeps existing files byte-identical", func(t *testing.T) {
		dest := filepath.Join(keep, "k")
		mkdirOwned(t, dest, 0o755, 0, 0)
		old := "yesterday's backup, longer than the new content\n"
		writeOwned(t, filepath.Join(dest, "plain"), old, 0o600, 0, 0)
		past := time.Now().Add(-48 * time.Hour)
		if err := os.Chtimes(filepath.Join(dest, "plain"), past, past); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"-rlpt"}, {"-rlpt", "-I"}, {"-rlpt", "-c"}} {
			res, log := r.push(t, "keep", "k", args...)
			ok(t, res, log)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "plain")); err != nil || string(b) != old {
			t.Errorf("k/plain after pushes of other content: %q, %v; want %q", b, err, old)
		}
		mode(t, filepath.Join(dest, "plain"), syscall.S_IFREG|0o600)
		if b, err := os.ReadFile(filepath.Join(dest, "rootfile")); err != nil || string(b) != "root's\n" {
			t.Errorf("k/rootfile, a new file: %q, %v", b, err)
		}
		for _, args := range [][]string{{"-rlpt", "--inplace"}, {"-rlpt", "--append-verify"}} {
			res, log := r.push(t, "keep", "k", args...)
			refused(t, res, log, "the rule says overwrite no")
		}
		if b, err := os.ReadFile(filepath.Join(dest, "plain")); err != nil || string(b) != old {
			t.Errorf("k/plain after refused pushes: %q, %v", b, err)
		}
	})
	// Nothing may have landed as a device, FIFO or set-uid file outside
	// the rules that allow it.
	filepath.WalkDir(plain, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		st := stat(t, p)
		if st != nil && (st.Mode&syscall.S_IFMT == syscall.S_IFCHR || st.Mode&syscall.S_IFMT == syscall.S_IFBLK ||
			st.Mode&syscall.S_IFMT == syscall.S_IFIFO || st.Mode&syscall.S_IFMT == syscall.S_IFSOCK || st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0) {
			t.Errorf("%s: mode %o in rule plain's root", p, st.Mode)
		}
		return nil
	})
}
