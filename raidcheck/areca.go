package raidcheck

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ToolAreca is the tool name of Areca results (cli64/cli32).
const ToolAreca = "areca"

// arecaKind is the command whose table a header line opens.
type arecaKind int

const (
	arecaNone    arecaKind = iota
	arecaRSF               // rsf info: raid sets
	arecaVSF               // vsf info: volume sets
	arecaDiskEnc           // disk info, Enc#/Slot# layout
	arecaDiskCh            // disk info, Ch# layout
)

var arecaKindNames = [...]string{"", "rsf info", "vsf info", "disk info", "disk info"}

var (
	// " 1  Raid Set # 000      23 34500.0GB    0.0GB   1500.0GB         Normal"
	// " 1  data                15 11250.0GB    0.0GB 123456789ABCDEF    Rebuilding"
	// The fifth value is MinDiskCap or DiskChannels, depending on firmware.
	arecaRSFRow = lazyRegexp(`^\s*(\d+)\s+(.+?)\s+(\d+)\s+(\d+(?:\.\d+)?[KMGTP]?B)\s+(\d+(?:\.\d+)?[KMGTP]?B)\s+(\S+)\s+(\S.*?)\s*$`)
	// "  1 qb1              Raid Set # 000  Raid6   32000.0GB 00/00/00   Rebuilding(1.5%)"
	// The tail (level, capacity, Ch/Id/Lun, state) is anchored on the
	// capacity; the two names are split by the header's columns.
	arecaVSFTail = lazyRegexp(`^(.*?)\s+(\S+)\s+(\d+(?:\.\d+)?[KMGTP]?B)\s+(\S+)\s+(\S.*?)\s*$`)
	// "  9  02  SLOT 01 ST31500341AS                     1500.3GB  Raid Set # 000"
	// "  1  01  Slot#1  N.A.                                0.0GB  N.A."
	arecaDiskEncRow = lazyRegexp(`(?i)^\s*(\d+)\s+(\d+)\s+slot\s*#?\s*(\d+)\s+(.*?)\s+(\d+(?:\.\d+)?[KMGTP]?B)\s+(\S.*?)\s*$`)
	// " 16 16  WDC WD7502ABYS-05A6B0            750.2GB  Failed"
	arecaDiskChRow = lazyRegexp(`^\s*(\d+)\s+(\d+)\s+(.*?)\s+(\d+(?:\.\d+)?[KMGTP]?B)\s+(\S.*?)\s*$`)
	// "GuiErrMsg<0x00>: Success." closes every cli64 command.
	arecaErrMsg = lazyRegexp(`^GuiErrMsg<0x([0-9A-Fa-f]+)>`)
	// "Rebuilding(1.5%)", "Need Rebuild", "Normal"
	arecaStateRe = lazyRegexp(`^([A-Za-z][A-Za-z ]*?)\s*(?:\((\d+(?:\.\d+)?)%\))?$`)
)

type arecaRaidSet struct {
	num, name, size, state string
	disks                  int
}

type arecaVolume struct {
	num, name, raidName, level, size, state string
}

type arecaDisk struct {
	id, model, size, usage string
}

// arecaData collects the rows of every input before they are linked:
// disk info names raid sets that rsf info or vsf info may describe.
type arecaData struct {
	sets      []*arecaRaidSet
	vols      []*arecaVolume
	disks     []*arecaDisk
	haveSets  bool
	haveVols  bool
	haveDisks bool
	problems  []string // each makes the controller Unknown
}

// ParseAreca reads the outputs of Areca's cli64 or cli32: `rsf info` (raid
// sets), `vsf info` (volume sets) and `disk info` (both the Enc#/Slot# and
// the older Ch# layout). Each input is classified by the header of the
// table it holds, so the outputs can come in any order, one input may hold
// several tables, and a leading shell prompt line is ignored.
//
// cli64 talks to one controller at a time and never names it, so the
// Result has one controller, "c0". Raid sets become arrays "rs<#>" (named as
// the admin named them), volume sets arrays "vs<#>". A disk whose usage
// column names a raid set goes under that raid set; when no rsf info was
// given, under the volume sets of that raid set, or under a raid set array
// made from the name alone (State empty, judged by its disks). Hot spares,
// pass-through, free and failed disks go to Controller.Disks.
//
// Verdicts: Normal and Checking (a scheduled consistency check) are OK;
// Rebuilding, Initializing, Migrating and Need Rebuild (a rebuild queued
// behind another) are Rebuilding, with the progress in parentheses;
// Degraded is Degraded; Failed, Offline and Incompleted are Failed; a disk
// whose usage is Failed is Degraded. Any other state or usage word is
// Unknown.
//
// A table counts only when its closing "=====" line is present: an output
// cut before it makes the controller Unknown. The GuiErrMsg trailer is
// optional, but a non-zero code in it is a parse error. An input with no
// recognisable table, a table with no rows, or a header not followed by its
// "=====" line returns a *ParseError (errors.Is ErrParse).
func ParseAreca(in []Input) (*Result, error) {
	if len(in) == 0 {
		return nil, &ParseError{Tool: ToolAreca, Name: "(none)", Msg: "no input"}
	}
	d := &arecaData{}
	for _, inp := range in {
		if err := d.read(inp); err != nil {
			return nil, err
		}
	}
	r := &Result{Tool: ToolAreca, Controllers: []*Controller{d.build()}}
	r.Finish()
	return r, nil
}

// vendorLines splits a CLI output into lines without their "\r\n" or "\n".
// A final newline ends the last line; it does not start an empty one, so
// "row\n" at the end of an output is not taken for "row" and a blank line.
func vendorLines(b []byte) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}

// vendorPercent reads "98%" or "1.5" as a number; ok is false for "-".
func vendorPercent(s string) (float64, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 100 {
		return 0, false
	}
	return v, true
}

// arecaHeader recognises the header line of a table. cols holds the
// column offsets vsf info needs to split the two name columns.
func arecaHeader(line string) (arecaKind, [2]int) {
	var cols [2]int
	f := strings.Fields(line)
	if len(f) < 4 || f[0] != "#" {
		return arecaNone, cols
	}
	has := func(w string) bool {
		for _, x := range f {
			if x == w {
				return true
			}
		}
		return false
	}
	switch {
	// " #  Name             Disks TotalCap  FreeCap MinDiskCap         State"
	case has("Name") && has("Disks") && has("TotalCap") && has("State"):
		return arecaRSF, cols
	// "  # Name             Raid Name       Level   Capacity Ch/Id/Lun  State"
	case has("Name") && strings.Contains(line, "Raid Name") && has("Level") && has("State"):
		cols[0] = strings.Index(line, "Raid Name")
		cols[1] = strings.Index(line, "Level")
		return arecaVSF, cols
	// "  # Enc# Slot#   ModelName                        Capacity  Usage"
	case has("Enc#") && has("Slot#") && has("Usage"):
		return arecaDiskEnc, cols
	// "  # Ch# ModelName                       Capacity  Usage"
	case has("Ch#") && has("Usage"):
		return arecaDiskCh, cols
	}
	return arecaNone, cols
}

// vendorIsRule reports whether line is a table rule: ten or more of c
// ("=====" under Areca headers, "-----" under tw_cli ones) and nothing else.
func vendorIsRule(line string, c byte) bool {
	t := strings.TrimSpace(line)
	if len(t) < 10 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] != c {
			return false
		}
	}
	return true
}

// read adds the tables of one input.
func (d *arecaData) read(inp Input) error {
	perr := func(line int, format string, a ...any) error {
		return &ParseError{Tool: ToolAreca, Name: inp.Name, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if len(strings.TrimSpace(string(inp.Data))) == 0 {
		return perr(0, "empty input")
	}
	lines := vendorLines(inp.Data)
	const (
		outside = iota
		wantRule
		inRows
	)
	st := outside
	kind := arecaNone
	var cols [2]int
	var opening string // the "=====" line that opened the rows
	rows, headerLine, tables := 0, 0, 0
	for i, line := range lines {
		n := i + 1
		switch st {
		case outside:
			if m := arecaErrMsg().FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				if code, err := strconv.ParseUint(m[1], 16, 32); err != nil || code != 0 {
					return perr(n, "cli reported an error: %s", vendorClip(strings.TrimSpace(line)))
				}
				continue
			}
			if k, c := arecaHeader(line); k != arecaNone {
				kind, cols, st, headerLine = k, c, wantRule, n
			}
			// Anything else outside a table (a shell prompt, the
			// command line) says nothing about the arrays.
		case wantRule:
			if i == len(lines)-1 && strings.TrimSpace(line) == "" {
				continue // the output ends right after the header
			}
			if !vendorIsRule(line, '=') {
				return perr(n, "%s header is not followed by a ===== line", arecaKindNames[kind])
			}
			opening = strings.TrimSpace(line)
			st, rows = inRows, 0
		case inRows:
			if vendorIsRule(line, '=') {
				// Only a whole closing rule shows the table ended: a
				// shorter one is the start of a cut.
				if strings.TrimSpace(line) != opening {
					d.problems = append(d.problems, fmt.Sprintf("%s: line %d: %s table ends in a partial ===== line (truncated)", inp.Name, n, arecaKindNames[kind]))
					return d.noteTable(kind, rows, headerLine, perr)
				}
				if err := d.noteTable(kind, rows, headerLine, perr); err != nil {
					return err
				}
				st, tables = outside, tables+1
				continue
			}
			if strings.TrimSpace(line) == "" {
				continue
			}
			if !d.row(kind, cols, line) {
				d.problems = append(d.problems, fmt.Sprintf("%s: line %d: unreadable %s row %q", inp.Name, n, arecaKindNames[kind], vendorClip(strings.TrimSpace(line))))
			}
			rows++
		}
	}
	switch st {
	case wantRule:
		d.problems = append(d.problems, fmt.Sprintf("%s: output ends after the %s header (truncated)", inp.Name, arecaKindNames[kind]))
		d.markSeen(kind)
		return nil
	case inRows:
		d.problems = append(d.problems, fmt.Sprintf("%s: output ends inside the %s table, before its closing ===== line (truncated)", inp.Name, arecaKindNames[kind]))
		d.markSeen(kind)
		return nil
	}
	if tables == 0 {
		return perr(0, "no rsf info, vsf info or disk info table")
	}
	return nil
}

// noteTable records that a complete table of kind was read; a table with
// no rows is not an answer about any array.
func (d *arecaData) noteTable(kind arecaKind, rows, headerLine int, perr func(int, string, ...any) error) error {
	if rows == 0 {
		return perr(headerLine, "%s table has no rows", arecaKindNames[kind])
	}
	d.markSeen(kind)
	return nil
}

func (d *arecaData) markSeen(kind arecaKind) {
	switch kind {
	case arecaRSF:
		d.haveSets = true
	case arecaVSF:
		d.haveVols = true
	case arecaDiskEnc, arecaDiskCh:
		d.haveDisks = true
	}
}

// row reads one table row; false means it does not have the table's shape.
func (d *arecaData) row(kind arecaKind, cols [2]int, line string) bool {
	switch kind {
	case arecaRSF:
		m := arecaRSFRow().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		n, err := strconv.Atoi(m[3])
		if err != nil {
			return false
		}
		d.sets = append(d.sets, &arecaRaidSet{num: m[1], name: strings.TrimSpace(m[2]), disks: n, size: m[4], state: m[7]})
		return true
	case arecaVSF:
		m := arecaVSFTail().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		num, name, raid, ok := arecaSplitVolumeHead(m[1], cols)
		if !ok {
			return false
		}
		d.vols = append(d.vols, &arecaVolume{num: num, name: name, raidName: raid, level: m[2], size: m[3], state: m[5]})
		return true
	case arecaDiskEnc:
		m := arecaDiskEncRow().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		d.disks = append(d.disks, &arecaDisk{id: "E" + arecaTrimZeros(m[2]) + " S" + arecaTrimZeros(m[3]), model: m[4], size: m[5], usage: m[6]})
		return true
	case arecaDiskCh:
		m := arecaDiskChRow().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		d.disks = append(d.disks, &arecaDisk{id: "Ch" + arecaTrimZeros(m[2]), model: m[3], size: m[4], usage: m[5]})
		return true
	}
	return false
}

// arecaSplitVolumeHead splits "  1 qb1              Raid Set # 000" into
// the number, the volume name and the raid set name. Both names may hold
// spaces, so the header's "Raid Name" column decides where the second
// starts; when the row does not line up, two or more spaces do.
func arecaSplitVolumeHead(head string, cols [2]int) (num, name, raid string, ok bool) {
	head = strings.TrimRight(head, " ")
	t := strings.TrimLeft(head, " ")
	sp := strings.IndexByte(t, ' ')
	if sp <= 0 {
		return "", "", "", false
	}
	num = t[:sp]
	if _, err := strconv.Atoi(num); err != nil {
		return "", "", "", false
	}
	rc := cols[0]
	nameAt := len(head) - len(t) + sp
	if rc > nameAt && rc < len(head) && head[rc-1] == ' ' && head[rc] != ' ' {
		name = strings.TrimSpace(head[nameAt:rc])
		raid = strings.TrimSpace(head[rc:])
	} else {
		rest := strings.TrimSpace(t[sp:])
		i := strings.Index(rest, "  ")
		if i < 0 {
			return "", "", "", false
		}
		name, raid = strings.TrimSpace(rest[:i]), strings.TrimSpace(rest[i:])
	}
	if name == "" || raid == "" {
		return "", "", "", false
	}
	return num, name, raid, true
}

// arecaTrimZeros turns "02" into "2" and keeps "0".
func arecaTrimZeros(s string) string {
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// arecaJudge maps a raid set or volume set state, such as "Normal",
// "Rebuilding(1.5%)" or "Need Rebuild", to a verdict.
func arecaJudge(state string) (activity string, progress float64, v Verdict, reason string) {
	if notReported(state) {
		return "", 0, Unknown, "no state reported"
	}
	m := arecaStateRe().FindStringSubmatch(strings.TrimSpace(state))
	if m == nil {
		return "", 0, Unknown, fmt.Sprintf("unrecognised state %q", vendorClip(state))
	}
	word := strings.ToLower(strings.Join(strings.Fields(m[1]), " "))
	pct, hasPct := 0.0, false
	if m[2] != "" {
		pct, hasPct = vendorPercent(m[2])
		if !hasPct {
			return "", 0, Unknown, fmt.Sprintf("unrecognised progress in state %q", vendorClip(state))
		}
	}
	progressNote := func(what string) string {
		if hasPct {
			return fmt.Sprintf("%s (%s%%)", what, strconv.FormatFloat(pct, 'f', -1, 64))
		}
		return what
	}
	switch word {
	case "normal":
		return "", 0, OK, ""
	case "checking":
		// A scheduled consistency check: not an alarm.
		return "check", pct, OK, ""
	case "rebuilding":
		return "rebuild", pct, Rebuilding, progressNote("rebuilding")
	case "initializing":
		return "initialize", pct, Rebuilding, progressNote("initializing")
	case "migrating":
		return "migrate", pct, Rebuilding, progressNote("migrating")
	case "need rebuild":
		// Waiting for the controller to start its rebuild (it rebuilds
		// one set at a time); redundancy is being restored in turn.
		return "rebuild", 0, Rebuilding, "rebuild queued (Need Rebuild)"
	case "degraded":
		return "", 0, Degraded, "degraded"
	case "failed", "offline", "incompleted", "incomplete":
		return "", 0, Failed, word
	}
	return "", 0, Unknown, fmt.Sprintf("unrecognised state %q", vendorClip(state))
}

// arecaUsage classifies a disk's usage column when it names no known raid
// set. known is false when the usage is not a keyword.
func arecaUsage(usage string) (role string, v Verdict, reason string, known bool) {
	if notReported(usage) {
		// A disk is there (it has a model or a size) but its usage is
		// not reported: not a raid set's name, and no sign it is fine.
		return "", Unknown, "usage not reported", true
	}
	u := strings.ToLower(strings.ReplaceAll(usage, " ", ""))
	switch {
	case strings.HasPrefix(u, "hotspare"), strings.HasPrefix(u, "dedicatedhotspare"), strings.HasPrefix(u, "globalhotspare"):
		return "spare", OK, "", true
	case u == "passthrough", u == "jbod":
		return "passthrough", OK, "", true
	case u == "free":
		return "unconfigured", OK, "", true
	case u == "failed":
		return "", Degraded, "failed disk", true
	case strings.HasPrefix(u, "rebuild"):
		return "rebuild-target", Rebuilding, "rebuilding", true
	}
	// Words a raid set is unlikely to be named but a firmware could
	// print about a disk: never take them for a healthy member.
	for _, w := range []string{"error", "fail", "offline", "missing", "removed", "bad", "unknown", "timeout", "degraded", "warning", "critical", "n.a."} {
		if strings.Contains(u, w) {
			return "", Unknown, fmt.Sprintf("unrecognised usage %q", vendorClip(usage)), true
		}
	}
	return "", OK, "", false
}

// build links the rows into one controller.
func (d *arecaData) build() *Controller {
	c := &Controller{ID: "c0", Arrays: []*Array{}}
	setByName := map[string]*Array{}
	for _, s := range d.sets {
		if a := setByName[s.name]; a != nil {
			// The same raid set from two inputs: keep the worse word; a
			// state not reported never replaces one that is.
			act, p, v, why := arecaJudge(s.state)
			if !notReported(s.state) && (v > a.Verdict || notReported(a.State)) {
				a.State, a.Activity, a.Progress, a.Verdict, a.Reason = s.state, act, p, v, why
			}
			continue
		}
		act, p, v, why := arecaJudge(s.state)
		a := &Array{ID: "rs" + s.num, Name: s.name, Size: s.size, State: s.state, Activity: act, Progress: p, Members: s.disks, Verdict: v, Reason: why}
		setByName[s.name] = a
		c.Arrays = append(c.Arrays, a)
	}
	volsByRaid := map[string][]*Array{}
	var vols []*Array
	seenVol := map[string]*Array{}
	for _, vs := range d.vols {
		act, p, v, why := arecaJudge(vs.state)
		if a := seenVol[vs.name]; a != nil {
			if !notReported(vs.state) && (v > a.Verdict || notReported(a.State)) {
				a.State, a.Activity, a.Progress, a.Verdict, a.Reason = vs.state, act, p, v, why
			}
			continue
		}
		a := &Array{ID: "vs" + vs.num, Name: vs.name, Level: vs.level, Size: vs.size, State: vs.state, Activity: act, Progress: p, Verdict: v, Reason: why}
		seenVol[vs.name] = a
		vols = append(vols, a)
		volsByRaid[vs.raidName] = append(volsByRaid[vs.raidName], a)
	}
	var madeSets []*Array
	for _, dk := range d.disks {
		usage := strings.TrimSpace(dk.usage)
		model := strings.TrimSpace(dk.model)
		if strings.EqualFold(usage, "N.A.") && (strings.EqualFold(model, "N.A.") || strings.HasPrefix(dk.size, "0.0")) {
			continue // an empty slot
		}
		disk := &Disk{ID: dk.id, Model: model, Size: dk.size, State: usage}
		if model == "N.A." {
			disk.Model = ""
		}
		if a := setByName[usage]; a != nil {
			disk.Role = "member"
			a.Disks = append(a.Disks, disk)
			continue
		}
		if !d.haveSets {
			if vs := volsByRaid[usage]; len(vs) > 0 {
				disk.Role = "member"
				for _, a := range vs {
					cp := *disk
					a.Disks = append(a.Disks, &cp)
				}
				continue
			}
		}
		role, v, why, known := arecaUsage(usage)
		switch {
		case known:
			disk.Role, disk.Verdict, disk.Reason = role, v, why
			c.Disks = append(c.Disks, disk)
		case d.haveSets:
			// rsf info lists every raid set: a usage naming none of
			// them is a word this parser does not know.
			disk.Verdict, disk.Reason = Unknown, fmt.Sprintf("unrecognised usage %q", vendorClip(usage))
			c.Disks = append(c.Disks, disk)
		default:
			// Only disk info (and maybe vsf info) was given: the usage
			// names a raid set whose own state was not read.
			disk.Role = "member"
			a := setByName[usage]
			if a == nil {
				a = &Array{ID: usage, Name: usage}
				setByName[usage] = a
				madeSets = append(madeSets, a)
			}
			a.Disks = append(a.Disks, disk)
		}
	}
	c.Arrays = append(c.Arrays, madeSets...)
	c.Arrays = append(c.Arrays, vols...)
	if len(d.problems) > 0 {
		c.Verdict = Unknown
		c.Reason = strings.Join(d.problems, "; ")
	}
	return c
}

// vendorClip shortens a quoted piece of output in a reason, on a rune
// boundary so the reason stays valid UTF-8.
func vendorClip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
