package sshval

import (
	"opsagent/internal/lineerr"

	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
)

// Sentinel causes of rules-file errors. Every *ParseError unwraps to exactly
// one of them; LoadRules' refusals of an unsafe file wrap ErrUnsafeFile.
var (
	// ErrSyntax: a line that is not a setting, a block opening or a "}",
	// an unclosed block or quote, a "}" without a block.
	ErrSyntax = errors.New("sshval: syntax error")
	// ErrUnknown: an unknown rule kind or setting, or a setting in the wrong
	// place (a rule setting outside a block, "log" inside one).
	ErrUnknown = errors.New("sshval: unknown setting")
	// ErrValue: a malformed value (yes/no, rule name, count of words).
	ErrValue = errors.New("sshval: invalid value")
	// ErrAddress: a "from" word that is neither an address nor a CIDR prefix.
	ErrAddress = errors.New("sshval: invalid address or prefix")
	// ErrPath: a path that must be absolute and clean is not (or is "/").
	ErrPath = errors.New("sshval: invalid path")
	// ErrDuplicate: a rule name used twice, or a setting given twice.
	ErrDuplicate = errors.New("sshval: duplicate")
	// ErrMissing: a rule lacks a required setting (root, run, push/pull).
	ErrMissing = errors.New("sshval: missing setting")
	// ErrOption: an "options" word that is not a long rsync option sshval
	// knows, or one it never allows.
	ErrOption = errors.New("sshval: invalid rsync option")
	// ErrPattern: a "run" word that is not a valid path.Match pattern.
	ErrPattern = errors.New("sshval: invalid pattern")
	// ErrSFTP: an sftp rule. sftp-server cannot be confined to a directory
	// without a chroot, which a forced command cannot set up, so sshval
	// refuses every sftp request and has no sftp rules.
	ErrSFTP = errors.New("sshval: sftp rules are not supported (sftp-server cannot be confined; use rsync)")
	// ErrUnsafeFile: LoadRules refused the rules file because someone other
	// than root or the running user could change it.
	ErrUnsafeFile = errors.New("sshval: unsafe rules file")

	errTooMany = errors.New("sshval: too many errors")
)

// maxErrors caps the errors one ParseRules call reports.
const maxErrors = 50

// DefaultRsync is the rsync binary an rsync rule runs unless its "program"
// setting names another. The client's own idea of the path is never used.
const DefaultRsync = "/usr/bin/rsync"

// Rule kinds.
const (
	KindRsync   = "rsync"
	KindCommand = "command"
)

// Rules is a parsed rules file.
type Rules struct {
	Rules []Rule // in file order; Decide tries them in this order
	Log   string // "log" setting: the decision log file, "" for none
	File  string // the name errors and decisions cite
	// Counters is the "counters" setting: the drop directory of the
	// decision counters (see Count); "" means DefaultCounters and "none"
	// no counting.
	Counters string
	// Events is the "events" setting, the values of agent.conf's events
	// option (none, syslog, journal, file:PATH): where a refusal is sent
	// as an sshval.refusal event; "" means none.
	Events string
}

// Rule is one block of the rules file.
type Rule struct {
	Name string
	Kind string         // KindRsync or KindCommand ("sftp" is never accepted)
	From []netip.Prefix // allowed source prefixes; empty means any source
	Line int            // line of the block's opening

	// rsync rules.
	Root    string   // absolute, clean; every transfer path lies under it
	Push    bool     // the client may write (rsync --server without --sender)
	Pull    bool     // the client may read (rsync --server --sender)
	Delete  bool     // --delete*, --remove-source-files are allowed
	Options []string // extra long options allowed, "--link-dest" etc.
	// Munge makes rsync store received symlinks munged (--munge-links) and
	// unmunge them when sending, so a symlink the client plants can never be
	// followed by a later transfer, whatever races it tries.
	Munge bool
	// NoConfineRoot drops the --confine-root=ROOT that sshval passes to
	// rsync (3.5.0 and later) so that filter merge files and --files-from
	// entries stay inside the root; set it only for an older rsync.
	// --files-from is refused then, since nothing would confine its list.
	NoConfineRoot bool
	// Confine is how the kernel confines the program to Root: ConfineLandlock,
	// ConfineChroot or ConfinePaths (sshval's own path checks only), or ""
	// for the strongest the machine supports.
	Confine string
	// RunAs is the "run_as USER[:GROUP]" setting: the account the program
	// runs as, with the supplementary groups cleared; "" keeps the
	// invoking account.
	RunAs string
	// Devices allows, for a program that runs as root, the rsync options
	// that create device nodes and special files (-D, --devices,
	// --specials).
	Devices bool
	// Owners allows, for a program that runs as root, the rsync options
	// that make files owned by root or with set-uid/set-gid bits (--super,
	// --usermap/--groupmap/--chown to uid or gid 0, --chmod adding s bits).
	Owners bool
	// NoOverwrite is "overwrite no": existing files are never replaced
	// (sshval passes --ignore-existing and refuses --inplace), for
	// append-only backups.
	NoOverwrite bool

	// Program is the absolute binary to run: the rsync of an rsync rule
	// (DefaultRsync unless "program" says otherwise), or the command of a
	// command rule.
	Program string
	// Args are a command rule's argument words after Program: each is
	// matched exactly or, if it holds * ? or [, as a path.Match pattern.
	Args []string
}

// ParseError is an error at a line of a rules file ("file:line: cause"). It
// unwraps to its cause, which wraps one of the package's sentinels.
type ParseError = lineerr.Error

// ErrorList holds every error found in one rules file, in line order, cut
// after maxErrors with a last entry saying so.
type ErrorList = lineerr.List

// ruleName is what a rule may be called: it appears in logs and reasons.
var ruleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// parser holds the state of one ParseRules pass.
type parser struct {
	file  string
	rules *Rules
	errs  ErrorList
	cur   *Rule           // open block, nil outside
	seen  map[string]bool // settings given in the open block
	names map[string]int  // rule name -> line
	top   map[string]int  // top-level setting -> line
}

func (p *parser) errorf(line int, sentinel error, format string, args ...any) {
	if len(p.errs) > maxErrors {
		return
	}
	if len(p.errs) == maxErrors {
		p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Err: errTooMany})
		return
	}
	err := fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Err: err})
}

// ParseRules parses a rules file read from r; name labels errors and is
// kept in Rules.File. It never touches the filesystem: paths are checked
// for form only, and their safety is checked by Decide when it uses them.
// Every error of the file is reported at once as an ErrorList of
// *ParseError; a file with any error yields no Rules.
//
// The syntax, one statement a line, # starting a comment:
//
//	log /var/log/agent/sshval.log
//	rsync backups {
//	    from 10.0.0.0/8
//	    root /data/irsync
//	    push yes
//	    pull yes
//	    delete no
//	}
//	command uptime {
//	    from 192.0.2.7
//	    run /usr/bin/uptime
//	}
func ParseRules(r io.Reader, name string) (*Rules, error) {
	p := &parser{file: name, rules: &Rules{File: name}, names: map[string]int{}, top: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		words, err := splitLine(sc.Text())
		if err != nil {
			p.errorf(line, ErrSyntax, "%v", err)
			continue
		}
		if len(words) > 0 {
			p.statement(line, words)
		}
	}
	if err := sc.Err(); err != nil {
		p.errorf(line, ErrSyntax, "read: %v", err)
	}
	if p.cur != nil {
		p.errorf(p.cur.Line, ErrSyntax, "block %q is not closed with }", p.cur.Name)
	}
	if len(p.errs) > 0 {
		// Block checks report at the opening line after later lines did.
		// The cap entry, if any, stays last.
		sorted := p.errs
		if last := len(sorted) - 1; sorted[last].Err == errTooMany {
			sorted = sorted[:last]
		}
		slices.SortStableFunc(sorted, func(a, b *ParseError) int { return a.Line - b.Line })
		return nil, p.errs
	}
	return p.rules, nil
}

// statement handles one non-empty line.
func (p *parser) statement(line int, w []string) {
	switch {
	case w[0] == "}":
		if len(w) != 1 {
			p.errorf(line, ErrSyntax, "} must stand alone on its line")
		}
		if p.cur == nil {
			p.errorf(line, ErrSyntax, "} without an open block")
			return
		}
		p.finish(line)
	case len(w) > 0 && w[len(w)-1] == "{":
		p.open(line, w)
	case p.cur == nil:
		p.topSetting(line, w)
	default:
		p.setting(line, w)
	}
}

// rsync backups {
func (p *parser) open(line int, w []string) {
	if p.cur != nil {
		p.errorf(line, ErrSyntax, "block inside block %q (missing })", p.cur.Name)
		p.finish(line)
	}
	kind := w[0]
	r := Rule{Kind: kind, Line: line}
	switch kind {
	case KindRsync:
		r.Program = DefaultRsync
	case KindCommand:
	case "sftp":
		p.errorf(line, ErrSFTP, "block %q", strings.Join(w[1:len(w)-1], " "))
	default:
		p.errorf(line, ErrUnknown, "rule kind %q (want rsync or command)", kind)
	}
	if len(w) != 3 {
		p.errorf(line, ErrSyntax, "a block opens as KIND NAME {")
	} else {
		r.Name = w[1]
		if !ruleName.MatchString(r.Name) {
			p.errorf(line, ErrValue, "rule name %q (letters, digits, . _ -)", r.Name)
		} else if first, dup := p.names[r.Name]; dup {
			p.errorf(line, ErrDuplicate, "rule name %q (first at line %d)", r.Name, first)
		} else {
			p.names[r.Name] = line
		}
	}
	p.cur = &r
	p.seen = map[string]bool{}
}

// finish checks and stores the open block.
func (p *parser) finish(line int) {
	r := p.cur
	p.cur = nil
	switch r.Kind {
	case KindRsync:
		if r.Root == "" && !p.seen["root"] {
			p.errorf(r.Line, ErrMissing, "rsync rule %q has no root", r.Name)
		}
		if !p.seen["push"] && !p.seen["pull"] {
			p.errorf(r.Line, ErrMissing, "rsync rule %q says neither push nor pull", r.Name)
		}
		if r.NoConfineRoot && slices.Contains(r.Options, "--files-from") {
			p.errorf(r.Line, ErrOption, "rule %q: --files-from needs confine-root yes", r.Name)
		}
	case KindCommand:
		if r.Program == "" && !p.seen["run"] {
			p.errorf(r.Line, ErrMissing, "command rule %q has no run", r.Name)
		}
	default:
		return // already reported
	}
	p.rules.Rules = append(p.rules.Rules, *r)
}

// log FILE, counters DIR|none, events SINK (outside blocks)
func (p *parser) topSetting(line int, w []string) {
	key := w[0]
	if key != "log" && key != "counters" && key != "events" {
		p.errorf(line, ErrUnknown, "%q outside a rule block (only log, counters and events may stand here)", key)
		return
	}
	if first, dup := p.top[key]; dup {
		p.errorf(line, ErrDuplicate, "%s (first at line %d)", key, first)
		return
	}
	p.top[key] = line
	if len(w) != 2 {
		p.errorf(line, ErrValue, "%s takes one value", key)
		return
	}
	v := w[1]
	switch key {
	case "log":
		if err := absPath(v); err != nil {
			p.errorf(line, ErrPath, "log %q: %v", v, err)
			return
		}
		p.rules.Log = v
	case "counters":
		if v != "none" {
			if err := absPath(v); err != nil || v == "/" {
				p.errorf(line, ErrPath, "counters %q: an absolute, clean directory or none", v)
				return
			}
		}
		p.rules.Counters = v
	case "events":
		file, isFile := strings.CutPrefix(v, "file:")
		switch {
		case v == "none", v == "syslog", v == "journal":
		case isFile && absPath(file) == nil:
		default:
			p.errorf(line, ErrValue, "events %q: none, syslog, journal or file:/ABSOLUTE/PATH", v)
			return
		}
		p.rules.Events = v
	}
}

// settings every kind accepts, then those of each kind.
var settings = map[string][]string{
	KindRsync: {"from", "root", "push", "pull", "delete", "options", "program", "munge-links", "confine-root",
		"confine", "run_as", "devices", "owners", "overwrite"},
	KindCommand: {"from", "run", "run_as"},
}

// setting handles one line inside a block.
func (p *parser) setting(line int, w []string) {
	r := p.cur
	key, args := w[0], w[1:]
	if r.Kind != KindRsync && r.Kind != KindCommand {
		return // the block itself was refused; do not pile up errors
	}
	if !slices.Contains(settings[r.Kind], key) {
		if key == "log" {
			p.errorf(line, ErrUnknown, "log must stand outside rule blocks")
		} else {
			p.errorf(line, ErrUnknown, "%q in a %s rule (want one of %s)", key, r.Kind, strings.Join(settings[r.Kind], ", "))
		}
		return
	}
	// from and options may be repeated; they accumulate.
	if key != "from" && key != "options" {
		if p.seen[key] {
			p.errorf(line, ErrDuplicate, "%s given twice in rule %q", key, r.Name)
			return
		}
	}
	p.seen[key] = true
	if len(args) == 0 {
		p.errorf(line, ErrValue, "%s needs a value", key)
		return
	}
	switch key {
	case "from":
		for _, a := range args {
			pfx, err := parsePrefix(a)
			if err != nil {
				p.errorf(line, ErrAddress, "%q", a)
				continue
			}
			r.From = append(r.From, pfx)
		}
	case "root", "program":
		if len(args) != 1 {
			p.errorf(line, ErrValue, "%s takes one path", key)
			return
		}
		if err := absPath(args[0]); err != nil {
			p.errorf(line, ErrPath, "%s %q: %v", key, args[0], err)
			return
		}
		if key == "root" && args[0] == "/" {
			p.errorf(line, ErrPath, "root / confines nothing")
			return
		}
		if key == "root" {
			r.Root = args[0]
		} else {
			r.Program = args[0]
		}
	case "confine":
		if len(args) != 1 || !slices.Contains(confineModes, args[0]) {
			p.errorf(line, ErrValue, "confine takes one of %s", strings.Join(confineModes, ", "))
			return
		}
		r.Confine = args[0]
	case "run_as":
		if len(args) != 1 || !validRunAs(args[0]) {
			p.errorf(line, ErrValue, "run_as takes USER or USER:GROUP (names or numeric ids)")
			return
		}
		r.RunAs = args[0]
	case "devices", "owners", "overwrite":
		if len(args) != 1 || (args[0] != "yes" && args[0] != "no") {
			p.errorf(line, ErrValue, "%s takes yes or no", key)
			return
		}
		v := args[0] == "yes"
		switch key {
		case "devices":
			r.Devices = v
		case "owners":
			r.Owners = v
		case "overwrite":
			r.NoOverwrite = !v
		}
	case "push", "pull", "delete", "munge-links", "confine-root":
		if len(args) != 1 || (args[0] != "yes" && args[0] != "no") {
			p.errorf(line, ErrValue, "%s takes yes or no", key)
			return
		}
		v := args[0] == "yes"
		switch key {
		case "push":
			r.Push = v
		case "pull":
			r.Pull = v
		case "delete":
			r.Delete = v
		case "munge-links":
			r.Munge = v
		case "confine-root":
			r.NoConfineRoot = !v
		}
	case "options":
		for _, o := range args {
			if err := optionAllowedInRule(o); err != nil {
				p.errorf(line, ErrOption, "%v", err)
				continue
			}
			if !slices.Contains(r.Options, o) {
				r.Options = append(r.Options, o)
			}
		}
	case "run":
		if err := absPath(args[0]); err != nil {
			p.errorf(line, ErrPath, "run %q: %v", args[0], err)
			return
		}
		for _, a := range args[1:] {
			if _, err := path.Match(a, ""); err != nil {
				p.errorf(line, ErrPattern, "%q", a)
				return
			}
		}
		r.Program, r.Args = args[0], args[1:]
	}
}

// Confinement modes of the "confine" setting.
const (
	ConfineLandlock = "landlock" // Landlock rules beneath the root (Linux 5.13 and later)
	ConfineChroot   = "chroot"   // a private mount namespace and chroot into the root (needs root)
	ConfinePaths    = "paths"    // sshval's own path checks only: racy, logged as a warning
)

var confineModes = []string{ConfineLandlock, ConfineChroot, ConfinePaths}

// validRunAs reports whether s has the shape USER or USER:GROUP, each a
// POSIX-portable account name or a decimal id. Whether the account exists
// is checked when the command runs, not here: the rules file may be read on
// another host (sshval test, audit).
func validRunAs(s string) bool {
	user, group, hasGroup := strings.Cut(s, ":")
	if !validAccount(user) || hasGroup && !validAccount(group) {
		return false
	}
	return true
}

func validAccount(s string) bool {
	if s == "" || len(s) > 32 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// absPath reports why s is not an absolute, clean path.
func absPath(s string) error {
	switch {
	case !strings.HasPrefix(s, "/"):
		return errors.New("not absolute")
	case path.Clean(s) != s:
		return fmt.Errorf("not clean (write %s)", path.Clean(s))
	}
	return nil
}

// parsePrefix accepts "10.0.0.0/8", "2001:db8::/32" or a bare address
// (a /32 or /128). A prefix with host bits set is refused: "10.1.2.3/8" is
// more likely a typo than a wish for 10.0.0.0/8.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, ErrAddress
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil || pfx.Masked() != pfx {
		return netip.Prefix{}, ErrAddress
	}
	if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	}
	return pfx, nil
}

// splitLine splits a rules-file line into words: blanks (space, tab)
// separate words, '...' and "..." quote, a backslash escapes the next
// character, and # starting a word begins a comment.
func splitLine(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, errors.New("unclosed quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("control character %q", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// LoadRules reads and parses the rules file at path, refusing it unless
// only root or the running user can change it: the file is opened with
// O_NOFOLLOW (a symlink is refused), must be a regular file owned by root or
// the effective user and writable by neither group nor others, and every
// directory above it must be owned by root or the effective user and be
// writable by group or others only if it has the sticky bit (as /tmp).
// Refusals wrap ErrUnsafeFile in an *fs.PathError; parse errors are those of
// ParseRules.
func LoadRules(name string) (*Rules, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: is a symlink", ErrUnsafeFile)}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: not a regular file", ErrUnsafeFile)}
	}
	if err := safeOwner(fi, false); err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		if err := safeOwner(di, true); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("directory %s: %w", dir, err)}
		}
		if dir == "/" {
			break
		}
	}
	return ParseRules(f, name)
}

// safeOwner checks that fi belongs to root or the effective user and that
// group and others cannot write it (a sticky directory may be writable, as
// its entries are then protected from other users).
func safeOwner(fi fs.FileInfo, dir bool) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: no owner information", ErrUnsafeFile)
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: owned by uid %d, not root or uid %d", ErrUnsafeFile, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 && !(dir && fi.Mode()&fs.ModeSticky != 0) {
		return fmt.Errorf("%w: writable by group or others (mode %04o)", ErrUnsafeFile, fi.Mode().Perm())
	}
	return nil
}
