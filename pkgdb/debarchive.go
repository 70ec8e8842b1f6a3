package pkgdb

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"opsagent/internal/capped"
	"os/exec"
	"strings"
	"time"
)

// ErrDebNoMD5Sums means a .deb ships no md5sums control member (packages
// built without dh_md5sums); dpkg then computes the installed record
// itself at unpack time, so there is nothing to compare it with.
var ErrDebNoMD5Sums = errors.New("deb: no md5sums control member")

// debMaxMD5Sums bounds the md5sums member read from a .deb (the largest
// Debian packages list about 100,000 files: 10 MiB).
const debMaxMD5Sums = 64 << 20

// DebNames returns the file names p's .deb has in an apt archive
// directory, name_version_arch.deb, in the spellings apt and dpkg-name use
// for an epoch: "1:2.0-1" is "2.0-1" or "1%3a2.0-1".
func DebNames(p Package) []string {
	name := func(v string) string { return p.Name + "_" + v + "_" + p.Arch + ".deb" }
	epoch, rest, ok := strings.Cut(p.Version, ":")
	if !ok {
		return []string{name(p.Version)}
	}
	return []string{name(epoch + "%3a" + rest), name(rest)}
}

// ParseDebControlTar reads a .deb's control member as an uncompressed tar
// (what dpkg-deb --ctrl-tarfile writes) and returns its md5sums, or
// ErrDebNoMD5Sums when it has none. name labels errors. A damaged tar or
// md5sums is an error.
func ParseDebControlTar(r io.Reader, name string) ([]DpkgSum, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: %w", name, ErrDebNoMD5Sums)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: control tar: %w", name, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "md5sums" || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > debMaxMD5Sums {
			return nil, fmt.Errorf("%s: md5sums is %d bytes, more than %d", name, h.Size, debMaxMD5Sums)
		}
		return ParseDpkgMD5Sums(io.LimitReader(tr, debMaxMD5Sums), name+" md5sums")
	}
}

// ReadDebMD5Sums returns the md5sums a .deb ships, as the package's
// maintainer built it. It runs dpkg-deb --ctrl-tarfile (an argv, LC_ALL=C,
// bounded by timeout; 0 means a minute), which handles every control
// compression dpkg knows, and parses the tar with ParseDebControlTar.
func ReadDebMD5Sums(ctx context.Context, deb string, timeout time.Duration) ([]DpkgSum, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "dpkg-deb", "--ctrl-tarfile", deb)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	stdout, stderr := &capped.Buffer{Max: debMaxMD5Sums + 1<<20}, &capped.Buffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("dpkg-deb %s: %w", deb, ctx.Err())
	case cctx.Err() != nil:
		return nil, fmt.Errorf("dpkg-deb %s: timed out after %v", deb, timeout)
	case stdout.Over():
		return nil, fmt.Errorf("dpkg-deb %s: control member larger than %d bytes", deb, stdout.Max)
	case err != nil:
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg != "" {
			return nil, fmt.Errorf("dpkg-deb %s: %w: %s", deb, err, rpmClip(strings.TrimPrefix(msg, "dpkg-deb: error: ")))
		}
		return nil, fmt.Errorf("dpkg-deb %s: %w", deb, err)
	}
	return ParseDebControlTar(bytes.NewReader(stdout.Bytes()), deb)
}

// DebDiff is a path whose installed md5sums record differs from the
// md5sums of the package's .deb: a record rewritten on the host.
type DebDiff struct {
	Path     string // where the file lies (after diversions)
	Recorded []byte // the installed record's md5; nil when it has none
	Deb      []byte // the .deb's md5
}

// CompareDebSums compares the installed md5sums record of pkg ("name" or
// "name:arch") with sums, the md5sums of the package's .deb, and returns
// every path the .deb vouches for whose record differs or is missing,
// sorted by the .deb's order. Conffiles are skipped: their record is the
// status file's, which the .deb's md5sums does not cover. An unknown
// package differs everywhere.
func (d *Dpkg) CompareDebSums(pkg string, sums []DpkgSum) []DebDiff {
	p, _ := d.lookup(pkg)
	recs := map[string]*dpkgEntry{}
	if p != nil {
		for j := p.first; j < p.end; j++ {
			recs[d.canon(d.entries[j].path)] = &d.entries[j]
		}
	}
	var out []DebDiff
	for _, s := range sums {
		e := recs[d.canon(s.Path)]
		if e != nil && (e.conffile || e.hasMD5 && e.md5 == s.MD5) {
			continue
		}
		at := s.Path
		if div, ok := d.divFrom[d.canon(s.Path)]; ok && p != nil && div.By != p.Name {
			at = div.To
		}
		diff := DebDiff{Path: at, Deb: append([]byte(nil), s.MD5[:]...)}
		if e != nil && e.hasMD5 {
			diff.Recorded = append([]byte(nil), e.md5[:]...)
		}
		out = append(out, diff)
	}
	return out
}
