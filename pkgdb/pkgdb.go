// Package pkgdb is a read-only view of the package manager's records (dpkg
// or rpm): which package owns a path, what content the package recorded
// for it, and which package operations ran when. The integrity pipeline
// asks it to classify the changes a check finds; pkgdb itself never
// compares the file system with anything and never writes.
//
// Each backend is a set of pure parsers (Parse...(r io.Reader, name string))
// inside a thin I/O shell that reads the admin files or runs the package
// manager's CLI with an argv, never a shell. A damaged record is an error
// naming the file and line (lineerr), never a panic, and never evidence
// that a change is explained.
package pkgdb

import (
	"io/fs"
	"time"
)

// File is what one package records about one path.
type File struct {
	Path    string // absolute, cleaned, as it lies on disk (after diversions)
	Package string // the owning package: "name" or "name:arch" as the manager spells it
	Version string // the owning package's installed version
	// Digest is the recorded content digest (raw bytes, not hex), nil when
	// the record has none (directories, links, ghost files).
	Digest     []byte
	DigestAlgo string // "md5", "sha256", ... ("" when Digest is nil)
	Conffile   bool   // a configuration file: the admin may edit it
	// Metadata recorded by rpm (dpkg records none; HasMeta false then).
	HasMeta    bool
	Mode       fs.FileMode // type and permission bits
	Owner      string
	Group      string
	LinkTarget string
	Size       int64
}

// Package is one installed package.
type Package struct {
	Name    string // without architecture
	Arch    string
	Version string
	Status  string // the manager's own state ("install ok installed", ...)
	// Installed is when the package was last installed or upgraded, where
	// the manager records it (rpm); zero otherwise (dpkg: see Runs).
	Installed time.Time
}

// Action is what a package operation did.
type Action string

const (
	ActionInstall   Action = "install"   // new package
	ActionUpgrade   Action = "upgrade"   // new version over an old one
	ActionRemove    Action = "remove"    // removed, conffiles kept
	ActionPurge     Action = "purge"     // removed with its conffiles
	ActionConfigure Action = "configure" // maintainer scripts ran (postinst)
	ActionTrigger   Action = "trigger"   // a trigger ran (dpkg trigproc)
)

// Operation is one step of a package run.
type Operation struct {
	Time       time.Time
	Action     Action
	Package    string // "name" or "name:arch"
	OldVersion string // "" for a new install
	NewVersion string // "" for a removal
}

// Run is one package manager transaction: one dpkg invocation (from its
// "startup" line to the next) or one rpm transaction. Files created or
// changed between Start and End by maintainer scripts belong to it.
type Run struct {
	Start, End time.Time
	Ops        []Operation
}

// Diversion is a dpkg diversion: the package's file From lives at To; the
// diverting package By owns From.
type Diversion struct {
	From, To, By string // By is ":" for a local (admin) diversion
}

// StatOverride is a dpkg-statoverride entry: the admin's owner and mode
// for a path, which are expected to differ from the package.
type StatOverride struct {
	Path         string
	Owner, Group string
	Mode         fs.FileMode
}

// DB is what the integrity pipeline needs from a package manager. All
// methods are safe for concurrent use after Open and do no I/O except where
// said.
type DB interface {
	// Backend names the manager: "dpkg" or "rpm".
	Backend() string
	// Owners returns every package record for path (a path may be shared
	// by several packages, as directories are), resolving diversions and,
	// on merged-/usr hosts, both spellings (/bin/sh and /usr/bin/sh).
	Owners(path string) []File
	// Package returns an installed package by name ("name" or "name:arch").
	Package(name string) (Package, bool)
	// Packages returns the spelling of every installed package, as Files
	// takes it, sorted.
	Packages() []string
	// Files returns the records of every path the package ships.
	Files(pkg string) []File
	// Runs returns the package runs that ended at or after since, oldest
	// first.
	Runs(since time.Time) []Run
	// StatOverride returns the admin's override for path, if any.
	StatOverride(path string) (StatOverride, bool)
	// Records reports whether path is one of the manager's own record
	// files (dpkg: status, info/*.list, info/*.md5sums, ...; rpm: the
	// database files), and for which package ("" for shared ones).
	Records(path string) (pkg string, ok bool)
}
