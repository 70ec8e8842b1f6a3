package pkgdb

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"opsagent/internal/lineerr"
)

// ErrDpkgRecord is the cause every error of the dpkg parsers unwraps to: a
// record of dpkg's admin dir or log that is not in the shape dpkg writes.
// The error itself is a *lineerr.Error naming the file and line.
var ErrDpkgRecord = errors.New("damaged dpkg record")

// maxDpkgLine caps one line of a dpkg file. dpkg's own lines are paths,
// versions and field values; a Description line of a megabyte is damage.
const maxDpkgLine = 1 << 20

// dpkgErr is the error at line n of file name.
func dpkgErr(name string, n int, format string, args ...any) error {
	return &lineerr.Error{File: name, Line: n, Err: fmt.Errorf("%w: "+format, append([]any{ErrDpkgRecord}, args...)...)}
}

// dpkgLines calls fn with every line of r (without its newline) and its
// 1-based number. A read error or an over-long line is an error at the
// line where it happened.
func dpkgLines(r io.Reader, name string, fn func(n int, line string) error) error {
	return dpkgByteLines(r, name, func(n int, line []byte) error { return fn(n, string(line)) })
}

// dpkgByteLines is dpkgLines with each line as bytes, valid until fn
// returns.
func dpkgByteLines(r io.Reader, name string, fn func(n int, line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), maxDpkgLine)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(n, sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return dpkgErr(name, n+1, "line longer than %d bytes", maxDpkgLine)
		}
		return &lineerr.Error{File: name, Line: n + 1, Err: fmt.Errorf("read: %w", err)}
	}
	return nil
}

// DpkgStatus is one paragraph of dpkg's status file, reduced to what pkgdb
// needs.
type DpkgStatus struct {
	Package   string // name, without architecture
	Arch      string // "amd64", "all", ...
	MultiArch string // "same", "foreign", "allowed" or ""
	Version   string
	Status    string // "install ok installed", "deinstall ok config-files", ...
	Conffiles []DpkgConffile
	Line      int // where the paragraph starts
}

// Key is the name dpkg gives the package's info files and prints in
// dpkg -S: "name:arch" for a Multi-Arch: same package, "name" otherwise.
func (s DpkgStatus) Key() string {
	if s.MultiArch == "same" && s.Arch != "" {
		return s.Package + ":" + s.Arch
	}
	return s.Package
}

// State is the third word of Status: "installed", "config-files",
// "not-installed", "unpacked", ...
func (s DpkgStatus) State() string {
	f := strings.Fields(s.Status)
	if len(f) != 3 {
		return ""
	}
	return f[2]
}

// DpkgConffile is one line of a status paragraph's Conffiles field.
type DpkgConffile struct {
	Path string
	// MD5 is the digest dpkg recorded, nil while dpkg has not unpacked
	// the conffile yet ("newconffile") or for an empty hash ("-").
	MD5             []byte
	Obsolete        bool // no longer shipped by the package, kept on disk
	RemoveOnUpgrade bool // to be removed on the next upgrade
}

// ParseDpkgStatus reads dpkg's status file (deb822 paragraphs):
//
//	Package: tp
//	Status: install ok installed
//	Architecture: all
//	Version: 1.0
//	Conffiles:
//	 /etc/tp/conf d5e29449b9e66d5b4bb0d6ce48fbbcb1
//	 /etc/tp/old 0123456789abcdef0123456789abcdef obsolete
//
// Fields other than Package, Status, Architecture, Multi-Arch, Version and
// Conffiles are skipped. A paragraph without Package, a repeated field, a
// line that is neither "Field: value" nor a continuation, a malformed
// Conffiles line and a package recorded twice are errors.
func ParseDpkgStatus(r io.Reader, name string) ([]DpkgStatus, error) {
	var (
		out   []DpkgStatus
		cur   DpkgStatus
		in    bool // inside a paragraph
		conff bool // the current field is Conffiles, for continuations
		seen  statusFields
		keys  = map[string]int{}
	)
	end := func() error {
		if !in {
			return nil
		}
		in = false
		if cur.Package == "" {
			return dpkgErr(name, cur.Line, "paragraph without a Package field")
		}
		if prev, dup := keys[cur.Key()]; dup {
			return dpkgErr(name, cur.Line, "package %s recorded twice (first at line %d)", cur.Key(), prev)
		}
		keys[cur.Key()] = cur.Line
		out = append(out, cur)
		return nil
	}
	// Lines are looked at as bytes: only the values kept become strings
	// (the descriptions, most of the file, are skipped without a copy).
	err := dpkgByteLines(r, name, func(n int, line []byte) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return end()
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !in {
				return dpkgErr(name, n, "continuation line outside a field")
			}
			if !conff {
				return nil
			}
			c, err := parseDpkgConffile(string(bytes.TrimSpace(line)))
			if err != nil {
				return dpkgErr(name, n, "conffile: %v", err)
			}
			cur.Conffiles = append(cur.Conffiles, c)
			return nil
		}
		k, vb, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(k) == 0 || bytes.ContainsAny(k, " \t") {
			return dpkgErr(name, n, "not a field: %q", clip(string(line)))
		}
		if !in {
			in = true
			cur = DpkgStatus{Line: n}
			seen.reset()
		}
		var buf [32]byte
		field := lowerField(buf[:0], k)
		if !seen.add(field) {
			return dpkgErr(name, n, "field %s repeated", k)
		}
		vb = bytes.TrimSpace(vb)
		conff = false
		switch string(field) {
		case "package":
			v := string(vb)
			if !validDpkgName(v) {
				return dpkgErr(name, n, "invalid package name %q", clip(v))
			}
			cur.Package = v
		case "architecture":
			if bytes.ContainsAny(vb, " \t:/") {
				return dpkgErr(name, n, "invalid architecture %q", clip(string(vb)))
			}
			cur.Arch = string(vb)
		case "multi-arch":
			cur.MultiArch = string(vb)
		case "version":
			cur.Version = string(vb)
		case "status":
			if len(bytes.Fields(vb)) != 3 {
				return dpkgErr(name, n, "status %q is not three words", clip(string(vb)))
			}
			cur.Status = string(vb)
		case "conffiles":
			if len(vb) != 0 {
				return dpkgErr(name, n, "conffiles value on the field line")
			}
			conff = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := end(); err != nil {
		return nil, err
	}
	return out, nil
}

// lowerField appends the field name k in lower case to dst (as
// strings.ToLower would write it).
func lowerField(dst, k []byte) []byte {
	for _, c := range k {
		if c >= utf8.RuneSelf {
			return append(dst, strings.ToLower(string(k))...)
		}
	}
	for _, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// statusFields are the field names (lower case) of one paragraph, kept in
// one buffer that the next paragraph reuses.
type statusFields struct {
	names []byte
	ends  []int
}

func (f *statusFields) reset() { f.names, f.ends = f.names[:0], f.ends[:0] }

// add records name and reports whether it is new in the paragraph.
func (f *statusFields) add(name []byte) bool {
	start := 0
	for _, end := range f.ends {
		if bytes.Equal(f.names[start:end], name) {
			return false
		}
		start = end
	}
	f.names = append(f.names, name...)
	f.ends = append(f.ends, len(f.names))
	return true
}

// parseDpkgConffile parses "/etc/x 0123...ef [obsolete] [remove-on-upgrade]"
// from the end, since the path may hold spaces.
func parseDpkgConffile(s string) (DpkgConffile, error) {
	var c DpkgConffile
	for {
		if rest, ok := strings.CutSuffix(s, " obsolete"); ok && !c.Obsolete {
			c.Obsolete, s = true, strings.TrimRight(rest, " ")
			continue
		}
		if rest, ok := strings.CutSuffix(s, " remove-on-upgrade"); ok && !c.RemoveOnUpgrade {
			c.RemoveOnUpgrade, s = true, strings.TrimRight(rest, " ")
			continue
		}
		break
	}
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return c, fmt.Errorf("%q is not a path and a digest", clip(s))
	}
	p, sum := strings.TrimRight(s[:i], " "), s[i+1:]
	if !strings.HasPrefix(p, "/") {
		return c, fmt.Errorf("path %q is not absolute", clip(p))
	}
	c.Path = path.Clean(p)
	switch sum {
	case "newconffile", "-":
	default:
		b, err := parseMD5(sum)
		if err != nil {
			return c, err
		}
		c.MD5 = b
	}
	return c, nil
}

// parseMD5 decodes 32 hex digits.
func parseMD5(s string) ([]byte, error) {
	if len(s) != 32 {
		return nil, fmt.Errorf("digest %q is not 32 hex digits", clip(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("digest %q is not 32 hex digits", clip(s))
	}
	return b, nil
}

// validDpkgName reports whether s is a package name as dpkg allows it:
// lower-case letters, digits, '+', '-' and '.', starting alphanumeric.
func validDpkgName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ParseDpkgList reads info/PKG[:ARCH].list: one absolute path per line,
// the package's directories included ("/." for the root). The paths are
// cleaned ("/." becomes "/") and share one copy of the input. An empty or
// relative line and a missing final newline (a truncated file; dpkg
// refuses it too) are errors.
func ParseDpkgList(r io.Reader, name string) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, &lineerr.Error{File: name, Err: fmt.Errorf("read: %w", err)}
	}
	s := string(b)
	out := make([]string, 0, strings.Count(s, "\n"))
	for n := 1; s != ""; n++ {
		line, rest, ok := strings.Cut(s, "\n")
		if !ok {
			return nil, dpkgErr(name, n, "missing final newline")
		}
		s = rest
		if !strings.HasPrefix(line, "/") {
			if line == "" {
				return nil, dpkgErr(name, n, "empty path")
			}
			return nil, dpkgErr(name, n, "path %q is not absolute", clip(line))
		}
		out = append(out, cleanAbs(line))
	}
	return out, nil
}

// cleanAbs is path.Clean that returns an already clean absolute path (the
// common case) as it is, without allocating.
func cleanAbs(p string) string {
	if isCleanAbs(p) {
		return p
	}
	return path.Clean(p)
}

// absClean is path.Clean("/" + p), without allocating for a path that
// is clean and absolute already (the classifier asks about thousands).
func absClean(p string) string {
	if isCleanAbs(p) {
		return p
	}
	return path.Clean("/" + p)
}

// isCleanAbs reports whether path.Clean(p) == p for an absolute p: no
// empty, "." or ".." element and no trailing slash.
func isCleanAbs(p string) bool {
	if p == "/" {
		return true
	}
	if len(p) < 2 || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// DpkgSum is one line of info/PKG[:ARCH].md5sums.
type DpkgSum struct {
	Path string // absolute, cleaned
	MD5  [16]byte
}

// ParseDpkgMD5Sums reads info/PKG[:ARCH].md5sums, md5sum's output for the
// package's files relative to the root:
//
//	764efa883dda1e11db47671c4a3bbd9e  usr/bin/tp
//
// A line that is not 32 hex digits, two spaces (or md5sum's " *") and a
// path is an error.
func ParseDpkgMD5Sums(r io.Reader, name string) ([]DpkgSum, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, &lineerr.Error{File: name, Err: fmt.Errorf("read: %w", err)}
	}
	// Each path becomes absolute by overwriting the separator's second
	// byte with '/', so that every path is a substring of one string.
	type span struct{ from, to int }
	spans := make([]span, 0, bytes.Count(b, []byte{'\n'})+1)
	out := make([]DpkgSum, 0, cap(spans))
	for n, at := 1, 0; at < len(b); n++ {
		end := bytes.IndexByte(b[at:], '\n')
		if end < 0 {
			end = len(b)
		} else {
			end += at
		}
		line := b[at:end]
		if len(line) == 0 {
			return nil, dpkgErr(name, n, "empty line")
		}
		if len(line) < 35 || line[32] != ' ' || (line[33] != ' ' && line[33] != '*') {
			return nil, dpkgErr(name, n, "not \"MD5  PATH\": %q", clip(string(line)))
		}
		var s DpkgSum
		if _, err := hex.Decode(s.MD5[:], line[:32]); err != nil {
			return nil, dpkgErr(name, n, "digest %q is not 32 hex digits", line[:32])
		}
		if line[34] == '/' {
			return nil, dpkgErr(name, n, "path %q is absolute", clip(string(line[34:])))
		}
		line[33] = '/'
		out = append(out, s)
		spans = append(spans, span{at + 33, end})
		at = end + 1
	}
	all := string(b)
	for i, sp := range spans {
		out[i].Path = cleanAbs(all[sp.from:sp.to])
	}
	return out, nil
}

// ParseDpkgDiversions reads dpkg's diversions file, three lines per
// diversion: the diverted path, where it lives instead, and the diverting
// package (":" for a local diversion by the admin):
//
//	/usr/bin/pg_config
//	/usr/bin/pg_config.libpq-dev
//	postgresql-common
//
// An empty or relative path, an incomplete last triplet and a path
// diverted twice are errors.
func ParseDpkgDiversions(r io.Reader, name string) ([]Diversion, error) {
	var (
		out  []Diversion
		cur  Diversion
		from = map[string]int{}
		last int
	)
	err := dpkgLines(r, name, func(n int, line string) error {
		last = n
		switch n % 3 {
		case 1, 2:
			if !strings.HasPrefix(line, "/") {
				return dpkgErr(name, n, "diversion path %q is not absolute", clip(line))
			}
			p := cleanAbs(line)
			if n%3 == 1 {
				if prev, dup := from[p]; dup {
					return dpkgErr(name, n, "%s diverted twice (first at line %d)", p, prev)
				}
				from[p] = n
				cur = Diversion{From: p}
			} else {
				cur.To = p
			}
		case 0:
			if line != ":" && !validDpkgName(line) {
				return dpkgErr(name, n, "invalid diverting package %q", clip(line))
			}
			cur.By = line
			out = append(out, cur)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if last%3 != 0 {
		return nil, dpkgErr(name, last, "incomplete diversion (want three lines: from, to, package)")
	}
	return out, nil
}

// ParseDpkgStatOverrides reads dpkg's statoverride file, one override a
// line: owner, group, octal mode and path (owner and group may be "#UID"):
//
//	root postdrop 2555 /usr/sbin/postqueue
//
// The mode keeps only permission, setuid, setgid and sticky bits.
func ParseDpkgStatOverrides(r io.Reader, name string) ([]StatOverride, error) {
	var out []StatOverride
	err := dpkgLines(r, name, func(n int, line string) error {
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 || f[0] == "" || f[1] == "" || !strings.HasPrefix(f[3], "/") {
			return dpkgErr(name, n, "not \"OWNER GROUP MODE PATH\": %q", clip(line))
		}
		m, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil || m > 0o7777 {
			return dpkgErr(name, n, "mode %q is not octal 0-7777", clip(f[2]))
		}
		out = append(out, StatOverride{Path: cleanAbs(f[3]), Owner: f[0], Group: f[1], Mode: unixMode(uint32(m))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unixMode converts the permission bits of a Unix mode to fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// DpkgLog is what one dpkg.log file says.
type DpkgLog struct {
	Runs []Run
	// Continued is true when the file's first run has no startup line: it
	// began in the previous (older) file, which rotation cut.
	Continued bool
}

// dpkgLogTime is the layout of a dpkg.log timestamp (local time).
const dpkgLogTime = "2006-01-02 15:04:05"

// ParseDpkgLog reads one dpkg.log (or a rotated, decompressed one). Every
// line is "YYYY-MM-DD HH:MM:SS WHAT ...", the time in loc (the host's zone;
// nil means time.Local). A run starts at a startup line and ends with the
// last line before the next one; lines before the first startup form a
// run of their own (Continued). The operations are:
//
//	2026-11-30 10:15:02 startup archives unpack
//	2026-11-30 10:15:02 install tp:all <none> 1.0
//	2026-11-30 10:15:02 upgrade tp:all 1.0 1.1
//	2026-11-30 10:15:02 remove tp:all 1.1 <none>
//	2026-11-30 10:15:02 purge tp:all 1.1 <none>
//	2026-11-30 10:15:02 configure tp:all 1.1 <none>
//	2026-11-30 10:15:02 trigproc man-db:amd64 2.11.2-2 <none>
//
// "status" and "conffile" lines only extend the run. A line of a known
// kind in the wrong shape and a bad timestamp are errors; a line of a kind
// dpkg may add later is skipped, as it explains nothing. Blank lines are
// skipped.
func ParseDpkgLog(r io.Reader, name string, loc *time.Location) (DpkgLog, error) {
	if loc == nil {
		loc = time.Local
	}
	var (
		out DpkgLog
		cur *Run
	)
	err := dpkgLines(r, name, func(n int, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		if len(line) < len(dpkgLogTime)+2 || line[len(dpkgLogTime)] != ' ' {
			return dpkgErr(name, n, "not \"DATE TIME WHAT ...\": %q", clip(line))
		}
		t, err := time.ParseInLocation(dpkgLogTime, line[:len(dpkgLogTime)], loc)
		if err != nil {
			return dpkgErr(name, n, "bad timestamp %q", line[:len(dpkgLogTime)])
		}
		f := strings.Fields(line[len(dpkgLogTime)+1:])
		if len(f) == 0 {
			return dpkgErr(name, n, "no event after the timestamp")
		}
		want := dpkgLogFields[f[0]]
		switch {
		case f[0] == "conffile":
			if len(f) < 3 {
				return dpkgErr(name, n, "conffile line without path and decision")
			}
		case want == 0:
			// A kind of line this parser does not know: it extends no run
			// and explains nothing.
			return nil
		case len(f) != want:
			return dpkgErr(name, n, "%s line has %d fields, want %d", f[0], len(f)-1, want-1)
		}
		if f[0] == "startup" || cur == nil {
			if f[0] != "startup" {
				out.Continued = true
			}
			out.Runs = append(out.Runs, Run{Start: t})
			cur = &out.Runs[len(out.Runs)-1]
		}
		cur.End = t
		var op Operation
		switch f[0] {
		case "install":
			op = Operation{Action: ActionInstall, OldVersion: logVersion(f[2]), NewVersion: logVersion(f[3])}
		case "upgrade":
			op = Operation{Action: ActionUpgrade, OldVersion: logVersion(f[2]), NewVersion: logVersion(f[3])}
		case "remove":
			op = Operation{Action: ActionRemove, OldVersion: logVersion(f[2])}
		case "purge":
			op = Operation{Action: ActionPurge, OldVersion: logVersion(f[2])}
		case "configure":
			op = Operation{Action: ActionConfigure, NewVersion: logVersion(f[2])}
		case "trigproc":
			op = Operation{Action: ActionTrigger, NewVersion: logVersion(f[2])}
		default:
			return nil
		}
		if !validDpkgPkgArch(f[1]) {
			return dpkgErr(name, n, "invalid package %q", clip(f[1]))
		}
		op.Time, op.Package = t, f[1]
		cur.Ops = append(cur.Ops, op)
		return nil
	})
	if err != nil {
		return DpkgLog{}, err
	}
	return out, nil
}

// dpkgLogFields is the number of words of each kind of dpkg.log line that
// pkgdb reads, the kind included.
var dpkgLogFields = map[string]int{"startup": 3, "status": 4, "install": 4, "upgrade": 4,
	"remove": 4, "purge": 4, "configure": 4, "trigproc": 4}

// logVersion maps dpkg.log's "<none>" to "".
func logVersion(v string) string {
	if v == "<none>" {
		return ""
	}
	return v
}

// validDpkgPkgArch accepts "name" and "name:arch".
func validDpkgPkgArch(s string) bool {
	n, a, ok := strings.Cut(s, ":")
	return validDpkgName(n) && (!ok || a != "" && !strings.ContainsAny(a, ":/"))
}
