package sshval

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Env is what sshd tells a forced command about the connection.
type Env struct {
	Command    string // SSH_ORIGINAL_COMMAND
	CommandSet bool   // SSH_ORIGINAL_COMMAND is present in the environment
	Connection string // SSH_CONNECTION: "client_ip client_port server_ip server_port"
	Client     string // SSH_CLIENT: "client_ip client_port server_port", read when Connection is empty
	User       string // the login user, for the log only
	// EUID is sshval's effective uid: the account a rule without run_as
	// runs its program as. Its zero value is root, so a caller that does
	// not fill it in gets the strict checks for root (see policy).
	EUID int
}

// Decision is the outcome of Decide.
type Decision struct {
	Allow bool
	Rule  *Rule // the rule that allowed the command; nil when refused
	// Argv is what to execute when Allow: the rule's absolute program first,
	// then the checked arguments, with no shell in between.
	Argv []string
	// Reason says why the command was refused (the most specific reason
	// over all rules tried), or which rule allowed it.
	Reason      string
	From        netip.Addr // the client address, invalid if SSH_CONNECTION and SSH_CLIENT were unusable
	Command     string     // the command as received, for the log
	Interactive bool       // no command: the client asked for a shell
}

// Decide decides whether the connection described by env may run its
// command under rules, and if so what exactly to execute. It is pure except
// for read-only filesystem checks of rsync paths (Lstat and Readlink below
// each rule's root, through an os.Root) and of the root's own permissions.
// It never panics and never allows anything on an error: a missing or
// malformed client address (see ClientAddr), an empty command (an interactive login), an
// sftp request, a command Tokenize refuses, and a command no rule allows
// are all refused with a Reason.
//
// Rules are tried in order and the first that allows wins. A refused
// command's Reason is the most specific one any rule gave: a rule whose
// program matched and whose source limit passed (e.g. "--delete not allowed
// by rule backups") beats one whose source limit failed, which beats one
// whose program did not match.
func Decide(env Env, rules *Rules) Decision {
	d := Decision{Command: env.Command}
	from, err := ClientAddr(env)
	if err != nil {
		d.Reason = err.Error()
		d.Interactive = strings.TrimSpace(env.Command) == ""
		return d
	}
	d.From = from
	if strings.TrimSpace(env.Command) == "" {
		d.Interactive = true
		d.Reason = "interactive shell (no command)"
		return d
	}
	argv, err := Tokenize(env.Command)
	if err != nil {
		d.Reason = "unsafe command: " + err.Error()
		return d
	}
	if len(argv) == 0 {
		d.Interactive = true
		d.Reason = "interactive shell (no command)"
		return d
	}
	if isSFTP(argv[0]) {
		d.Reason = "sftp is never allowed (sftp-server cannot be confined; use rsync)"
		return d
	}
	if rules == nil {
		d.Reason = "no rules"
		return d
	}
	best, bestRank := "no rule allows this command", 0
	for i := range rules.Rules {
		r := &rules.Rules[i]
		out, reason, rank := try(r, argv, from, env.EUID)
		if out != nil {
			d.Allow, d.Rule, d.Argv = true, r, out
			d.Reason = "allowed by rule " + r.Name
			return d
		}
		if rank > bestRank {
			best, bestRank = reason, rank
		}
	}
	d.Reason = best
	return d
}

// How specific a rule's refusal is; Decide reports the highest.
// A rule for another program gives no reason at all (rank 0).
const (
	rankProgram = 1 // an rsync by a path that is not the rule's program
	rankSource  = 2 // the right program, from an address the rule does not allow
	rankDetail  = 3 // the right program and source, refused arguments
)

// try checks argv against one rule. It returns the argv to execute, or
// a reason and its rank. An rsync rule takes the program name "rsync" or
// exactly the rule's program path: any other path, even one ending in
// /rsync, would show a binary in the log that is not the one that runs.
func try(r *Rule, argv []string, from netip.Addr, euid int) ([]string, string, int) {
	switch r.Kind {
	case KindRsync:
		if argv[0] != "rsync" && argv[0] != r.Program {
			if path.Base(argv[0]) != "rsync" {
				return nil, "", 0
			}
			return nil, fmt.Sprintf("program %q not allowed by rule %s: it takes rsync or %s", argv[0], r.Name, r.Program), rankProgram
		}
	case KindCommand:
		if argv[0] != r.Program && argv[0] != path.Base(r.Program) {
			return nil, "", 0
		}
	default:
		return nil, "", 0
	}
	if !sourceAllowed(r.From, from) {
		return nil, fmt.Sprintf("source %s not allowed by rule %s", from, r.Name), rankSource
	}
	var out []string
	var err error
	if r.Kind == KindRsync {
		out, err = checkRsync(r, argv, runsAsRoot(r, euid))
	} else {
		out, err = checkCommand(r, argv)
	}
	if err != nil {
		var ref refusal
		if errors.As(err, &ref) {
			reason := ref.what + " not allowed by rule " + r.Name
			if ref.why != "" {
				reason += ": " + ref.why
			}
			return nil, reason, rankDetail
		}
		return nil, fmt.Sprintf("rule %s: %v", r.Name, err), rankDetail
	}
	return out, "", 0
}

// refusal is why a rule refused a command: what is not allowed, and,
// where it helps, why.
type refusal struct{ what, why string }

func (r refusal) Error() string {
	if r.why == "" {
		return r.what + " not allowed"
	}
	return r.what + " not allowed: " + r.why
}

func refuse(what, why string, args ...any) error {
	return refusal{what: what, why: fmt.Sprintf(why, args...)}
}

// ClientAddr takes the client address from SSH_CONNECTION, as
// "10.1.2.3 51234 10.0.0.1 22", or, when that is empty, from SSH_CLIENT, as
// "10.1.2.3 51234 22" (what older sshds and some wrappers set). A
// malformed SSH_CONNECTION is an error even if SSH_CLIENT is set: sshd sets
// both, so a mismatch means something rewrote one. IPv4-mapped IPv6
// addresses are unmapped so that IPv4 prefixes match them.
func ClientAddr(env Env) (netip.Addr, error) {
	name, s, fields := "SSH_CONNECTION", env.Connection, 4
	if s == "" && env.Client != "" {
		name, s, fields = "SSH_CLIENT", env.Client, 3
	}
	if s == "" {
		return netip.Addr{}, errors.New("client address unknown: SSH_CONNECTION and SSH_CLIENT are missing (sshval runs only as an sshd forced command)")
	}
	f := strings.Fields(s)
	if len(f) != fields {
		return netip.Addr{}, fmt.Errorf("%s malformed: %q has %d fields, want %d", name, s, len(f), fields)
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s malformed: %q is not an IP address", name, f[0])
	}
	return a.Unmap(), nil
}

func sourceAllowed(prefixes []netip.Prefix, a netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	a = a.WithZone("")
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// isSFTP recognises what sshd puts in SSH_ORIGINAL_COMMAND for an sftp
// subsystem request under a forced command: "internal-sftp" or the
// configured sftp-server path.
func isSFTP(argv0 string) bool {
	return argv0 == "internal-sftp" || path.Base(argv0) == "sftp-server" || argv0 == "sftp"
}

// checkCommand matches a command rule: the same number of words, each equal
// to the rule's word or matching it as a path.Match pattern. A word matched
// by a pattern must not hold a ".." component, and may start with "-" only
// if the pattern does, so "*" never smuggles in an option or a parent path.
func checkCommand(r *Rule, argv []string) ([]string, error) {
	args := argv[1:]
	if len(args) != len(r.Args) {
		return nil, refuse(fmt.Sprintf("%d arguments", len(args)), "the rule has %d", len(r.Args))
	}
	for i, pat := range r.Args {
		a := args[i]
		if a == pat {
			continue
		}
		if !strings.ContainsAny(pat, "*?[") {
			return nil, refuse(fmt.Sprintf("argument %d %q", i+1, a), "want %q", pat)
		}
		ok, err := path.Match(pat, a)
		if err != nil || !ok {
			return nil, refuse(fmt.Sprintf("argument %d %q", i+1, a), "does not match %q", pat)
		}
		if hasDotDot(a) {
			return nil, refuse(fmt.Sprintf("argument %d %q", i+1, a), "a wildcard never matches a .. component")
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(pat, "-") {
			return nil, refuse(fmt.Sprintf("argument %d %q", i+1, a), "a wildcard matches an option only if the pattern starts with -")
		}
	}
	return append([]string{r.Program}, args...), nil
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// Kinds of rsync long options, as a client sends them to "rsync --server".
type optKind int

const (
	optFlag    optKind = iota + 1 // no argument, always allowed
	optValue                      // an argument that is not a path, always allowed
	optPath                       // a path argument: allowed only if listed, and confined
	optDelete                     // deletes files: allowed only with "delete yes"
	optRefused                    // never allowed (the map value's reason says why)
)

// rsyncLong is the long-option whitelist, in the manner of rrsync: the
// options a stock rsync client sends to a server (rsync 3.2 to 3.5). A
// client sends path options as two words ("--link-dest DIR") and value
// options as one ("--bwlimit=100"); both spellings are accepted for all.
var rsyncLong = map[string]optKind{
	"server": optFlag, "sender": optFlag,
	"append": optFlag, "delay-updates": optFlag, "dirs": optFlag, "existing": optFlag,
	"fake-super": optFlag, "force": optDelete, "from0": optFlag, "fsync": optFlag,
	"fuzzy": optFlag, "group": optFlag, "hard-links": optFlag, "ignore-errors": optFlag,
	"ignore-existing": optFlag, "ignore-missing-args": optFlag, "ignore-times": optFlag,
	"inplace": optFlag, "links": optFlag, "list-only": optFlag, "mkpath": optFlag,
	"msgs2stderr": optFlag, "no-msgs2stderr": optFlag, "munge-links": optFlag,
	"new-compress": optFlag, "old-compress": optFlag, "no-W": optFlag,
	"no-implied-dirs": optFlag, "no-r": optFlag, "no-relative": optFlag, "relative": optFlag,
	"no-specials": optFlag, "numeric-ids": optFlag, "one-file-system": optFlag,
	"open-noatime": optFlag, "owner": optFlag, "partial": optFlag, "perms": optFlag,
	"preallocate": optFlag, "recursive": optFlag, "safe-links": optFlag, "size-only": optFlag,
	"specials": optFlag, "devices": optFlag, "copy-devices": optFlag, "write-devices": optFlag, "stats": optFlag, "super": optFlag, "times": optFlag,
	"use-qsort": optFlag, "checksum": optFlag, "compress": optFlag, "backup": optFlag,

	"block-size": optValue, "bwlimit": optValue, "checksum-choice": optValue,
	"checksum-seed": optValue, "compress-choice": optValue, "compress-level": optValue,
	"compress-threads": optValue, "groupmap": optValue, "usermap": optValue,
	"iconv": optValue, "info": optValue, "log-format": optValue, "max-alloc": optValue,
	"max-delete": optValue, "max-size": optValue, "min-size": optValue,
	"modify-window": optValue, "skip-compress": optValue, "stderr": optValue,
	"suffix": optValue, "timeout": optValue, "chmod": optValue,

	"backup-dir": optPath, "compare-dest": optPath, "copy-dest": optPath,
	"link-dest": optPath, "partial-dir": optPath, "temp-dir": optPath,
	"files-from": optPath, "exclude-from": optPath, "include-from": optPath,

	"delete": optDelete, "del": optDelete, "delete-after": optDelete,
	"delete-before": optDelete, "delete-delay": optDelete, "delete-during": optDelete,
	"delete-excluded": optDelete, "delete-missing-args": optDelete,
	"remove-source-files": optDelete, "remove-sent-files": optDelete,
}

// rsyncRefused are long options never allowed, with the reason.
var rsyncRefused = map[string]string{
	"protect-args":      "hides the arguments from sshval",
	"secluded-args":     "hides the arguments from sshval",
	"copy-links":        "follows symlinks out of the root",
	"copy-dirlinks":     "follows symlinks out of the root",
	"keep-dirlinks":     "follows symlinks out of the root",
	"copy-unsafe-links": "follows symlinks out of the root",
	"no-munge-links":    "undoes munge-links",
	"insecure-links":    "turns off rsync's symlink checks",
	"confine-root":      "is sshval's to set",
	"log-file":          "writes a file the client names",
	"write-batch":       "writes a file the client names",
	"only-write-batch":  "writes a file the client names",
	"read-batch":        "reads a file the client names",
	"daemon":            "starts a daemon",
	"config":            "reads a file the client names",
	"debug":             "is not for servers",
}

// rsyncShort are the single letters allowed in the client's option
// cluster ("-vlogDtpr..."). Letters with a numeric argument (B, @) and the
// capability blob after "e" are handled apart.
const rsyncShort = "ACDEHIJNORSUWXbcdglmnopqrtuvxyz"

// rsyncShortRefused are letters never allowed, with the reason.
var rsyncShortRefused = map[byte]string{
	's': "it (--secluded-args) hides the arguments from sshval",
	'L': "it (--copy-links) follows symlinks out of the root",
	'k': "it (--copy-dirlinks) follows symlinks out of the root",
	'K': "it (--keep-dirlinks) follows symlinks out of the root",
}

// ruleSetting are options a rule allows by a setting, not by "options".
var ruleSetting = map[string]string{
	"super": "owners yes", "devices": "devices yes", "specials": "devices yes",
	"copy-devices": "devices yes", "write-devices": "devices yes",
}

// optionAllowedInRule checks a word of an "options" setting: a long option
// sshval knows and does not refuse outright; delete options belong to
// "delete yes" instead.
func optionAllowedInRule(o string) error {
	name, ok := strings.CutPrefix(o, "--")
	if !ok || strings.Contains(name, "=") {
		return fmt.Errorf("%q: list long options by name, as --link-dest", o)
	}
	if why, bad := rsyncRefused[name]; bad {
		return fmt.Errorf("%s is never allowed: it %s", o, why)
	}
	switch rsyncLong[name] {
	case 0:
		return fmt.Errorf("%s is not an rsync server option sshval knows", o)
	case optDelete:
		return fmt.Errorf("%s: allow deletion with \"delete yes\"", o)
	}
	if setting, ok := ruleSetting[name]; ok {
		return fmt.Errorf("%s: allow it with \"%s\"", o, setting)
	}
	return nil
}

// checkRsync checks an rsync server command against an rsync rule and
// builds the argv to execute: the rule's rsync, the client's options with
// path values confined and made absolute, the options policy adds (for a
// program that runs as root when privileged), sshval's own hardening options,
// ".", and the confined absolute transfer paths. The words are checked
// first, without touching the filesystem; then the root; then each path.
//
// Shape: rsync --server [--sender] OPTIONS... . PATH...
func checkRsync(r *Rule, argv []string, privileged bool) ([]string, error) {
	if len(argv) < 2 || argv[1] != "--server" {
		return nil, refuse("rsync without --server", "")
	}
	out := []string{r.Program, "--server"}
	type pathOpt struct {
		at        int // index in out
		name, val string
	}
	var pathOpts []pathOpt
	var opts sent
	sender, relative, munge, dot := false, false, false, -1
	for i := 2; i < len(argv); i++ {
		a := argv[i]
		if a == "." {
			dot = i
			break
		}
		switch {
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			if why, bad := rsyncRefused[name]; bad {
				return nil, refuse("--"+name, "it %s", why)
			}
			kind := rsyncLong[name]
			switch kind {
			case 0:
				return nil, refuse("--"+name, "")
			case optDelete:
				if !r.Delete {
					return nil, refuse("--"+name, "it removes existing files, and the rule says delete no")
				}
			case optPath:
				if !slices.Contains(r.Options, "--"+name) {
					return nil, refuse("--"+name, "not in its options")
				}
			}
			switch name {
			case "server":
				return nil, refuse("--server twice", "")
			case "sender":
				sender = true
			case "relative":
				relative = true
			case "no-relative":
				relative = false
			case "munge-links":
				munge = true
			}
			if kind != optValue && kind != optPath {
				if hasVal {
					return nil, refuse(a, "--%s takes no value", name)
				}
				opts.add(name, a)
				out = append(out, a)
				continue
			}
			if !hasVal {
				if i+1 >= len(argv) {
					return nil, refuse("--"+name+" without a value", "")
				}
				i++
				val = argv[i]
			}
			opts.addValue(name, val)
			switch {
			case kind == optValue && name == "suffix" && strings.Contains(val, "/"):
				return nil, refuse("--suffix with a /", "")
			case kind == optValue:
				out = append(out, "--"+name+"="+val)
			case name == "files-from" && r.NoConfineRoot:
				return nil, refuse("--files-from", "it needs confine-root yes")
			case name == "files-from" && val == "-":
				out = append(out, "--files-from=-") // the list comes over the connection
			default:
				pathOpts = append(pathOpts, pathOpt{len(out), name, val})
				out = append(out, "") // filled in once confined
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			letters, err := checkCluster(a)
			if err != nil {
				return nil, err
			}
			for _, c := range []byte(letters) {
				relative = relative || c == 'R'
				for _, name := range shortLong[c] {
					opts.add(name, "-"+string(c))
				}
			}
			out = append(out, a)
		default:
			return nil, refuse(fmt.Sprintf("argument %q before \".\"", a), "")
		}
	}
	if dot < 0 {
		return nil, refuse("rsync command without the \".\" argument", "")
	}
	if sender && !r.Pull {
		return nil, refuse("pull (rsync --sender)", "")
	}
	if !sender && !r.Push {
		return nil, refuse("push", "")
	}
	added, err := policy(r, &opts, sender, privileged)
	if err != nil {
		return nil, err
	}
	out = append(out, added...)

	if !path.IsAbs(r.Root) || path.Clean(r.Root) == "/" {
		return nil, fmt.Errorf("root %q is not an absolute directory below /", r.Root)
	}
	if err := safeRoot(r.Root); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(r.Root)
	if err != nil {
		return nil, fmt.Errorf("root %s unusable: %v", r.Root, cause(err))
	}
	defer root.Close()
	cf := &confiner{rule: r, root: root}

	for _, po := range pathOpts {
		p, err := cf.confine(po.val, false)
		if err != nil {
			return nil, refuse(fmt.Sprintf("--%s %q", po.name, po.val), "%v", err)
		}
		out[po.at] = "--" + po.name + "=" + p
	}
	if !r.NoConfineRoot {
		out = append(out, "--confine-root="+cf.realRoot())
	}
	if r.Munge && !munge {
		out = append(out, "--munge-links")
	}
	out = append(out, ".")
	paths := argv[dot+1:]
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, a := range paths {
		p, err := cf.confine(a, relative)
		if err != nil {
			return nil, refuse(fmt.Sprintf("path %q", a), "%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// checkCluster checks a short-option cluster such as "-vlogDtpre.iLsfxCIvu"
// and returns its option letters ("vlogDtpr" there). After "e" comes the
// capability blob ("e.iLsfxCIvu", digits allowed before the dot), which is
// not a set of options, so its letters are not returned; "B" and "@" take
// the rest of the word as a number.
func checkCluster(a string) (letters string, err error) {
	for i := 1; i < len(a); i++ {
		c := a[i]
		switch {
		case c == 'e':
			if !capabilityBlob(a[i+1:]) {
				return "", refuse(fmt.Sprintf("option cluster %q", a), "bad capability string")
			}
			return a[1:i], nil
		case c == 'B' || c == '@':
			if !number(a[i+1:]) {
				return "", refuse(fmt.Sprintf("option cluster %q", a), "-%c needs a number", c)
			}
			return a[1:i], nil
		case rsyncShortRefused[c] != "":
			return "", refuse("-"+string(c), "%s", rsyncShortRefused[c])
		case strings.IndexByte(rsyncShort, c) >= 0:
		default:
			return "", refuse("-"+string(c), "")
		}
	}
	return a[1:], nil
}

// capabilityBlob accepts what follows "e": digits, then optionally "." and
// letters or digits (".iLsfxCIvu").
func capabilityBlob(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == len(s) {
		return true
	}
	if s[i] != '.' {
		return false
	}
	for _, c := range []byte(s[i+1:]) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func number(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// safeRoot refuses a root that is not a directory, or that (or any
// directory above it) group or others can write without the sticky bit:
// whoever can rename entries there can swap the tree sshval just checked.
func safeRoot(root string) error {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("root %s unusable: %v", root, cause(err))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("root %s unusable: %v", root, cause(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("root %s is not a directory", root)
	}
	for dir := real; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("root %s unusable: %v", root, cause(err))
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
			return fmt.Errorf("root %s refused: %s is writable by group or others without the sticky bit", root, dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

// maxSymlinks bounds the symlinks followed while resolving one path, as
// the kernel's ELOOP limit does.
const maxSymlinks = 40

// confiner resolves client paths below one rule's root.
type confiner struct {
	rule *Rule
	root *os.Root
	real string // the root's real path, cached
}

func (c *confiner) realRoot() string {
	if c.real == "" {
		real, err := filepath.EvalSymlinks(c.rule.Root)
		if err != nil {
			real = c.rule.Root
		}
		c.real = real
	}
	return c.real
}

// confine checks a client path and returns the absolute path to hand to
// rsync. An absolute path must lie under the root (as the rules file spells
// it); a relative one is taken relative to the root. A ".." component is
// refused anywhere. Every existing component is resolved below the root,
// symlinks included (see resolve); missing trailing components are fine,
// since rsync may create them. Trailing "/" and "/." are kept: they change
// what rsync transfers. With --relative, a relative path is passed as
// ROOT/./PATH so that rsync transmits only PATH.
func (c *confiner) confine(p string, relative bool) (string, error) {
	if p == "" {
		return "", errors.New("it is empty")
	}
	if hasDotDot(p) {
		return "", errors.New("it has a .. component")
	}
	root := path.Clean(c.rule.Root)
	var rel, out string
	if path.IsAbs(p) {
		clean := path.Clean(p)
		if clean != root && !strings.HasPrefix(clean, root+"/") {
			return "", fmt.Errorf("it is outside root %s", root)
		}
		rel = strings.TrimPrefix(strings.TrimPrefix(clean, root), "/")
		out = p
	} else {
		rel = path.Clean(p)
		if relative {
			out = root + "/./" + p
		} else {
			out = root + "/" + p
		}
	}
	if err := c.resolve(rel); err != nil {
		return "", fmt.Errorf("it %v", err)
	}
	return out, nil
}

// resolve walks rel below the root one component at a time, as the kernel
// would: each existing component is Lstat'ed through the os.Root (which
// itself refuses to leave the root, even if the tree changes under it), and
// a symlink is replaced by its target. A relative target continues from the
// link's directory; an absolute one must point into the root (by its path
// in the rules file or its real path); ".." may not climb above the root.
// The first missing component ends the walk successfully unless what would
// follow it climbs with "..".
func (c *confiner) resolve(rel string) error {
	todo := splitPath(rel)
	var done []string
	hops := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		if comp == ".." {
			if len(done) == 0 {
				return errors.New("leads out of the root through a symlink")
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(slices.Clone(done), comp)...)
		fi, err := c.root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if slices.Contains(todo, "..") {
				return errors.New("climbs out of a missing directory")
			}
			return nil
		}
		if err != nil {
			return unchecked(cur, "lstat", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, comp)
			continue
		}
		hops++
		if hops > maxSymlinks {
			return errors.New("has too many levels of symlinks")
		}
		target, err := c.root.Readlink(cur)
		if err != nil {
			return unchecked(cur, "readlink", err)
		}
		if path.IsAbs(target) {
			rest, ok := c.underRoot(target)
			if !ok {
				return fmt.Errorf("leads out of the root through symlink %s -> %s", cur, target)
			}
			done = nil
			todo = append(rest, todo...)
			continue
		}
		todo = append(splitPath(target), todo...)
	}
	return nil
}

// unchecked explains why component cur of a path could not be checked
// (op is "lstat" or "readlink"), in words an admin can act on: a bare
// errno ("invalid argument") would not say that the tree changed under the
// check. The result follows "it" in the refusal.
func unchecked(cur, op string, err error) error {
	switch {
	case op == "readlink" && errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("changed while it was checked (%s stopped being a symlink: a symlink or rename race)", cur)
	case op == "readlink" && errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("changed while it was checked (symlink %s vanished: a symlink or rename race)", cur)
	case strings.Contains(cause(err).Error(), "path escapes from parent"):
		// os.Root: a directory checked a moment ago is now a symlink
		// out of the root.
		return fmt.Errorf("changed while it was checked (a directory on the way to %s became a symlink leading out: a symlink or rename race)", cur)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("cannot be checked: a component of %s is not a directory", cur)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot be checked: sshval's account may not look up %s", cur)
	case errors.Is(err, syscall.ELOOP):
		return errors.New("has too many levels of symlinks")
	case errors.Is(err, syscall.ENAMETOOLONG):
		return fmt.Errorf("cannot be checked: %s is too long a name", cur)
	}
	return fmt.Errorf("cannot be checked: %s of %s failed: %v", op, cur, cause(err))
}

// underRoot reports whether the absolute symlink target t names the root or
// something below it, and returns the components below the root.
func (c *confiner) underRoot(t string) ([]string, bool) {
	tc := splitPath(t)
	for _, base := range []string{path.Clean(c.rule.Root), c.realRoot()} {
		bc := splitPath(base)
		if len(tc) >= len(bc) && slices.Equal(tc[:len(bc)], bc) {
			return tc[len(bc):], true
		}
	}
	return nil, false
}

// splitPath splits a slash-separated path into components, dropping empty
// and "." ones (but keeping ".." for the caller to resolve).
func splitPath(p string) []string {
	var out []string
	for c := range strings.SplitSeq(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// cause strips the operation and path of a *fs.PathError, whose path the
// reason already names.
func cause(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
