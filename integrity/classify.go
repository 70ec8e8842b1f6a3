// Package integrity holds the parts of the integrity pipeline that sit
// between the scanner's comparison and the report: today the provenance of
// every change, found by asking the package manager's records (pkgdb) who
// made it. It never prints and never writes; the only I/O it does is
// hashing a file a package record must be compared with, through the Hash
// function it is given.
package integrity

import (
	"bytes"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"opsagent/pkgdb"
	"opsagent/rules"
	"opsagent/scanner"
)

// Class says who made a change.
type Class string

// The classes, from the quietest to the loudest.
const (
	// ClassPackage: the path belongs to an installed package and what the
	// scan saw is what the package recorded (or, for what the records
	// hold no digest of, a package operation on its owner explains it).
	ClassPackage Class = "package"
	// ClassScript: no package owns the path, but it was created or changed
	// during a package run, in a place maintainer scripts and triggers
	// write.
	ClassScript Class = "package-script"
	// ClassUnexplained: nothing explains the change.
	ClassUnexplained Class = "unexplained"
	// ClassMismatch: a package owns the path and its content differs from
	// the package's record, or the package manager's own records changed
	// with no package operation to account for it.
	ClassMismatch Class = "package-mismatch"
)

// Provenance is the answer for one change.
type Provenance struct {
	Class   Class
	Package string // the explaining or owning package, if any
	Version string // its installed version
	Reason  string // why, in a few words
}

// DefaultScriptAreas are the places where maintainer scripts and triggers
// write files no package lists (caches, alternatives, rc links, state).
// Executable directories (/bin, /sbin, /usr/bin, /usr/sbin, /usr/local) are
// deliberately absent: a file planted there during an upgrade stays
// unexplained.
var DefaultScriptAreas = []string{"/etc/", "/var/lib/", "/var/cache/", "/usr/lib/", "/usr/share/", "/boot/"}

// Classifier classifies changes against a package database.
type Classifier struct {
	// DB is the package manager's view; nil makes every change
	// unexplained, with Why as the reason.
	DB  pkgdb.DB
	Why string
	// Since is when the baseline was written: only package runs after it
	// explain anything.
	Since time.Time
	// Hash computes a digest of the file at path with algo ("md5",
	// "sha256") when the scan did not record that digest. Nil: such files
	// cannot be matched and stay unexplained.
	Hash func(path, algo string) ([]byte, error)
	// ScriptAreas are path prefixes (ending in "/") where package runs may
	// create unowned files; nil means DefaultScriptAreas.
	ScriptAreas []string

	runs      []pkgdb.Run
	touched   map[string]pkgdb.Operation // package name → its last operation since Since
	described map[pkgdb.Operation]string // describeOp of each operation of runs
	loaded    bool
}

func (c *Classifier) load() {
	if c.loaded || c.DB == nil {
		return
	}
	c.loaded = true
	c.runs = c.DB.Runs(c.Since)
	c.touched = map[string]pkgdb.Operation{}
	for _, r := range c.runs {
		for _, op := range r.Ops {
			if op.Time.Before(c.Since) {
				continue
			}
			// An install, upgrade or removal says more than the
			// configure and trigger steps that follow it.
			name := baseName(op.Package)
			if prev, ok := c.touched[name]; !ok || opRank(op.Action) >= opRank(prev.Action) {
				c.touched[name] = op
			}
		}
	}
	// Every entry a package explains names its operation: said once.
	c.described = map[pkgdb.Operation]string{}
	for _, r := range c.runs {
		for _, op := range r.Ops {
			c.described[op] = describeOp(op)
		}
	}
}

// describe is describeOp, from the ones load said.
func (c *Classifier) describe(op pkgdb.Operation) string {
	if d, ok := c.described[op]; ok {
		return d
	}
	return describeOp(op)
}

// Runs returns the package runs since the baseline.
func (c *Classifier) Runs() []pkgdb.Run {
	c.load()
	return c.runs
}

// opRank orders actions by how much they explain.
func opRank(a pkgdb.Action) int {
	switch a {
	case pkgdb.ActionInstall, pkgdb.ActionUpgrade, pkgdb.ActionRemove, pkgdb.ActionPurge:
		return 2
	case pkgdb.ActionConfigure:
		return 1
	}
	return 0
}

// baseName drops an ":arch" qualifier.
func baseName(pkg string) string {
	name, _, _ := strings.Cut(pkg, ":")
	return name
}

// Classify returns the provenance of one change.
func (c *Classifier) Classify(ch scanner.Change) Provenance {
	if c.DB == nil {
		why := c.Why
		if why == "" {
			why = "no package database"
		}
		return Provenance{Class: ClassUnexplained, Reason: why}
	}
	c.load()
	if pkg, ok := c.DB.Records(ch.Path); ok {
		return c.records(ch, pkg)
	}
	switch ch.Kind {
	case scanner.Removed:
		return c.removed(ch)
	default:
		return c.present(ch)
	}
}

// ClassifyAll classifies every change, then explains the directories whose
// only changes are the ones their entries make (mtime, ctime, size,
// blocks, link count) when a reported change of an entry directly in them
// is explained by a package: a package run that replaced files there
// changed the directory too, and many directories (/usr/bin on rpm hosts)
// belong to a package no run touched. The entries themselves keep their
// own class, so nothing unexplained is hidden.
func (c *Classifier) ClassifyAll(changes []scanner.Change) []Provenance {
	out := make([]Provenance, len(changes))
	// A large batch (a package upgrade) is classified on every CPU: the
	// DB is safe for concurrent use, and after load the Classifier is
	// only read.
	c.load()
	lanes := 1
	if len(changes) >= 2048 {
		lanes = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lane; i < len(changes); i += lanes {
				out[i] = c.Classify(changes[i])
			}
		}()
	}
	wg.Wait()
	explainedIn := map[string]string{} // dir → a package explaining an entry in it
	for i, ch := range changes {
		if out[i].Class == ClassPackage || out[i].Class == ClassScript {
			if _, ok := explainedIn[path.Dir(ch.Path)]; !ok {
				explainedIn[path.Dir(ch.Path)] = out[i].Package
			}
		}
	}
	const entryAttrs = rules.AttrSet(1)<<rules.AttrMtime | rules.AttrSet(1)<<rules.AttrCtime | rules.AttrSet(1)<<rules.AttrSize |
		rules.AttrSet(1)<<rules.AttrBlocks | rules.AttrSet(1)<<rules.AttrNlink
	for i, ch := range changes {
		if out[i].Class != ClassUnexplained || ch.Kind != scanner.Changed || ch.New == nil || ch.New.Type != rules.TypeDir || ch.Changed&^entryAttrs != 0 {
			continue
		}
		if pkg, ok := explainedIn[ch.Path]; ok {
			out[i] = Provenance{Class: ClassPackage, Package: pkg, Reason: "its entries changed, by a package run among others (see them)"}
		}
	}
	return out
}

// adminTool are the dpkg records that admin commands change without a
// package run.
var adminTool = map[string]bool{"diversions": true, "diversions-old": true, "statoverride": true, "statoverride-old": true}

// records classifies a change to the package manager's own records.
func (c *Classifier) records(ch scanner.Change, pkg string) Provenance {
	if pkg == "" {
		if len(c.runs) > 0 {
			return Provenance{Class: ClassPackage, Reason: "package manager records, updated by " + c.describeRuns()}
		}
		if adminTool[path.Base(ch.Path)] {
			// dpkg-divert --local and dpkg-statoverride write these with
			// no dpkg run: an admin's act, to be looked at, but no
			// rewrite of what a package shipped.
			return Provenance{Class: ClassUnexplained, Reason: "changed by dpkg-divert or dpkg-statoverride outside any package run (a local diversion or override?)"}
		}
		return Provenance{Class: ClassMismatch, Reason: "the package manager's records changed, but no package operation ran since the baseline"}
	}
	if op, ok := c.touched[baseName(pkg)]; ok {
		return Provenance{Class: ClassPackage, Package: pkg, Version: op.NewVersion, Reason: "records of " + pkg + ", " + c.describe(op)}
	}
	return Provenance{Class: ClassMismatch, Package: pkg,
		Reason: "the records of " + pkg + " changed without any package operation on it since the baseline"}
}

// present classifies an added or changed entry.
func (c *Classifier) present(ch scanner.Change) Provenance {
	e := ch.New
	owners := c.DB.Owners(ch.Path)
	if len(owners) == 0 {
		return c.unowned(ch)
	}
	if e.Type == rules.TypeFile {
		var withDigest []pkgdb.File
		for _, f := range owners {
			if f.Digest != nil {
				withDigest = append(withDigest, f)
			}
		}
		if len(withDigest) > 0 {
			return c.content(ch, withDigest)
		}
	}
	// Directories, links, files without a recorded digest, and changes
	// of metadata only: explained when a package that owns the path ran
	// since the baseline.
	for _, f := range owners {
		if op, ok := c.touched[baseName(f.Package)]; ok {
			return Provenance{Class: ClassPackage, Package: f.Package, Version: f.Version, Reason: c.describe(op)}
		}
	}
	if so, ok := c.DB.StatOverride(ch.Path); ok && ch.Kind == scanner.Changed && onlyMeta(ch) {
		return Provenance{Class: ClassPackage, Package: owners[0].Package, Version: owners[0].Version,
			Reason: fmt.Sprintf("dpkg-statoverride %s %s %o", so.Owner, so.Group, so.Mode.Perm())}
	}
	return Provenance{Class: ClassUnexplained, Package: owners[0].Package, Version: owners[0].Version,
		Reason: "owned by " + owners[0].Package + ", which no package operation touched since the baseline"}
}

// onlyMeta reports whether a change is to owner, group or mode only.
func onlyMeta(ch scanner.Change) bool {
	meta := rules.AttrPerm.Set() | rules.AttrUID.Set() | rules.AttrGID.Set() | rules.AttrCtime.Set()
	return ch.Changed&^meta == 0
}

// content compares a regular file with the digests its owners recorded.
func (c *Classifier) content(ch scanner.Change, owners []pkgdb.File) Provenance {
	var conffile *pkgdb.File
	var hashErr error
	for i := range owners {
		f := owners[i]
		got, err := c.digest(ch.New, f.DigestAlgo)
		if err != nil {
			hashErr = err
			continue
		}
		if bytes.Equal(got, f.Digest) {
			p := Provenance{Class: ClassPackage, Package: f.Package, Version: f.Version, Reason: f.DigestAlgo + " matches the package"}
			if op, ok := c.touched[baseName(f.Package)]; ok {
				p.Reason += ", " + c.describe(op)
			}
			return p
		}
		if f.Conffile && conffile == nil {
			conffile = &owners[i]
		}
	}
	if hashErr != nil {
		return Provenance{Class: ClassUnexplained, Package: owners[0].Package, Version: owners[0].Version,
			Reason: "cannot compare with the package: " + hashErr.Error()}
	}
	if conffile != nil {
		return Provenance{Class: ClassUnexplained, Package: conffile.Package, Version: conffile.Version,
			Reason: "configuration file of " + conffile.Package + ", edited since the package installed it"}
	}
	f := owners[0]
	return Provenance{Class: ClassMismatch, Package: f.Package, Version: f.Version,
		Reason: "content differs from the " + f.DigestAlgo + " that " + f.Package + " " + f.Version + " recorded"}
}

// digest returns the scan's digest of e in algo, or computes it.
func (c *Classifier) digest(e *scanner.Entry, algo string) ([]byte, error) {
	switch {
	case algo == "md5" && e.Attrs.Has(rules.AttrMD5):
		return e.Digests.MD5[:], nil
	case algo == "sha256" && e.Attrs.Has(rules.AttrSHA256):
		return e.Digests.SHA256[:], nil
	}
	if c.Hash == nil {
		return nil, fmt.Errorf("no %s digest recorded", algo)
	}
	return c.Hash(e.Path, algo)
}

// unowned classifies an added or changed entry no package lists.
func (c *Classifier) unowned(ch scanner.Change) Provenance {
	if !c.inScriptArea(ch.Path) {
		return Provenance{Class: ClassUnexplained, Reason: "not owned by any package"}
	}
	ctime := time.Unix(0, ch.New.Ctime)
	if r, ok := c.runAt(ctime); ok {
		return Provenance{Class: ClassScript, Package: runPackages(r), Reason: "written during the package run of " + r.Start.Format(time.DateTime)}
	}
	return Provenance{Class: ClassUnexplained, Reason: "not owned by any package, changed outside every package run"}
}

// removed classifies a removed entry: dpkg leaves no record of what it
// deleted, so a removal is explained when the directory it was in changed
// during a package run that touched a package owning that directory.
func (c *Classifier) removed(ch scanner.Change) Provenance {
	if owners := c.DB.Owners(ch.Path); len(owners) > 0 {
		f := owners[0]
		return Provenance{Class: ClassUnexplained, Package: f.Package, Version: f.Version,
			Reason: "still shipped by " + f.Package + " " + f.Version + ", but missing"}
	}
	dir := path.Dir(ch.Path)
	for _, f := range c.DB.Owners(dir) {
		if op, ok := c.touched[baseName(f.Package)]; ok {
			switch op.Action {
			case pkgdb.ActionUpgrade, pkgdb.ActionRemove, pkgdb.ActionPurge, pkgdb.ActionInstall:
				return Provenance{Class: ClassPackage, Package: f.Package, Version: f.Version,
					Reason: "no longer shipped: " + c.describe(op)}
			}
		}
	}
	for _, r := range c.runs {
		for _, op := range r.Ops {
			if (op.Action == pkgdb.ActionRemove || op.Action == pkgdb.ActionPurge || op.Action == pkgdb.ActionUpgrade) && c.DB.Files(op.Package) == nil && c.inScriptArea(ch.Path) {
				// A removed package's files are gone from its lists.
				return Provenance{Class: ClassScript, Package: op.Package, Reason: c.describe(op) + " (its records are gone)"}
			}
		}
	}
	return Provenance{Class: ClassUnexplained, Reason: "removed, and no package operation accounts for it"}
}

func (c *Classifier) inScriptArea(p string) bool {
	areas := c.ScriptAreas
	if areas == nil {
		areas = DefaultScriptAreas
	}
	return InAreas(p, areas)
}

// InAreas reports whether p starts with one of the prefixes areas (each
// ending in "/", as DefaultScriptAreas).
func InAreas(p string, areas []string) bool {
	for _, a := range areas {
		if strings.HasPrefix(p, a) {
			return true
		}
	}
	return false
}

// DirInAreas is InAreas(d+"/", areas) without building the string, for
// callers that ask it about every entry of a walk.
func DirInAreas(d string, areas []string) bool {
	for _, a := range areas {
		if strings.HasPrefix(d, a) || len(d) == len(a)-1 && strings.HasPrefix(a, d) {
			return true
		}
	}
	return false
}

// runSlack widens a run's window: the kernel's ctime and dpkg.log's
// timestamps (whole seconds, written after the step) are not in lockstep.
const runSlack = 2 * time.Second

// runAt returns the package run whose window holds t.
func (c *Classifier) runAt(t time.Time) (pkgdb.Run, bool) {
	for _, r := range c.runs {
		if !t.Before(r.Start.Add(-runSlack)) && !t.After(r.End.Add(runSlack)) {
			return r, true
		}
	}
	return pkgdb.Run{}, false
}

func runPackages(r pkgdb.Run) string {
	seen := map[string]bool{}
	var names []string
	for _, op := range r.Ops {
		n := baseName(op.Package)
		if !seen[n] && op.Action != pkgdb.ActionTrigger {
			seen[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

func (c *Classifier) describeRuns() string {
	if len(c.runs) == 1 {
		return "the package run of " + c.runs[0].Start.Format(time.DateTime)
	}
	return fmt.Sprintf("%d package runs since %s", len(c.runs), c.runs[0].Start.Format(time.DateTime))
}

// describeOp says what an operation did: "upgraded 1.0 → 1.1 at ...".
func describeOp(op pkgdb.Operation) string {
	at := op.Time.Format(time.DateTime)
	switch op.Action {
	case pkgdb.ActionUpgrade:
		return fmt.Sprintf("upgraded %s → %s at %s", op.OldVersion, op.NewVersion, at)
	case pkgdb.ActionInstall:
		return fmt.Sprintf("installed %s at %s", op.NewVersion, at)
	case pkgdb.ActionRemove:
		return fmt.Sprintf("removed %s at %s", op.OldVersion, at)
	case pkgdb.ActionPurge:
		return fmt.Sprintf("purged at %s", at)
	case pkgdb.ActionConfigure:
		return fmt.Sprintf("configured %s at %s", op.NewVersion, at)
	}
	return fmt.Sprintf("%s at %s", op.Action, at)
}

// HashFile is a Classifier.Hash that reads the file (never through a
// symlink) with the digest algo asks for.
func HashFile(p, algo string) ([]byte, error) {
	var attr rules.Attr
	switch algo {
	case "md5":
		attr = rules.AttrMD5
	case "sha256":
		attr = rules.AttrSHA256
	default:
		return nil, fmt.Errorf("digest %q not supported", algo)
	}
	d, _, err := scanner.HashFile(p, attr.Set())
	if err != nil {
		return nil, err
	}
	if algo == "md5" {
		return d.MD5[:], nil
	}
	return d.SHA256[:], nil
}
