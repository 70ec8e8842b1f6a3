package sshval

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// policyRules are rules over fx's root for the device, owner, delete and
// overwrite checks, one source prefix each.
const policyRules = `
rsync plain {
    from 10.0.0.0/8
    root ROOT
    push yes
    pull yes
    delete no
}
rsync devs {
    from 192.0.2.0/24
    root ROOT
    push yes
    devices yes
}
rsync owners {
    from 198.51.100.0/24
    root ROOT
    push yes
    owners yes
}
rsync fake {
    from 203.0.113.0/24
    root ROOT
    push yes
    options --fake-super
}
rsync dropped {
    from 172.16.0.0/12
    root ROOT
    push yes
    run_as 65534:65534
}
rsync asroot {
    from 100.64.0.0/10
    root ROOT
    push yes
    run_as 0
}
rsync del {
    from 2001:db8::/32
    root ROOT
    push yes
    delete yes
}
rsync append {
    from 192.168.0.0/16
    root ROOT
    push yes
    pull yes
    overwrite no
}
`

func policyFixture(t testing.TB) (*fixture, *Rules) {
	t.Helper()
	fx := newFixture(t, t.TempDir())
	rules, err := ParseRules(strings.NewReader(strings.ReplaceAll(policyRules, "ROOT", fx.root)), "policy.conf")
	if err != nil {
		t.Fatal(err)
	}
	return fx, rules
}

// TestDecidePolicy decides rsync commands against the device, owner,
// delete and overwrite settings (issue 14), as root (EUID 0) and as an
// ordinary account.
func TestDecidePolicy(t *testing.T) {
	fx, rules := policyFixture(t)
	C := "--confine-root=" + fx.real
	const push, pull = "rsync --server ", "rsync --server --sender "
	root := func(cmd, from string) Env { e := env(cmd, from); e.EUID = 0; return e }
	for _, tc := range []struct {
		name   string
		env    Env
		reason string   // a refusal's Reason contains it; "" means allowed
		has    []string // words the allowed argv contains, in order
		hasnt  []string // words it must not contain
	}{
		// devices, as root
		{name: "-D in a real client's cluster", env: root(push+"-logDtpre.iLsfxCIvu . x", "10.1.2.3"),
			reason: "-D not allowed by rule plain: run as root it creates device nodes, FIFOs and sockets"},
		{name: "-D alone", env: root(push+"-Dtre.iLsfxCIvu --no-specials . x", "10.1.2.3"), reason: "-D not allowed"},
		{name: "-D after -B", env: root(push+"-rD -B1024 . x", "10.1.2.3"), reason: "-D not allowed"},
		{name: "D in the capability blob is no option", env: root(push+"-rtpe.iLsfxCIvuD . x", "10.1.2.3"),
			has: []string{"-rtpe.iLsfxCIvuD", stripSetID, C}},
		{name: "--devices", env: root(push+"-rt --devices . x", "10.1.2.3"), reason: "--devices not allowed"},
		{name: "--specials", env: root(push+"-tre.iLsfxCIvu --specials . x", "10.1.2.3"), reason: "--specials not allowed"},
		{name: "--write-devices", env: root(push+"-rt --inplace --write-devices . x", "10.1.2.3"), reason: "--write-devices not allowed by rule plain: it gives access to device contents"},
		{name: "--copy-devices on a pull", env: root(pull+"-rt --copy-devices . x", "10.1.2.3"), reason: "--copy-devices not allowed"},
		{name: "--copy-devices without root", env: env(pull+"-rt --copy-devices . x", "10.1.2.3"), reason: "--copy-devices not allowed"},
		{name: "devices yes", env: root(push+"-rlDtpe.iLsfxCIvu . x", "192.0.2.1"), has: []string{"-rlDtpe.iLsfxCIvu", stripSetID}},
		{name: "devices yes, --write-devices", env: root(push+"-rt --inplace --write-devices . x", "192.0.2.1"), has: []string{"--write-devices"}},
		{name: "devices yes is not owners yes", env: root(push+"-logDtpre.iLsfxCIvu . x", "192.0.2.1"), reason: "-o not allowed by rule devs"},

		// owners, as root
		{name: "-rlpt: s bits stripped", env: root(push+"-ltpre.iLsfxCIvu . x", "10.1.2.3"),
			has: []string{"-ltpre.iLsfxCIvu", stripSetID, C, "."}},
		{name: "-o", env: root(push+"-logtpre.iLsfxCIvu . x", "10.1.2.3"), reason: "-o not allowed by rule plain: run as root it lets the client choose each file's user"},
		{name: "-g", env: root(push+"-gtpre.iLsfxCIvu . x", "10.1.2.3"), reason: "-g not allowed by rule plain: run as root it lets the client choose each file's group"},
		{name: "--owner", env: root(push+"-rt --owner . x", "10.1.2.3"), reason: "--owner not allowed"},
		{name: "--super", env: root(push+"-rt --super . x", "10.1.2.3"), reason: "--super not allowed by rule plain"},
		{name: "--fake-super not listed", env: root(push+"-rt --fake-super . x", "10.1.2.3"), reason: "--fake-super not allowed by rule plain"},
		{name: "--chmod u+s", env: root(push+"-rtp --chmod=u+s . x", "10.1.2.3"), reason: `--chmod "u+s" not allowed by rule plain: it adds set-uid or set-gid bits`},
		{name: "--chmod o+s is set-uid in rsync", env: root(push+"-rtp --chmod=Fo-w,o+s . x", "10.1.2.3"), reason: "adds set-uid"},
		{name: "--chmod Dg+s", env: root(push+"-rtp --chmod=Dg+s . x", "10.1.2.3"), reason: "adds set-uid"},
		{name: "--chmod a=rwxs", env: root(push+"-rtp --chmod=a=rwxs . x", "10.1.2.3"), reason: "adds set-uid"},
		{name: "--chmod octal", env: root(push+"-rtp --chmod F4755 . x", "10.1.2.3"), reason: `--chmod "F4755" not allowed`},
		{name: "--chmod second of two", env: root(push+"-rtp --chmod=go-w --chmod=2755 . x", "10.1.2.3"), reason: `--chmod "2755"`},
		{name: "--chmod malformed", env: root(push+"-rtp --chmod=u+q . x", "10.1.2.3"), reason: "is not a chmod mode"},
		{name: "--chmod harmless", env: root(push+"-rtp --chmod=Dg-s,Fgo-w,u=rwX,+t,g=u,0644 . x", "10.1.2.3"),
			has: []string{"--chmod=Dg-s,Fgo-w,u=rwX,+t,g=u,0644", stripSetID}},
		{name: "--usermap to root", env: root(push+`-rt --usermap=\*:root . x`, "10.1.2.3"), reason: `--usermap "*:root" not allowed by rule plain: it maps to user root`},
		{name: "--usermap to uid 0", env: root(push+"-rt --usermap=1000-1999:0 . x", "10.1.2.3"), reason: "maps to user 0"},
		{name: "--usermap to 00", env: root(push+"-rt --usermap=*:00 . x", "10.1.2.3"), reason: "maps to user 00"},
		{name: "--usermap to an unknown name", env: root(push+"-rt --usermap=*:no-such-user-x14 . x", "10.1.2.3"), reason: "unknown on this host"},
		{name: "--usermap malformed", env: root(push+"-rt --usermap=65534 . x", "10.1.2.3"), reason: "is not FROM:TO"},
		{name: "--groupmap to wheel", env: root(push+`-rt --groupmap=\*:wheel . x`, "10.1.2.3"), reason: "maps to group wheel"},
		{name: "--chown as a real client sends it", env: root(push+`-logDtpre.iLsfxCIvu --usermap=\*:root --groupmap=\*:wheel . x`, "10.1.2.3"), reason: "not allowed by rule plain"},
		{name: "--chown is not a server option", env: root(push+"-rt --chown=65534 . x", "10.1.2.3"), reason: "--chown not allowed"},
		{name: "--chown as a real client sends it", env: root(push+`-rtp --usermap=\*:65534 --groupmap=\*:65534 . x`, "10.1.2.3"),
			has: []string{"--usermap=*:65534", "--groupmap=*:65534", stripSetID}},
		{name: "--chown user only, -g left", env: root(push+`-grtp --usermap=\*:65534 . x`, "10.1.2.3"), reason: "-g not allowed"},
		{name: "--groupmap only implies -g", env: root(push+"-rtp --groupmap=1:2 . x", "10.1.2.3"), reason: "--groupmap not allowed by rule plain: run as root it lets the client choose each file's group"},
		{name: "owners yes", env: root(push+`-logtpre.iLsfxCIvu --super --chmod=u+s --usermap=\*:root . x`, "198.51.100.1"),
			has: []string{"--super", "--chmod=u+s", "--usermap=*:root"}, hasnt: []string{stripSetID}},
		{name: "owners yes is not devices yes", env: root(push+"-logDtpre.iLsfxCIvu . x", "198.51.100.1"), reason: "-D not allowed by rule owners"},
		{name: "fake-super listed", env: root(push+"-logDtpre.iLsfxCIvu --fake-super . x", "203.0.113.1"),
			has: []string{"-logDtpre.iLsfxCIvu", "--fake-super"}, hasnt: []string{stripSetID}},
		{name: "fake-super then super", env: root(push+"-logtpre.iLsfxCIvu --fake-super --super . x", "203.0.113.1"), reason: "--super not allowed"},
		{name: "listed fake-super not sent", env: root(push+"-logtpre.iLsfxCIvu . x", "203.0.113.1"), reason: "-o not allowed by rule fake"},

		// who runs the program
		{name: "run_as another account", env: root(push+`-logDtpre.iLsfxCIvu --usermap=\*:root . x`, "172.16.0.1"),
			has: []string{"-logDtpre.iLsfxCIvu"}, hasnt: []string{stripSetID}},
		{name: "run_as 0 from an ordinary account", env: env(push+"-logDtpre.iLsfxCIvu . x", "100.64.0.1"), reason: "-D not allowed by rule asroot"},
		{name: "ordinary account", env: env(push+`-logDtpre.iLsfxCIvu --devices --super --chmod=u+s --usermap=\*:root . x`, "10.1.2.3"),
			has: []string{"-logDtpre.iLsfxCIvu", "--super"}, hasnt: []string{stripSetID}},
		{name: "pull as root keeps -D -o -g", env: root(pull+"-logDtpre.iLsfxCIvu . x", "10.1.2.3"),
			has: []string{"-logDtpre.iLsfxCIvu"}, hasnt: []string{stripSetID, "--ignore-existing"}},
		{name: "root refusals come before the filesystem", env: root(push+"-logDtpre.iLsfxCIvu . out/x", "10.1.2.3"), reason: "-D not allowed"},

		// delete no
		{name: "--force under delete no", env: env(push+"-logDtpre.iLsfxCIvu --force . x", "10.1.2.3"),
			reason: "--force not allowed by rule plain: it removes existing files, and the rule says delete no"},
		{name: "--force under delete yes", env: env(push+"-logDtpre.iLsfxCIvu --delete --force . x", "2001:db8::1"), has: []string{"--delete", "--force"}},
		{name: "-b with an empty suffix", env: env(push+"-blogDtpre.iLsfxCIvu --suffix= . x", "10.1.2.3"), reason: "--suffix with an empty value not allowed"},
		{name: "-b with a suffix", env: env(push+"-blogDtpre.iLsfxCIvu --suffix=.old . x", "10.1.2.3"), has: []string{"--suffix=.old"}},
		{name: "suffix with a slash", env: env(push+"-blogDtpre.iLsfxCIvu --suffix=x/y . x", "2001:db8::1"), reason: "--suffix with a /"},

		// overwrite no
		{name: "overwrite no adds --ignore-existing", env: env(push+"-logDtpre.iLsfxCIvu . x", "192.168.1.1"),
			has: []string{"-logDtpre.iLsfxCIvu", "--ignore-existing", C, "."}},
		{name: "overwrite no as root", env: root(push+"-ltpre.iLsfxCIvu . x", "192.168.1.1"), has: []string{"--ignore-existing", stripSetID}},
		{name: "overwrite no, --inplace", env: env(push+"-logDtpre.iLsfxCIvu --inplace . x", "192.168.1.1"),
			reason: "--inplace not allowed by rule append: it changes existing files, and the rule says overwrite no"},
		{name: "overwrite no, --append-verify", env: env(push+"-logDtpre.iLsfxCIvu --append --append . x", "192.168.1.1"), reason: "--append not allowed"},
		{name: "overwrite no, pull", env: env(pull+"-logDtpre.iLsfxCIvu --inplace . x", "192.168.1.1"), hasnt: []string{"--ignore-existing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.env, rules)
			if tc.reason != "" {
				if d.Allow {
					t.Fatalf("allowed %q: %q", tc.env.Command, d.Argv)
				}
				if !strings.Contains(d.Reason, tc.reason) {
					t.Errorf("Reason = %q\nwant it to contain %q", d.Reason, tc.reason)
				}
				return
			}
			if !d.Allow {
				t.Fatalf("refused %q: %s", tc.env.Command, d.Reason)
			}
			at := 0
			for _, w := range tc.has {
				i := slices.Index(d.Argv[at:], w)
				if i < 0 {
					t.Fatalf("argv %q lacks %q (in order %q)", d.Argv, w, tc.has)
				}
				at += i + 1
			}
			for _, w := range tc.hasnt {
				if slices.Contains(d.Argv, w) {
					t.Errorf("argv %q has %q", d.Argv, w)
				}
			}
		})
	}
}

func TestChmodAddsSetID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		adds bool
		bad  bool
	}{
		{in: "u+s", adds: true}, {in: "g+s", adds: true}, {in: "o+s", adds: true}, {in: "+s", adds: true},
		{in: "a=rwxs", adds: true}, {in: "ug=s", adds: true}, {in: "Du+s", adds: true}, {in: "F+rs", adds: true},
		{in: "4755", adds: true}, {in: "F2755", adds: true}, {in: "D6000", adds: true}, {in: "go-w,u+s", adds: true},
		{in: "u-s"}, {in: "ug-s"}, {in: "+t"}, {in: "1777"}, {in: "0755"}, {in: "F644"}, {in: "u=rwX,go=rX"},
		{in: "g=u"}, {in: "u="}, {in: "Dg-s,Fgo-w"}, {in: "a+X"},
		{in: "", bad: true}, {in: "u+q", bad: true}, {in: "u+s,", bad: true}, {in: ",u+s", bad: true},
		{in: "8", bad: true}, {in: "17777", bad: true}, {in: "u644", bad: true}, {in: "DF+r", bad: true},
		{in: "u+-r", bad: true}, {in: "u=gw", bad: true}, {in: "u=go", bad: true}, {in: "ug", bad: true},
		{in: "D", bad: true}, {in: "u+s\x00", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			adds, err := chmodAddsSetID(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("chmodAddsSetID(%q) error %v, want error %v", tc.in, err, tc.bad)
			}
			if adds != tc.adds {
				t.Errorf("chmodAddsSetID(%q) = %v, want %v", tc.in, adds, tc.adds)
			}
		})
	}
}

func TestCheckIDMap(t *testing.T) {
	for _, tc := range []struct {
		in           string
		group, total bool
		bad          string
	}{
		{in: "*:65534", total: true},
		{in: "0:65534,1000-1999:65534"},
		{in: "us*:65534,**:65534", total: true},
		{in: "*:root", bad: "maps to user root"},
		{in: "*:0", bad: "maps to user 0"},
		{in: "1000:65534,*:0", bad: "maps to user 0"},
		{in: "*:wheel", group: true, bad: "maps to group wheel"},
		{in: "*:root", group: true, bad: "maps to group root"},
		{in: "*:0", group: true, bad: "maps to group 0"},
		{in: "*:wheel", total: true}, // a user named wheel is nothing special, if it exists
		{in: "*:no-such-user-x14", bad: "unknown on this host"},
		{in: "x", bad: "not FROM:TO"},
		{in: "*:", bad: "not FROM:TO"},
		{in: ":1", bad: "not FROM:TO"},
		{in: "*:1,", bad: "not FROM:TO"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if tc.in == "*:wheel" && !tc.group {
				t.Skip("depends on the host's accounts")
			}
			total, err := checkIDMap(tc.in, tc.group)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("checkIDMap(%q) = %v, %v; want an error with %q", tc.in, total, err, tc.bad)
				}
				return
			}
			if err != nil || total != tc.total {
				t.Errorf("checkIDMap(%q) = %v, %v; want %v", tc.in, total, err, tc.total)
			}
		})
	}
}

// TestUnchecked: a path component that cannot be checked gets a reason
// that says what happened, never a bare errno such as "invalid argument"
// (what a symlink swapped for a directory between Lstat and Readlink
// gives).
func TestUnchecked(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	root, err := os.OpenRoot(fx.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, escape := root.Lstat("out/secret") // out -> outside: os.Root refuses
	if escape == nil {
		t.Fatal("os.Root followed a symlink out of the root")
	}
	_, notLink := root.Readlink("sub") // EINVAL
	_, notDir := root.Lstat("file/x")  // ENOTDIR
	for _, tc := range []struct {
		name, op string
		err      error
		want     string
	}{
		{"symlink swapped for a directory", "readlink", notLink, "changed while it was checked (sub stopped being a symlink: a symlink or rename race)"},
		{"symlink removed", "readlink", &fs.PathError{Op: "readlinkat", Path: "sub", Err: syscall.ENOENT}, "changed while it was checked (symlink sub vanished"},
		{"directory swapped for a symlink out", "lstat", escape, "a directory on the way to sub became a symlink leading out: a symlink or rename race"},
		{"not a directory", "lstat", notDir, "cannot be checked: a component of sub is not a directory"},
		{"permission", "lstat", &fs.PathError{Op: "statat", Path: "sub", Err: syscall.EACCES}, "sshval's account may not look up sub"},
		{"loop", "lstat", syscall.ELOOP, "too many levels of symlinks"},
		{"other", "lstat", &fs.PathError{Op: "statat", Path: "sub", Err: syscall.EIO}, "cannot be checked: lstat of sub failed: input/output error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatalf("no error to explain")
			}
			got := unchecked("sub", tc.op, tc.err).Error()
			if !strings.Contains(got, tc.want) {
				t.Errorf("unchecked(%v) = %q\nwant it to contain %q", tc.err, got, tc.want)
			}
			for _, bare := range []string{"cannot be checked: invalid argument", "cannot be checked: path escapes"} {
				if strings.HasPrefix(got, bare) {
					t.Errorf("unchecked(%v) = %q: a bare error", tc.err, got)
				}
			}
		})
	}
}

// FuzzDecideRoot: whatever Decide allows as root under a rule without
// devices yes or owners yes is a pull, or a push with no option that
// creates devices or specials, sets owners, acts as root or adds s bits,
// and with stripSetID appended.
func FuzzDecideRoot(f *testing.F) {
	_, rules := policyFixture(f)
	for _, c := range readCommands(f) {
		f.Add(c)
	}
	for _, c := range []string{"-rtpe.iLsfxCIvuD", "-rD -B1024", "-ltpre.iLsfxCIvu --chmod=u=rwX,+t", "-ogrtp --usermap=0:1,*:2 --groupmap=*:3",
		"-rt --fake-super", "-rt --chmod=F4755", "-rt --usermap=*:00"} {
		f.Add("rsync --server " + c + " . x")
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		d := Decide(Env{Command: cmd, CommandSet: true, Connection: "10.1.2.3 1 2 3"}, rules)
		if !d.Allow || d.Rule.Name != "plain" || slices.Contains(d.Argv, "--sender") {
			return
		}
		dot := slices.Index(d.Argv, ".")
		if dot < 0 {
			t.Fatalf("allowed %q: argv %q has no '.'", cmd, d.Argv)
		}
		if !slices.Contains(d.Argv[:dot], stripSetID) {
			t.Fatalf("allowed root push %q: argv %q lacks %s", cmd, d.Argv, stripSetID)
		}
		for _, a := range d.Argv[2:dot] {
			name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			switch {
			case strings.HasPrefix(a, "--") && slices.Contains([]string{"devices", "specials", "super", "fake-super", "owner", "group", "copy-devices", "write-devices"}, name):
				t.Fatalf("allowed root push %q: argv %q has %s", cmd, d.Argv, a)
			case strings.HasPrefix(a, "--chmod=") && a != stripSetID:
				if adds, err := chmodAddsSetID(val); adds || err != nil {
					t.Fatalf("allowed root push %q: --chmod=%s (%v, %v)", cmd, val, adds, err)
				}
			case strings.HasPrefix(a, "--usermap=") || strings.HasPrefix(a, "--groupmap="):
				for _, e := range strings.Split(val, ",") {
					if _, to, _ := strings.Cut(e, ":"); to == "0" || to == "root" || to == "wheel" || strings.Trim(to, "0") == "" {
						t.Fatalf("allowed root push %q maps to %q", cmd, to)
					}
				}
			case !strings.HasPrefix(a, "--") && strings.HasPrefix(a, "-"):
				letters := a[1:]
				if i := strings.IndexAny(letters, "eB@"); i >= 0 {
					letters = letters[:i]
				}
				if strings.ContainsAny(letters, "Dog") && !hasTotalMaps(d.Argv, letters) {
					t.Fatalf("allowed root push %q: cluster %s", cmd, a)
				}
			}
		}
	})
}

// hasTotalMaps reports whether argv maps every owner (for o) and every
// group (for g) named in letters, and letters has no D.
func hasTotalMaps(argv []string, letters string) bool {
	if strings.Contains(letters, "D") {
		return false
	}
	total := func(prefix string) bool {
		for _, a := range argv {
			if v, ok := strings.CutPrefix(a, prefix); ok {
				for e := range strings.SplitSeq(v, ",") {
					if from, _, _ := strings.Cut(e, ":"); strings.Trim(from, "*") == "" {
						return true
					}
				}
			}
		}
		return false
	}
	if strings.Contains(letters, "o") && !total("--usermap=") {
		return false
	}
	if strings.Contains(letters, "g") && !total("--groupmap=") {
		return false
	}
	return true
}
