package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// The provenance classes the integrity pipeline gives (integrity.Class),
// from the quietest to the loudest. report only renders them.
const (
	ClassPackage     = "package"
	ClassScript      = "package-script"
	ClassUnexplained = "unexplained"
	ClassMismatch    = "package-mismatch"
)

// Provenance is who made one reported change.
type Provenance struct {
	Class   string
	Package string // explaining or owning package, "" if none
	Version string
	Reason  string
}

// PackageChange is one package that a package run changed since the
// baseline, as the provenance section lists it.
type PackageChange struct {
	Name       string
	Action     string // install, upgrade, remove, purge, configure
	OldVersion string
	NewVersion string
	Time       time.Time
}

// Explained says how the provenance section lists explained changes
// (report_explained).
type Explained string

const (
	ExplainedList    Explained = "list"    // every explained path with its package
	ExplainedSummary Explained = "summary" // one line per package (the default)
	ExplainedNone    Explained = "none"    // counts only
)

// ProvenanceInfo is the provenance part of a Report; nil means the run did
// no classification and the report has no provenance section.
type ProvenanceInfo struct {
	Backend   string                // "dpkg", "rpm" or "" when there is none
	Note      string                // said once, e.g. why every change is unexplained
	ByPath    map[string]Provenance // every reported path
	Packages  []PackageChange       // sorted by time
	Explained Explained
}

// counts returns how many reported paths fall in each class.
func (p *ProvenanceInfo) counts() map[string]int {
	n := map[string]int{}
	for _, v := range p.ByPath {
		n[v.Class]++
	}
	return n
}

// Unexplained returns the number of unexplained and mismatched changes.
func (r *Report) Unexplained() (unexplained, mismatch int) {
	if r.Provenance == nil {
		return 0, 0
	}
	n := r.Provenance.counts()
	return n[ClassUnexplained], n[ClassMismatch]
}

// explainedBy returns the packages that explain changes, with how many
// each explains, sorted by name.
func (p *ProvenanceInfo) explainedBy() []struct {
	name string
	n    int
} {
	m := map[string]int{}
	for _, v := range p.ByPath {
		if v.Class == ClassPackage || v.Class == ClassScript {
			name := v.Package
			if name == "" {
				name = "(package manager)"
			}
			m[name]++
		}
	}
	out := make([]struct {
		name string
		n    int
	}, 0, len(m))
	for k, v := range m {
		out = append(out, struct {
			name string
			n    int
		}{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// pathsOf returns the paths of class, sorted.
func (p *ProvenanceInfo) pathsOf(classes ...string) []string {
	var out []string
	for path, v := range p.ByPath {
		for _, c := range classes {
			if v.Class == c {
				out = append(out, path)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// provenance prints the section that comes before AIDE's lists: counts,
// the packages changed since the baseline, the mismatches, the
// unexplained changes, and the explained ones as report_explained says.
func (t *textWriter) provenance() {
	p := t.r.Provenance
	if p == nil || !t.r.differences() {
		return
	}
	title := "Provenance of the changes:"
	if p.Backend != "" {
		title = "Provenance of the changes (" + p.Backend + "):"
	}
	t.section(title)
	if p.Note != "" {
		t.line("Note: " + p.Note)
		t.line("")
	}
	n := p.counts()
	t.printf("  Package mismatch:\t%d\n", n[ClassMismatch])
	t.printf("  Unexplained:\t\t%d\n", n[ClassUnexplained])
	t.printf("  Explained:\t\t%d (package %d, package-script %d)\n", n[ClassPackage]+n[ClassScript], n[ClassPackage], n[ClassScript])
	t.line("")
	if len(p.Packages) > 0 {
		t.line("Package operations since the baseline:")
		for _, c := range p.Packages {
			t.printf("  %s\n", describeChange(c))
		}
		t.line("")
	}
	for _, s := range []struct{ class, title string }{
		{ClassMismatch, "Package mismatch (content differs from the package's record):"},
		{ClassUnexplained, "Unexplained:"},
	} {
		paths := p.pathsOf(s.class)
		if len(paths) == 0 {
			continue
		}
		t.line(s.title)
		for _, path := range paths {
			t.printf("  %s: %s\n", EscapePath(path), EscapePath(p.ByPath[path].Reason))
		}
		t.line("")
	}
	switch p.Explained {
	case ExplainedNone:
	case ExplainedList:
		paths := p.pathsOf(ClassPackage, ClassScript)
		if len(paths) > 0 {
			t.line("Explained:")
			for _, path := range paths {
				v := p.ByPath[path]
				t.printf("  %s: %s %s: %s\n", EscapePath(path), v.Class, EscapePath(v.Package), EscapePath(v.Reason))
			}
			t.line("")
		}
	default:
		by := p.explainedBy()
		if len(by) > 0 {
			t.line("Explained, per package:")
			for _, b := range by {
				t.printf("  %s: %d\n", EscapePath(b.name), b.n)
			}
			t.line("")
		}
	}
}

func describeChange(c PackageChange) string {
	at := c.Time.Format(time.DateTime)
	switch {
	case c.OldVersion != "" && c.NewVersion != "" && c.OldVersion != c.NewVersion:
		return fmt.Sprintf("%s %s -> %s (%s, %s)", c.Name, c.OldVersion, c.NewVersion, c.Action, at)
	case c.NewVersion != "":
		return fmt.Sprintf("%s %s (%s, %s)", c.Name, c.NewVersion, c.Action, at)
	}
	return fmt.Sprintf("%s %s (%s, %s)", c.Name, c.OldVersion, c.Action, at)
}

// provenanceJSON writes the "provenance" object: every reported path with
// its class, package, version and reason (empty keys left out).
func (j *jsonWriter) provenance() {
	p := j.r.Provenance
	if p == nil {
		return
	}
	j.key("provenance")
	j.open('{')
	if p.Backend != "" {
		j.kv("backend", p.Backend)
	}
	if p.Note != "" {
		j.kv("note", EscapeJSONPath(p.Note))
	}
	j.key("paths")
	j.open('{')
	// Bytewise order: that of the changes (all) when they are the paths,
	// as they are after a check or update; sorted otherwise.
	paths := make([]string, 0, len(p.ByPath))
	for _, c := range j.r.all() {
		if _, ok := p.ByPath[c.Path]; ok && (len(paths) == 0 || paths[len(paths)-1] != c.Path) {
			paths = append(paths, c.Path)
		}
	}
	if len(paths) != len(p.ByPath) {
		paths = paths[:0]
		for path := range p.ByPath {
			paths = append(paths, path)
		}
		sort.Strings(paths)
	}
	for _, path := range paths {
		v := p.ByPath[path]
		j.key(EscapeJSONPath(path))
		j.open('{')
		j.kv("class", v.Class)
		if v.Package != "" {
			j.kv("package", EscapeJSONPath(v.Package))
		}
		if v.Version != "" {
			j.kv("version", EscapeJSONPath(v.Version))
		}
		if v.Reason != "" {
			j.kv("reason", EscapeJSONPath(v.Reason))
		}
		j.close('}')
	}
	j.close('}')
	if len(p.Packages) > 0 {
		j.key("packages")
		j.open('[')
		for _, c := range p.Packages {
			j.key("")
			j.open('{')
			j.kv("name", EscapeJSONPath(c.Name))
			j.kv("action", c.Action)
			if c.OldVersion != "" {
				j.kv("old_version", EscapeJSONPath(c.OldVersion))
			}
			if c.NewVersion != "" {
				j.kv("new_version", EscapeJSONPath(c.NewVersion))
			}
			j.kv("time", c.Time.UTC().Format(time.RFC3339))
			j.close('}')
		}
		j.close(']')
	}
	j.close('}')
}

// provenanceSubject is the subject's verdict when the report has
// provenance: "integrity check: 2 unexplained, 1 package mismatch (481
// changes explained by 15 packages)". The "integrity KIND: " prefix stays
// what it is without provenance, for mail filters.
func provenanceSubject(r *Report) (string, bool) {
	p := r.Provenance
	if p == nil || r.Kind == KindInit || !r.differences() {
		return "", false
	}
	n := p.counts()
	var parts []string
	if n[ClassUnexplained] > 0 || n[ClassMismatch] == 0 {
		parts = append(parts, fmt.Sprintf("%d unexplained", n[ClassUnexplained]))
	}
	if n[ClassMismatch] > 0 {
		word := "package mismatch"
		if n[ClassMismatch] > 1 {
			word = "package mismatches"
		}
		parts = append(parts, fmt.Sprintf("%d %s", n[ClassMismatch], word))
	}
	kind := r.Kind
	if kind == "" {
		kind = KindCheck
	}
	s := "integrity " + string(kind) + ": " + strings.Join(parts, ", ")
	if e := n[ClassPackage] + n[ClassScript]; e > 0 {
		pk := len(p.explainedBy())
		s += fmt.Sprintf(" (%d %s explained by %d %s)", e, plural(e, "change", "changes"), pk, plural(pk, "package", "packages"))
	}
	return s, true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
