package posture

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)).
type Mount struct {
	ID, Parent   int
	Major, Minor uint32   // st_dev of the file system
	Root         string   // the directory of the file system mounted here ("/" unless a bind mount of a subtree)
	MountPoint   string   // where it is mounted, in the reader's mount namespace
	Options      []string // per-mount options ("rw", "nosuid", "noexec", ...)
	FSType       string
	Source       string
	SuperOptions []string // per-superblock options ("size=...", "mode=1777")
	Line         int      // 1-based line number in the file
}

// HasOption reports whether the per-mount options contain opt.
func (m *Mount) HasOption(opt string) bool {
	for _, o := range m.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// superOption returns the value of a per-superblock option "key=value".
func (m *Mount) superOption(key string) (string, bool) {
	for _, o := range m.SuperOptions {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// maxMountinfoLine bounds one line: mount points are at most PATH_MAX
// (4096) bytes, four times that escaped, plus options.
const maxMountinfoLine = 1 << 16

// ParseMountinfo parses the mountinfo format of proc(5):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Paths and the source have blanks, tabs, newlines and backslashes escaped
// as \040, \011, \012 and \134; any \NNN octal escape is decoded. name
// labels errors, which give the line number. An empty input is no error
// (and no mounts).
func ParseMountinfo(r io.Reader, name string) ([]Mount, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMountinfoLine)
	var out []Mount
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		m, err := parseMountLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		m.Line = line
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

func parseMountLine(text string) (Mount, error) {
	var m Mount
	f := strings.Fields(text)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || len(f) < sep+3 {
		return m, fmt.Errorf("malformed mountinfo line (want ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [FIELDS] - TYPE SOURCE [SUPEROPTIONS]): %q", text)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil || m.ID < 0 {
		return m, fmt.Errorf("bad mount ID %q", f[0])
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil || m.Parent < 0 {
		return m, fmt.Errorf("bad parent ID %q", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return m, fmt.Errorf("bad device %q (want MAJOR:MINOR)", f[2])
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	if m.Root, err = unescapeOctal(f[3]); err != nil {
		return m, fmt.Errorf("root: %w", err)
	}
	if m.MountPoint, err = unescapeOctal(f[4]); err != nil {
		return m, fmt.Errorf("mount point: %w", err)
	}
	if !strings.HasPrefix(m.MountPoint, "/") {
		return m, fmt.Errorf("mount point %q is not absolute", m.MountPoint)
	}
	m.Options = strings.Split(f[5], ",")
	m.FSType = f[sep+1]
	if m.Source, err = unescapeOctal(f[sep+2]); err != nil {
		return m, fmt.Errorf("source: %w", err)
	}
	if len(f) > sep+3 {
		m.SuperOptions = strings.Split(f[sep+3], ",")
	}
	return m, nil
}

// unescapeOctal decodes the \NNN escapes of the kernel's seq_file output
// (mangle_path): \040 is a blank, \134 a backslash.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape in %q", s)
		}
		v := 0
		for _, d := range []byte(s[i+1 : i+4]) {
			if d < '0' || d > '7' {
				return "", fmt.Errorf("bad escape %q in %q", s[i:i+4], s)
			}
			v = v*8 + int(d-'0')
		}
		if v > 0xff {
			return "", fmt.Errorf("bad escape %q in %q", s[i:i+4], s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// escapeOctal is the inverse of unescapeOctal for the bytes the kernel
// escapes (blank, tab, newline, backslash), as fstab(5) wants them too.
func escapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
