package raidcheck

import (
	"strconv"
	"strings"
)

// ToolMdstat is the tool name of Linux md results.
const ToolMdstat = "mdstat"

// The line shapes of /proc/mdstat, as printed by md_seq_show, status_resync
// and md_bitmap_status in the kernel's drivers/md (md.c, md-bitmap.c).
var (
	// md1 : active raid1 sdb2[0] sda2[1]
	// md0 : inactive sda[1](S) sdb[0](S)
	mdHeaderRe = lazyRegexp(`^(md\S*)\s+:\s+(\S+)(.*)$`)
	// sdc1[3](F), sdb1[0], sde1[6](S), sdd1[2](W)(F)
	mdMemberRe = lazyRegexp(`^([^\s\[\]()]+)\[(\d+)\]((?:\([A-Z]\))*)$`)
	//       8385664 blocks level 5, 64k chunk, algorithm 2 [3/2] [U_U]
	mdBlocksRe = lazyRegexp(`^(\d+) blocks\b(.*)$`)
	// [3/2] [U_U]: raid disks / working disks, then one letter per slot.
	mdCountRe = lazyRegexp(`\[(\d+)/(\d+)\]\s+\[([^\]]*)\]`)
	// super 1.2, super external:imsm, super external:/md127/0
	mdSuperRe = lazyRegexp(`\bsuper (\S+)`)
	// [=>...................]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec
	mdProgressRe = lazyRegexp(`^(?:\[[=>.]*\]\s+)?([a-z]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)%`)
	// resync=DELAYED, resync=PENDING, recover=REMOTE
	mdQueuedRe = lazyRegexp(`^([a-z]+)=([A-Z]+)$`)
)

// mdPersonalities are the md personalities (RAID levels) the kernel has.
// A name outside this list is not judged.
var mdPersonalities = map[string]bool{
	"linear": true, "raid0": true, "raid1": true, "raid4": true, "raid5": true,
	"raid6": true, "raid10": true, "multipath": true, "faulty": true,
}

// mdArray is one array while its block of lines is read; the verdict waits
// for the whole input because of the delayed-check rule.
type mdArray struct {
	a          *Array
	active     bool
	super      string // metadata version: "1.2", "external:imsm", ...
	blocks     bool   // the "N blocks" line was seen
	counts     bool   // [n/m] [UU_] was seen
	raidDisks  int
	working    int
	slots      string // the U_ string
	action     string // running: resync, recovery, reshape, check
	queued     string // "resync=DELAYED", "resync=PENDING", ...
	unknown    string // first unrecognised thing, makes the array Unknown
	failedDisk bool
	spares     int
}

// ParseMdstat reads Linux md's /proc/mdstat. Each input is one snapshot of
// the file and becomes one controller ("md"; "md:NAME" when several inputs
// are given) holding its arrays.
//
// Verdicts: an array missing members ([3/2] [U_U]) is Degraded unless a
// recovery, resync or reshape runs or waits (resync=DELAYED, PENDING, or
// REMOTE on an md cluster), which is Rebuilding; a faulty member (F) is a Degraded disk, so even a
// complete array with one is Degraded: the disk needs replacing. A running
// check is OK, and so is resync=DELAYED on a complete array while another
// array of the same snapshot runs a check: md queues the scheduled check of
// arrays sharing disks that way (check_raid PR #77). An inactive array is
// Failed, except an external-metadata container (super external:imsm or
// ddf, inactive with only spare members), which is how Intel RST and DDF
// sets always look. (read-only) and (auto-read-only) arrays are judged
// like any active one (a clean one is OK). raid0 and linear have no redundancy to lose and no
// [n/m] field. Anything unrecognised makes its array, or the controller,
// Unknown. A snapshot without the closing "unused devices:" line cannot be
// trusted to be complete, so its controller is Unknown (at best).
//
// A snapshot with no arrays at all (only the Personalities and unused
// devices lines) is valid: it adds no controller. When no input has an
// array the Result has no controllers and the error is nil; Finish leaves
// it Unknown so a careless caller still fails closed, but the probe and the
// commands treat it as "no md arrays here" and drop it rather than report
// Unknown.
//
// An input with nothing recognisable in it returns a *ParseError (errors.Is
// ErrParse) naming the input and line.
func ParseMdstat(in []Input) (*Result, error) {
	r := &Result{Tool: ToolMdstat}
	if len(in) == 0 {
		return nil, &ParseError{Tool: ToolMdstat, Name: "(none)", Msg: "no input"}
	}
	for _, inp := range in {
		c, err := parseMdstatInput(inp)
		if err != nil {
			return nil, err
		}
		if c == nil {
			continue
		}
		if len(in) > 1 {
			c.ID = "md:" + inp.Name
		}
		r.Controllers = append(r.Controllers, c)
	}
	r.Finish()
	return r, nil
}

// parseMdstatInput reads one snapshot. It returns a nil controller when the
// snapshot is complete but has no arrays.
func parseMdstatInput(inp Input) (*Controller, error) {
	perr := func(line int, msg string) error {
		return &ParseError{Tool: ToolMdstat, Name: inp.Name, Line: line, Msg: msg}
	}
	c := &Controller{ID: "md", Model: "Linux md", Arrays: []*Array{}}
	var (
		arrays      []*mdArray
		cur         *mdArray
		recognised  bool // any line of /proc/mdstat seen
		trailer     bool // "unused devices:" seen
		atStart     = true
		topUnknown  string
		lastLineNum int
	)
	lines := strings.Split(string(inp.Data), "\n")
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			// md_seq_show ends every array with an empty (or all-blank) line.
			cur = nil
			continue
		}
		lastLineNum = n
		wasFirst := atStart
		atStart = false
		switch {
		case strings.HasPrefix(line, "Personalities :"):
			recognised = true
			cur = nil
			continue
		case strings.HasPrefix(line, "unused devices:"):
			recognised = true
			trailer = true
			cur = nil
			continue
		case wasFirst && !recognised && strings.Contains(line, "mdstat"):
			// A shell prompt such as "# cat /proc/mdstat" in a saved file.
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			cur = nil
			if m := mdHeaderRe().FindStringSubmatch(line); m != nil {
				recognised = true
				cur = parseMdHeader(m)
				arrays = append(arrays, cur)
				if trailer && topUnknown == "" {
					topUnknown = "line " + strconv.Itoa(n) + ": array after the \"unused devices\" line"
				}
				continue
			}
			if topUnknown == "" {
				topUnknown = "line " + strconv.Itoa(n) + ": unrecognised line " + strconv.Quote(mdClip(trimmed))
			}
			continue
		}
		if cur == nil {
			if topUnknown == "" {
				topUnknown = "line " + strconv.Itoa(n) + ": unrecognised line " + strconv.Quote(mdClip(trimmed))
			}
			continue
		}
		cur.addLine(trimmed)
	}
	if !recognised {
		if lastLineNum == 0 {
			return nil, perr(0, "empty input")
		}
		return nil, perr(1, "no Personalities, md array or unused devices line: not /proc/mdstat")
	}
	if len(arrays) == 0 {
		if !trailer {
			return nil, perr(lastLineNum, "no md array and no \"unused devices\" line: incomplete /proc/mdstat")
		}
		if topUnknown == "" {
			return nil, nil
		}
	}
	checkRunning := false
	for _, md := range arrays {
		if md.action == "check" {
			checkRunning = true
		}
	}
	for _, md := range arrays {
		md.judge(checkRunning)
		c.Arrays = append(c.Arrays, md.a)
	}
	switch {
	case topUnknown != "":
		c.Verdict, c.Reason = Unknown, topUnknown
	case !trailer:
		c.Verdict = Unknown
		c.Reason = "no \"unused devices\" line: output incomplete"
	}
	return c, nil
}

// clip shortens a quoted line in a reason.
func mdClip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// parseMdHeader reads the first line of an array:
// "md11 : active (auto-read-only) raid1 sdb2[0] sdc2[1] sdc3[2](F) hda[4](S)".
func parseMdHeader(m []string) *mdArray {
	md := &mdArray{a: &Array{ID: m[1], State: m[2]}}
	switch m[2] {
	case "active":
		md.active = true
	case "inactive":
	default:
		md.unknown = "unrecognised state " + strconv.Quote(m[2])
	}
	fields := strings.Fields(m[3])
	for len(fields) > 0 && strings.HasPrefix(fields[0], "(") {
		switch fields[0] {
		case "(read-only)", "(auto-read-only)":
			md.a.State += " " + fields[0]
		default:
			md.setUnknown("unrecognised state " + strconv.Quote(fields[0]))
		}
		fields = fields[1:]
	}
	if len(fields) > 0 && !mdMemberRe().MatchString(fields[0]) {
		md.a.Level = fields[0]
		fields = fields[1:]
	}
	for _, f := range fields {
		mm := mdMemberRe().FindStringSubmatch(f)
		if mm == nil {
			md.setUnknown("unrecognised member " + strconv.Quote(mdClip(f)))
			continue
		}
		md.a.Disks = append(md.a.Disks, md.member(mm[1], mm[3]))
	}
	return md
}

// member builds a Disk from a member's name and flags, as md_seq_show
// prints them: (W) write-mostly, (J) journal, (F) faulty, (S) spare,
// (R) replacement.
func (md *mdArray) member(name, flags string) *Disk {
	d := &Disk{ID: name, Role: "member"}
	var words []string
	faulty := false
	for i := 0; i+3 <= len(flags); i += 3 {
		switch flags[i+1] {
		case 'W':
			words = append(words, "write-mostly")
		case 'J':
			words = append(words, "journal")
			d.Role = "journal"
		case 'F':
			faulty = true
		case 'S':
			words = append(words, "spare")
			d.Role = "spare"
			md.spares++
		case 'R':
			words = append(words, "replacement")
			d.Role = "rebuild-target"
		default:
			d.Verdict = Unknown
			d.Reason = "unrecognised flag " + flags[i:i+3]
		}
	}
	if faulty {
		// md prints (F) and nothing after it for a faulty member.
		words = append([]string{"faulty"}, words...)
		d.Verdict = Worst(d.Verdict, Degraded)
		d.Reason = "faulty member: replace the disk"
		md.failedDisk = true
	}
	if len(words) == 0 || (len(words) == 1 && words[0] == "write-mostly") {
		words = append([]string{"active"}, words...)
	}
	d.State = strings.Join(words, " ")
	return d
}

func (md *mdArray) setUnknown(why string) {
	if md.unknown == "" {
		md.unknown = why
	}
}

// addLine reads an indented line inside an array's block.
func (md *mdArray) addLine(s string) {
	// 5860543744 blocks super 0.91 level 6, 4k chunk, algorithm 18 [6/4] [UUUU__]
	if m := mdBlocksRe().FindStringSubmatch(s); m != nil {
		md.blocks = true
		md.a.Size = m[1] + " blocks"
		if sm := mdSuperRe().FindStringSubmatch(m[2]); sm != nil {
			md.super = sm[1]
		}
		if cm := mdCountRe().FindStringSubmatch(m[2]); cm != nil {
			n, err1 := strconv.Atoi(cm[1])
			w, err2 := strconv.Atoi(cm[2])
			if err1 != nil || err2 != nil || w > n {
				md.setUnknown("unrecognised member count " + strconv.Quote(cm[0]))
				return
			}
			md.counts, md.raidDisks, md.working, md.slots = true, n, w, cm[3]
			if strings.Trim(cm[3], "U_") != "" {
				md.setUnknown("unrecognised member status " + strconv.Quote(cm[3]))
			}
		}
		return
	}
	// bitmap: 0/4 pages [0KB], 65536KB chunk
	if strings.HasPrefix(s, "bitmap:") {
		return
	}
	// resync=DELAYED
	if m := mdQueuedRe().FindStringSubmatch(s); m != nil {
		switch m[1] {
		case "resync", "recovery", "recover", "reshape", "check":
		default:
			md.setUnknown("unrecognised activity " + strconv.Quote(s))
			return
		}
		switch m[2] {
		case "DELAYED", "PENDING", "REMOTE":
			md.queued = s
		default:
			md.setUnknown("unrecognised activity " + strconv.Quote(s))
		}
		return
	}
	// [==>..................]  resync = 11.2% (82505280/732571904) finish=197.2min speed=54928K/sec
	if m := mdProgressRe().FindStringSubmatch(s); m != nil {
		switch m[1] {
		case "resync", "recovery", "reshape", "check":
		default:
			md.setUnknown("unrecognised activity " + strconv.Quote(m[1]))
			return
		}
		md.action = m[1]
		md.a.Activity = m[1]
		if p, err := strconv.ParseFloat(m[2], 64); err == nil && p >= 0 && p <= 100 {
			md.a.Progress = p
		}
		return
	}
	md.setUnknown("unrecognised line " + strconv.Quote(mdClip(s)))
}

// isContainer reports whether the array is an external-metadata container
// (Intel IMSM or DDF): its own metadata name, not "/md127/0" of a member
// volume.
func (md *mdArray) isContainer() bool {
	ext, ok := strings.CutPrefix(md.super, "external:")
	return ok && ext != "" && ext[0] != '/' && ext[0] != '-'
}

// judge sets the array's verdict and reason once the whole snapshot has been
// read. checkRunning says whether any array of the snapshot runs a check.
func (md *mdArray) judge(checkRunning bool) {
	md.judgeState(checkRunning)
	a := md.a
	if !md.failedDisk || a.Verdict >= Degraded {
		return
	}
	// A faulty member needs replacing whatever else the array does; say
	// so first, keeping what the array is doing.
	var faulty []string
	for _, d := range a.Disks {
		if strings.HasPrefix(d.State, "faulty") {
			faulty = append(faulty, d.ID)
		}
	}
	why := "faulty member " + strings.Join(faulty, ", ") + ": replace the disk"
	if len(faulty) > 1 {
		why = "faulty members " + strings.Join(faulty, ", ") + ": replace the disks"
	}
	switch {
	case a.Reason != "": // also keeps an Unknown's cause visible
		why += "; " + a.Reason
	case a.Activity != "":
		why += "; " + a.Activity
	}
	a.Verdict, a.Reason = Degraded, why
}

// judgeState judges the array from its state, counts and activity, leaving
// faulty members to judge.
func (md *mdArray) judgeState(checkRunning bool) {
	a := md.a
	if md.unknown != "" {
		a.Verdict, a.Reason = Unknown, md.unknown
		return
	}
	if !md.active {
		if md.isContainer() && !md.failedDisk && len(a.Disks) > 0 && md.spares == len(a.Disks) {
			// A container holds the metadata of the volumes md assembles
			// from it; it is never started, and its disks read (S).
			a.Level = "container"
			for _, d := range a.Disks {
				d.Role = "member"
			}
			return
		}
		a.Verdict, a.Reason = Failed, "array inactive: not assembled or stopped"
		return
	}
	if !mdPersonalities[a.Level] {
		a.Verdict, a.Reason = Unknown, "unrecognised personality "+strconv.Quote(a.Level)
		return
	}
	if !md.blocks {
		a.Verdict, a.Reason = Unknown, "no size and status line: output incomplete"
		return
	}
	if !md.counts {
		if a.Level == "raid0" || a.Level == "linear" {
			// No redundancy, no [n/m]: the array is there or it is not.
			return
		}
		a.Verdict, a.Reason = Unknown, "no [n/m] member status for "+a.Level
		return
	}
	missing := md.raidDisks - md.working
	if u := strings.Count(md.slots, "_"); u > missing {
		missing = u
	}
	a.Members, a.Missing = md.raidDisks, missing
	missingWhy := strconv.Itoa(missing) + " of " + strconv.Itoa(md.raidDisks) + " members missing [" + md.slots + "]"
	switch {
	case md.working == 0:
		a.Verdict, a.Reason = Failed, "no working member ["+md.slots+"]"
	case md.action == "resync" || md.action == "recovery" || md.action == "reshape":
		a.Verdict, a.Reason = Rebuilding, md.action
		if missing > 0 {
			a.Reason = md.action + ": " + missingWhy
		}
	case md.action == "check" && missing > 0:
		// A check restores nothing.
		a.Verdict, a.Reason = Degraded, missingWhy
	case md.action == "check":
		// A scheduled consistency check, not an alarm.
	case md.queued != "":
		kind, state, _ := strings.Cut(md.queued, "=")
		if state == "DELAYED" && missing == 0 && checkRunning {
			// PR #77: the scheduled check of every array runs one at a
			// time; the others wait as resync=DELAYED.
			a.Activity = "check delayed"
			return
		}
		a.Activity = kind + " " + strings.ToLower(state)
		a.Verdict, a.Reason = Rebuilding, a.Activity
		if missing > 0 {
			a.Reason = a.Activity + ": " + missingWhy
		}
	case missing > 0:
		a.Verdict, a.Reason = Degraded, missingWhy
	}
}
