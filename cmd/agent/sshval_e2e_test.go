package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"opsagent/internal/sshtest"
)

// sshvalRig is one run of the sshval end-to-end test: a throwaway user whose
// authorized_keys forces `agent sshval`, a private sshd on 127.0.0.1, and the
// real ssh and rsync clients. Everything lives under dir, a 0755 directory
// in /tmp that the user can reach (t.TempDir's parent is 0700).
type sshvalRig struct {
	dir    string
	user   *sshtest.User
	srv    *sshtest.Server
	agent  string // copy of agentBin every user can execute
	log    string // the rules' log file, written by the user
	src    string // the tree the client pushes
	full   string // root of rule "full": push and pull, delete no
	push   string // root of rule "pushonly": push only, delete yes
	out    string // a directory outside every root the user could write
	marker string // prefix of the files an injected command would create

	// Clients by key: "full", "pushonly" and "elsewhere" (a rule limited
	// to 10.0.0.0/8) are forced to `agent sshval --rules ...` with
	// "restrict"; "pty" is "full" with "restrict,pty", so that an
	// interactive login gets its terminal; "true" is forced to /bin/true,
	// the baseline of the cold start measurement.
	clients map[string]sshtest.Client
}

// sshvalLine is the start of every log file line: `May 04 11:36:15
// buserver3 sshval(13156): `.
const sshvalLine = `^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} \S+ sshval\([0-9]+\): `

// rulesText is the rules file of one key: the shared log and one rsync
// rule.
func rulesText(log, name, from, root, pull, del string) string {
	return fmt.Sprintf(`# sshval end-to-end test: rule %[2]s
log %[1]s
counters none

rsync %[2]s {
	from %[3]s
	root %[4]s
	push yes
	pull %[5]s
	delete %[6]s
}
`, log, name, from, root, pull, del)
}

// mkdirOwned makes dir with mode perm, owned by uid and gid.
func mkdirOwned(t *testing.T, dir string, perm os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(dir, perm); err != nil {
		t.Fatal(err)
	}
	// MkdirAll's mode is filtered by the umask; the test needs it exact.
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// writeOwned writes a file with mode perm owned by uid and gid.
func writeOwned(t *testing.T, path, content string, perm os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// newSSHValRig builds the rig; its cleanups remove everything it made, in
// reverse: sshd, then the user and whatever still runs as the user, then
// the marker files, then the directory.
func newSSHValRig(t *testing.T) *sshvalRig {
	t.Helper()
	if err := sshtest.Supported(); err != nil {
		t.Skip("sshval end-to-end test needs root, sshd, ssh, ssh-keygen, rsync, useradd: ", err)
	}
	dir, err := os.MkdirTemp("", "agent-sshval-e2e-")
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
	pid := os.Getpid()
	r := &sshvalRig{
		dir:     dir,
		marker:  fmt.Sprintf("/tmp/pwned-%d", pid),
		clients: map[string]sshtest.Client{},
	}
	t.Cleanup(func() {
		left, _ := filepath.Glob(r.marker + "*")
		for _, m := range left {
			os.Remove(m)
		}
	})

	name := fmt.Sprintf("agsv%d", pid)
	r.user, err = sshtest.AddUser(name, filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.user.Remove(); err != nil {
			t.Errorf("removing user %s: %v", name, err)
		}
	})
	uid, gid := r.user.UID, r.user.GID

	// The agent as root would install it: a root-owned 0755 copy.
	mkdirOwned(t, filepath.Join(dir, "bin"), 0o755, 0, 0)
	r.agent = filepath.Join(dir, "bin", "agent")
	copyFile(t, agentBin, r.agent, 0o755)

	mkdirOwned(t, filepath.Join(dir, "etc"), 0o755, 0, 0)
	mkdirOwned(t, filepath.Join(dir, "log"), 0o755, 0, 0)
	r.log = filepath.Join(dir, "log", "sshval.log")
	writeOwned(t, r.log, "", 0o640, uid, gid)

	// Roots belong to the user, as a backup user's data would; so does
	// the directory outside them, so only sshval keeps the user out.
	mkdirOwned(t, filepath.Join(dir, "data"), 0o755, 0, 0)
	r.full = filepath.Join(dir, "data", "full")
	r.push = filepath.Join(dir, "data", "push")
	r.out = filepath.Join(dir, "outside")
	for _, d := range []string{r.full, r.push, r.out} {
		mkdirOwned(t, d, 0o755, uid, gid)
	}
	// Pull sources, seeded as the user would have pushed them.
	for _, root := range []string{r.full, r.push} {
		mkdirOwned(t, filepath.Join(root, "seed"), 0o755, uid, gid)
		writeOwned(t, filepath.Join(root, "seed", "s1"), "seed one\n", 0o644, uid, gid)
	}
	// A symlink inside the root pointing outside, made by root.
	if err := os.Symlink(r.out, filepath.Join(r.full, "link")); err != nil {
		t.Fatal(err)
	}

	r.src = filepath.Join(dir, "src")
	mkdirOwned(t, filepath.Join(r.src, "sub"), 0o755, 0, 0)
	for p, c := range map[string]string{"a": "alpha\n", "b c": "with a space\n", "sub/d": "delta\n"} {
		writeOwned(t, filepath.Join(r.src, p), c, 0o644, 0, 0)
	}

	rules := map[string]string{
		"full":      rulesText(r.log, "full", "127.0.0.0/8", r.full, "yes", "no"),
		"pushonly":  rulesText(r.log, "pushonly", "127.0.0.1/32", r.push, "no", "yes"),
		"elsewhere": rulesText(r.log, "elsewhere", "10.0.0.0/8", r.full, "yes", "no"),
	}
	keysDir := filepath.Join(dir, "keys")
	mkdirOwned(t, keysDir, 0o700, 0, 0)
	var authorized strings.Builder
	for kn, text := range rules {
		writeOwned(t, filepath.Join(dir, "etc", kn+".conf"), text, 0o644, 0, 0)
	}
	for _, k := range []struct{ name, rules, opts string }{
		{"full", "full", "restrict"},
		{"pushonly", "pushonly", "restrict"},
		{"elsewhere", "elsewhere", "restrict"},
		{"pty", "full", "restrict,pty"},
		{"true", "", "restrict"},
	} {
		key, err := sshtest.NewKey(filepath.Join(keysDir, k.name), "agent-sshval-e2e "+k.name)
		if err != nil {
			t.Fatal(err)
		}
		forced := "/bin/true"
		if k.rules != "" {
			forced = r.agent + " sshval --rules " + filepath.Join(dir, "etc", k.rules+".conf")
		}
		fmt.Fprintf(&authorized, "command=%q,%s %s\n", forced, k.opts, key.Public)
		r.clients[k.name] = sshtest.Client{User: name, Key: key.Path}
	}
	keysFile := filepath.Join(dir, "etc", "authorized_keys")
	writeOwned(t, keysFile, authorized.String(), 0o644, 0, 0)

	sshdDir := filepath.Join(dir, "sshd")
	mkdirOwned(t, sshdDir, 0o700, 0, 0)
	r.srv, err = sshtest.Start(sshtest.Options{Dir: sshdDir, User: name, AuthorizedKeys: keysFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(r.srv.Log()), "\n")
			t.Logf("sshd log (last %d lines):\n%s", min(len(lines), 40), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		if err := r.srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	for kn, c := range r.clients {
		c.Port = r.srv.Port
		r.clients[kn] = c
	}
	return r
}

// copyFile copies src to dst with mode perm.
func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, perm); err != nil {
		t.Fatal(err)
	}
}

// logSize is how far the log file has grown, the mark for logSince.
func (r *sshvalRig) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(r.log)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// logSince returns the log file lines written after mark. It waits up to
// five seconds for the first one: a client that gives up early (ssh -tt
// refused a terminal) returns before the forced command has logged.
func (r *sshvalRig) logSince(t *testing.T, mark int64) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(r.log)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) < mark {
			t.Fatalf("log file shrank from %d to %d bytes", mark, len(b))
		}
		text := string(b[mark:])
		if strings.HasSuffix(text, "\n") {
			return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		}
		if time.Now().After(deadline) {
			if text == "" {
				return nil
			}
			return []string{text + " (no newline)"}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// treeFiles maps each regular file under dir (slash-separated relative
// path) to its content; symlinks and directories are listed as "->" and
// "/" entries so that stray ones show in a comparison.
func treeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
		case d.IsDir():
			files[rel] = "/"
		case d.Type()&fs.ModeSymlink != 0:
			files[rel] = "->"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files[rel] = string(b)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// sameTree fails unless got holds exactly the files of want.
func sameTree(t *testing.T, got, want string) {
	t.Helper()
	g, w := treeFiles(t, got), treeFiles(t, want)
	var diff []string
	for p, c := range w {
		if gc, ok := g[p]; !ok {
			diff = append(diff, "-"+p)
		} else if gc != c {
			diff = append(diff, fmt.Sprintf("~%s: %q, want %q", p, gc, c))
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			diff = append(diff, "+"+p)
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		t.Errorf("%s differs from %s (-missing +extra ~changed):\n%s", got, want, strings.Join(diff, "\n"))
	}
}

// absent fails if any of paths exists.
func absent(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists (err %v): a refused command had an effect", p, err)
		}
	}
}

// emptyDir fails unless dir is missing or empty.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	if files := treeFiles(t, dir); len(files) > 0 {
		t.Errorf("%s is not empty: %v", dir, files)
	}
}

// sshvalCase is one connection through the rig.
type sshvalCase struct {
	name string
	// key names the client, "full" unless set.
	key string
	// cmd returns the client command: ssh or rsync through c.
	cmd func(c sshtest.Client, ctx context.Context) *exec.Cmd
	// stdin is fed to the client; empty means /dev/null.
	stdin string
	// ok says the client must succeed; otherwise it must fail, with exit
	// status exit if that is not zero (ssh passes the forced command's
	// 126 through; rsync has its own codes), and show sshval's rejection
	// unless quiet (sshd drops a subsystem's stderr; ssh -tt without a
	// terminal hangs up first).
	ok    bool
	exit  int
	quiet bool
	// log is the regexp the one log line of the connection must match
	// after its `DATE HOST sshval(PID): ` prefix (anchored at both ends).
	// A rejection's line ends in " (reason: ...)", which must match
	// reason somewhere inside.
	log, reason string
	// setup runs before the connection; check runs after it, whatever
	// the client did.
	setup, check func(t *testing.T)
}

// sshPlain is a case command `ssh [opts] TARGET [command]`.
func sshPlain(opts []string, command ...string) func(sshtest.Client, context.Context) *exec.Cmd {
	return func(c sshtest.Client, ctx context.Context) *exec.Cmd {
		args := append(slices.Clone(opts), c.Target())
		return c.SSH(ctx, append(args, command...)...)
	}
}

// rsyncCmd is a case command `rsync -e SSH ARGS...` where "R:" at the start
// of an argument stands for the remote target.
func rsyncCmd(args ...string) func(sshtest.Client, context.Context) *exec.Cmd {
	return func(c sshtest.Client, ctx context.Context) *exec.Cmd {
		argv := make([]string, len(args))
		for i, a := range args {
			if rest, ok := strings.CutPrefix(a, "R:"); ok {
				a = c.Target() + ":" + rest
			}
			argv[i] = a
		}
		return c.Rsync(ctx, argv...)
	}
}

// Log line bodies. The rsync capability flags vary with the client's
// version, so they match as -\S+.
const (
	accepted    = `ssh command accepted from 127\.0\.0\.1: `
	rejected    = `ssh command rejected from 127\.0\.0\.1: `
	interactive = `interactive shell rejected from 127\.0\.0\.1`
	server      = `rsync --server -\S+ `
	sender      = `rsync --server --sender -\S+ `
	// bs is the backslash rsync puts before a space in a path; the log
	// shows the command as received and does not double it.
	bs = `\\`
)

// TestSSHValEndToEnd drives the real ssh and rsync clients through a real
// sshd whose authorized_keys forces `agent sshval`: transfers the rules
// allow go through and land inside the root; everything else is refused
// with no effect on disk; every connection leaves exactly one log file
// line. Cases run in order on one rig but do not depend on each other's
// outcome: each sets up what it needs.
func TestSSHValEndToEnd(t *testing.T) {
	r := newSSHValRig(t)
	pulled := filepath.Join(r.dir, "pulled")
	if err := os.Mkdir(pulled, 0o700); err != nil {
		t.Fatal(err)
	}
	// mark is the marker file of the injection case i.
	mark := func(i int) string { return fmt.Sprintf("%s-%d", r.marker, i) }
	touch := func(i int) string { return "touch " + mark(i) }
	// An rsync server command as a real push sends it.
	const push = "rsync --server -logDtpre.iLsfxCIvu . dest/"
	pushRE := regexp.QuoteMeta(push)

	cases := []sshvalCase{
		{
			name: "push", cmd: rsyncCmd("-a", r.src+"/", "R:dest/"), ok: true,
			log:   accepted + server + `\. dest/`,
			check: func(t *testing.T) { sameTree(t, filepath.Join(r.full, "dest"), r.src) },
		},
		{
			name: "push to a destination with a space", cmd: rsyncCmd("-a", r.src+"/", "R:dir with space/"), ok: true,
			log:   accepted + server + `\. dir` + bs + ` with` + bs + ` space/`,
			check: func(t *testing.T) { sameTree(t, filepath.Join(r.full, "dir with space"), r.src) },
		},
		{
			name: "push to an absolute path inside the root", cmd: rsyncCmd("-a", r.src+"/", "R:"+r.full+"/abs/"), ok: true,
			log:   accepted + server + `\. ` + regexp.QuoteMeta(r.full+"/abs/"),
			check: func(t *testing.T) { sameTree(t, filepath.Join(r.full, "abs"), r.src) },
		},
		{
			name: "pull where the rule allows it", cmd: rsyncCmd("-a", "R:seed/", pulled+"/full/"), ok: true,
			log:   accepted + sender + `\. seed/`,
			check: func(t *testing.T) { sameTree(t, filepath.Join(pulled, "full"), filepath.Join(r.full, "seed")) },
		},
		{
			name: "push where the rule is push-only", key: "pushonly", cmd: rsyncCmd("-a", r.src+"/", "R:dest/"), ok: true,
			log:   accepted + server + `\. dest/`,
			check: func(t *testing.T) { sameTree(t, filepath.Join(r.push, "dest"), r.src) },
		},
		{
			name: "pull refused where the rule is push-only", key: "pushonly", cmd: rsyncCmd("-a", "R:seed/", pulled+"/push/"),
			log: rejected + sender + `\. seed/`, reason: `pull`,
			check: func(t *testing.T) { emptyDir(t, filepath.Join(pulled, "push")) },
		},
		{
			name: "delete refused where the rule says delete no", cmd: rsyncCmd("-a", "--delete", r.src+"/", "R:dest/"),
			setup: func(t *testing.T) {
				mkdirOwned(t, filepath.Join(r.full, "dest"), 0o755, r.user.UID, r.user.GID)
				writeOwned(t, filepath.Join(r.full, "dest", "keep"), "kept\n", 0o644, r.user.UID, r.user.GID)
			},
			log: rejected + server + `--delete\S* \. dest/`, reason: `--delete`,
			check: func(t *testing.T) {
				if b, err := os.ReadFile(filepath.Join(r.full, "dest", "keep")); err != nil || string(b) != "kept\n" {
					t.Errorf("dest/keep after a refused --delete: %q, %v", b, err)
				}
			},
		},
		{
			name: "delete allowed where the rule says delete yes", key: "pushonly", cmd: rsyncCmd("-a", "--delete", r.src+"/", "R:dest/"), ok: true,
			setup: func(t *testing.T) {
				mkdirOwned(t, filepath.Join(r.push, "dest"), 0o755, r.user.UID, r.user.GID)
				writeOwned(t, filepath.Join(r.push, "dest", "extra"), "extra\n", 0o644, r.user.UID, r.user.GID)
			},
			log:   accepted + server + `--delete\S* \. dest/`,
			check: func(t *testing.T) { sameTree(t, filepath.Join(r.push, "dest"), r.src) },
		},
		{
			name: "source address outside the rule's from", key: "elsewhere", cmd: rsyncCmd("-a", r.src+"/", "R:elsewhere/"),
			log: rejected + server + `\. elsewhere/`, reason: `source 127\.0\.0\.1`,
			check: func(t *testing.T) { absent(t, filepath.Join(r.full, "elsewhere")) },
		},
		{
			name: "dot-dot out of the root", cmd: rsyncCmd("-a", r.src+"/", "R:../../outside/dotdot/"),
			log: rejected + server + `\. \.\./\.\./outside/dotdot/`, reason: `\.\.`,
			check: func(t *testing.T) { emptyDir(t, r.out) },
		},
		{
			name: "dot-dot inside a path", cmd: rsyncCmd("-a", r.src+"/", "R:dest/../../../outside/x/"),
			log: rejected + server + `\. dest/\.\./\.\./\.\./outside/x/`, reason: `\.\.`,
			check: func(t *testing.T) { emptyDir(t, r.out) },
		},
		{
			name: "absolute path outside the root", cmd: rsyncCmd("-a", r.src+"/", "R:"+r.out+"/abs/"),
			log: rejected + server + `\. ` + regexp.QuoteMeta(r.out+"/abs/"), reason: `outside`,
			check: func(t *testing.T) { emptyDir(t, r.out) },
		},
		{
			name: "symlink inside the root pointing outside", cmd: rsyncCmd("-a", r.src+"/", "R:link/"),
			log: rejected + server + `\. link/`, reason: `symlink`,
			check: func(t *testing.T) { emptyDir(t, r.out) },
		},
		{
			name: "below a symlink pointing outside", cmd: rsyncCmd("-a", r.src+"/", "R:link/sub/"),
			log: rejected + server + `\. link/sub/`, reason: `symlink`,
			check: func(t *testing.T) { emptyDir(t, r.out) },
		},
		{
			name: "pull through a symlink pointing outside", cmd: rsyncCmd("-a", "R:link/", pulled+"/link/"),
			setup: func(t *testing.T) {
				writeOwned(t, filepath.Join(r.out, "secret"), "secret\n", 0o644, r.user.UID, r.user.GID)
			},
			log: rejected + sender + `\. link/`, reason: `symlink`,
			check: func(t *testing.T) {
				emptyDir(t, filepath.Join(pulled, "link"))
				if err := os.Remove(filepath.Join(r.out, "secret")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "protect-args as -s", cmd: rsyncCmd("-a", "-s", r.src+"/", "R:protected/"),
			log: rejected + `rsync --server -\S*s\S*`, reason: `-s|protect-args|secluded-args`,
			check: func(t *testing.T) { absent(t, filepath.Join(r.full, "protected")) },
		},
		{
			name: "protect-args as --protect-args", cmd: rsyncCmd("-a", "--protect-args", r.src+"/", "R:protected/"),
			log: rejected + `rsync --server -\S*s\S*`, reason: `-s|protect-args|secluded-args`,
			check: func(t *testing.T) { absent(t, filepath.Join(r.full, "protected")) },
		},
		{
			name: "link-dest outside the root", cmd: rsyncCmd("-a", "--link-dest="+r.out, r.src+"/", "R:linked/"),
			log: rejected + server + `--link-dest[ =]` + regexp.QuoteMeta(r.out) + ` \. linked/`, reason: `--link-dest`,
			check: func(t *testing.T) { absent(t, filepath.Join(r.full, "linked")) },
		},
		{
			// restrict refuses the terminal and ssh -tt hangs up, but
			// sshd has already started the forced command for the shell.
			name: "interactive login, terminal refused", cmd: sshPlain([]string{"-tt"}), stdin: touch(1) + "\nexit\n", quiet: true,
			log:   interactive,
			check: func(t *testing.T) { absent(t, mark(1)) },
		},
		{
			name: "interactive login with a terminal", key: "pty", cmd: sshPlain([]string{"-tt"}), stdin: touch(3) + "\nexit\n", exit: 126,
			log:   interactive,
			check: func(t *testing.T) { absent(t, mark(3)) },
		},
		{
			name: "interactive login with commands on stdin", cmd: sshPlain(nil), stdin: touch(2) + "\n", exit: 126,
			log:   interactive,
			check: func(t *testing.T) { absent(t, mark(2)) },
		},
		{
			name: "sftp subsystem", cmd: sshPlain([]string{"-s"}, "sftp"), exit: 126, quiet: true,
			log: rejected + `internal-sftp`, reason: `sftp`,
		},
	}
	// Shell injections after a command a rule would allow: each must be
	// refused as a whole and create nothing.
	for i, inj := range []struct{ name, cmd, log string }{
		{"semicolon", push + " ; " + touch(10), pushRE + ` ; ` + regexp.QuoteMeta(touch(10))},
		{"and", push + " && " + touch(11), pushRE + ` && ` + regexp.QuoteMeta(touch(11))},
		{"pipe", push + " | " + touch(12), pushRE + ` \| ` + regexp.QuoteMeta(touch(12))},
		{"command substitution", push + "$(" + touch(13) + ")", pushRE + `\$\(` + regexp.QuoteMeta(touch(13)) + `\)`},
		{"backticks", push + "`" + touch(14) + "`", pushRE + "`" + regexp.QuoteMeta(touch(14)) + "`"},
		// The newline must not end the log line: it is escaped in some
		// visible form between the two commands.
		{"newline", push + "\n" + touch(15), pushRE + `\S+` + regexp.QuoteMeta(touch(15))},
		{"no rule for the program", touch(16), regexp.QuoteMeta(touch(16))},
	} {
		n := 10 + i
		reason := `unsafe`
		if n == 16 {
			reason = `no rule`
		}
		cases = append(cases, sshvalCase{
			name: "injection " + inj.name, cmd: sshPlain(nil, inj.cmd), exit: 126,
			log: rejected + inj.log, reason: reason,
			check: func(t *testing.T) { absent(t, mark(n)) },
		})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = "full"
			}
			if tc.setup != nil {
				tc.setup(t)
			}
			before := r.logSize(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := tc.cmd(r.clients[key], ctx)
			if tc.stdin != "" {
				cmd.Stdin = strings.NewReader(tc.stdin)
			}
			res := runPrepared(t, cmd)
			switch {
			case tc.ok && res.code != 0:
				t.Errorf("%q: exit %d, want success\nstdout: %s\nstderr: %s", cmd.Args, res.code, res.stdout, res.stderr)
			case !tc.ok && res.code == 0:
				t.Errorf("%q: succeeded, want a refusal\nstdout: %s\nstderr: %s", cmd.Args, res.stdout, res.stderr)
			case !tc.ok && tc.exit != 0 && res.code != tc.exit:
				t.Errorf("%q: exit %d, want %d\nstderr: %s", cmd.Args, res.code, tc.exit, res.stderr)
			}
			// A terminal merges stderr into stdout.
			if !tc.ok && !tc.quiet && !strings.Contains(res.stdout+res.stderr, "sshval: rejected") {
				t.Errorf("client output does not show the rejection:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
			}
			lines := r.logSince(t, before)
			want := tc.log
			if tc.reason != "" {
				want += ` \(reason: .*(?:` + tc.reason + `).*\)`
			}
			re := regexp.MustCompile(sshvalLine + want + `$`)
			switch {
			case len(lines) != 1:
				t.Errorf("log lines of this connection: %q, want one matching %s", lines, re)
			case !re.MatchString(lines[0]):
				t.Errorf("log line:\n%s\nwant a match of:\n%s", lines[0], re)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}

	// Nothing anywhere may carry the marker prefix.
	if left, _ := filepath.Glob(r.marker + "*"); len(left) > 0 {
		t.Errorf("injected commands created %v", left)
	}

	t.Run("cold start", func(t *testing.T) { sshvalColdStart(t, r) })
}

// sshvalColdStart measures what a connection waits for `agent sshval`:
// ssh connect to exit for a rejected command through the forced agent,
// against the same through command="/bin/true", interleaved so that load
// from other work hits both alike. It also times the agent alone, run the
// way sshd runs it. Nothing is asserted: the numbers go to the log.
func sshvalColdStart(t *testing.T, r *sshvalRig) {
	const runs = 15
	timeSSH := func(key string) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := r.clients[key]
		cmd := c.SSH(ctx, c.Target(), "rm -rf /x")
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		var ee *exec.ExitError
		want := 126
		if key == "true" {
			want = 0
		}
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("ssh with key %s: exit %d, want %d", key, code, want)
		}
		return d
	}
	rules := filepath.Join(r.dir, "etc", "full.conf")
	timeAgent := func() time.Duration {
		cmd := exec.Command(r.agent, "sshval", "--rules", rules)
		cmd.Env = []string{"SSH_ORIGINAL_COMMAND=rm -rf /x", "SSH_CONNECTION=127.0.0.1 50000 127.0.0.1 22", "PATH=/usr/bin:/bin"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 126 {
			t.Fatalf("agent sshval alone: %v, want exit 126\n%s", err, stderr.String())
		}
		return d
	}
	var agentSSH, trueSSH, alone []time.Duration
	for range runs {
		agentSSH = append(agentSSH, timeSSH("full"))
		trueSSH = append(trueSSH, timeSSH("true"))
		alone = append(alone, timeAgent())
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	a, b := med(agentSSH), med(trueSSH)
	t.Logf("cold start over %d interleaved runs (medians): ssh to a rejection by agent sshval %v, "+
		"ssh to command=/bin/true %v, difference %v; agent sshval alone %v (min %v)",
		runs, a.Round(time.Microsecond), b.Round(time.Microsecond), (a - b).Round(time.Microsecond),
		med(alone).Round(time.Microsecond), slices.Min(alone).Round(time.Microsecond))
}
