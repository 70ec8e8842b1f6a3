package report

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"opsagent/internal/atomicfile"
)

// Errors of the report history. Each is wrapped with the operation and path
// or ID; test with errors.Is.
var (
	// ErrNoReport means the history holds no report with the requested ID
	// (or no report at all for "latest").
	ErrNoReport = errors.New("report: no such report")
	// ErrInvalidID means a string given as a report ID is none of
	// <kind>-YYYYMMDD-HHMMSS[-N], latest or latest-<kind>.
	ErrInvalidID = errors.New("report: invalid report id")
	// ErrInvalidKind means a kind given to Save is not 1-32 lower-case
	// ASCII letters.
	ErrInvalidKind = errors.New("report: invalid report kind")
	// ErrUnsafeDir means report_dir (or state_dir, for Prune) is a symbolic
	// link or not a directory. Reports are never written or removed through
	// a link: point the option at the real directory instead.
	ErrUnsafeDir = errors.New("report: directory is a symlink or not a directory")
)

// Report kinds the commands save under. Save accepts any kind of lower-case
// letters; these are the ones the agent uses.
const (
	HistoryInit    = "init"
	HistoryCheck   = "check"
	HistoryUpdate  = "update"
	HistoryAccept  = "accept"
	HistoryCompare = "compare"
	HistoryRAID    = "raid"
	HistoryPosture = "posture"
)

// historyFileMode is the mode of every report file: reports list every
// changed path on the host, which is for root's eyes only.
const historyFileMode = 0o600

// historyDirMode is the mode report_dir is created with.
const historyDirMode = 0o700

// histTempInfix marks a report file still being written:
// <id>.txt.tmp-123456. Prune removes such files once they are an hour old.
const histTempInfix = atomicfile.TempInfix

// History is the directory of saved reports (report_dir, by default
// state_dir/reports). Each saved run is a pair of files
//
//	check-20261121-101500.txt
//	check-20261121-101500.json
//
// named by its ID, <kind>-YYYYMMDD-HHMMSS[-N]. The stamp is the wall clock of
// Now in Now's location: local time for time.Now, as the cron script's
// `date +%Y%m%d-%H%M%S` names aide.log.20110315-162841 and as the db package
// names kept baseline generations, so the names match what the admin's clock
// and `ls` say. A second report in the same second gets -2, -3 ... appended;
// the suffix is part of the ID.
//
// Files are written 0600 through a temporary file in the same directory,
// fsynced and linked into place, so a reader or a crash never sees half a
// report, and the directory is fsynced. report_dir is created 0700 if
// missing; if it is a symbolic link, History refuses it (ErrUnsafeDir) rather
// than write through it. A History is stateless; methods may be called from
// several goroutines and processes, and two Saves never claim the same ID.
type History struct {
	// Dir is report_dir. Required.
	Dir string
	// Now is the clock that names saved reports and the location in which
	// names are read back. Nil means time.Now.
	Now func() time.Time

	pre *prewrite // Prewrite's files, taken by the next Save
}

// prewrite is what Prewrite wrote: a temporary file per part, open,
// holding data.
type prewrite struct {
	done  chan struct{}
	parts map[string]*prePart // by extension
}

type prePart struct {
	data []byte
	f    *os.File // nil when it could not be written
}

// Prewrite begins the next Save early: it writes text and json, the
// beginnings of the reports Save will be given (a report's body, before
// its tail), to temporary files on goroutines of its own and starts
// their writeback, so that Save only appends the rest, syncs and places
// them. agent update --packages has the bodies while its baseline is
// still being written. A failure is only remembered: Save then writes
// that part whole.
func (h *History) Prewrite(kind string, text, json []byte) {
	h.discardPrewrite()
	if !validKind(kind) || h.makeDir() != nil {
		return
	}
	pw := &prewrite{done: make(chan struct{}), parts: map[string]*prePart{}}
	h.pre = pw
	base := stampName{Kind: kind, Stamp: h.now().Format(stampLayout), N: 1}
	var wg sync.WaitGroup
	for ext, data := range map[string][]byte{extText: text, extJSON: json} {
		if data == nil {
			continue
		}
		p := &prePart{data: data}
		pw.parts[ext] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := atomicfile.CreateTemp(h.Dir, base.id()+ext, historyFileMode)
			if err != nil {
				return
			}
			if _, err := f.Write(data); err != nil {
				f.Close()
				os.Remove(f.Name())
				return
			}
			atomicfile.StartWriteback(f)
			p.f = f
		}()
	}
	go func() {
		wg.Wait()
		close(pw.done)
	}()
}

// takePrewrite returns the prewritten file of part ext if data begins
// with what it holds; the caller then owns it (appends, syncs, closes).
func (h *History) takePrewrite(ext string, data []byte) (*os.File, []byte) {
	pw := h.pre
	if pw == nil {
		return nil, data
	}
	<-pw.done
	p := pw.parts[ext]
	if p == nil || p.f == nil || !bytes.HasPrefix(data, p.data) {
		return nil, data
	}
	f := p.f
	p.f = nil
	return f, data[len(p.data):]
}

// DiscardPrewrite removes what Prewrite wrote, for a run that saves no
// report after all; Save discards what it does not take.
func (h *History) DiscardPrewrite() { h.discardPrewrite() }

func (h *History) discardPrewrite() {
	pw := h.pre
	if pw == nil {
		return
	}
	h.pre = nil
	<-pw.done
	for _, p := range pw.parts {
		if p.f != nil {
			p.f.Close()
			os.Remove(p.f.Name())
		}
	}
}

// Item is one saved report.
type Item struct {
	ID       string    // e.g. "check-20261121-101500-2"
	Kind     string    // e.g. "check"
	Time     time.Time // the stamp in the name, read in History.Now's location
	TextPath string    // path of the plain report, "" if that file is missing
	JSONPath string    // path of the JSON report, "" if that file is missing
	Size     int64     // bytes of both files together
}

func (h *History) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

// Save stores one run's reports as <kind>-YYYYMMDD-HHMMSS[-N].txt and .json
// and returns the ID. A nil text or json skips that file (a run without a
// JSON form); both nil is an error. Kind must be lower-case letters
// (ErrInvalidKind). Save never overwrites an existing file and never follows
// a symlink: an ID is taken if either of its names exists, whatever it is.
// On error no file of the new report is left behind, except where the
// directory fsync fails after both files are in place (the ID is then
// returned with the error).
func (h *History) Save(kind string, text, json []byte) (string, error) {
	if !validKind(kind) {
		return "", fmt.Errorf("save report %q: %w", kind, ErrInvalidKind)
	}
	defer h.discardPrewrite()
	if text == nil && json == nil {
		return "", fmt.Errorf("save %s report: nothing to save", kind)
	}
	if err := h.makeDir(); err != nil {
		return "", err
	}
	base := stampName{Kind: kind, Stamp: h.now().Format(stampLayout), N: 1}
	type part struct {
		ext  string
		data []byte
		tmp  string
	}
	var parts []*part
	if text != nil {
		parts = append(parts, &part{ext: extText, data: text})
	}
	if json != nil {
		parts = append(parts, &part{ext: extJSON, data: json})
	}
	defer func() {
		for _, p := range parts {
			if p.tmp != "" {
				os.Remove(p.tmp)
			}
		}
	}()
	// Each part is written and synced at the same time as the other: a
	// large report costs one wait for the disk, not two.
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f, rest := h.takePrewrite(p.ext, p.data); f != nil {
				p.tmp, errs[i] = atomicfile.FinishTemp(f, bytes.NewReader(rest))
				return
			}
			p.tmp, errs[i] = atomicfile.WriteTemp(h.Dir, base.id()+p.ext, bytes.NewReader(p.data), historyFileMode)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("save %s report: %w", kind, err)
	}
	for n := 1; n <= maxSuffix; n++ {
		name := base
		name.N = n
		id := name.id()
		if h.taken(id) {
			continue
		}
		var placed []string
		var err error
		for _, p := range parts {
			dst := filepath.Join(h.Dir, id+p.ext)
			if err = atomicfile.Place(p.tmp, dst); err != nil {
				break
			}
			placed = append(placed, dst)
		}
		if err != nil {
			for _, dst := range placed {
				os.Remove(dst)
			}
			if errors.Is(err, fs.ErrExist) {
				continue // lost a race for this ID
			}
			return "", fmt.Errorf("save report %s: %w", id, err)
		}
		if err := atomicfile.SyncDir(h.Dir); err != nil {
			return id, fmt.Errorf("save report %s: %w", id, err)
		}
		return id, nil
	}
	return "", fmt.Errorf("save report %s: no free suffix up to -%d", base.id(), maxSuffix)
}

// taken reports whether any file of report id exists (a symlink or a
// directory under that name counts).
func (h *History) taken(id string) bool {
	for _, ext := range []string{extText, extJSON} {
		if _, err := os.Lstat(filepath.Join(h.Dir, id+ext)); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// makeDir creates Dir 0700 if it is missing and checks it is a real
// directory.
func (h *History) makeDir() error {
	if h.Dir == "" {
		return &fs.PathError{Op: "report history", Path: h.Dir, Err: errors.New("report_dir not set")}
	}
	if err := os.MkdirAll(h.Dir, historyDirMode); err != nil {
		return fmt.Errorf("create report_dir: %w", err)
	}
	return histCheckDir(h.Dir)
}

// histCheckDir returns ErrUnsafeDir unless dir itself (its last component) is
// a directory and not a symbolic link.
func histCheckDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &fs.PathError{Op: "open", Path: dir, Err: ErrUnsafeDir}
	}
	return nil
}

// Incomplete returns the names of the temporary report files in Dir
// (<id>.txt.tmp-*): reports whose writer was killed or is still writing.
// Prune removes them once they are StaleTempAge old.
func (h *History) Incomplete() ([]string, error) {
	des, err := os.ReadDir(h.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() && isStaleTempName(de.Name()) {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

// List returns every saved report, oldest first: by the time in the name,
// then by suffix, then by kind. Files that are not regular files (a symlink
// named like a report, say) and names that do not parse are ignored. A
// missing report_dir is an empty history, not an error.
func (h *History) List() ([]Item, error) {
	switch err := histCheckDir(h.Dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("list reports: %w", err)
	}
	des, err := os.ReadDir(h.Dir)
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	loc := h.now().Location()
	byID := map[string]*Item{}
	names := map[string]stampName{}
	for _, de := range des {
		s, ok := parseReportName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue // removed meanwhile, or changed type
		}
		id := s.id()
		it := byID[id]
		if it == nil {
			it = &Item{ID: id, Kind: s.Kind, Time: s.time(loc)}
			byID[id] = it
			names[id] = s
		}
		path := filepath.Join(h.Dir, de.Name())
		if s.Ext == extText {
			it.TextPath = path
		} else {
			it.JSONPath = path
		}
		it.Size += fi.Size()
	}
	items := make([]Item, 0, len(byID))
	for _, it := range byID {
		items = append(items, *it)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := names[items[i].ID], names[items[j].ID]
		if a.Stamp != b.Stamp {
			return a.Stamp < b.Stamp
		}
		if a.N != b.N {
			return a.N < b.N
		}
		return a.Kind < b.Kind
	})
	return items, nil
}

// Get returns the report named by ref: an ID
// (check-20261121-101500-2), "latest" (the newest report of any kind) or
// "latest-<kind>" (the newest of that kind, e.g. latest-check). A ref of
// none of these forms wraps ErrInvalidID; a well-formed one with no report
// wraps ErrNoReport.
func (h *History) Get(ref string) (Item, error) {
	kind, latest := "", false
	switch {
	case ref == "latest":
		latest = true
	case strings.HasPrefix(ref, "latest-"):
		kind, latest = ref[len("latest-"):], true
		if !validKind(kind) {
			return Item{}, fmt.Errorf("report %q: %w", ref, ErrInvalidID)
		}
	default:
		if _, ok := parseID(ref); !ok {
			return Item{}, fmt.Errorf("report %q: %w", ref, ErrInvalidID)
		}
	}
	items, err := h.List()
	if err != nil {
		return Item{}, err
	}
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		if latest && (kind == "" || it.Kind == kind) || !latest && it.ID == ref {
			return it, nil
		}
	}
	return Item{}, fmt.Errorf("report %s: %w", ref, ErrNoReport)
}
