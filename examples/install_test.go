package examples

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// installed is the file list of `make install DESTDIR=... PREFIX=/usr` with
// the modes; the Makefile's comment above `install` and the README give the
// same list.
var installed = map[string]fs.FileMode{
	"usr/sbin/agent":                              0o755,
	"usr/share/man/man8/agent.8":                  0o644,
	"usr/share/bash-completion/completions/agent": 0o644,
	"usr/share/agent/examples/cron.d/agent":       0o644,
	"etc/agent/agent.conf":                        0o600,
	"etc/agent/sshval.conf":                       0o644,
	"etc/agent/vbladed.conf.example":              0o644,
	"etc/logrotate.d/agent":                       0o644,
	"etc/apt/apt.conf.d/99agent":                  0o644,
	"lib/systemd/system/agent.service":            0o644,
}

// goCommand returns the go command of the toolchain running the test.
func goCommand(t *testing.T) string {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err == nil {
		return gobin
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not available to build the agent")
	}
	return gobin
}

// makeInstall runs `make install` from the repository root with the build
// products in tmp (never in the working tree) and returns make's output.
func makeInstall(t *testing.T, tmp string, vars ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed (apt-get install make)")
	}
	args := append([]string{"-C", "..", "install", "GO=" + goCommand(t),
		"BIN=" + filepath.Join(tmp, "bin", "agent"), "DOCGEN=" + filepath.Join(tmp, "doc")}, vars...)
	cmd := exec.Command("make", args...)
	// Under `make test` the outer make's flags and variables would reach
	// this make through the environment.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// tree lists the regular files under root with their permission bits; any
// other kind of file is an error.
func tree(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%v)", rel, fi.Mode())
		}
		got[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func diffTree(t *testing.T, got, want map[string]fs.FileMode) {
	t.Helper()
	for p, m := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("missing %s", p)
		} else if g != m {
			t.Errorf("%s: mode %04o, want %04o", p, g, m)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected file %s", p)
		}
	}
}

// TestInstall: `make install DESTDIR=... PREFIX=/usr` installs exactly the
// documented files with their modes, a second run keeps the configs and
// puts the new ones beside them as .dist, the installed unit passes
// systemd-analyze verify, and the default PREFIX goes to /usr/local.
func TestInstall(t *testing.T) {
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	makeInstall(t, tmp, "DESTDIR="+dest, "PREFIX=/usr")

	t.Run("file list", func(t *testing.T) {
		diffTree(t, tree(t, dest), installed)
	})
	t.Run("sshval counters directory", func(t *testing.T) {
		fi, err := os.Lstat(filepath.Join(dest, "var/lib/agent-sshval"))
		if err != nil || !fi.IsDir() || fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o733|fs.ModeSticky {
			t.Errorf("var/lib/agent-sshval: %v %v, want a directory 1733", fi, err)
		}
	})
	t.Run("contents", func(t *testing.T) {
		for inst, src := range map[string]string{
			"etc/agent/agent.conf":                  "agent.conf",
			"etc/agent/sshval.conf":                 "sshval.conf",
			"etc/agent/vbladed.conf.example":        "vbladed.conf",
			"etc/logrotate.d/agent":                 "logrotate.d/agent",
			"etc/apt/apt.conf.d/99agent":            "apt/99agent",
			"usr/share/agent/examples/cron.d/agent": "cron.d/agent",
		} {
			a, err1 := os.ReadFile(filepath.Join(dest, inst))
			b, err2 := os.ReadFile(src)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs from examples/%s (%v, %v)", inst, src, err1, err2)
			}
		}
		unit, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/agent.service"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(unit, []byte("\nExecStart=/usr/sbin/agent daemon\n")) {
			t.Error("installed unit does not run /usr/sbin/agent daemon")
		}
		out, err := exec.Command(filepath.Join(dest, "usr/sbin/agent"), "--version").Output()
		if err != nil || !bytes.HasPrefix(out, []byte("agent version ")) {
			t.Errorf("installed agent --version: %q, %v", out, err)
		}
	})
	manpath := "MANPATH=" + filepath.Join(dest, "usr/share/man")
	t.Run("man page", func(t *testing.T) {
		page := filepath.Join(dest, "usr/share/man/man8/agent.8")
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte(".TH AGENT 8 ")) && !bytes.Contains(b, []byte("\n.TH AGENT 8 ")) {
			t.Errorf("%s has no title line .TH AGENT 8", page)
		}
		man, err := exec.LookPath("man")
		if err != nil {
			t.Skip("man is not installed (apt-get install man-db): cannot check that man finds the page")
		}
		// The lookup systemd-analyze verify makes for
		// Documentation=man:agent(8), with the DESTDIR tree as MANPATH.
		cmd := exec.Command(man, "-w", "8", "agent")
		cmd.Env = append(os.Environ(), manpath)
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != page {
			t.Errorf("%s: %q, %v; want %s", strings.Join(cmd.Args, " "), out, err, page)
		}
	})
	t.Run("systemd-analyze verify", func(t *testing.T) {
		// verify needs ExecStart's program to exist and runs man for
		// Documentation=man:agent(8): point both at the DESTDIR tree, so
		// this also proves the installed man page is found.
		unit, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/agent.service"))
		if err != nil {
			t.Fatal(err)
		}
		unit = bytes.Replace(unit, []byte("\nExecStart=/usr/sbin/agent "), []byte("\nExecStart="+filepath.Join(dest, "usr/sbin/agent")+" "), 1)
		if _, err := exec.LookPath("man"); err != nil {
			// Without man, verify always fails on the Documentation
			// line; the unit itself is still checked.
			t.Log("man is not installed (apt-get install man-db): verify runs with --man=no")
			verifyUnit(t, unit)
			return
		}
		verifyUnit(t, unit, manpath)
	})
	t.Run("configs are kept", func(t *testing.T) {
		conf := filepath.Join(dest, "etc/agent/agent.conf")
		mine := []byte("# edited by the admin\n")
		if err := os.WriteFile(conf, mine, 0o600); err != nil {
			t.Fatal(err)
		}
		makeInstall(t, tmp, "DESTDIR="+dest, "PREFIX=/usr")
		want := map[string]fs.FileMode{"etc/agent/agent.conf.dist": 0o600, "etc/agent/sshval.conf.dist": 0o644}
		for p, m := range installed {
			want[p] = m
		}
		diffTree(t, tree(t, dest), want)
		if got, err := os.ReadFile(conf); err != nil || !bytes.Equal(got, mine) {
			t.Errorf("agent.conf = %q, %v; want the admin's file kept", got, err)
		}
	})
	t.Run("default prefix", func(t *testing.T) {
		local := filepath.Join(tmp, "local")
		makeInstall(t, tmp, "DESTDIR="+local)
		want := map[string]fs.FileMode{}
		for p, m := range installed {
			want[strings.Replace(p, "usr/", "usr/local/", 1)] = m
		}
		diffTree(t, tree(t, local), want)
		unit, err := os.ReadFile(filepath.Join(local, "lib/systemd/system/agent.service"))
		if err != nil || !bytes.Contains(unit, []byte("\nExecStart=/usr/local/sbin/agent daemon\n")) {
			t.Errorf("unit with the default PREFIX does not run /usr/local/sbin/agent (%v)", err)
		}
	})
}

// verifyUnit runs `systemd-analyze verify` on unit saved as agent.service in
// a temporary directory and expects no diagnostics at all.
func verifyUnit(t *testing.T, unit []byte, env ...string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	path := filepath.Join(t.TempDir(), "agent.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"verify"}
	if len(env) == 0 {
		args = append(args, "--man=no")
	}
	cmd := exec.Command(sa, append(args, path)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
}

// TestSystemdUnit verifies examples/systemd/agent.service itself with
// ExecStart pointing at an executable that exists (this test binary; verify
// checks only that it is executable) and without the man page check, and
// checks that the hardening stays what the comments promise.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("systemd/agent.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("verify", func(t *testing.T) {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(unit, []byte("\nExecStart=/usr/sbin/agent daemon\n")) {
			t.Fatal("ExecStart is not /usr/sbin/agent daemon (make install rewrites exactly that)")
		}
		verifyUnit(t, bytes.Replace(unit, []byte("\nExecStart=/usr/sbin/agent "), []byte("\nExecStart="+self+" "), 1))
	})
	keys := map[string]string{}
	prevComment := map[string]bool{}
	prev := ""
	for _, l := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			keys[k] = v
			prevComment[k] = strings.HasPrefix(prev, "#")
		}
		prev = l
	}
	for _, tc := range []struct {
		key, want string
		hardening bool // every hardening line has a comment above it saying why
	}{
		{"Type", "simple", false}, {"Restart", "on-failure", false}, {"ExecReload", "/bin/kill -HUP $MAINPID", false},
		{"KillSignal", "SIGTERM", false}, {"TimeoutStopSec", "15", false},
		{"ProtectSystem", "strict", true}, {"ProtectHome", "read-only", true}, {"PrivateTmp", "yes", true},
		{"NoNewPrivileges", "yes", true}, {"ProtectKernelTunables", "yes", true}, {"ProtectControlGroups", "yes", true},
		{"RestrictSUIDSGID", "yes", true}, {"LockPersonality", "yes", true},
		{"StateDirectory", "agent", true}, {"RuntimeDirectory", "agent", true}, {"LogsDirectory", "agent", true},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got, ok := keys[tc.key]; !ok || got != tc.want {
				t.Errorf("%s=%q, want %q", tc.key, got, tc.want)
			}
			if tc.hardening && !prevComment[tc.key] {
				t.Errorf("%s has no comment above it saying why", tc.key)
			}
		})
	}
	// Each of these breaks the job: the RAID CLIs need /dev, the scan needs
	// /usr/lib/modules, the RAID probe reads /proc.
	for _, k := range []string{"PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "ProtectKernelModules", "ProtectProc", "ProcSubset", "CapabilityBoundingSet", "User", "DynamicUser"} {
		if _, ok := keys[k]; ok {
			t.Errorf("%s is set; it breaks scanning, vblade or the RAID CLIs", k)
		}
	}
}

// cronTime validates one time field of a cron line: lists of *, N, N-M, each
// with an optional /STEP, within [lo, hi]; or one name (jan, mon) where names
// are allowed.
func cronTime(field string, lo, hi int, names []string) error {
	if i := slices.Index(names, strings.ToLower(field)); i >= 0 {
		return nil
	}
	for item := range strings.SplitSeq(field, ",") {
		rng, step, hasStep := strings.Cut(item, "/")
		if hasStep {
			if n, err := strconv.Atoi(step); err != nil || n < 1 {
				return fmt.Errorf("bad step %q", step)
			}
		}
		if rng == "*" {
			continue
		}
		a, b, isRange := strings.Cut(rng, "-")
		if !isRange {
			b = a
		}
		na, err1 := strconv.Atoi(a)
		nb, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || na < lo || nb > hi || na > nb {
			return fmt.Errorf("%q is not within %d-%d", rng, lo, hi)
		}
	}
	return nil
}

var cronVar = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\s*=`)

// TestCronFile checks examples/cron.d/agent line by line the way cron reads
// a /etc/cron.d file, and asks the agent whether it accepts every command
// line (`--help` after the arguments parses every flag and runs nothing).
func TestCronFile(t *testing.T) {
	data, err := os.ReadFile("cron.d/agent")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Error("the last line has no newline; cron ignores it")
	}
	months := []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	days := []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	vars := map[string]string{}
	var jobs [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cronVar.MatchString(line) {
			k, v, _ := strings.Cut(line, "=")
			vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 7 {
			t.Errorf("line %d: %q: want 5 time fields, a user and a command", n, line)
			continue
		}
		for i, r := range []struct {
			lo, hi int
			names  []string
		}{{0, 59, nil}, {0, 23, nil}, {1, 31, nil}, {1, 12, months}, {0, 7, days}} {
			if err := cronTime(f[i], r.lo, r.hi, r.names); err != nil {
				t.Errorf("line %d field %d: %v", n, i+1, err)
			}
		}
		if f[5] != "root" {
			t.Errorf("line %d: user %q, want root", n, f[5])
		}
		cmd := strings.Join(f[6:], " ")
		if strings.ContainsAny(cmd, "%;&|<>$`'\"\\") {
			t.Errorf("line %d: command %q has characters cron or the shell would interpret", n, cmd)
		}
		if f[6] != "agent" {
			t.Errorf("line %d: command %q does not run agent", n, cmd)
		}
		jobs = append(jobs, f[7:])
	}
	if vars["MAILTO"] != `""` || !strings.Contains(vars["PATH"], "/usr/sbin") || !strings.Contains(vars["PATH"], "/usr/local/sbin") {
		t.Errorf("variables %q: want MAILTO=\"\" and a PATH with /usr/sbin and /usr/local/sbin", vars)
	}
	if len(jobs) != 2 || !slices.Contains(jobs[0], "check") || !slices.Contains(jobs[1], "raid") {
		t.Fatalf("jobs %q: want the integrity check, then the RAID probe", jobs)
	}
	agent := filepath.Join(t.TempDir(), "agent")
	if out, err := exec.Command(goCommand(t), "build", "-o", agent, "opsagent/cmd/agent").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, j := range jobs {
		t.Run(strings.Join(j, " "), func(t *testing.T) {
			if !slices.Contains(j, "--mail") {
				t.Error("the job does not mail (cron's own mail is off)")
			}
			cmd := exec.Command(agent, append(slices.Clone(j), "--help")...)
			cmd.Env = []string{}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("agent %s --help: %v\n%s", strings.Join(j, " "), err, out)
			}
		})
	}
}

// TestLogrotateFile rotates a log in a temporary directory with the example
// config (path rewritten), as root with a log owned by another user: the new
// log must keep the old one's owner and mode, since sshval writes it as the
// SSH login user.
func TestLogrotateFile(t *testing.T) {
	data, err := os.ReadFile("logrotate.d/agent")
	if err != nil {
		t.Fatal(err)
	}
	const pattern = "/var/log/agent/*.log {"
	if bytes.Count(data, []byte("{")) != 1 || bytes.Count(data, []byte("}")) != 1 || !bytes.Contains(data, []byte("\n"+pattern+"\n")) {
		t.Fatalf("want one block for %q", pattern)
	}
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		t.Skip("logrotate is not installed (apt-get install logrotate)")
	}
	dir := t.TempDir()
	logs := filepath.Join(dir, "log")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, bytes.Replace(data, []byte("/var/log/agent/"), []byte(logs+"/"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(logs, "sshval.log")
	if err := os.WriteFile(log, []byte("May 04 11:36:15 host sshval(1): interactive shell rejected from 10.1.2.3\n"), 0o620); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(log, 0o620); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534 // nobody, as the backup login user
		if err := os.Chown(log, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	t.Run("debug", func(t *testing.T) {
		out, err := exec.Command(lr, "-d", "-s", state, conf).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("error:")) {
			t.Errorf("logrotate -d: %v\n%s", err, out)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		out, err := exec.Command(lr, "-f", "-s", state, conf).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("error:")) {
			t.Fatalf("logrotate -f: %v\n%s", err, out)
		}
		if _, err := os.Stat(log + ".1"); err != nil {
			t.Errorf("no rotated %s.1 (delaycompress keeps it plain): %v", log, err)
		}
		fi, err := os.Stat(log)
		if err != nil {
			t.Fatalf("no new log: %v", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o620 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("new log: mode %04o owner %d:%d, want 0620 %d:%d (the old log's)", fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
		}
	})
}
