package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

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
	db, why := openPackageDB(c.Context, o)
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
