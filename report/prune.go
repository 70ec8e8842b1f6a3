package report

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// StaleTempAge is how old a leftover temporary report file (<id>.txt.tmp-*)
// must be before Prune removes it. Save holds its temporary files for well
// under a second, so an hour-old one is debris from a crash, never a Save
// in progress.
const StaleTempAge = time.Hour

// Prune removes history older than maxAge (report_maxage): from reportDir
// the report files <kind>-YYYYMMDD-HHMMSS[-N].txt and .json, and from
// stateDir the kept baseline generations baseline-YYYYMMDD-HHMMSS[-N].db
// that the db package leaves behind on init and update. It returns the
// paths it removed, sorted.
//
// Age is read from the time stamp in the NAME, in now's location (pass a
// local time, as History and the db package name files in local time), not
// from the modification time: the name is what the admin sees in `agent
// report list` and `ls`, and an mtime changes with a copy, a restore from
// backup or a touch by anyone who can write the file. A file goes when its
// stamp is before now-maxAge. maxAge <= 0 disables this pruning.
//
// Prune never removes the active baseline (activeBaseline, normally
// state_dir/baseline.db, nor any other name of the same file),
// last-check.db, the lock, a file whose name does not match those exact
// patterns, or anything that is not a regular file: a symlink named like a
// report is skipped, never followed nor removed. It does not descend into
// subdirectories. reportDir or stateDir may be "" to skip it, and may be
// the same directory. A directory that does not exist is skipped; one that
// is a symlink is refused (ErrUnsafeDir), as History refuses it.
//
// Independently of maxAge it removes temporary report files (<id>.txt.tmp-*
// and <id>.json.tmp-*) left in reportDir by a crashed Save once their
// modification time is StaleTempAge before now; these carry no stamp of
// their own, and are debris, not history.
//
// Errors on single files do not stop the pass; they are joined and
// returned with the paths that were removed.
func Prune(reportDir, stateDir string, maxAge time.Duration, now time.Time, activeBaseline string) ([]string, error) {
	p := pruner{now: now, maxAge: maxAge}
	if activeBaseline != "" {
		p.active = filepath.Clean(activeBaseline)
		if fi, err := os.Stat(activeBaseline); err == nil {
			p.activeInfo = fi
		}
	}
	var errs []error
	dirs := map[string]*pruneSet{}
	var order []string
	add := func(dir string, set func(*pruneSet)) {
		if dir == "" {
			return
		}
		dir = filepath.Clean(dir)
		if dirs[dir] == nil {
			dirs[dir] = &pruneSet{}
			order = append(order, dir)
		}
		set(dirs[dir])
	}
	add(reportDir, func(s *pruneSet) { s.reports = true })
	add(stateDir, func(s *pruneSet) { s.baselines = true })
	for _, dir := range order {
		errs = append(errs, p.dir(dir, *dirs[dir]))
	}
	sort.Strings(p.removed)
	return p.removed, errors.Join(errs...)
}

// pruneSet says which names Prune looks for in one directory.
type pruneSet struct {
	reports   bool // report files and stale temporary report files
	baselines bool // kept baseline generations
}

type pruner struct {
	now        time.Time
	maxAge     time.Duration
	active     string      // cleaned path of the active baseline
	activeInfo fs.FileInfo // its FileInfo, nil if it does not exist
	removed    []string
}

func (p *pruner) dir(dir string, set pruneSet) error {
	switch err := histCheckDir(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("prune: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	var errs []error
	for _, de := range des {
		name := de.Name()
		var stamp stampName
		var isTemp, ok bool
		if set.reports {
			stamp, ok = parseReportName(name)
			if !ok {
				isTemp = isStaleTempName(name)
			}
		}
		if set.baselines && !ok && !isTemp {
			stamp, ok = parseBaselineName(name)
		}
		if !ok && !isTemp {
			continue
		}
		// Lstat rather than trust the directory entry: it tells the
		// type of the name itself, and a symlink is never followed.
		path := filepath.Join(dir, name)
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("prune: %w", err))
			continue
		}
		if !fi.Mode().IsRegular() || p.isActive(path, fi) {
			continue
		}
		if isTemp {
			if fi.ModTime().After(p.now.Add(-StaleTempAge)) {
				continue
			}
		} else if p.maxAge <= 0 || !stamp.time(p.now.Location()).Before(p.now.Add(-p.maxAge)) {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("prune: %w", err))
			continue
		}
		p.removed = append(p.removed, path)
	}
	return errors.Join(errs...)
}

// isActive reports whether path is the active baseline, by name or as
// another hard link to the same file.
func (p *pruner) isActive(path string, fi fs.FileInfo) bool {
	if p.active == "" {
		return false
	}
	return filepath.Clean(path) == p.active || p.activeInfo != nil && os.SameFile(fi, p.activeInfo)
}

// isStaleTempName reports whether name is a temporary file Save creates:
// a report file name followed by .tmp- and the random part.
func isStaleTempName(name string) bool {
	i := strings.Index(name, histTempInfix)
	if i < 0 || i+len(histTempInfix) == len(name) {
		return false
	}
	_, ok := parseReportName(name[:i])
	return ok
}
