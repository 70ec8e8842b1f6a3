package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"opsagent/integrity"
	"opsagent/pkgdb"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
)

// packageDB opens the package manager's records for the provenance of
// changes, once per run (openPackageDB): with dpkg, only the lists of the
// packages run since the baseline (since) at first.
func (r *integrityRun) packageDB(since time.Time) (pkgdb.DB, string) {
	if r.pkgDB == nil && r.pkgWhy == "" {
		r.pkgDB, r.pkgWhy = openPackageDB(r.ctx, r.pol.Options, since)
	}
	return r.pkgDB, r.pkgWhy
}

// partialDB reports whether db holds only the touched packages' lists.
func partialDB(db pkgdb.DB) bool {
	p, ok := db.(interface{ Partial() bool })
	return ok && p.Partial()
}

// partialSuffices reports whether the classes found with only the touched
// packages' records are the ones every package's records would give: every
// change is an added or changed entry explained as "package" (found in a
// touched package's records, or the package manager's own). An unowned
// verdict (package-script, unexplained) or a removal may read otherwise
// once an untouched package is known to own the path.
func partialSuffices(rep *report.Report) bool {
	for _, ch := range rep.Changes {
		if ch.Kind == scanner.Removed || rep.Provenance.ByPath[ch.Path].Class != report.ClassPackage {
			return false
		}
	}
	return true
}

// openPackageDB opens dpkg's records (package_admindir, package_log) or,
// where there are none, rpm's. It returns nil and the reason when there are
// none to read; with package_check=no it returns nil and "" (no
// classification at all). Both paths are the host's, under root_prefix
// like every scanned path. A non-zero touchedSince reads only the lists of
// the dpkg packages operated on since then (pkgdb.Dpkg.Partial).
func openPackageDB(ctx context.Context, o rules.Options, touchedSince time.Time) (pkgdb.DB, string) {
	if o.PackageCheck == "no" {
		return nil, ""
	}
	root := o.RootPrefix
	admin := o.PackageAdminDir
	if admin == "" {
		admin = "/var/lib/dpkg"
	}
	switch _, err := os.Stat(filepath.Join(root, admin, "status")); {
	case err == nil:
		d, err := pkgdb.OpenDpkg(pkgdb.DpkgOptions{AdminDir: admin, Log: o.PackageLog, Root: root, OnlyTouchedSince: touchedSince})
		if err != nil {
			return nil, fmt.Sprintf("the dpkg records cannot be read (%v): every change is unexplained", err)
		}
		return d, ""
	case o.PackageAdminDir != "":
		return nil, fmt.Sprintf("package_admindir %s has no status file (%v): every change is unexplained", admin, err)
	}
	db, err := pkgdb.OpenRPM(ctx, pkgdb.RPMOptions{Root: root})
	switch {
	case err == nil:
		return db, ""
	case errors.Is(err, pkgdb.ErrRPMAbsent):
		return nil, "no dpkg or rpm database on this host: every change is unexplained"
	}
	return nil, fmt.Sprintf("the rpm database cannot be read (%v): every change is unexplained", err)
}

// classify fills rep.Provenance for rep's changes: who made each one.
// since is when the old baseline was written; live says whether the
// changed files are on this file system (check, update), so that a digest
// the scan did not record can be computed for the comparison with a package
// record (not for compare, whose second side is a file).
func (r *integrityRun) classify(rep *report.Report, since time.Time, live bool) {
	r.classifyWith(rep, since, live)
	if rep.Provenance != nil && partialDB(r.pkgDB) && !partialSuffices(rep) {
		r.pkgDB, r.pkgWhy = openPackageDB(r.ctx, r.pol.Options, time.Time{})
		r.classifyWith(rep, since, live)
	}
}

func (r *integrityRun) classifyWith(rep *report.Report, since time.Time, live bool) {
	db, why := r.packageDB(since)
	if db == nil && why == "" {
		return
	}
	c := &integrity.Classifier{DB: db, Why: why, Since: since}
	if live {
		root := r.pol.Options.RootPrefix
		c.Hash = func(p, algo string) ([]byte, error) { return integrity.HashFile(filepath.Join(root, p), algo) }
	}
	info := &report.ProvenanceInfo{Note: why, ByPath: make(map[string]report.Provenance, len(rep.Changes)),
		Explained: report.Explained(r.pol.Options.ReportExplained)}
	if db != nil {
		info.Backend = db.Backend()
	}
	if info.Explained == "" {
		info.Explained = report.ExplainedSummary
	}
	for i, p := range c.ClassifyAll(rep.Changes) {
		info.ByPath[rep.Changes[i].Path] = report.Provenance{Class: string(p.Class), Package: p.Package, Version: p.Version, Reason: p.Reason}
	}
	info.Packages = packageChanges(c.Runs(), since)
	rep.Provenance = info
}

// packageChanges lists each package a run since the baseline changed, once,
// with its first old and last new version.
func packageChanges(runs []pkgdb.Run, since time.Time) []report.PackageChange {
	byName := map[string]*report.PackageChange{}
	var order []string
	for _, run := range runs {
		for _, op := range run.Ops {
			if op.Time.Before(since) || op.Action == pkgdb.ActionTrigger {
				continue
			}
			pc := byName[op.Package]
			if pc == nil {
				pc = &report.PackageChange{Name: op.Package, Action: string(op.Action), OldVersion: op.OldVersion, NewVersion: op.NewVersion, Time: op.Time}
				byName[op.Package] = pc
				order = append(order, op.Package)
				continue
			}
			if op.Action != pkgdb.ActionConfigure {
				pc.Action = string(op.Action)
				if pc.OldVersion == "" {
					pc.OldVersion = op.OldVersion
				}
				pc.NewVersion = op.NewVersion
			}
			pc.Time = op.Time
		}
	}
	out := make([]report.PackageChange, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// explainedOnly reports whether rep has differences, all of them explained
// by packages (mail_on=unexplained mails no such report).
func explainedOnly(rep *report.Report) bool {
	if rep.Provenance == nil || rep.Added+rep.Removed+rep.Changed == 0 || len(rep.Problems) > 0 {
		return false
	}
	u, m := rep.Unexplained()
	return u == 0 && m == 0
}
