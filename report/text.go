package report

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"opsagent/rules"
	"opsagent/scanner"
)

// rule frames the sections of a plain report (51 dashes, as aide).
const rule = "---------------------------------------------------"

// column is the width of one side of a detail line; longer values wrap.
const column = 32

// WriteText writes r in aide 0.18.3's plain report layout, byte for byte,
// except that the Start line names the agent ("(agent 0.1.0)"), the database
// section lists the agent's baseline with its BLAKE3 digest instead of aide's
// hashes of aide.db, and entries the run could not read get their own
// section (aide has none):
//
//	---------------------------------------------------
//	Unreadable entries:
//	---------------------------------------------------
//
//	/var/lib/secret: open: permission denied
//
// It follows the added/removed/changed lists and the details, so the lists
// keep aide's place, and it is shown at every level from summary up; the
// Summary then gains a line "  Unreadable entries:\t\tN". Paths and values
// are escaped with EscapePath. Write errors are returned as they are.
func WriteText(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	t := &textWriter{w: bw, r: r}
	t.report()
	if err := bw.Flush(); err != nil {
		return err
	}
	return nil
}

type textWriter struct {
	w *bufio.Writer
	r *Report
}

func (t *textWriter) printf(format string, args ...any) { fmt.Fprintf(t.w, format, args...) }
func (t *textWriter) line(s string)                     { t.w.WriteString(s); t.w.WriteByte('\n') }

// spaces pads the columns of detail lines.
var spaces = strings.Repeat(" ", column)

// pad writes s left-aligned in width columns, as fmt's %-*s does (which
// counts runes, not bytes).
func (t *textWriter) pad(s string, width int) {
	t.w.WriteString(s)
	for n := width - utf8.RuneCountInString(s); n > 0; n -= len(spaces) {
		t.w.WriteString(spaces[:min(n, len(spaces))])
	}
}

func (t *textWriter) report() {
	t.body()
	t.tail()
}

// body is the report but for its tail.
func (t *textWriter) body() {
	r := t.r
	if r.Level == LevelMinimal {
		t.line(r.outline())
		return
	}
	t.printf("Start timestamp: %s (agent %s)\n", r.timestamp(r.Start), r.AgentVersion)
	t.line(r.outline())
	if r.Kind == KindInit || r.Kind == KindUpdate {
		t.printf("New AIDE database written to %s\n", EscapePath(r.NewBaseline))
	}
	t.options()
	for _, n := range r.Notices {
		t.line("Notice: " + EscapePath(n))
	}
	t.line("")
	t.summary()
	if r.Level.atLeast(LevelListEntries) && r.Kind != KindInit {
		t.provenance()
		t.posture()
		t.lists()
		if r.Level.atLeast(LevelChangedAttributes) && r.differences() {
			t.details()
		}
	}
	t.problems()
}

// tail is what comes last: the baselines and their digests, and the end
// time (see Pending).
func (t *textWriter) tail() {
	r := t.r
	if r.Level == LevelMinimal {
		return
	}
	if r.Level.atLeast(LevelDatabaseAttributes) {
		t.databases()
	}
	t.printf("End timestamp: %s (run time: %dm %ds)\n", r.timestamp(r.End), r.runTime()/60, r.runTime()%60)
}

// options prints the lines aide adds under the outline when options differ
// from their defaults: "Limit: X | Report level: Y" share a line.
func (t *textWriter) options() {
	r := t.r
	var parts []string
	if r.Limit != "" {
		parts = append(parts, "Limit: "+EscapePath(r.Limit))
	}
	if r.Level != LevelChangedAttributes {
		parts = append(parts, "Report level: "+r.Level.String())
	}
	if len(parts) > 0 {
		t.line(strings.Join(parts, " | "))
	}
	if r.IgnoreChanged != 0 {
		t.line("Ignored changed attributes: " + r.IgnoreChanged.String())
	}
	// aide prints the forced attributes only at levels that show details.
	if r.ForceAttrs != 0 && r.Level.atLeast(LevelChangedAttributes) {
		t.line("Forced attributes: " + r.ForceAttrs.String())
	}
}

func (t *textWriter) summary() {
	r := t.r
	if r.Kind == KindInit || !r.differences() {
		t.printf("Number of entries:\t%d\n", r.Total)
		if len(r.Problems) > 0 {
			t.printf("Unreadable entries:\t%d\n", len(r.Problems))
		}
		if r.MetadataOnly > 0 {
			t.printf("Pseudo-fs entries, metadata only:\t%d\n", r.MetadataOnly)
		}
		t.line("")
		return
	}
	t.line("Summary:")
	t.printf("  Total number of entries:\t%d\n", r.Total)
	t.printf("  Added entries:\t\t%d\n", r.Added)
	t.printf("  Removed entries:\t\t%d\n", r.Removed)
	t.printf("  Changed entries:\t\t%d\n", r.Changed)
	if len(r.Problems) > 0 {
		t.printf("  Unreadable entries:\t\t%d\n", len(r.Problems))
	}
	if r.MetadataOnly > 0 {
		t.printf("  Pseudo-fs entries, metadata only:\t%d\n", r.MetadataOnly)
	}
	t.line("")
}

func (t *textWriter) section(title string) {
	t.line(rule)
	t.line(title)
	t.line(rule)
	t.line("")
}

func (t *textWriter) lists() {
	for _, s := range []struct {
		kind  scanner.ChangeKind
		title string
	}{
		{scanner.Added, "Added entries:"},
		{scanner.Removed, "Removed entries:"},
		{scanner.Changed, "Changed entries:"},
	} {
		cs := t.r.sorted(s.kind)
		if len(cs) == 0 {
			continue
		}
		t.section(s.title)
		for _, c := range cs {
			t.w.WriteString(ChangeString(c, t.r.IgnoreChanged))
			t.w.WriteString(": ")
			t.line(EscapePath(c.Path))
		}
		t.line("")
	}
}

func (t *textWriter) details() {
	r := t.r
	t.section("Detailed information about changes:")
	for i, c := range r.all() {
		if !r.block(c) {
			continue
		}
		e := c.New
		if e == nil {
			e = c.Old
		}
		t.w.WriteString(typeName(entryType(e)))
		t.w.WriteString(": ")
		t.line(EscapePath(c.Path))
		for _, d := range r.detailsAt(i, c) {
			t.detail(d)
		}
		t.line("")
	}
	t.line("")
}

// detailLine is one attribute of a detailed block; old or new is nil when
// that side does not have the attribute.
type detailLine struct {
	attr     detailAttr
	old, new []string
}

// detailLines selects the attributes of c's detailed block: for a changed
// entry, the changed attributes plus report_force_attrs present on both
// sides, and from added_removed_attributes up the attributes only one side
// has; for an added or removed entry, all its attributes.
func (r *Report) detailLines(c scanner.Change) []detailLine {
	var out []detailLine
	var oldA, newA rules.AttrSet
	if c.Old != nil {
		oldA = c.Old.Attrs
	}
	if c.New != nil {
		newA = c.New.Attrs
	}
	both := oldA & newA
	for _, d := range details {
		bit := d.attr.Set()
		var showOld, showNew bool
		switch c.Kind {
		case scanner.Added:
			showNew = newA&bit != 0
		case scanner.Removed:
			showOld = oldA&bit != 0
		default:
			switch {
			case c.Changed&bit != 0 && both&bit != 0, r.ForceAttrs&bit != 0 && both&bit != 0:
				showOld, showNew = true, true
			case r.Level.atLeast(LevelAddedRemovedAttributes) && both&bit == 0:
				showOld, showNew = oldA&bit != 0, newA&bit != 0
			}
		}
		if !showOld && !showNew {
			continue
		}
		l := detailLine{attr: d}
		if showOld {
			l.old = r.value(d.attr, c.Old)
		}
		if showNew {
			l.new = r.value(d.attr, c.New)
		}
		out = append(out, l)
	}
	return out
}

// wrap escapes each line and cuts it into column-wide pieces.
func wrap(lines []string) []string {
	// Most values are one short line with nothing to escape: returned as
	// they are, without a copy.
	short := true
	for _, l := range lines {
		if len(l) > column || EscapePath(l) != l {
			short = false
			break
		}
	}
	if short {
		return lines
	}
	var out []string
	for _, l := range lines {
		l = EscapePath(l)
		for len(l) > column {
			out = append(out, l[:column])
			l = l[column:]
		}
		out = append(out, l)
	}
	return out
}

// detail prints one attribute as aide does: " %-10s: %-32s | %s", further
// rows indented by 13 spaces. With only an old value the value follows the
// colon unpadded; with only a new value the old column is blank and the bar
// is a blank.
func (t *textWriter) detail(d detailLine) {
	left, right := wrap(d.old), wrap(d.new)
	rows := max(len(left), len(right))
	for i := 0; i < rows; i++ {
		if i == 0 {
			t.w.WriteByte(' ')
			t.pad(d.attr.name, 10)
			t.w.WriteString(": ")
		} else {
			t.w.WriteString("             ")
		}
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		switch {
		case d.new == nil:
			t.line(l)
		case d.old == nil:
			t.pad("", column)
			t.w.WriteString("   ")
			t.line(r)
		default:
			t.pad(l, column)
			t.w.WriteString(" | ")
			t.line(r)
		}
	}
}

// problems prints the agent's own "Unreadable entries" section (see
// WriteText).
func (t *textWriter) problems() {
	ps := t.r.sortedProblems()
	if len(ps) == 0 || !t.r.Level.atLeast(LevelSummary) {
		return
	}
	t.section("Unreadable entries:")
	for _, p := range ps {
		t.printf("%s: %s\n", EscapePath(p.Path), EscapePath(p.Err))
	}
	t.line("")
}

// databases prints aide's database section with the agent's baselines and
// their BLAKE3 digests, so a mailed report lets an admin verify a baseline
// off-host (b3sum baseline.db, compare the base64 or, with report_base16, hex).
func (t *textWriter) databases() {
	r := t.r
	t.section("The attributes of the (uncompressed) database(s):")
	type db struct {
		path   string
		digest [32]byte
	}
	var dbs []db
	if r.Kind != KindInit && r.Baseline != "" {
		dbs = append(dbs, db{r.Baseline, r.BaselineDigest})
	}
	if r.Kind != KindCheck && r.NewBaseline != "" {
		dbs = append(dbs, db{r.NewBaseline, r.NewBaselineDigest})
	}
	for i, d := range dbs {
		if i > 0 {
			t.line("")
		}
		t.line(EscapePath(d.path))
		var v string
		if r.Base16 {
			v = fmt.Sprintf("%x", d.digest[:])
		} else {
			v = base64.StdEncoding.EncodeToString(d.digest[:])
		}
		t.detail(detailLine{attr: detailAttr{name: "BLAKE3"}, old: []string{v}})
	}
	t.line("")
	t.line("")
}
