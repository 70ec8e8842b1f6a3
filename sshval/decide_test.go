package sshval

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture is a rule root with traps, next to a directory outside it.
type fixture struct {
	root    string // the confined root
	real    string // its real path
	outside string
	ww      string // a root writable by others
	rules   *Rules
}

// newFixture builds, below dir:
//
//	root/file  root/sub/f  root/my dir/
//	root/out -> DIR/outside (absolute, escapes)
//	root/up -> ../outside (relative, escapes)
//	root/in -> sub   root/absin -> DIR/root/sub   root/dang -> missing
//	root/loop -> loop   root/deep -> sub/../../outside
//	outside/secret   ww/ (mode 0777)   open/r/ (open is 0777)
func newFixture(tb testing.TB, dir string) *fixture {
	tb.Helper()
	fx := &fixture{root: filepath.Join(dir, "root"), outside: filepath.Join(dir, "outside"), ww: filepath.Join(dir, "ww")}
	for _, d := range []string{fx.root, fx.root + "/sub", fx.root + "/my dir", fx.outside, fx.ww, dir + "/open", dir + "/open/r"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	for _, f := range []string{fx.root + "/file", fx.root + "/sub/f", fx.outside + "/secret"} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	links := map[string]string{
		"out": fx.outside, "up": "../outside", "in": "sub", "absin": fx.root + "/sub",
		"dang": "missing", "loop": "loop", "deep": "sub/../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(fx.root, name)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, d := range []string{fx.ww, dir + "/open"} {
		if err := os.Chmod(d, 0o777); err != nil {
			tb.Fatal(err)
		}
	}
	real, err := filepath.EvalSymlinks(fx.root)
	if err != nil {
		tb.Fatal(err)
	}
	fx.real = real
	conf := strings.NewReplacer("ROOT", fx.root, "WW", fx.ww, "OPEN", dir+"/open/r").Replace(`
log /var/log/agent/sshval.log
rsync backups {
    from 10.0.0.0/8 2001:db8::/32
    root ROOT
    push yes
    pull yes
    delete no
    options --link-dest --partial-dir --files-from
}
rsync inbox {
    from 192.0.2.0/24
    root ROOT
    push yes
    delete yes
    munge-links yes
    confine-root no
}
rsync shared {
    from 198.51.100.0/24
    root WW
    push yes
}
rsync opened {
    from 203.0.113.0/24
    root OPEN
    pull yes
}
command uptime {
    from 10.0.0.0/8
    run /usr/bin/uptime
}
command dump {
    run /usr/bin/pg_dump --format=custom db-*
}
`)
	rules, err := ParseRules(strings.NewReader(conf), "test.conf")
	if err != nil {
		tb.Fatal(err)
	}
	fx.rules = rules
	return fx
}

// env is the environment of a connection from from, with sshval running
// as an ordinary account (uid 1000).
func env(cmd, from string) Env {
	return Env{Command: cmd, CommandSet: true, Connection: from + " 51234 10.0.0.1 22", EUID: 1000}
}

func TestDecide(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	R, C := fx.root, "--confine-root="+fx.real
	const push = "rsync --server -vlogDtpre.iLsfxCIvu "
	const pull = "rsync --server --sender -vlogDtpre.iLsfxCIvu "
	const cl = "-vlogDtpre.iLsfxCIvu"
	for _, tc := range []struct {
		name   string
		env    Env
		argv   []string // nil: refused
		reason string   // a refusal's Reason must contain this
		rule   string
	}{
		// rsync transfers
		{name: "push relative", env: env(push+". host1", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/host1"}, rule: "backups"},
		{name: "push with a space", env: env(push+`. my\ dir/`, "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/my dir/"}, rule: "backups"},
		{name: "push to the root", env: env(push+". .", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/."}, rule: "backups"},
		{name: "push without a path", env: env(push+".", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/."}, rule: "backups"},
		{name: "push new nested path", env: env(push+"--mkpath . new/deeper/x", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, "--mkpath", C, ".", R + "/new/deeper/x"}, rule: "backups"},
		{name: "pull absolute", env: env(pull+". "+R+"/sub/", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", cl, C, ".", R + "/sub/"}, rule: "backups"},
		{name: "pull the root itself", env: env(pull+". "+R, "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", cl, C, ".", R}, rule: "backups"},
		{name: "pull several", env: env(pull+". file sub/f", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", cl, C, ".", R + "/file", R + "/sub/f"}, rule: "backups"},
		{name: "pull relative mode", env: env("rsync --server --sender -logDtprRe.iLsfxCIvu . sub/f", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", "-logDtprRe.iLsfxCIvu", C, ".", R + "/./sub/f"}, rule: "backups"},
		{name: "symlink inside the root", env: env(pull+". in/f absin/f", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", cl, C, ".", R + "/in/f", R + "/absin/f"}, rule: "backups"},
		{name: "dangling symlink inside", env: env(push+". dang", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/dang"}, rule: "backups"},
		{name: "the rule's own program path", env: env("/usr/bin/rsync --server -vlogDtpre.iLsfxCIvu . x", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/x"}, rule: "backups"},
		{name: "another path ending in rsync", env: env("/tmp/evil/rsync --server -vlogDtpre.iLsfxCIvu . x", "10.1.2.3"),
			reason: `program "/tmp/evil/rsync" not allowed by rule backups: it takes rsync or /usr/bin/rsync`},
		{name: "a relative path ending in rsync", env: env("bin/rsync --server -vlogDtpre.iLsfxCIvu . x", "10.1.2.3"),
			reason: `program "bin/rsync" not allowed`},
		{name: "rsync-like name", env: env("rsync2 --server -vlogDtpre.iLsfxCIvu . x", "10.1.2.3"),
			reason: "no rule allows this command"},
		{name: "IPv6 source", env: env(push+". x", "2001:db8::7"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/x"}, rule: "backups"},
		{name: "IPv4-mapped source", env: env(push+". x", "::ffff:10.9.9.9"),
			argv: []string{"/usr/bin/rsync", "--server", cl, C, ".", R + "/x"}, rule: "backups"},
		{name: "value options", env: env("rsync --server -lHogDtpAXrze.iLsfxCIvu --bwlimit=100 --numeric-ids --timeout 30 -B1024 . x", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "-lHogDtpAXrze.iLsfxCIvu", "--bwlimit=100", "--numeric-ids", "--timeout=30", "-B1024", C, ".", R + "/x"}, rule: "backups"},
		{name: "link-dest inside, absolute", env: env(push+"--link-dest "+R+"/sub . x", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, "--link-dest=" + R + "/sub", C, ".", R + "/x"}, rule: "backups"},
		{name: "link-dest relative is root-relative", env: env(push+"--link-dest=sub . x", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", cl, "--link-dest=" + R + "/sub", C, ".", R + "/x"}, rule: "backups"},
		{name: "files-from stdin", env: env("rsync --server --sender -logDtpRe.LsfxCIvu --files-from=- --from0 . sub/", "10.1.2.3"),
			argv: []string{"/usr/bin/rsync", "--server", "--sender", "-logDtpRe.LsfxCIvu", "--files-from=-", "--from0", C, ".", R + "/./sub/"}, rule: "backups"},
		{name: "delete where allowed, munged, unconfined", env: env(push+"--delete . x", "192.0.2.9"),
			argv: []string{"/usr/bin/rsync", "--server", cl, "--delete", "--munge-links", ".", R + "/x"}, rule: "inbox"},

		{name: "delete refused", env: env(push+"--delete . x", "10.1.2.3"), reason: "--delete not allowed by rule backups: it removes existing files, and the rule says delete no"},
		{name: "delete-after refused", env: env(push+"--max-delete=5 --delete-after . x", "10.1.2.3"), reason: "--delete-after not allowed by rule backups"},
		{name: "remove-source-files refused", env: env(pull+"--remove-source-files . x", "10.1.2.3"), reason: "--remove-source-files not allowed by rule backups"},
		{name: "pull refused", env: env(pull+". x", "192.0.2.9"), reason: "pull (rsync --sender) not allowed by rule inbox"},
		{name: "push refused", env: env(push+". x", "203.0.113.5"), reason: "push not allowed by rule opened"},
		{name: "dot-dot", env: env(push+". ../x", "10.1.2.3"), reason: `path "../x" not allowed by rule backups: it has a .. component`},
		{name: "dot-dot inside", env: env(pull+". sub/../file", "10.1.2.3"), reason: ".. component"},
		{name: "absolute outside", env: env(pull+". /etc/passwd", "10.1.2.3"), reason: "outside root"},
		{name: "absolute prefix trick", env: env(pull+". "+R+"x/y", "10.1.2.3"), reason: "outside root"},
		{name: "symlink escape", env: env(pull+". out/secret", "10.1.2.3"), reason: "leads out of the root"},
		{name: "symlink escape itself", env: env(pull+". out", "10.1.2.3"), reason: "leads out of the root"},
		{name: "relative symlink escape", env: env(push+". up/new", "10.1.2.3"), reason: "leads out of the root"},
		{name: "symlink with dot-dot escape", env: env(pull+". deep/secret", "10.1.2.3"), reason: "leads out of the root"},
		{name: "symlink loop", env: env(pull+". loop/x", "10.1.2.3"), reason: "too many levels of symlinks"},
		{name: "empty path", env: env(pull+". ''", "10.1.2.3"), reason: "empty"},
		{name: "link-dest outside", env: env(push+"--link-dest /etc . x", "10.1.2.3"), reason: `--link-dest "/etc" not allowed by rule backups`},
		{name: "link-dest through symlink", env: env(push+"--link-dest=out . x", "10.1.2.3"), reason: "leads out of the root"},
		{name: "link-dest not listed", env: env(push+"--link-dest "+R+"/sub . x", "192.0.2.9"), reason: "--link-dest not allowed by rule inbox: not in its options"},
		{name: "partial-dir outside", env: env(push+"--partial-dir /tmp/p . x", "10.1.2.3"), reason: "outside root"},
		{name: "files-from outside", env: env(pull+"--files-from /etc/list . x", "10.1.2.3"), reason: "outside root"},
		{name: "files-from unconfined", env: env(pull+"--files-from=- . x", "192.0.2.9"), reason: "--files-from not allowed by rule inbox"},
		{name: "secluded args", env: env("rsync --server -slogDtpre.iLsfxCIvu", "10.1.2.3"), reason: "-s not allowed by rule backups"},
		{name: "protect-args", env: env("rsync --server --protect-args -logDtpre.iLsfxCIvu . x", "10.1.2.3"), reason: "--protect-args not allowed"},
		{name: "secluded-args long", env: env("rsync --server --secluded-args . x", "10.1.2.3"), reason: "--secluded-args not allowed"},
		{name: "copy-links", env: env(pull+"-L . x", "10.1.2.3"), reason: "-L not allowed"},
		{name: "keep-dirlinks in cluster", env: env("rsync --server -lKogDtpre.iLsfxCIvu . x", "10.1.2.3"), reason: "-K not allowed"},
		{name: "log-file", env: env(push+"--log-file=/tmp/x . x", "10.1.2.3"), reason: "--log-file not allowed"},
		{name: "client confine-root", env: env(push+"--confine-root=/ . x", "10.1.2.3"), reason: "--confine-root not allowed"},
		{name: "unknown long option", env: env(push+"--rsh=sh . x", "10.1.2.3"), reason: "--rsh not allowed"},
		{name: "unknown short option", env: env("rsync --server -vlogDtpwe.iLsfxCIvu . x", "10.1.2.3"), reason: "-w not allowed"},
		{name: "bad capability blob", env: env("rsync --server -vlogDtpre.i,x . x", "10.1.2.3"), reason: "bad capability"},
		{name: "flag with value", env: env(push+"--partial=x . x", "10.1.2.3"), reason: "takes no value"},
		{name: "suffix with slash", env: env(push+"--suffix=/x . x", "10.1.2.3"), reason: "--suffix with a /"},
		{name: "no --server", env: env("rsync -av . x", "10.1.2.3"), reason: "rsync without --server"},
		{name: "--server not first", env: env("rsync --sender --server . x", "10.1.2.3"), reason: "rsync without --server"},
		{name: "no dot", env: env("rsync --server -vlogDtpre.iLsfxCIvu", "10.1.2.3"), reason: `without the "." argument`},
		{name: "argument before dot", env: env("rsync --server x . y", "10.1.2.3"), reason: `argument "x"`},
		{name: "source not allowed", env: env(push+". x", "172.16.0.1"), reason: "source 172.16.0.1 not allowed by rule backups"},
		{name: "root writable by others", env: env(push+". x", "198.51.100.1"), reason: "writable by group or others"},
		{name: "root parent writable by others", env: env(pull+". x", "203.0.113.5"), reason: "writable by group or others"},

		// command rules
		{name: "uptime", env: env("uptime", "10.1.2.3"), argv: []string{"/usr/bin/uptime"}, rule: "uptime"},
		{name: "uptime by path", env: env("/usr/bin/uptime", "10.1.2.3"), argv: []string{"/usr/bin/uptime"}, rule: "uptime"},
		{name: "uptime with arguments", env: env("uptime -p", "10.1.2.3"), reason: "not allowed by rule uptime"},
		{name: "uptime from elsewhere", env: env("uptime", "192.0.2.9"), reason: "source 192.0.2.9 not allowed by rule uptime"},
		{name: "uptime by another path", env: env("/tmp/uptime", "10.1.2.3"), reason: "no rule allows"},
		{name: "dump pattern", env: env("pg_dump --format=custom db-sales", "192.0.2.9"),
			argv: []string{"/usr/bin/pg_dump", "--format=custom", "db-sales"}, rule: "dump"},
		{name: "dump wrong literal", env: env("pg_dump --format=plain db-sales", "192.0.2.9"), reason: `argument 1 "--format=plain" not allowed by rule dump`},
		{name: "dump no match", env: env("pg_dump --format=custom sales", "192.0.2.9"), reason: "does not match"},
		{name: "dump too many", env: env("pg_dump --format=custom db-a db-b", "192.0.2.9"), reason: "3 arguments not allowed by rule dump"},
		{name: "unknown command", env: env("rm -rf /x", "10.1.2.3"), reason: "no rule allows this command"},

		// refused before any rule
		{name: "shell operator", env: env(push+". x; touch /tmp/pwned", "10.1.2.3"), reason: "unsafe command"},
		{name: "and-and", env: env(push+". x && touch /tmp/pwned", "10.1.2.3"), reason: "unsafe command"},
		{name: "pipe", env: env(push+". x | sh", "10.1.2.3"), reason: "unsafe command"},
		{name: "command substitution", env: env(push+". $(touch /tmp/pwned)", "10.1.2.3"), reason: "unsafe command"},
		{name: "backticks", env: env(push+". `touch /tmp/pwned`", "10.1.2.3"), reason: "unsafe command"},
		{name: "newline", env: env(push+". x\ntouch /tmp/pwned", "10.1.2.3"), reason: "unsafe command"},
		{name: "internal-sftp", env: env("internal-sftp", "10.1.2.3"), reason: "sftp is never allowed"},
		{name: "sftp-server", env: env("/usr/lib/openssh/sftp-server", "10.1.2.3"), reason: "sftp is never allowed"},
		{name: "no SSH_CONNECTION nor SSH_CLIENT", env: Env{Command: "uptime", CommandSet: true}, reason: "SSH_CONNECTION and SSH_CLIENT are missing"},
		{name: "malformed SSH_CONNECTION", env: Env{Command: "uptime", CommandSet: true, Connection: "10.1.2.3"}, reason: `SSH_CONNECTION malformed: "10.1.2.3" has 1 fields, want 4`},
		{name: "bad address in SSH_CONNECTION", env: Env{Command: "uptime", CommandSet: true, Connection: "10.1.2 1 2 3"}, reason: `SSH_CONNECTION malformed: "10.1.2" is not an IP address`},
		{name: "SSH_CLIENT only", env: Env{Command: "uptime", CommandSet: true, Client: "10.1.2.3 51234 22"},
			argv: []string{"/usr/bin/uptime"}, rule: "uptime"},
		{name: "SSH_CLIENT only, outside the rule's from", env: Env{Command: "uptime", CommandSet: true, Client: "192.0.2.9 51234 22"},
			reason: "source 192.0.2.9 not allowed by rule uptime"},
		{name: "SSH_CONNECTION wins over SSH_CLIENT", env: Env{Command: "uptime", CommandSet: true, Connection: "192.0.2.9 1 10.0.0.1 22", Client: "10.1.2.3 1 22"},
			reason: "source 192.0.2.9 not allowed by rule uptime"},
		{name: "malformed SSH_CLIENT", env: Env{Command: "uptime", CommandSet: true, Client: "10.1.2.3 51234 10.0.0.1 22"}, reason: "SSH_CLIENT malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.env, fx.rules)
			if d.Command != tc.env.Command {
				t.Errorf("Command = %q, want %q", d.Command, tc.env.Command)
			}
			if tc.argv == nil {
				if d.Allow || d.Rule != nil || d.Argv != nil {
					t.Fatalf("Decide allowed %q: %q by %v", tc.env.Command, d.Argv, d.Rule)
				}
				if !strings.Contains(d.Reason, tc.reason) {
					t.Errorf("Reason = %q, want it to contain %q", d.Reason, tc.reason)
				}
				return
			}
			if !d.Allow {
				t.Fatalf("Decide refused %q: %s", tc.env.Command, d.Reason)
			}
			if d.Rule == nil || d.Rule.Name != tc.rule {
				t.Errorf("Rule = %v, want %s", d.Rule, tc.rule)
			}
			if !slices.Equal(d.Argv, tc.argv) {
				t.Errorf("Argv = %q\nwant %q", d.Argv, tc.argv)
			}
		})
	}
}

func TestDecideInteractive(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	for _, tc := range []struct {
		name string
		env  Env
	}{
		{"unset", Env{Connection: "10.1.2.3 1 10.0.0.1 22"}},
		{"empty", Env{CommandSet: true, Connection: "10.1.2.3 1 10.0.0.1 22"}},
		{"blank", env("   ", "10.1.2.3")},
		{"unset without SSH_CONNECTION", Env{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.env, fx.rules)
			if d.Allow || !d.Interactive {
				t.Errorf("Decide(%+v) = allow %v interactive %v, want a refused interactive shell", tc.env, d.Allow, d.Interactive)
			}
		})
	}
	d := Decide(env("", "10.1.2.3"), fx.rules)
	if d.From.String() != "10.1.2.3" {
		t.Errorf("From = %v, want 10.1.2.3", d.From)
	}
	if d := Decide(env("uptime", "10.1.2.3"), nil); d.Allow {
		t.Errorf("Decide with nil rules allowed %q", d.Argv)
	}
}

// TestRealClientCommands decides every command a real rsync client sent
// (testdata/commands.txt) under an rsync rule that allows push, pull and
// delete, and checks which are refused and that the accepted ones keep
// every option.
func TestRealClientCommands(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	rules, err := ParseRules(strings.NewReader("rsync all {\n root "+fx.root+"\n push yes\n pull yes\n delete yes\n options --link-dest --partial-dir --backup-dir --temp-dir --compare-dest --copy-dest --files-from\n}\n"), "all.conf")
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		"rsync --server -slogDtpre.iLsfxCIvu":                                          "-s not allowed",
		"rsync --server --sender -logDtpre.iLsfxCIvu . ~/t \\#h \\{b\\} \\$v q\\'\\\"": "unsafe command",
		"rsync --server -logDtpre.iLsfxCIvu --link-dest /x/y . dst":                    "outside root",
		"rsync --server --sender -logDtpRe.LsfxCIvu --files-from /tmp/l . src/":        "outside root",
		"rsync --server -blogDtpre.iLsfxCIvu --backup-dir /bk --suffix=.x . dst":       "outside root",
		"rsync --server -logDtpre.iLsfxCIvu --partial-dir .p --temp-dir /t . dst":      "outside root",
		"rsync --server -logDtpre.iLsfxCIvu --compare-dest ../c . dst":                 ".. component",
		"rsync --server -logDtpre.iLsfxCIvu --log-file=/tmp/x . dst":                   "--log-file not allowed",
		"rsync --server -lKogDtpre.iLsfxCIvu --safe-links . dst":                       "-K not allowed",
		"rsync --server --sender -logDtpre.iLsfxCIvu --inplace --copy-devices . src":   "--copy-devices not allowed by rule all: it gives access to device contents; it needs devices yes",
		"/bin/rsync --server -logDtpre.iLsfxCIvu . dst":                                `program "/bin/rsync" not allowed`,
		"rsync --server -logDtpre.iLsfxCIvu --inplace --write-devices . dst":           "--write-devices not allowed by rule all: it gives access to device contents",
		"rsync --server --sender -logDtpre.iLsfxCIvu . a\\\tb n\\":                     "unsafe command",
	}
	for _, cmd := range readCommands(t) {
		t.Run(cmd, func(t *testing.T) {
			d := Decide(env(cmd, "10.1.2.3"), rules)
			if want, ok := refused[cmd]; ok {
				if d.Allow || !strings.Contains(d.Reason, want) {
					t.Errorf("Decide = allow %v, %q; want refused with %q", d.Allow, d.Reason, want)
				}
				return
			}
			if !d.Allow {
				t.Fatalf("Decide refused: %s", d.Reason)
			}
			words, _ := Tokenize(cmd)
			dot := slices.Index(words, ".")
			for _, w := range words[2:dot] {
				if strings.HasPrefix(w, "--") && !strings.Contains(w, "=") && !slices.Contains(d.Argv, w) &&
					!slices.ContainsFunc(d.Argv, func(a string) bool { return strings.HasPrefix(a, w+"=") }) {
					t.Errorf("option %s lost: argv %q", w, d.Argv)
				}
			}
		})
	}
}

// pathOptions are the argv prefixes of path-valued options Decide emits.
var pathOptions = []string{"--link-dest=", "--copy-dest=", "--compare-dest=", "--backup-dir=",
	"--partial-dir=", "--temp-dir=", "--files-from=", "--exclude-from=", "--include-from="}

// inside reports whether the absolute path p, resolved by the kernel's
// rules (filepath.EvalSymlinks on its longest existing prefix), lies in
// realRoot.
func inside(p, realRoot string) bool {
	for q := filepath.Clean(p); ; q = filepath.Dir(q) {
		if r, err := filepath.EvalSymlinks(q); err == nil {
			return r == realRoot || strings.HasPrefix(r, realRoot+"/")
		}
		if q == "/" || q == "." {
			return false
		}
	}
}

// FuzzDecide: whatever Decide allows under an rsync rule names only paths
// that lie inside the rule's root once every symlink is resolved, checked
// independently with filepath.EvalSymlinks on the real fixture tree; and an
// allowed command always runs the rule's own program.
func FuzzDecide(f *testing.F) {
	fx := newFixture(f, f.TempDir())
	for _, c := range readCommands(f) {
		f.Add(c, "10.1.2.3")
	}
	for _, c := range []string{"out/secret", "up/x", "deep/secret", "in/f", "absin/f", "dang", "loop/x", fx.root + "/sub", fx.outside} {
		f.Add("rsync --server --sender -vlogDtpre.iLsfxCIvu . "+c, "10.1.2.3")
		f.Add("rsync --server -vlogDtpre.iLsfxCIvu --link-dest "+c+" . x", "10.1.2.3")
	}
	f.Add("rsync --server -vlogDtpre.iLsfxCIvu --delete . x", "192.0.2.1")
	f.Add("pg_dump --format=custom db-x", "::1")
	f.Fuzz(func(t *testing.T, cmd, from string) {
		d := Decide(Env{Command: cmd, CommandSet: true, Connection: from + " 1 2 3"}, fx.rules)
		if !d.Allow {
			if d.Argv != nil || d.Rule != nil || d.Reason == "" {
				t.Fatalf("refusal with argv %q rule %v reason %q", d.Argv, d.Rule, d.Reason)
			}
			return
		}
		if d.Rule == nil || len(d.Argv) == 0 || d.Argv[0] != d.Rule.Program {
			t.Fatalf("allowed %q runs %q, not the rule's program", cmd, d.Argv)
		}
		if d.Rule.Kind != KindRsync {
			return
		}
		real, err := filepath.EvalSymlinks(d.Rule.Root)
		if err != nil {
			t.Fatal(err)
		}
		dot := slices.Index(d.Argv, ".")
		if dot < 0 {
			t.Fatalf("allowed %q: argv %q has no '.'", cmd, d.Argv)
		}
		check := func(p string) {
			if !filepath.IsAbs(p) || hasDotDot(p) || !inside(p, real) {
				t.Fatalf("allowed %q (argv %q): %q lies outside %s", cmd, d.Argv, p, real)
			}
		}
		for _, p := range d.Argv[dot+1:] {
			check(p)
		}
		for _, a := range d.Argv[1:dot] {
			for _, o := range pathOptions {
				if v, ok := strings.CutPrefix(a, o); ok && v != "-" {
					check(v)
				}
			}
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	fx := newFixture(b, b.TempDir())
	e := env("rsync --server -vlogDtpre.iLsfxCIvu --link-dest "+fx.root+"/sub . in/new\\ dir/", "10.1.2.3")
	if d := Decide(e, fx.rules); !d.Allow {
		b.Fatalf("Decide refused: %s", d.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(e, fx.rules)
	}
}
