package raidcheck

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// megaTool is the Result.Tool of ParseMegaCli.
const megaTool = "megacli"

// Lines of MegaCli output that start or locate a record. MegaCli prints
// "key: value" records with free spacing around the colon, so the value
// lines are split by megaKeyValue instead of one regexp each.
var (
	// "Adapter #0" (-PDList, -LdPdInfo), "Adapter 0 -- Virtual Drive
	// Information:" (-LdInfo), "Adapter 0: No Virtual Drive Configured."
	megaAdapterRe = lazyRegexp(`^Adapter\s*#?\s*(\d+)\b`)
	// "BBU status for Adapter: 0" (-AdpBbuCmd -GetBbuStatus)
	megaBBUAdapterRe = lazyRegexp(`(?i)^BBU status for Adapter\s*:\s*(\d+)`)
	// "Virtual Drive: 0 (Target Id: 0)", old "Virtual Disk: 0 (Target Id: 0)"
	megaVDRe = lazyRegexp(`(?i)^Virtual (?:Drive|Disk)\s*:\s*(\d+)`)
	// "Rebuild Progress on Device at Enclosure 32, Slot 10 Completed 3% in 98 Minutes."
	megaRebuildRe = lazyRegexp(`(?i)Rebuild Progress on Device at Enclosure\s+([^,\s]+),\s*Slot\s+(\d+)\s+Completed\s+(\d+(?:\.\d+)?)\s*%`)
	// "Device(Encl-32 Slot-10) is not in rebuild process"
	megaNoRebuildRe = lazyRegexp(`(?i)Device\s*\(\s*Encl-\S+\s+Slot-\d+\s*\)\s+is not in rebuild process`)
	// "Exit Code: 0x00", the last line MegaCli prints for every command.
	megaExitRe = lazyRegexp(`(?i)^Exit Code\s*:\s*(0x[0-9a-f]+)`)
	// "Check Consistency        : Completed 46%, Taken 167 min." under
	// "Ongoing Progresses:" of a virtual drive.
	megaProgressRe = lazyRegexp(`(?i)^([a-z][a-z ]*?)\s*:\s*Completed\s+(\d+(?:\.\d+)?)\s*%`)
	// "Primary-1, Secondary-0, RAID Level Qualifier-0"
	megaLevelRe = lazyRegexp(`(?i)Primary-(\d+)(?:,\s*Secondary-(\d+))?`)
)

// megaAdapter collects what every input says about one MegaRAID adapter.
type megaAdapter struct {
	num      int
	vds      []*megaVD
	vdByNum  map[string]*megaVD
	pds      map[string]*megaPD // every physical drive seen, by "E:S"
	pdOrder  []string
	listed   bool // an -LdInfo/-PDList/-LdPdInfo header named this adapter
	noVDs    bool // "No Virtual Drive Configured"
	declared int  // "Number of Virtual Disks: N" of -LdPdInfo; -1 when not printed
	bbus     []*megaBBU
	progress map[string]float64 // rebuild percent by disk ID (-PDRbld -ShowProg)
	warnings []Warning
	problems []string // why this adapter's listing cannot be trusted
}

// megaVD is one virtual drive record of -LdInfo or -LdPdInfo.
type megaVD struct {
	num                string
	name, level, size  string
	spanDepth          int
	state              string
	stateSeen          bool
	drives             int
	defCache, curCache string
	activity           string
	progress           float64
	memberIDs          []string
	membersListed      bool
}

// megaPD is one physical drive record of -PDList or -LdPdInfo.
type megaPD struct {
	enc, slot   string
	state       string
	model, size string
	predictive  int
	smartAlert  bool
	foreign     bool
}

func (p *megaPD) id() string { return megaDiskID(p.enc, p.slot) }

// megaDiskID names a disk "enclosure:slot" as MegaCli's -PhysDrv[E:S]
// does; a drive without enclosure ("N/A") is ":S".
func megaDiskID(enc, slot string) string {
	if strings.EqualFold(enc, "n/a") {
		enc = ""
	}
	return enc + ":" + slot
}

// megaBBU is one battery record of -AdpBbuCmd -GetBbuStatus.
type megaBBU struct {
	state       string
	stateSeen   bool
	learning    bool
	sohGood     string // "isSOHGood" of older MegaCli versions
	replace     bool
	missing     bool
	aboutToFail bool
	lowCapacity bool
	learnFailed string
	learnTimout bool
}

// megaParser reads one input.
type megaParser struct {
	name     string
	adapters map[int]*megaAdapter
	touched  map[int]bool // adapters this input said something about
	cur      *megaAdapter
	vd       *megaVD
	pd       *megaPD
	bbu      *megaBBU
	content  bool // a record (not only an adapter message) was read
	exit     string
}

// ParseMegaCli judges the outputs of LSI/Avago/Dell MegaCli (MegaCli,
// MegaCli64, megacli: option names are case-insensitive):
//
//	-LdInfo -Lall -aALL                 virtual drives (old "Name:" layout too)
//	-PDList -aALL                       physical drives
//	-LdPdInfo -aN                       virtual drives with their drives
//	-AdpBbuCmd -GetBbuStatus -aALL      battery
//	-PDRbld -ShowProg -PhysDrv[E:S] -aN rebuild progress of one drive
//
// Each input is classified by its content, so any of them can be given
// together in any order; several adapters in one output are fine.
// Adapters become controllers "c0", "c1"...; virtual drive N becomes array
// "vN" (MegaCli's own number, as in -LN); drives are "E:S" (enclosure:slot,
// ":S" without enclosure). Drives listed under a virtual drive are its
// members; drives only known from -PDList are the controller's loose
// disks (MegaCli does not say there which virtual drive they belong to).
//
// A virtual drive that reads Degraded or Partially Degraded is Rebuilding
// when its listed members include one in firmware state Rebuild and none
// failed or missing; with -LdInfo alone (no member list) it is Rebuilding
// when it is the adapter's only degraded virtual drive and a drive of that
// adapter is in Rebuild. Component problems become warnings: current cache
// policy WriteThrough while the default is WriteBack ("cache"), a drive's
// predictive failure count, S.M.A.R.T. alert or foreign configuration
// ("disk"), and any battery state but Optimal/Operational ("bbu") except
// during a learn cycle.
//
// Every MegaCli command ends with "Exit Code: 0x..": an input without it
// is taken as truncated and the adapters it names are Unknown, as are
// adapters whose listing is empty or shorter than announced. An input with
// no MegaCli record at all returns a *ParseError (errors.Is ErrParse).
func ParseMegaCli(in []Input) (*Result, error) {
	if len(in) == 0 {
		return nil, &ParseError{Tool: megaTool, Name: "(none)", Msg: "no output to parse"}
	}
	adapters := map[int]*megaAdapter{}
	for _, input := range in {
		p := &megaParser{name: input.Name, adapters: adapters, touched: map[int]bool{}}
		if err := p.parse(input.Data); err != nil {
			return nil, err
		}
	}
	r := &Result{Tool: megaTool, Controllers: []*Controller{}}
	nums := make([]int, 0, len(adapters))
	for n := range adapters {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		r.Controllers = append(r.Controllers, adapters[n].build())
	}
	r.Finish()
	return r, nil
}

func (p *megaParser) adapter(n int) *megaAdapter {
	a := p.adapters[n]
	if a == nil {
		a = &megaAdapter{num: n, vdByNum: map[string]*megaVD{}, pds: map[string]*megaPD{},
			declared: -1, progress: map[string]float64{}}
		p.adapters[n] = a
	}
	p.touched[n] = true
	return a
}

// current returns the adapter records belong to; outputs of a single
// adapter (-PDRbld) may not name it, and then it is adapter 0.
func (p *megaParser) current() *megaAdapter {
	if p.cur == nil {
		p.cur = p.adapter(0)
	}
	return p.cur
}

func (p *megaParser) parse(data []byte) error {
	lines := strings.Split(string(data), "\n")
	recognised := false
	firstLine := 0
	for i, raw := range lines {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" {
			continue
		}
		if firstLine == 0 {
			firstLine = i + 1
		}
		if m := megaMatch(megaExitRe(), line, "exit"); m != nil {
			p.flushPD()
			p.exit = strings.ToLower(m[1])
			continue
		}
		if p.exit != "" {
			// Text after the exit code is not MegaCli's (a shell prompt);
			// a later "Exit Code" line would start a new command's output.
			continue
		}
		if m := megaMatch(megaBBUAdapterRe(), line, "bbu"); m != nil {
			p.flushPD()
			n, _ := strconv.Atoi(m[1])
			p.cur = p.adapter(n)
			p.vd = nil
			p.bbu = &megaBBU{}
			p.cur.bbus = append(p.cur.bbus, p.bbu)
			p.content = true
			recognised = true
			continue
		}
		if m := megaMatch(megaAdapterRe(), line, "adapter"); m != nil {
			p.flushPD()
			n, _ := strconv.Atoi(m[1])
			p.cur = p.adapter(n)
			p.vd, p.bbu = nil, nil
			p.adapterMessage(line)
			recognised = true
			continue
		}
		if m := megaMatch(megaRebuildRe(), line, "rebuild"); m != nil {
			pct, _ := strconv.ParseFloat(m[3], 64)
			a := p.current()
			a.progress[megaDiskID(m[1], m[2])] = pct
			p.content = true
			recognised = true
			continue
		}
		if megaMatch(megaNoRebuildRe(), line, "device") != nil {
			p.current()
			recognised = true
			continue
		}
		if m := megaMatch(megaVDRe(), line, "virtual"); m != nil {
			p.flushPD()
			a := p.current()
			p.bbu = nil
			vd := a.vdByNum[m[1]]
			if vd == nil {
				vd = &megaVD{num: m[1]}
				a.vdByNum[m[1]] = vd
				a.vds = append(a.vds, vd)
			}
			p.vd = vd
			p.content = true
			recognised = true
			continue
		}
		key, value, ok := megaKeyValue(line)
		if !ok {
			continue
		}
		if key == "enclosure device id" {
			p.flushPD()
			p.current()
			p.bbu = nil
			p.pd = &megaPD{enc: value}
			p.content = true
			recognised = true
			continue
		}
		switch {
		case p.bbu != nil:
			p.bbuLine(key, value)
		case p.pd != nil:
			p.pdLine(key, value)
		case p.vd != nil:
			p.vdLine(line, key, value)
		case key == "number of virtual disks" || key == "number of virtual drives":
			if n, err := strconv.Atoi(value); err == nil {
				p.current().declared = n
			}
		}
	}
	p.flushPD()
	if !recognised {
		line := firstLine
		if line == 0 {
			return &ParseError{Tool: megaTool, Name: p.name, Msg: "empty output"}
		}
		return &ParseError{Tool: megaTool, Name: p.name, Line: line, Msg: "no MegaCli adapter, drive or battery record"}
	}
	var problem string
	switch {
	case p.exit == "":
		problem = p.name + ": output truncated (no Exit Code line)"
	case p.exit != "0x00" && p.content:
		problem = p.name + ": MegaCli exited with " + p.exit
	}
	if problem != "" {
		for n := range p.touched {
			a := p.adapters[n]
			a.problems = append(a.problems, problem)
		}
	}
	return nil
}

// adapterMessage reads the rest of an "Adapter N..." line.
func (p *megaParser) adapterMessage(line string) {
	low := strings.ToLower(line)
	switch {
	case strings.Contains(low, "no virtual drive configured"):
		p.cur.listed = true
		p.cur.noVDs = true
	case strings.Contains(low, "get bbu status failed"):
		// MegaCli says this when it cannot reach a battery: absent or dead.
		p.cur.warnings = append(p.cur.warnings, Warning{Component: "bbu",
			Message: fmt.Sprintf("adapter %d: battery status not available (%s)", p.cur.num, strings.TrimSpace(line[strings.Index(line, ":")+1:]))})
	default:
		// "Adapter #0" and "Adapter 0 -- Virtual Drive Information:" head
		// a listing of drives.
		p.cur.listed = true
	}
}

// megaMatch applies re to line only when the line starts with prefix
// (case-insensitively): a cheap test first keeps a long listing fast.
func megaMatch(re *regexp.Regexp, line, prefix string) []string {
	if len(line) < len(prefix) || !strings.EqualFold(line[:len(prefix)], prefix) {
		return nil
	}
	return re.FindStringSubmatch(line)
}

// megaKeyValue splits "Key   : value" and normalises the key to lower
// case with single spaces (MegaCli pads keys with spaces and tabs).
func megaKeyValue(line string) (key, value string, ok bool) {
	i := strings.Index(line, ":")
	if i <= 0 {
		return "", "", false
	}
	key = strings.ToLower(strings.Join(strings.Fields(line[:i]), " "))
	return key, strings.TrimSpace(line[i+1:]), true
}

func (p *megaParser) vdLine(line, key, value string) {
	vd := p.vd
	if m := megaProgressRe().FindStringSubmatch(line); m != nil {
		vd.activity = strings.ToLower(strings.Join(strings.Fields(m[1]), " "))
		vd.progress, _ = strconv.ParseFloat(m[2], 64)
		return
	}
	switch key {
	case "name":
		vd.name = value
	case "raid level":
		vd.level = value
	case "size":
		vd.size = value
	case "state":
		vd.state = value
		vd.stateSeen = true
	case "number of drives":
		vd.drives, _ = strconv.Atoi(value)
	case "span depth":
		vd.spanDepth, _ = strconv.Atoi(value)
	case "default cache policy":
		vd.defCache = value
	case "current cache policy":
		vd.curCache = value
	}
}

func (p *megaParser) pdLine(key, value string) {
	pd := p.pd
	switch key {
	case "slot number":
		pd.slot = value
	case "firmware state":
		pd.state = value
	case "predictive failure count":
		pd.predictive, _ = strconv.Atoi(value)
	case "drive has flagged a s.m.a.r.t alert":
		pd.smartAlert = strings.EqualFold(value, "yes")
	case "foreign state":
		pd.foreign = !notReported(value) && !strings.EqualFold(value, "none")
	case "inquiry data":
		pd.model = strings.Join(strings.Fields(value), " ")
	case "coerced size":
		if i := strings.Index(value, "["); i > 0 {
			value = strings.TrimSpace(value[:i])
		}
		pd.size = value
	}
}

func (p *megaParser) bbuLine(key, value string) {
	b := p.bbu
	yes := strings.EqualFold(value, "yes")
	switch key {
	case "battery state":
		b.state = value
		b.stateSeen = true
	case "learn cycle active":
		b.learning = yes
	case "issohgood":
		b.sohGood = value
	case "battery replacement required":
		b.replace = yes
	case "battery pack missing":
		b.missing = yes
	case "pack is about to fail & should be replaced":
		b.aboutToFail = yes
	case "remaining capacity low":
		b.lowCapacity = yes
	case "learn cycle status":
		b.learnFailed = value
	case "learn cycle timeout":
		b.learnTimout = yes
	}
}

// flushPD files the drive record just read under its virtual drive (for
// -LdPdInfo) and in the adapter's drive table, merging a drive that an
// earlier record or input already named.
func (p *megaParser) flushPD() {
	pd := p.pd
	p.pd = nil
	if pd == nil {
		return
	}
	a := p.current()
	id := pd.id()
	if old := a.pds[id]; old != nil {
		megaMergePD(old, pd)
	} else {
		a.pds[id] = pd
		a.pdOrder = append(a.pdOrder, id)
	}
	if p.vd != nil {
		p.vd.membersListed = true
		for _, m := range p.vd.memberIDs {
			if m == id {
				return
			}
		}
		p.vd.memberIDs = append(p.vd.memberIDs, id)
	}
}

// megaMergePD folds a second record of one drive into the first; when the
// two disagree on the state the worse one is kept.
func megaMergePD(old, pd *megaPD) {
	// A state not reported never replaces one that is.
	if !notReported(pd.state) {
		ov, _, _ := megaPDVerdict(old.state)
		nv, _, _ := megaPDVerdict(pd.state)
		if notReported(old.state) || nv > ov {
			old.state = pd.state
		}
	}
	if pd.model != "" {
		old.model = pd.model
	}
	if pd.size != "" {
		old.size = pd.size
	}
	if pd.predictive > old.predictive {
		old.predictive = pd.predictive
	}
	old.smartAlert = old.smartAlert || pd.smartAlert
	old.foreign = old.foreign || pd.foreign
}

// megaPDVerdict judges a drive's "Firmware state", e.g. "Online, Spun Up",
// "Hotspare, Spun down", "Unconfigured(good), Spun Up", "Unconfigured(bad)",
// "Failed", "Rebuild", "Copyback", "JBOD", "Offline".
func megaPDVerdict(state string) (v Verdict, role, reason string) {
	word := state
	if i := strings.Index(word, ","); i >= 0 {
		word = word[:i]
	}
	word = strings.ToLower(strings.Join(strings.Fields(word), ""))
	switch word {
	case "online":
		return OK, "member", ""
	case "hotspare":
		return OK, "spare", ""
	case "unconfigured(good)":
		return OK, "unconfigured", ""
	case "jbod":
		return OK, "passthrough", ""
	case "copyback":
		// Data is copied from the spare back to the replaced drive; the
		// drive group keeps full redundancy meanwhile.
		return OK, "member", ""
	case "rebuild":
		return Rebuilding, "rebuild-target", "rebuilding"
	case "unconfigured(bad)":
		return Degraded, "unconfigured", "unconfigured(bad)"
	case "failed", "offline", "missing":
		return Degraded, "member", word
	}
	if notReported(word) {
		return Unknown, "", "no firmware state reported"
	}
	return Unknown, "", fmt.Sprintf("unrecognised state %q", state)
}

// megaVDVerdict judges a virtual drive's "State".
func megaVDVerdict(state string) (Verdict, string) {
	switch strings.ToLower(strings.Join(strings.Fields(state), " ")) {
	case "optimal":
		return OK, ""
	case "partially degraded", "degraded":
		return Degraded, strings.ToLower(state)
	case "offline", "failed":
		return Failed, strings.ToLower(state)
	}
	if notReported(state) {
		return Unknown, "no state reported"
	}
	return Unknown, fmt.Sprintf("unrecognised state %q", state)
}

// megaActivityVerdict judges an "Ongoing Progresses" entry: consistency
// checks and patrol reads are routine; initialisation, reconstruction and
// rebuild restore redundancy.
func megaActivityVerdict(activity string) Verdict {
	switch {
	case strings.Contains(activity, "check consistency"), strings.Contains(activity, "patrol"):
		return OK
	case strings.Contains(activity, "initiali"), strings.Contains(activity, "reconstruct"),
		strings.Contains(activity, "rebuild"):
		return Rebuilding
	}
	return Unknown
}

// megaLevel turns "Primary-5, Secondary-0, RAID Level Qualifier-3" and the
// span depth into "RAID5", "RAID50", "RAID10"...
func megaLevel(raw string, spanDepth int) string {
	m := megaLevelRe().FindStringSubmatch(raw)
	if m == nil {
		return raw
	}
	// Old firmware says RAID10 as Primary-1, Secondary-3.
	spanned := spanDepth > 1 || m[2] == "3"
	switch m[1] {
	case "1":
		if spanned {
			return "RAID10"
		}
		return "RAID1"
	case "0", "5", "6":
		if spanDepth > 1 {
			return "RAID" + m[1] + "0"
		}
	}
	return "RAID" + m[1]
}

// build turns what the inputs said about one adapter into a Controller
// with verdicts set on its arrays and disks (Result.Finish does the rest).
func (a *megaAdapter) build() *Controller {
	c := &Controller{ID: fmt.Sprintf("c%d", a.num), Arrays: []*Array{}}
	// -PDRbld may name a drive no listing showed: it is being rebuilt.
	var extra []string
	for id := range a.progress {
		if a.pds[id] == nil {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra) // map order must not reach the output
	for _, id := range extra {
		i := strings.LastIndex(id, ":")
		a.pds[id] = &megaPD{enc: id[:i], slot: id[i+1:], state: "Rebuild"}
		a.pdOrder = append(a.pdOrder, id)
	}

	inVD := map[string]bool{}
	for _, vd := range a.vds {
		for _, id := range vd.memberIDs {
			inVD[id] = true
		}
	}
	disk := func(id string) *Disk {
		pd := a.pds[id]
		v, role, reason := megaPDVerdict(pd.state)
		d := &Disk{ID: id, Model: pd.model, Size: pd.size, State: pd.state, Role: role, Verdict: v, Reason: reason}
		if pct, ok := a.progress[id]; ok && v == Rebuilding {
			d.Reason = fmt.Sprintf("rebuilding, %s%% done", strconv.FormatFloat(pct, 'f', -1, 64))
		}
		return d
	}
	var loose []*Disk
	for _, id := range a.pdOrder {
		if !inVD[id] {
			loose = append(loose, disk(id))
		}
	}
	looseRebuilds := 0
	for _, d := range loose {
		if d.Verdict == Rebuilding {
			looseRebuilds++
		}
	}
	unlistedDegraded := 0
	for _, vd := range a.vds {
		if v, _ := megaVDVerdict(vd.state); v == Degraded && !vd.membersListed {
			unlistedDegraded++
		}
	}

	for _, vd := range a.vds {
		arr := &Array{ID: "v" + vd.num, Name: vd.name, Level: megaLevel(vd.level, vd.spanDepth),
			Size: vd.size, State: vd.state, Members: vd.drives}
		arr.Verdict, arr.Reason = megaVDVerdict(vd.state)
		rebuilding, bad := []*Disk{}, 0
		for _, id := range vd.memberIDs {
			d := disk(id)
			if d.Role == "" || d.Role == "unconfigured" {
				d.Role = "member"
			}
			arr.Disks = append(arr.Disks, d)
			switch d.Verdict {
			case Rebuilding:
				rebuilding = append(rebuilding, d)
			case Degraded, Failed:
				bad++
			}
		}
		if vd.membersListed && vd.drives > len(vd.memberIDs) {
			bad += vd.drives - len(vd.memberIDs)
		}
		if vd.membersListed {
			arr.Missing = bad
		}
		if arr.Verdict == Degraded {
			// The VD reads degraded while a member is rebuilt; it is
			// rebuilding when nothing else is missing.
			switch {
			case vd.membersListed && len(rebuilding) > 0 && bad == 0:
				arr.Verdict, arr.Reason = Rebuilding, ""
				arr.Activity = "rebuild"
				arr.Progress = a.progressOf(rebuilding)
			case !vd.membersListed && unlistedDegraded == 1 && looseRebuilds > 0:
				arr.Verdict, arr.Reason = Rebuilding, ""
				arr.Activity = "rebuild"
				for _, d := range loose {
					if d.Verdict == Rebuilding {
						arr.Progress = a.progressOf([]*Disk{d})
						break
					}
				}
			}
		}
		if vd.activity != "" {
			av := megaActivityVerdict(vd.activity)
			if arr.Activity == "" {
				arr.Activity, arr.Progress = vd.activity, vd.progress
			}
			if av == Unknown && arr.Verdict < Unknown {
				arr.Reason = fmt.Sprintf("unrecognised activity %q", vd.activity)
			}
			arr.Verdict = Worst(arr.Verdict, av)
		}
		if megaWriteThrough(vd.curCache) && megaWriteBack(vd.defCache) {
			c.Warnings = append(c.Warnings, Warning{Component: "cache",
				Message: fmt.Sprintf("%s: current cache policy WriteThrough, default WriteBack", arr.ID)})
		}
		c.Arrays = append(c.Arrays, arr)
	}
	c.Disks = loose

	for _, id := range a.pdOrder {
		pd := a.pds[id]
		if pd.predictive > 0 {
			c.Warnings = append(c.Warnings, Warning{Component: "disk",
				Message: fmt.Sprintf("disk %s: predictive failure count %d", id, pd.predictive)})
		}
		if pd.smartAlert {
			c.Warnings = append(c.Warnings, Warning{Component: "disk",
				Message: fmt.Sprintf("disk %s: drive flagged a S.M.A.R.T. alert", id)})
		}
		if pd.foreign {
			c.Warnings = append(c.Warnings, Warning{Component: "disk",
				Message: fmt.Sprintf("disk %s: carries a foreign configuration", id)})
		}
	}
	for _, b := range a.bbus {
		if msg := b.problem(); msg != "" {
			c.Warnings = append(c.Warnings, Warning{Component: "bbu", Message: fmt.Sprintf("adapter %d: %s", a.num, msg)})
		}
	}
	c.Warnings = append(c.Warnings, a.warnings...)

	switch {
	case len(a.problems) > 0:
		c.Verdict, c.Reason = Unknown, strings.Join(a.problems, "; ")
	case a.listed && len(a.vds) == 0 && len(a.pds) == 0 && !a.noVDs:
		c.Verdict, c.Reason = Unknown, "adapter listing is empty"
	case a.declared >= 0 && a.declared != len(a.vds):
		c.Verdict, c.Reason = Unknown, fmt.Sprintf("%d virtual drives announced, %d listed", a.declared, len(a.vds))
	}
	return c
}

// progressOf returns the rebuild percent of the first of ds MegaCli gave
// one for, 0 when none.
func (a *megaAdapter) progressOf(ds []*Disk) float64 {
	for _, d := range ds {
		if p, ok := a.progress[d.ID]; ok {
			return p
		}
	}
	return 0
}

func megaWriteThrough(policy string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(policy)), "writethrough")
}

func megaWriteBack(policy string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(policy)), "writeback")
}

// problem says what is wrong with a battery, "" when nothing: an empty
// "Battery State:" is what MegaCli prints for a faulty battery; "Non
// Operational" (or any other state) during a learn cycle is the transient
// state of the cycle, not an alarm.
func (b *megaBBU) problem() string {
	var msgs []string
	switch st := strings.ToLower(b.state); {
	case !b.stateSeen:
		switch {
		case strings.EqualFold(b.sohGood, "no"):
			msgs = append(msgs, "battery state of health is bad")
		case b.sohGood == "":
			msgs = append(msgs, "battery state not reported")
		}
	case st == "":
		msgs = append(msgs, "battery state is empty (faulty)")
	case notReported(st):
		msgs = append(msgs, "battery state not reported ("+b.state+")")
	case st == "optimal" || st == "operational":
	case b.learning:
	default:
		msgs = append(msgs, "battery state "+b.state)
	}
	if b.replace {
		msgs = append(msgs, "battery replacement required")
	}
	if b.missing {
		msgs = append(msgs, "battery pack missing")
	}
	if b.aboutToFail {
		msgs = append(msgs, "battery pack is about to fail")
	}
	if b.lowCapacity && !b.learning {
		msgs = append(msgs, "remaining capacity low")
	}
	if b.learnTimout {
		msgs = append(msgs, "learn cycle timed out")
	}
	if !notReported(b.learnFailed) && !strings.EqualFold(b.learnFailed, "ok") {
		msgs = append(msgs, "learn cycle status "+b.learnFailed)
	}
	return strings.Join(msgs, ", ")
}
