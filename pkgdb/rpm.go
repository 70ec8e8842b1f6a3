package pkgdb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"opsagent/internal/capped"
)

// ErrRPMAbsent means there is no rpm binary to ask or no database for it
// to read: the host has no rpm package database.
var ErrRPMAbsent = errors.New("pkgdb: no rpm package database")

// RPMOptions configures OpenRPM. The zero value reads the host's database
// with the rpm found on PATH.
type RPMOptions struct {
	// Binary is the rpm executable; "" means "rpm" on PATH, else
	// /usr/bin/rpm.
	Binary string
	// Root is passed as --root: rpm then reads Root/DBPath and every path
	// (Owners, Records, ...) is one inside Root. "" means "/".
	Root string
	// DBPath is passed as --dbpath (inside Root); "" means rpm's own
	// default (%_dbpath: /var/lib/rpm, or /usr/lib/sysimage/rpm) or,
	// where that holds no database (Debian's rpm defaults to ~/.rpmdb),
	// the first of /var/lib/rpm and /usr/lib/sysimage/rpm that does.
	DBPath string
	// Log is dnf's rpm transaction log read for Runs, with its rotated
	// siblings (Log.N, Log-DATE, optionally gzipped); "" means
	// /var/log/dnf.rpm.log inside Root. A missing log is no error.
	Log string
	// Timeout bounds each rpm run; 0 means two minutes (a full dump of a
	// large host takes seconds).
	Timeout time.Duration
}

const rpmDefaultTimeout = 2 * time.Minute

// rpmMaxOutput bounds the dump read from rpm (a RHEL host with 2,000
// packages and 300,000 files dumps about 60 MiB).
const rpmMaxOutput = 1 << 30

// rpmRecordDirs are the places where rpm keeps its database on the
// distributions we know, besides the configured one.
var rpmRecordDirs = []string{"/var/lib/rpm", "/usr/lib/sysimage/rpm"}

// usrMergeDirs are the top-level directories a merged-/usr host links
// into /usr.
var usrMergeDirs = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// RPM is the rpm backend: a snapshot of the package database taken at
// OpenRPM by running `rpm -qa --queryformat` once, indexed in memory. Its
// methods do no I/O and are safe for concurrent use.
//
// Package names: File.Package and Operation.Package are the bare name,
// except for a name installed for several architectures (multilib), which
// is "name.arch" as rpm spells it. Several versions of one name.arch (the
// install-only kernel packages) share that spelling: Files returns the
// files of all of them, each File with its own Version, and Package the
// most recently installed one.
type RPM struct {
	pkgs    map[string][]RPMHeader // by spelling, most recently installed first
	owners  map[string][]File      // by path
	files   map[string][]File      // by spelling
	runs    []Run                  // oldest first
	records []string               // database directories, cleaned
	usr     map[string]string      // "/bin" -> "/usr/bin" on merged-/usr
}

// OpenRPM runs rpm to read the installed packages and their files, reads
// dnf's log when present, and indexes both. Reading may leave rpm's lock
// and SQLite shared-memory files in the database directory (Records
// reports them), nothing else. Errors: ErrRPMAbsent (no rpm, or no
// non-empty database directory), a failed
// or timed-out rpm run (with the first line rpm wrote on stderr), output
// that does not parse (ErrRPMQuery, naming the line), a damaged log
// (ErrDNFLog), or ctx's error.
func OpenRPM(ctx context.Context, opts RPMOptions) (*RPM, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("rpm"); err != nil {
			bin = "/usr/bin/rpm"
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRPMAbsent, err)
	}
	root := opts.Root
	if root == "" {
		root = "/"
	}
	var base []string
	if opts.Root != "" {
		base = append(base, "--root", opts.Root)
	}
	if opts.DBPath != "" {
		base = append(base, "--dbpath", opts.DBPath)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = rpmDefaultTimeout
	}
	dbpath := opts.DBPath
	if dbpath == "" {
		b, err := runRPM(ctx, "rpm --eval", bin, timeout, append(base, "--eval", "%{_dbpath}"))
		if err != nil {
			return nil, err
		}
		dbpath = strings.TrimSpace(string(b))
	}
	// rpm -qa creates a database where there is none (Debian's rpm does
	// so in ~/.rpmdb): a read-only view must not, and an empty new
	// database would claim that nothing is installed.
	dbdir := filepath.Join(root, dbpath)
	err := nonEmptyDir(dbdir)
	if err != nil && opts.DBPath == "" {
		// The rpm that runs may not be the host's: Debian's puts its
		// database in ~/.rpmdb, so a Red Hat root_prefix host (or a
		// Debian host whose rpm is only a tool) keeps its database at one
		// of the usual places instead.
		for _, dir := range rpmRecordDirs {
			if dir != dbpath && nonEmptyDir(filepath.Join(root, dir)) == nil {
				dbpath, err = dir, nil
				base = append(base, "--dbpath", dir)
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRPMAbsent, dbdir, err)
	}
	out, err := runRPM(ctx, "rpm -qa", bin, timeout, append(base, "-qa", "--queryformat", rpmQueryFormat))
	if err != nil {
		return nil, err
	}
	hdrs, err := ParseRPMQuery(bytes.NewReader(out), "rpm -qa")
	if err != nil {
		return nil, err
	}
	logPath := opts.Log
	if logPath == "" {
		logPath = filepath.Join(root, "var/log/dnf.rpm.log")
	}
	logRuns, err := readDNFLogs(logPath)
	if err != nil {
		return nil, err
	}
	db := newRPM(hdrs, logRuns, usrMerge(root))
	db.records = append(db.records, rpmRecordDirs...)
	if strings.HasPrefix(dbpath, "/") {
		db.records = append(db.records, path.Clean(dbpath))
	}
	return db, nil
}

// nonEmptyDir returns nil if dir is a directory with entries.
func nonEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) == 0 {
		err = errors.New("empty directory")
	}
	return err
}

// runRPM runs rpm with args and returns its stdout.
// name labels errors ("rpm -qa").
func runRPM(ctx context.Context, name, bin string, timeout time.Duration, args []string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	stdout, stderr := &capped.Buffer{Max: rpmMaxOutput}, &capped.Buffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", name, ctx.Err())
	case cctx.Err() != nil:
		return nil, fmt.Errorf("%s: timed out after %v", name, timeout)
	case stdout.Over():
		return nil, fmt.Errorf("%s: output larger than %d bytes", name, rpmMaxOutput)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		// Skip Debian's notice that rpm is not its package manager.
		for _, l := range strings.Split(msg, "\n") {
			if strings.HasPrefix(l, "error:") {
				msg = l
				break
			}
		}
		msg, _, _ = strings.Cut(msg, "\n")
		if msg != "" {
			return nil, fmt.Errorf("%s: %w: %s", name, err, rpmClip(msg))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

// readDNFLogs parses p and its rotated siblings (p.1, p-20240101, with or
// without .gz) into one list of runs, oldest first.
func readDNFLogs(p string) ([]Run, error) {
	var names []string
	for _, pat := range []string{p + ".*", p + "-*"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		names = append(names, m...)
	}
	names = append(names, p)
	var runs []Run
	for _, n := range names {
		rs, err := readDNFLog(n)
		if err != nil {
			return nil, err
		}
		runs = append(runs, rs...)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	return runs, nil
}

func readDNFLog(name string) ([]Run, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		defer z.Close()
		r = z
	}
	return ParseDNFLog(r, name)
}

// usrMerge returns the top-level directories of root that are symbolic
// links into /usr, mapped to their targets.
func usrMerge(root string) map[string]string {
	m := map[string]string{}
	for _, d := range usrMergeDirs {
		t, err := os.Readlink(filepath.Join(root, d))
		if err != nil {
			continue
		}
		if !strings.HasPrefix(t, "/") {
			t = path.Join("/", t)
		}
		t = path.Clean(t)
		if strings.HasPrefix(t, "/usr/") {
			m[d] = t
		}
	}
	return m
}

// newRPM indexes the parsed headers and merges the runs their transaction
// ids give with those of dnf's log.
func newRPM(hdrs []RPMHeader, logRuns []Run, usr map[string]string) *RPM {
	db := &RPM{
		pkgs:   map[string][]RPMHeader{},
		owners: map[string][]File{},
		files:  map[string][]File{},
		usr:    usr,
	}
	arches := map[string]map[string]bool{}
	for _, h := range hdrs {
		if arches[h.Name] == nil {
			arches[h.Name] = map[string]bool{}
		}
		arches[h.Name][h.Arch] = true
	}
	spell := func(name, arch string) string {
		if len(arches[name]) > 1 {
			return name + "." + arch
		}
		return name
	}
	for _, h := range hdrs {
		key := spell(h.Name, h.Arch)
		for i := range h.Files {
			h.Files[i].Package = key
			db.owners[h.Files[i].Path] = append(db.owners[h.Files[i].Path], h.Files[i])
		}
		db.files[key] = append(db.files[key], h.Files...)
		db.pkgs[key] = append(db.pkgs[key], h)
	}
	for _, hs := range db.pkgs {
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].Installed.After(hs[j].Installed) })
	}
	for _, r := range logRuns {
		for i := range r.Ops {
			o := &r.Ops[i]
			if dot := strings.LastIndexByte(o.Package, '.'); dot > 0 {
				o.Package = spell(o.Package[:dot], o.Package[dot+1:])
			}
		}
	}
	db.runs = mergeRuns(tidRuns(hdrs, spell), logRuns)
	return db
}

// tidRuns derives runs from the rpm database alone: the packages sharing
// an INSTALLTID were installed by one transaction, which began at the TID
// and ended with the second of the last INSTALLTIME (scriptlets after it,
// %posttrans above all, may run past End). The database keeps no old
// versions and no removals, so each package is an ActionInstall of its
// present version, without OldVersion; dnf's log adds the rest.
func tidRuns(hdrs []RPMHeader, spell func(name, arch string) string) []Run {
	byTID := map[int64]*Run{}
	for _, h := range hdrs {
		if h.TID.IsZero() || h.Installed.IsZero() {
			continue
		}
		r := byTID[h.TID.Unix()]
		if r == nil {
			r = &Run{Start: h.TID, End: h.TID.Add(time.Second)}
			byTID[h.TID.Unix()] = r
		}
		if h.Installed.Before(r.Start) {
			r.Start = h.Installed
		}
		if end := h.Installed.Add(time.Second); end.After(r.End) {
			r.End = end
		}
		r.Ops = append(r.Ops, Operation{Time: h.Installed, Action: ActionInstall, Package: spell(h.Name, h.Arch), NewVersion: h.Version})
	}
	runs := make([]Run, 0, len(byTID))
	for _, r := range byTID {
		sort.SliceStable(r.Ops, func(i, j int) bool {
			if !r.Ops[i].Time.Equal(r.Ops[j].Time) {
				return r.Ops[i].Time.Before(r.Ops[j].Time)
			}
			return r.Ops[i].Package < r.Ops[j].Package
		})
		runs = append(runs, *r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Start.Before(runs[j].Start) })
	return runs
}

// mergeRuns returns the log's runs, each widened to the database runs it
// overlaps (the log has the operations, the database the exact
// transaction start), plus the database runs no log run covers, such as a
// plain `rpm -U`. The result is ordered by Start.
func mergeRuns(dbRuns, logRuns []Run) []Run {
	const slack = 2 * time.Second // both sources have second resolution
	out := append([]Run(nil), logRuns...)
	for _, d := range dbRuns {
		covered := false
		for i := range out[:len(logRuns)] {
			l := &out[i]
			if d.Start.After(l.End.Add(slack)) || d.End.Add(slack).Before(l.Start) {
				continue
			}
			covered = true
			if d.Start.Before(l.Start) {
				l.Start = d.Start
			}
			if d.End.After(l.End) {
				l.End = d.End
			}
		}
		if !covered {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Backend returns "rpm".
func (db *RPM) Backend() string { return "rpm" }

// Owners returns every record of p, and on a merged-/usr host those of its
// other spelling (/bin/sh and /usr/bin/sh). Records keep the path the
// package ships.
func (db *RPM) Owners(p string) []File {
	p = path.Clean(p)
	out := append([]File(nil), db.owners[p]...)
	for link, target := range db.usr {
		if rest, ok := strings.CutPrefix(p, link+"/"); ok {
			out = append(out, db.owners[target+"/"+rest]...)
		} else if rest, ok := strings.CutPrefix(p, target+"/"); ok {
			out = append(out, db.owners[link+"/"+rest]...)
		}
	}
	return out
}

// Package returns the installed package spelled name: the bare name, the
// "name.arch" of a multilib package, or "name:arch" for the same. A bare
// name installed for several arches is ambiguous and not found.
func (db *RPM) Package(name string) (Package, bool) {
	if hs := db.pkgs[name]; len(hs) > 0 {
		return hs[0].Package, true
	}
	if i := strings.LastIndexAny(name, ".:"); i > 0 {
		n, arch := name[:i], name[i+1:]
		for _, key := range []string{n + "." + arch, n} {
			for _, h := range db.pkgs[key] {
				if h.Arch == arch {
					return h.Package, true
				}
			}
		}
	}
	return Package{}, false
}

// Packages returns every package spelling Files takes, sorted.
func (db *RPM) Packages() []string {
	out := make([]string, 0, len(db.files))
	for k := range db.files {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Files returns the records of every path of the package spelled pkg.
func (db *RPM) Files(pkg string) []File {
	if files, ok := db.files[pkg]; ok {
		return append([]File(nil), files...)
	}
	if i := strings.LastIndexByte(pkg, ':'); i > 0 {
		return db.Files(pkg[:i] + "." + pkg[i+1:])
	}
	return nil
}

// Runs returns the runs that ended at or after since, oldest first.
func (db *RPM) Runs(since time.Time) []Run {
	var out []Run
	for _, r := range db.runs {
		if !r.End.Before(since) {
			r.Ops = append([]Operation(nil), r.Ops...)
			out = append(out, r)
		}
	}
	return out
}

// StatOverride reports none: rpm has no admin overrides of owner or mode.
func (db *RPM) StatOverride(string) (StatOverride, bool) { return StatOverride{}, false }

// Records reports whether p lies in rpm's database directory (rpmdb.sqlite,
// Packages, the Berkeley DB indexes, ...). Its files belong to every
// package at once, so pkg is always "".
func (db *RPM) Records(p string) (pkg string, ok bool) {
	p = path.Clean(p)
	for _, d := range db.records {
		if strings.HasPrefix(p, d+"/") {
			return "", true
		}
	}
	return "", false
}

// String names the snapshot for logs: "rpm: 412 packages, 61234 paths".
func (db *RPM) String() string {
	return "rpm: " + strconv.Itoa(len(db.pkgs)) + " packages, " + strconv.Itoa(len(db.owners)) + " paths"
}

var _ DB = (*RPM)(nil)
