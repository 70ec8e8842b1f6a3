package pkgdb

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DpkgOptions says where dpkg keeps its records. Paths are as on the host;
// Root is prepended to every path read.
type DpkgOptions struct {
	// AdminDir is dpkg's admin dir; "" means /var/lib/dpkg (agent option
	// package_admindir).
	AdminDir string
	// Log is dpkg's log; "" means /var/log/dpkg.log (agent option
	// package_log). Its rotations LOG.N and LOG.N.gz are read too.
	Log string
	// Root is the directory the host's / lies at ("" means /): a test's
	// instdir or a root_prefix host. Paths given to and returned by the DB
	// never include it; merged-/usr detection reads Root/bin and friends.
	Root string
	// Location is the zone dpkg.log's timestamps are in; nil means
	// time.Local.
	Location *time.Location
	// OnlyTouchedSince, when not zero, reads the lists and md5sums of only
	// the packages that dpkg.log shows operated on (installed, upgraded,
	// configured, triggered...) in runs ending at or after it: Owners,
	// Files and Records then know those packages' paths only (see
	// Partial). agent update --packages opens the records this way, which
	// costs a few packages' files instead of every package's.
	OnlyTouchedSince time.Time
}

// MergedUsrDirs are the top-level directories a merged-/usr host turns
// into links to their namesakes under /usr.
var MergedUsrDirs = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// Dpkg is the dpkg backend of DB. OpenDpkg reads every record once; the
// methods only look things up and are safe for concurrent use.
//
// Package names are dpkg's: "name:arch" for Multi-Arch: same packages,
// "name" otherwise; dpkg.log spells every package "name:arch", and
// Package and Files accept both spellings.
type Dpkg struct {
	admin string // host path of the admin dir, cleaned
	pkgs  []dpkgPkg
	byKey map[string]int32 // "name" or "name:arch" as in info/ → pkgs index
	// entries holds every (path, package) record, each package's in one
	// contiguous range; paths maps a canonical path (see canon) to the
	// first of its entries, chained by next.
	entries   []dpkgEntry
	paths     map[string]int32
	divFrom   map[string]Diversion // canonical From → diversion
	divTo     map[string]Diversion // canonical To → diversion
	overrides map[string]StatOverride
	merged    []string // the MergedUsrDirs that are links into /usr here
	runs      []Run
	partial   bool // only the touched packages' lists were read
}

type dpkgPkg struct {
	Package
	key        string
	first, end int32 // the package's range of entries
}

type dpkgEntry struct {
	path     string // as the package lists it
	pkg      int32
	next     int32 // next entry of the same canonical path, -1 at the end
	md5      [16]byte
	hasMD5   bool
	conffile bool
}

// OpenDpkg reads dpkg's status, info lists and md5sums, diversions,
// statoverride and log. A missing admin dir or status file is an error
// (wrapping fs.ErrNotExist: there is no dpkg database); missing
// diversions, statoverride, log, .list or .md5sums files are empty. A
// damaged file is an error naming file and line (ErrDpkgRecord).
func OpenDpkg(opts DpkgOptions) (*Dpkg, error) {
	if opts.AdminDir == "" {
		opts.AdminDir = "/var/lib/dpkg"
	}
	if opts.Log == "" {
		opts.Log = "/var/log/dpkg.log"
	}
	root := opts.Root
	if root == "" {
		root = "/"
	}
	d := &Dpkg{
		admin:     path.Clean("/" + opts.AdminDir),
		byKey:     map[string]int32{},
		divFrom:   map[string]Diversion{},
		divTo:     map[string]Diversion{},
		overrides: map[string]StatOverride{},
	}
	host := func(p string) string { return filepath.Join(root, p) }
	for _, dir := range MergedUsrDirs {
		if t, err := os.Readlink(host(dir)); err == nil && path.Clean(path.Join("/", t)) == "/usr"+dir {
			d.merged = append(d.merged, dir)
		}
	}
	admin := host(d.admin)

	status, err := parseFile(filepath.Join(admin, "status"), false, ParseDpkgStatus)
	if err != nil {
		return nil, err
	}
	if d.runs, err = readDpkgLogs(host(path.Clean("/"+opts.Log)), opts.Location); err != nil {
		return nil, err
	}
	var touched map[string]bool
	if !opts.OnlyTouchedSince.IsZero() {
		d.partial = true
		touched = map[string]bool{}
		for _, r := range d.Runs(opts.OnlyTouchedSince) {
			for _, op := range r.Ops {
				name, _, _ := strings.Cut(op.Package, ":")
				touched[name] = true
			}
		}
	}
	// Read every list first, so that entries and paths are allocated once
	// at their final size.
	var (
		loaded []dpkgLoaded
		total  int
	)
	for _, st := range status {
		if st.State() == "not-installed" {
			continue
		}
		l := dpkgLoaded{st: st}
		if touched != nil && !touched[st.Package] {
			loaded = append(loaded, l)
			continue
		}
		info := filepath.Join(admin, "info", st.Key())
		if l.list, err = parseFile(info+".list", true, ParseDpkgList); err != nil {
			return nil, err
		}
		if l.sums, err = parseFile(info+".md5sums", true, ParseDpkgMD5Sums); err != nil {
			return nil, err
		}
		loaded = append(loaded, l)
		total += len(l.list) + len(st.Conffiles)
	}
	d.pkgs = make([]dpkgPkg, 0, len(loaded))
	d.entries = make([]dpkgEntry, 0, total)
	d.paths = make(map[string]int32, total)
	for _, l := range loaded {
		d.addPackage(l)
	}
	divs, err := parseFile(filepath.Join(admin, "diversions"), true, ParseDpkgDiversions)
	if err != nil {
		return nil, err
	}
	for _, v := range divs {
		d.divFrom[d.canon(v.From)] = v
		d.divTo[d.canon(v.To)] = v
	}
	sos, err := parseFile(filepath.Join(admin, "statoverride"), true, ParseDpkgStatOverrides)
	if err != nil {
		return nil, err
	}
	for _, so := range sos {
		d.overrides[d.canon(so.Path)] = so
	}
	return d, nil
}

// Partial reports whether only the touched packages' lists and md5sums
// were read (DpkgOptions.OnlyTouchedSince): a path no answer names may
// still belong to another package.
func (d *Dpkg) Partial() bool { return d.partial }

// parseFile opens name and runs parse on it; with optional, a missing
// file is the zero value.
func parseFile[T any](name string, optional bool, parse func(io.Reader, string) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(name)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return zero, nil
		}
		return zero, fmt.Errorf("dpkg: %w", err)
	}
	defer f.Close()
	return parse(f, name)
}

// dpkgLoaded is one package's status paragraph, list and md5sums.
type dpkgLoaded struct {
	st   DpkgStatus
	list []string
	sums []DpkgSum
}

// addPackage records one package's list, md5sums and conffiles as
// contiguous entries.
func (d *Dpkg) addPackage(l dpkgLoaded) {
	st := l.st
	key := st.Key()
	i := int32(len(d.pkgs))
	p := dpkgPkg{
		Package: Package{Name: st.Package, Arch: st.Arch, Version: st.Version, Status: st.Status},
		key:     key,
		first:   int32(len(d.entries)),
	}
	d.byKey[key] = i
	for _, f := range l.list {
		d.addEntry(f, i)
	}
	// own finds the package's entry for path f, adding one if the list
	// lacks it (a conffile of a package in config-files state).
	own := func(f string) *dpkgEntry {
		j, ok := d.paths[d.canon(f)]
		for ; ok && j >= p.first; j = d.entries[j].next {
			if d.entries[j].pkg == i && d.entries[j].path == f {
				return &d.entries[j]
			}
		}
		return &d.entries[d.addEntry(f, i)]
	}
	for _, s := range l.sums {
		e := own(s.Path)
		e.md5, e.hasMD5 = s.MD5, true
	}
	for _, c := range st.Conffiles {
		e := own(c.Path)
		e.conffile = true
		e.hasMD5 = c.MD5 != nil
		if e.hasMD5 {
			copy(e.md5[:], c.MD5)
		}
	}
	p.end = int32(len(d.entries))
	d.pkgs = append(d.pkgs, p)
}

// addEntry records that package i lists path f and returns the entry's
// index.
func (d *Dpkg) addEntry(f string, i int32) int32 {
	c := d.canon(f)
	j := int32(len(d.entries))
	next, ok := d.paths[c]
	if !ok {
		next = -1
	}
	d.entries = append(d.entries, dpkgEntry{path: f, pkg: i, next: next})
	d.paths[c] = j
	return j
}

// canon spells a cleaned absolute path the way it is keyed: on a
// merged-/usr host /bin/x and /usr/bin/x are one file, keyed /usr/bin/x.
func (d *Dpkg) canon(p string) string {
	for _, dir := range d.merged {
		if strings.HasPrefix(p, dir) && (len(p) == len(dir) || p[len(dir)] == '/') {
			return "/usr" + p
		}
	}
	return p
}

// Backend returns "dpkg".
func (d *Dpkg) Backend() string { return "dpkg" }

// file renders entry e as a File at path p.
func (d *Dpkg) file(e *dpkgEntry, p string) File {
	pk := &d.pkgs[e.pkg]
	f := File{Path: p, Package: pk.key, Version: pk.Version, Conffile: e.conffile}
	if e.hasMD5 {
		f.Digest = append([]byte(nil), e.md5[:]...)
		f.DigestAlgo = "md5"
	}
	return f
}

// Owners returns the records of every package that ships path, each with
// Path set to the cleaned path asked for. A diverted path belongs to the
// diverting package only (to nobody for a local diversion); the diversion's
// new name belongs to the packages whose file was diverted there. On a
// merged-/usr host both spellings of a path find the same records. The
// result is sorted by package.
func (d *Dpkg) Owners(p string) []File {
	p = absClean(p)
	c := d.canon(p)
	var out []File
	div, diverted := d.divFrom[c]
	for j, ok := d.paths[c]; ok && j >= 0; j = d.entries[j].next {
		e := &d.entries[j]
		if diverted && d.pkgs[e.pkg].Name != div.By {
			continue // this package's file lies at div.To
		}
		out = append(out, d.file(e, p))
	}
	if div, ok := d.divTo[c]; ok {
		for j, ok := d.paths[d.canon(div.From)]; ok && j >= 0; j = d.entries[j].next {
			e := &d.entries[j]
			if d.pkgs[e.pkg].Name != div.By {
				out = append(out, d.file(e, p))
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Package < out[b].Package })
	return out
}

// lookup finds a package by "name" or "name:arch".
func (d *Dpkg) lookup(name string) (*dpkgPkg, bool) {
	if i, ok := d.byKey[name]; ok {
		return &d.pkgs[i], true
	}
	n, arch, qualified := strings.Cut(name, ":")
	if i, ok := d.byKey[n]; ok && qualified && d.pkgs[i].Arch == arch {
		return &d.pkgs[i], true
	}
	if !qualified {
		for i := range d.pkgs {
			if d.pkgs[i].Name == n {
				return &d.pkgs[i], true
			}
		}
	}
	return nil, false
}

// Package returns an installed (or config-files) package by "name" or
// "name:arch". A bare name of a Multi-Arch: same package finds the first
// architecture in the status file.
func (d *Dpkg) Package(name string) (Package, bool) {
	p, ok := d.lookup(name)
	if !ok {
		return Package{}, false
	}
	return p.Package, true
}

// Packages returns the key of every package of the status file (as its
// info files spell it), sorted.
func (d *Dpkg) Packages() []string {
	out := make([]string, 0, len(d.pkgs))
	for i := range d.pkgs {
		out = append(out, d.pkgs[i].key)
	}
	sort.Strings(out)
	return out
}

// Files returns the records of every path the package lists, in its
// list's order, each Path where the file lies (a diverted file at the
// diversion's new name).
func (d *Dpkg) Files(pkg string) []File {
	p, ok := d.lookup(pkg)
	if !ok {
		return nil
	}
	out := make([]File, 0, p.end-p.first)
	for j := p.first; j < p.end; j++ {
		e := &d.entries[j]
		at := e.path
		if div, ok := d.divFrom[d.canon(e.path)]; ok && div.By != p.Name {
			at = div.To
		}
		out = append(out, d.file(e, at))
	}
	return out
}

// Runs returns the dpkg runs that ended at or after since, oldest first.
func (d *Dpkg) Runs(since time.Time) []Run {
	var out []Run
	for _, r := range d.runs {
		if !r.End.Before(since) {
			out = append(out, r)
		}
	}
	return out
}

// StatOverride returns dpkg-statoverride's entry for path.
func (d *Dpkg) StatOverride(p string) (StatOverride, bool) {
	so, ok := d.overrides[d.canon(path.Clean("/"+p))]
	return so, ok
}

// Records reports whether path lies in dpkg's admin dir (status,
// available, diversions, statoverride, info/..., and dpkg's own backups
// and locks there). For info/PKG.EXT it names PKG ("name" or "name:arch");
// for the other files the package is "".
func (d *Dpkg) Records(p string) (string, bool) {
	p = absClean(p)
	if p == d.admin {
		return "", true
	}
	rel, ok := strings.CutPrefix(p, strings.TrimSuffix(d.admin, "/")+"/")
	if !ok {
		return "", false
	}
	base, ok := strings.CutPrefix(rel, "info/")
	if !ok || strings.Contains(base, "/") {
		return "", true
	}
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		return base[:i], true
	}
	return "", true
}

// readDpkgLogs reads log and its rotations, oldest first: LOG.N.gz ...
// LOG.2.gz, LOG.1, LOG. A file whose first run has no startup line
// continues the previous file's last run.
func readDpkgLogs(log string, loc *time.Location) ([]Run, error) {
	dir, base := filepath.Split(log)
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("dpkg log: %w", err)
	}
	type rotated struct {
		n    int
		name string
		gz   bool
	}
	var files []rotated
	for _, de := range des {
		name := de.Name()
		if name == base {
			files = append(files, rotated{n: 0, name: name})
			continue
		}
		rest, ok := strings.CutPrefix(name, base+".")
		if !ok {
			continue
		}
		num, gz := strings.CutSuffix(rest, ".gz")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || strconv.Itoa(n) != num {
			continue
		}
		files = append(files, rotated{n: n, name: name, gz: gz})
	}
	sort.Slice(files, func(a, b int) bool {
		if files[a].n != files[b].n {
			return files[a].n > files[b].n
		}
		return !files[a].gz // LOG.1 before a stray LOG.1.gz
	})
	var runs []Run
	for _, f := range files {
		name := filepath.Join(dir, f.name)
		l, err := readDpkgLog(name, f.gz, loc)
		if err != nil {
			return nil, err
		}
		if l.Continued && len(runs) > 0 {
			last := &runs[len(runs)-1]
			last.End = l.Runs[0].End
			last.Ops = append(last.Ops, l.Runs[0].Ops...)
			l.Runs = l.Runs[1:]
		}
		runs = append(runs, l.Runs...)
	}
	return runs, nil
}

// readDpkgLog parses one log file, gunzipping it with gz.
func readDpkgLog(name string, gz bool, loc *time.Location) (DpkgLog, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return DpkgLog{}, fmt.Errorf("dpkg log: %w", err)
	}
	var r io.Reader = bytes.NewReader(b)
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return DpkgLog{}, fmt.Errorf("dpkg log %s: %w", name, err)
		}
		r = zr
	}
	return ParseDpkgLog(r, name, loc)
}
