package pkgdb

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"opsagent/internal/lineerr"
)

// ErrRPMQuery is the cause of every error in rpm's query output: a record
// that is truncated, a field that is not a number, an unknown record kind.
var ErrRPMQuery = errors.New("pkgdb: malformed rpm query output")

// rpmQueryFormat is the --queryformat the rpm backend runs. Every package is
// one P record, one F record per file, and an E record that closes it, so a
// truncated dump is an error rather than a package with fewer files.
// Records are fields separated by one space and end at a newline. Numbers
// are bare decimal; every string goes through rpm's shescape formatter,
// which wraps it in single quotes and ends the quoting around an embedded
// quote, escaping it with a backslash (see rpmScanner.record), so a space,
// tab or newline inside a path is data, not a separator
// (rpmbuild refuses such names, but other builders do not). Only old,
// universal tags and formatters are used (no :json, :arraysize or
// :fflags, which newer rpm releases added), so that one format serves
// every RPM distro; it was checked against rpm 4.18.
// Tags a package may lack print a placeholder through %|TAG?{..}:{..}|:
// gpg-pubkey pseudo-packages have no arch, and packages built before
// FILEDIGESTALGO existed used MD5 (algorithm 1).
//
//	P 'bash' - '5.1.8' '6.el9' 'x86_64' 1700000000 1699999990 8
//	F 33261 0 0 1389064 'root' 'root' '6a1e...' '' '/usr/bin/bash'
//	F 41471 0 0 4 'root' 'root' '' 'bash' '/usr/bin/sh'
//	E
//
// P fields: name, epoch ("-" for none), version, release, arch ("-" for
// none), INSTALLTIME, INSTALLTID (both seconds since the epoch),
// FILEDIGESTALGO. F fields: FILEMODES, FILEFLAGS, FILESTATES,
// LONGFILESIZES, owner, group, hex digest (empty for none), link target,
// path.
const rpmQueryFormat = `P %{NAME:shescape} %|EPOCH?{%{EPOCH}}:{-}| %{VERSION:shescape} %{RELEASE:shescape} %|ARCH?{%{ARCH:shescape}}:{-}| %|INSTALLTIME?{%{INSTALLTIME}}:{0}| %|INSTALLTID?{%{INSTALLTID}}:{0}| %|FILEDIGESTALGO?{%{FILEDIGESTALGO}}:{1}|\n` +
	`[F %{FILEMODES} %{FILEFLAGS} %{FILESTATES} %{LONGFILESIZES} %{FILEUSERNAME:shescape} %{FILEGROUPNAME:shescape} %{FILEDIGESTS:shescape} %{FILELINKTOS:shescape} %{FILENAMES:shescape}\n]` +
	`E\n`

// The FILEFLAGS bits the backend reads (rpmfiles.h, RPMFILE_*).
const (
	rpmFileConfig = 1 << 0
	rpmFileGhost  = 1 << 6
)

// rpmFileStateNormal is FILESTATES 0: the file was installed as recorded.
// The other states (replaced by another package, not installed because of
// --excludedocs or a netshared path, wrong color) mean that what lies on
// disk is not this record's content.
const rpmFileStateNormal = 0

// rpmDigestAlgos maps FILEDIGESTALGO (OpenPGP hash algorithm numbers) to
// the names File.DigestAlgo uses and the digest length in bytes.
var rpmDigestAlgos = map[int]rpmDigestSpec{
	1:  {"md5", 16},
	2:  {"sha1", 20},
	8:  {"sha256", 32},
	9:  {"sha384", 48},
	10: {"sha512", 64},
	11: {"sha224", 28},
}

// RPMHeader is one installed package as the query dump describes it.
type RPMHeader struct {
	Package
	Epoch   string    // "" when the package has none
	Release string    // also part of Version
	TID     time.Time // INSTALLTID: when its transaction began
	Files   []File    // Package set to the bare name, Version as above

	digest rpmDigestSpec // the package's FILEDIGESTALGO
}

// rpmDigestSpec names a digest algorithm and its length in bytes (-1 when
// unknown).
type rpmDigestSpec struct {
	name string
	size int
}

// ParseRPMQuery parses the output of `rpm -qa --queryformat` with
// rpmQueryFormat. name labels errors, which are lineerr.Errors at the line
// where the broken record starts and unwrap to ErrRPMQuery. A package's
// Version is "[epoch:]version-release", as rpm spells an EVR; its Status is
// "installed"; File records carry the package's bare name (OpenRPM
// qualifies names that several installed arches share).
func ParseRPMQuery(r io.Reader, name string) ([]RPMHeader, error) {
	p := &rpmScanner{r: bufio.NewReader(r), line: 1}
	var out []RPMHeader
	var cur *RPMHeader
	curLine := 0 // where cur's P record starts
	for {
		start := p.line
		fields, err := p.record()
		fail := func(format string, args ...any) error {
			return &lineerr.Error{File: name, Line: start, Err: fmt.Errorf("%w: "+format, append([]any{ErrRPMQuery}, args...)...)}
		}
		if err == io.EOF {
			if cur != nil {
				start = curLine
				return nil, fail("package %s: output ends before its E record", cur.Name)
			}
			return out, nil
		}
		if err != nil {
			return nil, fail("%v", err)
		}
		switch fields[0] {
		case "P":
			if cur != nil {
				return nil, fail("package %s: P record before its E record", cur.Name)
			}
			h, err := parseRPMPackage(fields[1:])
			if err != nil {
				return nil, fail("%v", err)
			}
			cur, curLine = &h, start
		case "F":
			if cur == nil {
				return nil, fail("F record outside a package")
			}
			f, err := parseRPMFile(fields[1:], cur)
			if err != nil {
				return nil, fail("package %s: %v", cur.Name, err)
			}
			cur.Files = append(cur.Files, f)
		case "E":
			if cur == nil {
				return nil, fail("E record outside a package")
			}
			if len(fields) != 1 {
				return nil, fail("E record with %d fields", len(fields)-1)
			}
			out = append(out, *cur)
			cur = nil
		default:
			return nil, fail("unknown record %q", rpmClip(fields[0]))
		}
	}
}

// parseRPMPackage reads the P fields:
//
//	'bash' - '5.1.8' '6.el9' 'x86_64' 1700000000 1699999990 8
func parseRPMPackage(f []string) (RPMHeader, error) {
	if len(f) != 8 {
		return RPMHeader{}, fmt.Errorf("P record has %d fields, want 8", len(f))
	}
	var h RPMHeader
	h.Name, h.Epoch, h.Release, h.Arch = f[0], f[1], f[3], f[4]
	if h.Name == "" || strings.ContainsAny(h.Name, " /\n\t") {
		return h, fmt.Errorf("bad package name %q", rpmClip(h.Name))
	}
	if h.Epoch == "-" {
		h.Epoch = ""
	} else if _, err := strconv.ParseUint(h.Epoch, 10, 32); err != nil {
		return h, fmt.Errorf("package %s: bad epoch %q", h.Name, rpmClip(h.Epoch))
	}
	if h.Arch == "-" {
		h.Arch = ""
	}
	if f[2] == "" {
		return h, fmt.Errorf("package %s: empty version", h.Name)
	}
	h.Version = f[2] + "-" + h.Release
	if h.Epoch != "" {
		h.Version = h.Epoch + ":" + h.Version
	}
	h.Status = "installed"
	it, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil || it < 0 {
		return h, fmt.Errorf("package %s: bad install time %q", h.Name, rpmClip(f[5]))
	}
	tid, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil || tid < 0 {
		return h, fmt.Errorf("package %s: bad transaction id %q", h.Name, rpmClip(f[6]))
	}
	if it > 0 {
		h.Installed = time.Unix(it, 0).UTC()
	}
	if tid > 0 {
		h.TID = time.Unix(tid, 0).UTC()
	}
	algo, err := strconv.Atoi(f[7])
	if err != nil {
		return h, fmt.Errorf("package %s: bad digest algorithm %q", h.Name, rpmClip(f[7]))
	}
	// An unknown algorithm keeps its number as the name: the digests stay
	// comparable by a caller that knows it, and nothing is guessed.
	h.digest = rpmDigestSpec{name: "rpm-algo-" + strconv.Itoa(algo), size: -1}
	if a, ok := rpmDigestAlgos[algo]; ok {
		h.digest = rpmDigestSpec{name: a.name, size: a.size}
	}
	return h, nil
}

// parseRPMFile reads the F fields:
//
//	33261 0 0 1389064 'root' 'root' '6a1e...' '' '/usr/bin/bash'
func parseRPMFile(f []string, h *RPMHeader) (File, error) {
	if len(f) != 9 {
		return File{}, fmt.Errorf("F record has %d fields, want 9", len(f))
	}
	p := f[8]
	if !strings.HasPrefix(p, "/") {
		return File{}, fmt.Errorf("path %q is not absolute", rpmClip(p))
	}
	file := File{
		Path:       path.Clean(p),
		Package:    h.Name,
		Version:    h.Version,
		HasMeta:    true,
		Owner:      f[4],
		Group:      f[5],
		LinkTarget: f[7],
	}
	mode, err := strconv.ParseInt(f[0], 10, 32)
	// rpm keeps modes as 16-bit numbers; old versions print them signed.
	if err == nil && mode < 0 && mode >= -1<<15 {
		mode += 1 << 16
	}
	if err != nil || mode < 0 || mode >= 1<<16 {
		return File{}, fmt.Errorf("%s: bad mode %q", rpmClip(p), rpmClip(f[0]))
	}
	file.Mode = rpmMode(uint32(mode))
	flags, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return File{}, fmt.Errorf("%s: bad flags %q", rpmClip(p), rpmClip(f[1]))
	}
	state, err := strconv.ParseInt(f[2], 10, 8)
	if err != nil {
		return File{}, fmt.Errorf("%s: bad state %q", rpmClip(p), rpmClip(f[2]))
	}
	file.Size, err = strconv.ParseInt(f[3], 10, 64)
	if err != nil || file.Size < 0 {
		return File{}, fmt.Errorf("%s: bad size %q", rpmClip(p), rpmClip(f[3]))
	}
	file.Conffile = flags&rpmFileConfig != 0
	if d := f[6]; d != "" {
		sum, err := hex.DecodeString(d)
		if err != nil || (h.digest.size > 0 && len(sum) != h.digest.size) {
			return File{}, fmt.Errorf("%s: bad %s digest %q", rpmClip(p), h.digest.name, rpmClip(d))
		}
		// A ghost file's content is whatever it becomes at run time, and a
		// file in any state but normal is not the one on disk: neither
		// record may vouch for content.
		if flags&rpmFileGhost == 0 && state == rpmFileStateNormal && file.Mode.IsRegular() {
			file.Digest, file.DigestAlgo = sum, h.digest.name
		}
	}
	return file, nil
}

// rpmMode converts st_mode bits to an fs.FileMode.
func rpmMode(m uint32) fs.FileMode {
	mode := unixMode(m)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		mode |= fs.ModeDevice
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	case 0o100000:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// rpmScanner splits the dump into records of fields, undoing shescape.
type rpmScanner struct {
	r    *bufio.Reader
	line int // line of the next byte
}

// maxRPMField bounds one field, so that a dump without quotes closing
// cannot grow a string without end (PATH_MAX is 4096; digests are shorter).
const maxRPMField = 64 << 10

// record returns the fields of the next record, io.EOF at a clean end, or
// an error for a record that does not split.
func (s *rpmScanner) record() ([]string, error) {
	var fields []string
	var b []byte
	quoted := false // the current field had a quoted part
	for {
		c, err := s.r.ReadByte()
		if err == io.EOF {
			if len(fields) == 0 && len(b) == 0 && !quoted {
				return nil, io.EOF
			}
			return nil, errors.New("record not ended by a newline")
		}
		if err != nil {
			return nil, err
		}
		switch c {
		case '\n':
			s.line++
			fields = append(fields, string(b))
			if fields[0] == "" {
				return nil, errors.New("empty record kind")
			}
			return fields, nil
		case ' ':
			fields = append(fields, string(b))
			b, quoted = b[:0], false
		case '\'':
			// A quoted part runs to the next quote. shescape spells
			// the name it's as:
			//	'it'\''s'
			for {
				q, err := s.r.ReadByte()
				if err != nil {
					return nil, errors.New("quoted string not closed")
				}
				if q == '\n' {
					s.line++
				}
				if q == '\'' {
					break
				}
				if len(b) >= maxRPMField {
					return nil, fmt.Errorf("field longer than %d bytes", maxRPMField)
				}
				b = append(b, q)
			}
			quoted = true
		case '\\':
			// Only the \' of shescape's '\'' may appear outside quotes.
			q, err := s.r.ReadByte()
			if err != nil || q != '\'' || !quoted {
				return nil, errors.New("stray backslash outside quotes")
			}
			b = append(b, '\'')
			if n, err := s.r.ReadByte(); err != nil || n != '\'' {
				return nil, errors.New("escaped quote not followed by a quoted string")
			}
			if err := s.r.UnreadByte(); err != nil {
				return nil, err
			}
		default:
			if quoted {
				return nil, fmt.Errorf("byte %q after a quoted string", c)
			}
			if len(b) >= maxRPMField {
				return nil, fmt.Errorf("field longer than %d bytes", maxRPMField)
			}
			b = append(b, c)
		}
	}
}

// rpmClip shortens a field quoted in an error.
func rpmClip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
