package report

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

// ErrLevel is returned by ParseLevel for an unknown report_level name.
var ErrLevel = errors.New("report: unknown report level")

// Kind is the mode of the run a report describes.
type Kind string

// The kinds of run. They choose the outline line and what the database
// section names.
const (
	KindInit    Kind = "init"
	KindCheck   Kind = "check"
	KindUpdate  Kind = "update"
	KindCompare Kind = "compare"
)

// Level is AIDE's report_level. The zero value is LevelChangedAttributes,
// AIDE's default; the others are ordered by how much they show (see rank).
type Level uint8

// The report levels, named as in aide.conf(5).
const (
	LevelChangedAttributes      Level = iota // default: lists plus details of changed attributes
	LevelMinimal                             // only the outline line
	LevelSummary                             // header, outline and the summary counts
	LevelDatabaseAttributes                  // plus the database section
	LevelListEntries                         // plus the added/removed/changed lists
	LevelAddedRemovedAttributes              // plus attributes present on one side only
	LevelAddedRemovedEntries                 // plus every attribute of added and removed entries
)

var levelNames = [...]string{
	LevelChangedAttributes:      "changed_attributes",
	LevelMinimal:                "minimal",
	LevelSummary:                "summary",
	LevelDatabaseAttributes:     "database_attributes",
	LevelListEntries:            "list_entries",
	LevelAddedRemovedAttributes: "added_removed_attributes",
	LevelAddedRemovedEntries:    "added_removed_entries",
}

// String returns the aide.conf name of l.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel returns the Level named s (an aide.conf report_level value); the
// empty string is the default, LevelChangedAttributes.
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return LevelChangedAttributes, nil
	}
	for i, n := range levelNames {
		if n == s {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q", ErrLevel, s)
}

// rank orders the levels by how much they show.
func (l Level) rank() int {
	switch l {
	case LevelMinimal:
		return 0
	case LevelSummary:
		return 1
	case LevelDatabaseAttributes:
		return 2
	case LevelListEntries:
		return 3
	case LevelChangedAttributes:
		return 4
	case LevelAddedRemovedAttributes:
		return 5
	case LevelAddedRemovedEntries:
		return 6
	}
	return 4
}

// atLeast reports whether l shows at least as much as m.
func (l Level) atLeast(m Level) bool { return l.rank() >= m.rank() }

// Problem is an entry the run could not record faithfully: unreadable,
// vanished, changed while it was read.
type Problem struct {
	Path string // absolute path, bytes (not necessarily UTF-8)
	Err  string // what went wrong, e.g. "open: permission denied"
}

// Report is everything a report shows. Every value is injected by the caller
// (the command layer), so rendering is a pure function of Report.
type Report struct {
	Kind         Kind
	Start, End   time.Time
	Location     *time.Location // time zone of every time shown; nil = UTC
	AgentVersion string         // e.g. "0.1.0"
	Host         string
	Config       string // path of the config file used

	Baseline          string   // path of the baseline database read (check, update, compare)
	BaselineDigest    [32]byte // BLAKE3 of that file
	NewBaseline       string   // path of the baseline written (init, update); for compare the second database
	NewBaselineDigest [32]byte // BLAKE3 of that file

	Total                   int // entries in the new scan (init, check, update) or second database
	Added, Removed, Changed int // counts; normally equal to the Changes of each kind

	// Changes is what scanner.Compare found. The renderers sort a copy by
	// path bytes, so the caller's order does not matter.
	Changes  []scanner.Change
	Problems []Problem // listed in their own section; sorted by path when rendered
	// MetadataOnly is scanner.Stats.MetadataOnly: entries on pseudo file
	// systems (proc, sysfs...) recorded without reading their content.
	MetadataOnly int
	// Notices are things about the run itself that the reader must see
	// (an unreadable previous baseline was replaced, the report could not
	// be kept); each is one line under the outline.
	Notices []string
	// Provenance is who made each change (package classification); nil
	// when the run did not classify.
	Provenance *ProvenanceInfo
	// Posture is the hardening section (new privileged files, agent
	// posture's findings); nil when the run did not look.
	Posture *PostureInfo

	Level         Level         // report_level
	Base16        bool          // report_base16: hashes in lower-case hex instead of base64
	ForceAttrs    rules.AttrSet // report_force_attrs: always shown in details of changed entries
	IgnoreChanged rules.AttrSet // report_ignore_changed_attrs: shown as ':' in the change string
	Limit         string        // --limit regular expression, if any

	// UserName and GroupName turn the ids of named ACL entries into names,
	// as aide's acl_to_text does. Nil (or "" returned) prints the number.
	UserName  func(uid uint32) string
	GroupName func(gid uint32) string

	prep *prepared // set by Prepare
}

func (r *Report) loc() *time.Location {
	if r.Location == nil {
		return time.UTC
	}
	return r.Location
}

// timestamp formats t as aide does: "2006-01-02 15:04:05 -0700".
func (r *Report) timestamp(t time.Time) string {
	return t.In(r.loc()).Format("2006-01-02 15:04:05 -0700")
}

// runTime returns the run time in whole seconds (never negative).
func (r *Report) runTime() int64 {
	d := r.End.Sub(r.Start)
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// differences reports whether the run found any difference.
func (r *Report) differences() bool {
	return r.Added+r.Removed+r.Changed > 0
}

// outline is AIDE's one-line verdict. The wording is AIDE's, verbatim,
// because log watchers and mail filters match it.
func (r *Report) outline() string {
	switch r.Kind {
	case KindInit:
		return "AIDE successfully initialized database."
	case KindCompare:
		if r.differences() {
			return "AIDE found differences between the two databases!!"
		}
		return "AIDE found NO differences between the two databases."
	}
	if r.differences() {
		return "AIDE found differences between database and filesystem!!"
	}
	return "AIDE found NO differences between database and filesystem. Looks okay!!"
}

// sorted returns the changes of kind k sorted by path bytes.
func (r *Report) sorted(k scanner.ChangeKind) []scanner.Change {
	// Filtered from the stable sort of all: the order a stable sort of
	// the kind alone gives. The caller must not modify it (it is all
	// when every change is of kind k).
	all, n := r.all(), 0
	for _, c := range all {
		if c.Kind == k {
			n++
		}
	}
	if n == len(all) {
		return all
	}
	out := make([]scanner.Change, 0, n)
	for _, c := range all {
		if c.Kind == k {
			out = append(out, c)
		}
	}
	return out
}

// all returns every change sorted by path bytes (the order of AIDE's
// details). The caller must not modify it.
func (r *Report) all() []scanner.Change {
	if r.prep != nil {
		return r.prep.all
	}
	out := append([]scanner.Change(nil), r.Changes...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// prepared is what both renderings of a report compute alike (Prepare).
type prepared struct {
	all     []scanner.Change // r.all()
	details [][]detailLine   // detailLines of all[i] where a block shows it
	ready   chan struct{}    // closed once details is complete
	stamps  sync.Map         // Unix second → timestamp, for the details
}

// stamp is timestamp of the time ns nanoseconds after the epoch. While
// the report is prepared the strings are kept by second: the entries of
// one package upgrade share a few seconds.
func (r *Report) stamp(ns int64) string {
	p := r.prep
	if p == nil {
		return r.timestamp(time.Unix(0, ns))
	}
	sec := ns / 1e9
	if ns%1e9 < 0 {
		sec--
	}
	if s, ok := p.stamps.Load(sec); ok {
		return s.(string)
	}
	s := r.timestamp(time.Unix(sec, 0))
	p.stamps.Store(sec, s)
	return s
}

// Prepare computes once what WriteText and WriteJSON (and TextBody and
// JSONBody) would each compute for r: the changes in path order, and, on
// every CPU while rendering starts, the detail lines of each one shown in
// a block. Rendering afterwards gives the same bytes in less time; r's
// changes, level and attribute options must not change after it. It
// returns once the changes are in order (the detail lines follow on
// their own goroutines), and a second call does nothing.
func (r *Report) Prepare() {
	if r.prep != nil {
		return
	}
	p := &prepared{all: r.all(), ready: make(chan struct{})}
	p.details = make([][]detailLine, len(p.all))
	r.prep = p
	lanes := min(runtime.GOMAXPROCS(0), 8)
	per := max(1, (len(p.all)+lanes-1)/lanes)
	var wg sync.WaitGroup
	for lo := 0; lo < len(p.all); lo += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < min(lo+per, len(p.all)); i++ {
				if r.block(p.all[i]) {
					p.details[i] = r.detailLines(p.all[i])
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(p.ready)
	}()
}

// block says whether c has a block in the details: changed entries, and
// added and removed ones at added_removed_entries.
func (r *Report) block(c scanner.Change) bool {
	return c.Kind == scanner.Changed || r.Level == LevelAddedRemovedEntries
}

// detailsAt is detailLines of all()[i] (c).
func (r *Report) detailsAt(i int, c scanner.Change) []detailLine {
	if r.prep != nil {
		<-r.prep.ready
		return r.prep.details[i]
	}
	return r.detailLines(c)
}

func (r *Report) sortedProblems() []Problem {
	out := append([]Problem(nil), r.Problems...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Summary returns a one-line summary for a mail subject or syslog, such as
// "integrity check: 3 added, 1 removed, 5 changed",
// "integrity check: no differences (10 entries)" or
// "integrity init: baseline of 10 entries". Unreadable entries are appended
// as ", 2 unreadable".
func Summary(r *Report) string {
	var b strings.Builder
	kind := r.Kind
	if kind == "" {
		kind = KindCheck
	}
	b.WriteString("integrity ")
	b.WriteString(string(kind))
	b.WriteString(": ")
	switch {
	case kind == KindInit:
		fmt.Fprintf(&b, "baseline of %d entries", r.Total)
	case r.differences():
		fmt.Fprintf(&b, "%d added, %d removed, %d changed", r.Added, r.Removed, r.Changed)
	default:
		fmt.Fprintf(&b, "no differences (%d entries)", r.Total)
	}
	if n := len(r.Problems); n > 0 {
		fmt.Fprintf(&b, ", %d unreadable", n)
	}
	return b.String()
}
