package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/integrity"
	"opsagent/pkgdb"
	"opsagent/report"
)

// Exit codes of agent pkg verify.
const (
	exitPkgMismatch = 1 // some package file differs from its record
	exitPkgNoDB     = 3 // the package records cannot be read
)

func pkgCommand() *cli.Command {
	return &cli.Command{
		Name:  "pkg",
		Usage: "package manager records (dpkg, rpm)",
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "list every package file whose content differs from its package's record (like debsums -c, rpm -Va); exit 0 clean, 1 mismatches, 3 no readable records",
			ArgsUsage: "[PATH...]",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "debs", Usage: "also compare each dpkg package's installed md5sums record with the md5sums of its .deb in `DIR` (default: /var/cache/apt/archives under root_prefix, where it holds an installed package's .deb)"}},
			Action:    pkgVerify,
		}},
	}
}

// pkgFinding is one line of pkg verify.
type pkgFinding struct {
	path, what string
	mismatch   bool // counts for the exit status (an edited conffile does not)
}

func pkgVerify(c *cli.Context) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	o := pol.Options
	if o.PackageCheck == "no" {
		o.PackageCheck = "" // an explicit command: the option only governs reports
	}
	db, why := openPackageDB(c.Context, o, time.Time{})
	if db == nil {
		return &exitError{code: exitPkgNoDB, err: errors.New(strings.TrimSuffix(why, ": every change is unexplained"))}
	}
	var files []pkgdb.File
	if c.NArg() > 0 {
		for _, p := range c.Args().Slice() {
			owners := db.Owners(filepath.Clean(p))
			if len(owners) == 0 {
				return &exitError{code: exitInvalidArg, err: fmt.Errorf("%s: no package owns it", p)}
			}
			files = append(files, owners...)
		}
	} else {
		for _, pkg := range db.Packages() {
			files = append(files, db.Files(pkg)...)
		}
	}
	findings := verifyFiles(o.RootPrefix, files)
	if c.NArg() > 0 && c.IsSet("debs") {
		return &exitError{code: exitInvalidArg, err: errors.New("--debs checks every package: it takes no PATH")}
	}
	if c.NArg() == 0 {
		dir, explicit := c.String("debs"), c.IsSet("debs")
		if !explicit {
			dir = filepath.Join(o.RootPrefix, defaultDebDir)
		}
		d, ok := db.(*pkgdb.Dpkg)
		switch {
		case explicit && !ok:
			return &exitError{code: exitInvalidArg, err: fmt.Errorf("--debs: the package records are %s's, not dpkg's", db.Backend())}
		case ok:
			more, err := verifyDebs(c, d, dir, explicit)
			if err != nil {
				return err
			}
			findings = append(findings, more...)
		}
	}
	sort.Slice(findings, func(i, j int) bool { return findings[i].path < findings[j].path })
	mismatches := 0
	var out bytes.Buffer
	for _, f := range findings {
		fmt.Fprintf(&out, "%s: %s\n", report.EscapePath(f.path), f.what)
		if f.mismatch {
			mismatches++
		}
	}
	if _, err := c.App.Writer.Write(out.Bytes()); err != nil {
		return wrapWrite(err)
	}
	if mismatches > 0 {
		return &exitError{code: exitPkgMismatch}
	}
	return nil
}

// verifyFiles hashes every file with a recorded digest (in parallel, one
// worker per CPU) and returns what differs.
func verifyFiles(root string, files []pkgdb.File) []pkgFinding {
	jobs := make(chan pkgdb.File)
	var mu sync.Mutex
	var out []pkgFinding
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				if fd, ok := verifyFile(root, f); ok {
					mu.Lock()
					out = append(out, fd)
					mu.Unlock()
				}
			}
		}()
	}
	seen := map[string]bool{}
	for _, f := range files {
		if f.Digest == nil || seen[f.Path+"\x00"+f.Package] {
			continue
		}
		seen[f.Path+"\x00"+f.Package] = true
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return out
}

func verifyFile(root string, f pkgdb.File) (pkgFinding, bool) {
	got, err := integrity.HashFile(filepath.Join(root, f.Path), f.DigestAlgo)
	who := f.Package + " " + f.Version
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return pkgFinding{f.Path, "missing (" + who + ")", !f.Conffile}, true
	case err != nil:
		return pkgFinding{f.Path, "cannot be read: " + err.Error(), true}, true
	case bytes.Equal(got, f.Digest):
		return pkgFinding{}, false
	case f.Conffile:
		return pkgFinding{f.Path, "configuration file of " + who + ", edited", false}, true
	}
	return pkgFinding{f.Path, "differs from the " + f.DigestAlgo + " recorded by " + who, true}, true
}

// defaultDebDir is where apt keeps the .debs it downloaded.
const defaultDebDir = "/var/cache/apt/archives"

// debJob is one installed package with its .deb.
type debJob struct {
	key string
	pkg pkgdb.Package
	deb string
}

// verifyDebs compares the installed md5sums record of every installed
// package whose exact .deb lies in dir with that .deb's md5sums: a record
// rewritten on the host to match a trojan differs from it. Unless explicit,
// a dir holding no installed package's .deb is no archive and is skipped
// silently. Packages without a .deb are counted in one line on stderr, as
// are .debs without md5sums or that cannot be read, one line each.
func verifyDebs(c *cli.Context, d *pkgdb.Dpkg, dir string, explicit bool) ([]pkgFinding, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if !explicit {
			return nil, nil
		}
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, &exitError{code: exitInvalidArg, err: fmt.Errorf("--debs %s: %w", dir, err)}
	}
	var jobs []debJob
	without := 0
	for _, key := range d.Packages() {
		p, _ := d.Package(key)
		if !strings.HasSuffix(p.Status, " installed") {
			continue
		}
		found := ""
		for _, n := range pkgdb.DebNames(p) {
			if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.Mode().IsRegular() {
				found = filepath.Join(dir, n)
				break
			}
		}
		if found == "" {
			without++
			continue
		}
		jobs = append(jobs, debJob{key, p, found})
	}
	if len(jobs) == 0 && !explicit {
		return nil, nil
	}
	type result struct {
		diffs []pkgdb.DebDiff
		err   error
	}
	results := make([]result, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sums, err := pkgdb.ReadDebMD5Sums(c.Context, jobs[i].deb, 0)
				if err == nil {
					results[i].diffs = d.CompareDebSums(jobs[i].key, sums)
				}
				results[i].err = err
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []pkgFinding
	for i, r := range results {
		j := jobs[i]
		who := j.pkg.Name + " " + j.pkg.Version
		switch {
		case errors.Is(r.err, pkgdb.ErrDebNoMD5Sums):
			fmt.Fprintf(c.App.ErrWriter, "agent: %s: %s ships no md5sums: its record is not checked against it\n", who, j.deb)
		case r.err != nil:
			fmt.Fprintf(c.App.ErrWriter, "agent: warning: %s: %v: its record is not checked against it\n", who, r.err)
		}
		for _, df := range r.diffs {
			what := "the md5sums record of " + who + " differs from its .deb (forged record?)"
			if df.Recorded == nil {
				what = "the md5sums record of " + who + " lacks it, its .deb lists it (removed record?)"
			}
			out = append(out, pkgFinding{df.Path, what, true})
		}
	}
	if without > 0 {
		fmt.Fprintf(c.App.ErrWriter, "agent: %d packages without a .deb in %s: not checked against archives\n", without, dir)
	}
	return out, nil
}
