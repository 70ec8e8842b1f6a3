package sshval

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Finding is one problem with one authorized_keys line.
type Finding struct {
	// File is the authorized_keys file as given to Audit.
	File string
	// Line is the 1-based line number in File.
	Line int
	// User is the account the file belongs to: the passwd user whose home
	// holds it, else the file's owner, else the owner's numeric uid.
	User string
	// Key identifies the key as "TYPE SHA256:FINGERPRINT COMMENT" (the
	// comment left out when empty); for an unparseable line, whatever could
	// be read of it, possibly "".
	Key string
	// Problem is one of the Problem constants or starts with one of the
	// Problem prefixes. Key and Problem are escaped like log commands, so a
	// Finding always prints as one line.
	Problem string
}

// Problems reported by Audit. The fixed ones are the whole Problem; the
// prefixes are followed by details.
const (
	ProblemNoCommand    = "no forced command"
	ProblemUnrestricted = "forced command without restrict (or no-pty and no-port-forwarding)"
	ProblemDSA          = "DSA key (ssh-dss)"
	ProblemNoFrom       = "no from= source restriction"
	// ProblemWeakRSA is followed by "N bits".
	ProblemWeakRSA = "RSA key under 2048 bits: "
	// ProblemDuplicate is followed by the other places, "FILE:LINE (user U)"
	// joined by ", ".
	ProblemDuplicate = "same key also in "
	// ProblemUnparseable is followed by the reason; sshd ignores such a line.
	ProblemUnparseable = "unparseable: "
	// ProblemRootPush is followed by "rule NAME (FILE:LINE)": a root
	// account's key forces agent sshval, and a push rule of its rules file
	// has no run_as, so rsync receives as root.
	ProblemRootPush = "sshval push rule runs as root without run_as: "
	// ProblemRules is followed by the error: the rules file of a forced
	// agent sshval exists but cannot be loaded (every command of the key
	// is refused, and what it was meant to allow cannot be checked).
	ProblemRules = "sshval rules unusable: "
)

// DefaultRules is the rules file of "agent sshval" without --rules.
const DefaultRules = "/etc/agent/sshval.conf"

const (
	minRSABits = 2048
	// maxKeyLine bounds one line in memory. sshd documents 8 KB lines
	// (16 kbit RSA); anything far beyond is garbage, reported and skipped.
	maxKeyLine = 64 << 10
	passwdFile = "/etc/passwd"
)

// keyTypes are the key types sshd accepts in authorized_keys, plain and as
// certificates (for cert-authority lines the key is plain).
var keyTypes = map[string]bool{
	"ssh-rsa":                                     true,
	"ssh-dss":                                     true,
	"ssh-ed25519":                                 true,
	"ecdsa-sha2-nistp256":                         true,
	"ecdsa-sha2-nistp384":                         true,
	"ecdsa-sha2-nistp521":                         true,
	"sk-ecdsa-sha2-nistp256@openssh.com":          true,
	"sk-ssh-ed25519@openssh.com":                  true,
	"ssh-rsa-cert-v01@openssh.com":                true,
	"ssh-dss-cert-v01@openssh.com":                true,
	"ssh-ed25519-cert-v01@openssh.com":            true,
	"ecdsa-sha2-nistp256-cert-v01@openssh.com":    true,
	"ecdsa-sha2-nistp384-cert-v01@openssh.com":    true,
	"ecdsa-sha2-nistp521-cert-v01@openssh.com":    true,
	"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com": true,
	"sk-ssh-ed25519-cert-v01@openssh.com":         true,
}

// keyOptions maps each option sshd knows (lower case; sshd compares
// case-insensitively) to whether it takes a quoted value. sshd refuses a
// line with any other option, or with a value on a flag.
var keyOptions = map[string]bool{
	"agent-forwarding": false, "cert-authority": false, "command": true,
	"environment": true, "expiry-time": true, "from": true,
	"no-agent-forwarding": false, "no-port-forwarding": false, "no-pty": false,
	"no-user-rc": false, "no-x11-forwarding": false, "permitlisten": true,
	"permitopen": true, "port-forwarding": false, "principals": true,
	"pty": false, "no-touch-required": false, "verify-required": false,
	"restrict": false, "tunnel": true, "user-rc": false, "x11-forwarding": false,
}

// keyOption is one parsed option, name lower-cased, value unquoted.
type keyOption struct {
	name, value string
}

// keyLine is one parsed authorized_keys entry.
type keyLine struct {
	opts    []keyOption
	keyType string
	blob    []byte
	comment string
}

// occurrence is where a key blob was seen, for duplicate detection.
type occurrence struct {
	ord  int // index of the file in Audit's list
	file string
	user string
	line int
	key  string // Finding.Key of the line
	blob string
}

// ordered is a Finding with its sort keys: file order, line, then the order
// the checks produced it.
type ordered struct {
	ord, seq int
	Finding
}

// Audit reads each authorized_keys file and reports, per key line: no forced
// command; a forced command while a pty or port forwarding stays allowed
// (neither restrict nor no-pty and no-port-forwarding, or restrict undone by
// a later pty or port-forwarding); DSA keys; RSA keys under 2048 bits (the
// modulus decoded from the blob); no from= option; the same key in several
// files; and lines sshd cannot parse. Findings are ordered by the order of
// files, then line. A file listed twice is read once. A file that cannot be
// read is skipped and its error (an *fs.PathError) joined into the returned
// error; the findings of the other files are returned all the same.
func Audit(files []string) ([]Finding, error) {
	// Without /etc/passwd, users are still named by the file owner's uid.
	users, _ := readPasswd(passwdFile)
	return audit(files, users)
}

func audit(files []string, users []passwdEntry) ([]Finding, error) {
	var (
		all  []ordered
		occs []occurrence
		errs []error
		seen = map[string]bool{}
	)
	for ord, file := range files {
		if seen[filepath.Clean(file)] {
			continue
		}
		seen[filepath.Clean(file)] = true
		f, err := os.Open(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		user := fileUser(f, file, users)
		found, o, err := checkKeys(f, file, user, ord, isRoot(user, users))
		f.Close()
		all = append(all, found...)
		occs = append(occs, o...)
		if err != nil {
			errs = append(errs, &fs.PathError{Op: "read", Path: file, Err: err})
		}
	}
	all = append(all, duplicates(occs)...)
	sort.SliceStable(all, func(a, b int) bool {
		x, y := all[a], all[b]
		if x.ord != y.ord {
			return x.ord < y.ord
		}
		if x.Line != y.Line {
			return x.Line < y.Line
		}
		return x.seq < y.seq
	})
	findings := make([]Finding, len(all))
	for i, o := range all {
		findings[i] = o.Finding
	}
	return findings, errors.Join(errs...)
}

// checkKeys reports the problems of every line read from r, and where each
// parsed key was seen. The error is a read error only; bad lines are
// findings.
func checkKeys(r io.Reader, file, user string, ord int, root bool) ([]ordered, []occurrence, error) {
	var (
		found []ordered
		occs  []occurrence
	)
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		raw, tooLong, err := readLine(br)
		if err == io.EOF {
			return found, occs, nil
		}
		if err != nil {
			return found, occs, err
		}
		add := func(key, problem string) {
			found = append(found, ordered{ord: ord, seq: len(found), Finding: Finding{
				File: file, Line: n, User: user, Key: key, Problem: problem,
			}})
		}
		if tooLong {
			add("", ProblemUnparseable+"line longer than "+strconv.Itoa(maxKeyLine)+" bytes")
			continue
		}
		s := strings.TrimRight(strings.TrimLeft(string(raw), " \t"), "\r")
		if s == "" || s[0] == '#' {
			continue
		}
		kl, err := parseKeyLine(s)
		if err != nil {
			add(Escape(kl.keyType), ProblemUnparseable+Escape(err.Error()))
			continue
		}
		key := kl.id()
		for _, p := range kl.problems() {
			add(key, p)
		}
		if root {
			for _, p := range kl.sshvalProblems() {
				add(key, p)
			}
		}
		occs = append(occs, occurrence{ord: ord, file: file, user: user, line: n, key: key, blob: string(kl.blob)})
	}
}

// readLine returns the next line without its newline. A line longer than
// maxKeyLine is consumed whole but not kept (tooLong). io.EOF means no more
// lines.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(frag) > maxKeyLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(line) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return line, tooLong, nil
		case err != nil:
			return nil, false, err
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, nil
	}
}

// parseKeyLine parses one non-comment line,
//
//	from="10.0.0.0/8",command="/usr/sbin/agent sshval",restrict ssh-ed25519 AAAAC3Nza... backup@host
//
// as sshd does: the options field is present unless the line starts with a
// key type. On error, keyType holds the key type if it was read.
func parseKeyLine(s string) (keyLine, error) {
	var kl keyLine
	first, after := cutSpace(s)
	second, _ := cutSpace(after)
	if _, isOption := keyOptions[strings.ToLower(first)]; !keyTypes[first] && !keyTypes[second] && !isOption && !strings.ContainsAny(first, "=,") {
		// Neither a key type nor followed by one: most likely a key type
		// sshd does not know (or a typo in one) rather than an option.
		return kl, fmt.Errorf("unknown key type %q", clip(first))
	}
	if !keyTypes[first] {
		opts, rest, err := parseOptions(s)
		if err != nil {
			return kl, err
		}
		kl.opts = opts
		s = rest
	}
	typ, rest := cutSpace(s)
	if !keyTypes[typ] {
		return kl, fmt.Errorf("unknown key type %q", clip(typ))
	}
	kl.keyType = typ
	b64, comment := cutSpace(rest)
	if b64 == "" {
		return kl, errors.New("no key after key type")
	}
	blob, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return kl, errors.New("key is not valid base64")
	}
	kl.blob = blob
	kl.comment = strings.TrimSpace(comment)
	if err := kl.checkBlob(); err != nil {
		return kl, err
	}
	return kl, nil
}

// cutSpace splits s at the first run of blanks.
func cutSpace(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// clip shortens input quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parseOptions parses the comma-separated options at the start of s, like
//
//	command="rsync --server \"x\"",no-pty,from="10.0.0.0/8,192.168.1.*"
//
// Values are double-quoted, may contain commas and blanks, and \" stands for
// a quote (other backslashes are kept, as sshd does). It returns the rest of
// the line after the blanks that end the options.
func parseOptions(s string) ([]keyOption, string, error) {
	var opts []keyOption
	for {
		i := strings.IndexAny(s, "=, \t")
		if i < 0 {
			i = len(s)
		}
		name := strings.ToLower(s[:i])
		if name == "" {
			return nil, "", errors.New("empty option")
		}
		takesValue, known := keyOptions[name]
		if !known {
			return nil, "", fmt.Errorf("unsupported option %q", clip(s[:i]))
		}
		s = s[i:]
		opt := keyOption{name: name}
		switch {
		case strings.HasPrefix(s, "="):
			if !takesValue {
				return nil, "", fmt.Errorf("option %q takes no value", name)
			}
			if !strings.HasPrefix(s, `="`) {
				return nil, "", fmt.Errorf("value of option %q is not quoted", name)
			}
			var b strings.Builder
			j := 2
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == '"' {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, "", fmt.Errorf("unterminated quote in option %q", name)
			}
			opt.value = b.String()
			s = s[j+1:]
		case takesValue:
			return nil, "", fmt.Errorf("option %q needs a value", name)
		}
		opts = append(opts, opt)
		switch {
		case s == "":
			return nil, "", errors.New("no key after options")
		case s[0] == ',':
			s = s[1:]
		case s[0] == ' ' || s[0] == '\t':
			return opts, strings.TrimLeft(s, " \t"), nil
		default:
			return nil, "", fmt.Errorf("unexpected %q after option %q", s[:1], name)
		}
	}
}

// checkBlob checks the wire form of the key (RFC 4253 §6.6, and the
// OpenSSH certificate format, which puts a nonce first): the type inside the
// blob must be the one on the line, and RSA and Ed25519 keys must be whole.
func (kl *keyLine) checkBlob() error {
	b := kl.blob
	name, b, ok := sshString(b)
	if !ok {
		return errors.New("key blob truncated")
	}
	if string(name) != kl.keyType {
		return fmt.Errorf("key blob holds type %q, line says %q", clip(string(name)), kl.keyType)
	}
	if strings.HasSuffix(kl.keyType, "-cert-v01@openssh.com") {
		if _, b, ok = sshString(b); !ok { // nonce
			return errors.New("certificate blob truncated")
		}
	}
	switch strings.TrimSuffix(kl.keyType, "-cert-v01@openssh.com") {
	case "ssh-rsa":
		var e, n []byte
		e, b, ok = sshString(b)
		if ok {
			n, _, ok = sshString(b)
		}
		if !ok {
			return errors.New("RSA key blob truncated")
		}
		if !positive(e) || !positive(n) {
			return errors.New("RSA key blob has a non-positive exponent or modulus")
		}
	case "ssh-ed25519":
		pk, _, ok := sshString(b)
		if !ok || len(pk) != 32 {
			return errors.New("Ed25519 key blob is not 32 bytes")
		}
	}
	return nil
}

// rsaBits returns the modulus size of an RSA key (blob already checked), or
// 0 for any other key type.
func (kl *keyLine) rsaBits() int {
	if strings.TrimSuffix(kl.keyType, "-cert-v01@openssh.com") != "ssh-rsa" {
		return 0
	}
	_, b, _ := sshString(kl.blob)
	if kl.keyType != "ssh-rsa" {
		_, b, _ = sshString(b)
	}
	_, b, _ = sshString(b)
	n, _, _ := sshString(b)
	return new(big.Int).SetBytes(n).BitLen()
}

// sshString reads one uint32-length-prefixed string (also the form of an
// mpint) from b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// positive reports whether the two's-complement mpint m is above zero.
func positive(m []byte) bool {
	if len(m) == 0 || m[0]&0x80 != 0 {
		return false
	}
	for _, c := range m {
		if c != 0 {
			return true
		}
	}
	return false
}

// id is the Finding.Key of a parsed line.
func (kl *keyLine) id() string {
	sum := sha256.Sum256(kl.blob)
	id := kl.keyType + " SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
	if kl.comment != "" {
		id += " " + Escape(kl.comment)
	}
	return id
}

// problems lists what is wrong with a parsed line, in a fixed order.
func (kl *keyLine) problems() []string {
	var p []string
	base := strings.TrimSuffix(kl.keyType, "-cert-v01@openssh.com")
	if base == "ssh-dss" {
		p = append(p, ProblemDSA)
	}
	if bits := kl.rsaBits(); bits > 0 && bits < minRSABits {
		p = append(p, ProblemWeakRSA+strconv.Itoa(bits)+" bits")
	}
	// Options apply in order: restrict turns everything off, a later pty or
	// port-forwarding turns that back on.
	var command, from bool
	pty, forward := true, true
	for _, o := range kl.opts {
		switch o.name {
		case "command":
			command = true
		case "from":
			from = true
		case "restrict":
			pty, forward = false, false
		case "no-pty":
			pty = false
		case "pty":
			pty = true
		case "no-port-forwarding":
			forward = false
		case "port-forwarding":
			forward = true
		}
	}
	switch {
	case !command:
		p = append(p, ProblemNoCommand)
	case pty || forward:
		p = append(p, ProblemUnrestricted)
	}
	if !from {
		p = append(p, ProblemNoFrom)
	}
	return p
}

// sshvalProblems checks the rules of a forced "agent sshval" on a key of a
// root account: sshval then runs as root, and every push rule without
// run_as lets rsync create files as root (ProblemRootPush).
func (kl *keyLine) sshvalProblems() []string {
	var command string
	for _, o := range kl.opts {
		if o.name == "command" {
			command = o.value
		}
	}
	words, err := Tokenize(command)
	if err != nil || len(words) < 2 || filepath.Base(words[0]) != "agent" || words[1] != "sshval" {
		return nil
	}
	file := DefaultRules
	for i := 2; i < len(words); i++ {
		if v, ok := strings.CutPrefix(words[i], "--rules="); ok {
			file = v
		} else if words[i] == "--rules" && i+1 < len(words) {
			file = words[i+1]
			i++
		}
	}
	rules, err := LoadRules(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // sshval refuses everything then; nothing runs as root
	}
	if err != nil {
		return []string{ProblemRules + Escape(err.Error())}
	}
	var p []string
	for _, r := range rules.RootPushRules() {
		p = append(p, ProblemRootPush+Escape(r))
	}
	return p
}

// RootPushRules names ("rule NAME (FILE:LINE)") the push rules without
// run_as: run from a root account's key, their rsync receives as root.
func (rs *Rules) RootPushRules() []string {
	var out []string
	for _, r := range rs.Rules {
		if r.Kind == KindRsync && r.Push && r.RunAs == "" {
			out = append(out, fmt.Sprintf("rule %s (%s:%d)", r.Name, rs.File, r.Line))
		}
	}
	return out
}

// isRoot reports whether the account name (or decimal uid) is uid 0.
func isRoot(name string, users []passwdEntry) bool {
	if name == "0" {
		return true
	}
	for _, u := range users {
		if u.name == name {
			return u.uid == 0
		}
	}
	return false
}

// duplicates reports every occurrence of a key that also appears in another
// file, naming the other places.
func duplicates(occs []occurrence) []ordered {
	byBlob := map[string][]occurrence{}
	var order []string
	for _, o := range occs {
		if _, ok := byBlob[o.blob]; !ok {
			order = append(order, o.blob)
		}
		byBlob[o.blob] = append(byBlob[o.blob], o)
	}
	var out []ordered
	for _, blob := range order {
		group := byBlob[blob]
		for _, o := range group {
			var others []string
			for _, x := range group {
				if x.file != o.file {
					others = append(others, fmt.Sprintf("%s:%d (user %s)", x.file, x.line, x.user))
				}
			}
			if len(others) == 0 {
				continue
			}
			out = append(out, ordered{ord: o.ord, seq: 1 << 30, Finding: Finding{
				File: o.file, Line: o.line, User: o.user, Key: o.key,
				Problem: ProblemDuplicate + Escape(strings.Join(others, ", ")),
			}})
		}
	}
	return out
}

// passwdEntry is the part of an /etc/passwd line Audit needs.
type passwdEntry struct {
	name string
	uid  uint32
	home string
}

// readPasswd parses a passwd(5) file,
//
//	irsync:x:1001:1001:backup:/home/irsync:/bin/sh
//
// skipping comments, NIS "+"/"-" entries and malformed lines.
func readPasswd(path string) ([]passwdEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var users []passwdEntry
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] == "" {
			continue
		}
		uid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		users = append(users, passwdEntry{name: f[0], uid: uint32(uid), home: f[5]})
	}
	return users, nil
}

// fileUser names the account of an authorized_keys file: the user whose
// home holds it as .ssh/authorized_keys or .ssh/authorized_keys2, else the
// owner of the file (by name if in passwd, else by uid).
func fileUser(f *os.File, path string, users []passwdEntry) string {
	if abs, err := filepath.Abs(path); err == nil {
		for _, u := range users {
			if u.home == "" || !filepath.IsAbs(u.home) {
				continue
			}
			dir := filepath.Join(u.home, ".ssh")
			if abs == filepath.Join(dir, "authorized_keys") || abs == filepath.Join(dir, "authorized_keys2") {
				return u.name
			}
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	for _, u := range users {
		if u.uid == st.Uid {
			return u.name
		}
	}
	return strconv.FormatUint(uint64(st.Uid), 10)
}

// AllUsersKeyFiles lists ~/.ssh/authorized_keys and ~/.ssh/authorized_keys2
// of every user in /etc/passwd, in passwd order, where they exist. Homes
// shared by several users are listed once. A file that exists but cannot be
// examined (permission denied) is listed, so that Audit reports the error.
func AllUsersKeyFiles() ([]string, error) {
	users, err := readPasswd(passwdFile)
	if err != nil {
		return nil, err
	}
	return userKeyFiles(users), nil
}

func userKeyFiles(users []passwdEntry) []string {
	var files []string
	seen := map[string]bool{}
	for _, u := range users {
		if u.home == "" || !filepath.IsAbs(u.home) {
			continue
		}
		for _, name := range []string{"authorized_keys", "authorized_keys2"} {
			p := filepath.Join(u.home, ".ssh", name)
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := os.Stat(p); err == nil || errors.Is(err, fs.ErrPermission) {
				files = append(files, p)
			}
		}
	}
	return files
}
