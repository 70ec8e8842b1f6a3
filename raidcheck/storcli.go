package raidcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Tool names of ParseStorcli.
const (
	storTool = "storcli"
	percTool = "perccli"
)

var (
	// "TOPOLOGY :", "VD LIST :", "Drive /c0/e252/s0 - Detailed Information :"
	storSectionRe = lazyRegexp(`^(\S.*?)\s+:$`)
	// "Drive /c0/e252/s0", "Drive /c0/s3" (no enclosure), plus a suffix
	// such as " State" or " - Detailed Information".
	storDriveRe = lazyRegexp(`^Drive /c(\d+)(?:/e(\d+))?/s(\d+)(.*)$`)
	storPercRe  = lazyRegexp(`(?i)\bperc(?:cli\d*)?\b`)
)

// storCtl collects what one input says about one controller.
type storCtl struct {
	num                int
	model, status      string
	driver             string
	cmdStatus, cmdDesc string
	perc               bool

	basics, sched, statusSeen bool
	vdOps                     bool // "Supported VD Operations": a RAID personality
	bbuPresent                bool
	dg, vdN, pdN              int // "Drive Groups = N"...; -1 when not printed

	vds      []*storVD
	pds      []*storPD
	topo     []storTopo
	power    []storPower
	encls    []storEncl
	drives   map[string]*storDrive
	drvOrder []string

	closed   map[string]bool // tables whose closing rule was read, by section
	rows     map[string]int  // rows read, by section
	problems []string
}

// storVD is a VD LIST row (or a storcli2 "VD Info").
type storVD struct {
	dg, vd             string
	level, state       string
	size, name         string
	curCache, defCache string
	drives             int
	members            []*storPD // storcli2: the VD's own PD list
	hasMembers         bool
}

// storPD is a PD LIST row, a per-drive table row or a storcli2 PD.
type storPD struct {
	id, state, status string // status: storcli2's health word next to State
	dg, size, model   string
}

// storTopo is a TOPOLOGY row.
type storTopo struct {
	dg, arr, row, eid, typ, state string
}

// storPower is a Cachevault_Info or BBU_Info row.
type storPower struct{ kind, model, state string }

// storEncl is an enclosure row.
type storEncl struct {
	eid, state string
	pds        int
}

// storDrive is the detailed information of one drive (/cX/eY/sZ show all).
type storDrive struct {
	id         string
	table      bool // its one-row table was closed
	detailed   bool // "- Detailed Information" was printed for it
	smartSeen  bool
	smart      bool
	predictive int
}

func newStorCtl(n int) *storCtl {
	return &storCtl{num: n, dg: -1, vdN: -1, pdN: -1, drives: map[string]*storDrive{},
		closed: map[string]bool{}, rows: map[string]int{}}
}

func (c *storCtl) drive(id string) *storDrive {
	d := c.drives[id]
	if d == nil {
		d = &storDrive{id: id}
		c.drives[id] = d
		c.drvOrder = append(c.drvOrder, id)
	}
	return d
}

// ParseStorcli judges the outputs of Broadcom storcli/storcli64 and Dell
// perccli/perccli64 (same grammar), JSON first:
//
//	/cALL show all J               controllers, TOPOLOGY, VD LIST, PD LIST, CacheVault/BBU
//	/cALL/eALL/sALL show all J     per-drive state, predictive failures, S.M.A.R.T. alert
//	/cALL/vALL show all J          storcli2/perccli2 schema ("Virtual Drives"[]."VD Info")
//	/cN show all, /call show all   the same as text (several controllers in one output)
//
// Each input is classified by its content; any can be given together.
// Controllers are "cN"; VD "DG/VD" becomes array "vVD" (the VD number, as
// in /cN/vVD); drives are "EID:Slt" (":S" without enclosure). Drives are
// members of the VDs of their drive group; the others are loose disks.
//
// No section is trusted alone: an array takes the worst of its VD LIST
// state, the TOPOLOGY rows of its drive group and its drives' states in
// PD LIST and TOPOLOGY. A Dgrd/Pdgd VD whose members include a Rbld drive
// and none failed, offline or missing is Rebuilding. "Controller Status"
// Optimal or OK is fine (an HBA with no VD is OK with no arrays), Failure
// makes the controller Degraded, Needs Attention is a "controller" warning.
// The command's own "Status = Failure" (with its "Detailed Status" table)
// does not judge the controller: a healthy capture has one, from a failed
// sub-query; a controller with no data at all is Unknown with it as reason.
// CacheVault/BBU states but Optimal (and learn cycles), enclosure states but
// OK, predictive failures, S.M.A.R.T. alerts and foreign drives are
// warnings, as is storcli2's current cache WT while the default is WB.
//
// Cells printed N/A, NA, "-" or empty (an IT-mode HBA prints N/A in
// every drive counter and S.M.A.R.T. flag) report nothing: no warning, and
// no drive, VD or TOPOLOGY state is taken as fine on them (see doc.go).
// A controller with JBOD, Onln or UGood drives and no VD is OK.
//
// The tool is "perccli" when the output names PERC or perccli, else
// "storcli" (perccli2 prints nothing that tells it from storcli2).
//
// Text output has no end marker, so a controller is Unknown unless every
// table it announces is closed with as many rows as announced ("Virtual
// Drives = N"...), its Controller Status and Scheduled Tasks were read, a
// BBU the hardware section calls Present has its state table, and every
// drive of the enclosures' PD counts has its table and S.M.A.R.T. line.
// A cut exactly between two controllers cannot be seen. JSON must be
// complete (else *ParseError). An input with nothing storcli wrote returns
// a *ParseError (errors.Is ErrParse).
func ParseStorcli(in []Input) (*Result, error) {
	if len(in) == 0 {
		return nil, &ParseError{Tool: storTool, Name: "(none)", Msg: "no output to parse"}
	}
	var all []*storCtl
	for _, input := range in {
		ctls, err := storParseInput(input)
		if err != nil {
			return nil, err
		}
		all = append(all, ctls...)
	}
	byNum := map[int][]*storCtl{}
	var nums []int
	perc := false
	for _, c := range all {
		if byNum[c.num] == nil {
			nums = append(nums, c.num)
		}
		byNum[c.num] = append(byNum[c.num], c)
		perc = perc || c.perc
	}
	sort.Ints(nums)
	r := &Result{Tool: storTool, Controllers: []*Controller{}}
	if perc {
		r.Tool = percTool
	}
	for _, n := range nums {
		r.Controllers = append(r.Controllers, storBuild(n, byNum[n]))
	}
	r.Finish()
	return r, nil
}

// storParseInput reads one input, JSON or text.
func storParseInput(in Input) ([]*storCtl, error) {
	data := bytes.TrimLeft(in.Data, " \t\r\n")
	if len(data) == 0 {
		return nil, &ParseError{Tool: storTool, Name: in.Name, Msg: "empty output"}
	}
	if off := storJSONStart(in.Data); off >= 0 {
		return storParseJSON(in, off)
	}
	return storParseText(in)
}

// storJSONStart finds the '{' that opens storcli's JSON document, allowing
// a shell prompt line before it; -1 when the input is not JSON.
func storJSONStart(data []byte) int {
	off := 0
	for off < len(data) {
		end := bytes.IndexByte(data[off:], '\n')
		line := data[off:]
		if end >= 0 {
			line = data[off : off+end]
		}
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] == '{' {
			rest := data[off:]
			if len(rest) > 400 {
				rest = rest[:400]
			}
			if bytes.Contains(rest, []byte(`"Controllers"`)) {
				return off + bytes.IndexByte(line, '{')
			}
			return -1
		}
		if end < 0 {
			break
		}
		off += end + 1
	}
	return -1
}

// storLineOf turns a byte offset into a 1-based line number.
func storLineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// storStr renders a JSON scalar as storcli would print it: numbers and
// strings alike ("Controller": 0 in storcli, "0" in storcli2).
func storStr(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func storObj(v any) map[string]any { m, _ := v.(map[string]any); return m }

func storList(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, e := range l {
		if m := storObj(e); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func storSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func storParseJSON(in Input, off int) ([]*storCtl, error) {
	dec := json.NewDecoder(bytes.NewReader(in.Data[off:]))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		line := storLineOf(in.Data, int64(off))
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line = storLineOf(in.Data, int64(off)+se.Offset)
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			line = storLineOf(in.Data, int64(len(in.Data)))
		}
		return nil, &ParseError{Tool: storTool, Name: in.Name, Line: line, Msg: "invalid or truncated JSON: " + err.Error()}
	}
	list, ok := doc["Controllers"].([]any)
	if !ok || len(list) == 0 {
		return nil, &ParseError{Tool: storTool, Name: in.Name, Line: storLineOf(in.Data, int64(off)), Msg: `JSON has no "Controllers" list`}
	}
	var ctls []*storCtl
	for i, e := range list {
		ce := storObj(e)
		if ce == nil {
			return nil, &ParseError{Tool: storTool, Name: in.Name, Msg: fmt.Sprintf("controller entry %d is not an object", i)}
		}
		cs := storObj(ce["Command Status"])
		rd := storObj(ce["Response Data"])
		num := i
		if n, err := strconv.Atoi(storStr(cs["Controller"])); err == nil {
			num = n
		} else if n, err := strconv.Atoi(storStr(storObj(rd["Basics"])["Controller"])); err == nil {
			num = n
		}
		c := newStorCtl(num)
		c.cmdStatus, c.cmdDesc = storStr(cs["Status"]), storStr(cs["Description"])
		if storPercRe().MatchString(storStr(cs["CLI Version"])) {
			c.perc = true
		}
		storReadJSON(c, rd)
		if cs == nil && rd == nil {
			c.problems = append(c.problems, "controller entry has neither Command Status nor Response Data")
		}
		ctls = append(ctls, c)
	}
	return ctls, nil
}

// storReadJSON reads a controller's "Response Data".
func storReadJSON(c *storCtl, rd map[string]any) {
	something := false
	if b := storObj(rd["Basics"]); b != nil {
		c.basics = true
		c.model = storStr(b["Model"])
		if c.model == "" {
			c.model = storStr(b["Product Name"])
		}
	}
	if storPercRe().MatchString(c.model) {
		c.perc = true
	}
	if v := storObj(rd["Version"]); v != nil {
		c.driver = storStr(v["Driver Name"])
	}
	if s := storObj(rd["Status"]); s != nil {
		if st, ok := s["Controller Status"]; ok {
			c.status, c.statusSeen = storStr(st), true
		}
	}
	if h := storObj(rd["HwCfg"]); h != nil {
		c.bbuPresent = strings.EqualFold(storStr(h["BBU"]), "present")
	}
	if _, ok := rd["Supported VD Operations"]; ok {
		c.vdOps = true
	}
	for _, row := range storList(rd["TOPOLOGY"]) {
		c.topo = append(c.topo, storTopo{dg: storStr(row["DG"]), arr: storStr(row["Arr"]), row: storStr(row["Row"]),
			eid: storStr(row["EID:Slot"]), typ: storStr(row["Type"]), state: storStr(row["State"])})
		something = true
	}
	if n, err := strconv.Atoi(storStr(rd["Virtual Drives"])); err == nil {
		c.vdN = n
	}
	if n, err := strconv.Atoi(storStr(rd["Physical Drives"])); err == nil {
		c.pdN = n
	}
	if _, ok := rd["VD LIST"]; ok {
		for _, row := range storList(rd["VD LIST"]) {
			c.vds = append(c.vds, storVDRow(storStr(row["DG/VD"]), storStr(row["TYPE"]), storStr(row["State"]),
				storStr(row["Size"]), storStr(row["Name"])))
		}
		c.closed["VD LIST"] = true
		c.rows["VD LIST"] = len(c.vds)
		something = true
	}
	if _, ok := rd["PD LIST"]; ok {
		rows := storList(rd["PD LIST"])
		for _, row := range rows {
			c.pds = append(c.pds, storPDRow(row))
		}
		c.closed["PD LIST"] = true
		c.rows["PD LIST"] = len(rows)
		something = true
	}
	// storcli2/perccli2: "Virtual Drives": [{"VD Info": {...}, "PDs": [...], "VD Properties": {...}}]
	for _, v := range storList(rd["Virtual Drives"]) {
		info := storObj(v["VD Info"])
		if info == nil {
			continue
		}
		vd := storVDRow(storStr(info["DG/VD"]), storStr(info["TYPE"]), storStr(info["State"]),
			storStr(info["Size"]), storStr(info["Name"]))
		vd.curCache, vd.defCache = storStr(info["CurrentCache"]), storStr(info["DefaultCache"])
		if _, ok := v["PDs"]; ok {
			vd.hasMembers = true
			for _, row := range storList(v["PDs"]) {
				vd.members = append(vd.members, storPDRow(row))
			}
		}
		if n, err := strconv.Atoi(storStr(storObj(v["VD Properties"])["Number of Drives"])); err == nil {
			vd.drives = n
		}
		c.vds = append(c.vds, vd)
		something = true
	}
	for _, kind := range []string{"Cachevault_Info", "BBU_Info"} {
		for _, row := range storList(rd[kind]) {
			c.power = append(c.power, storPower{kind: kind, model: storStr(row["Model"]), state: storStr(row["State"])})
			something = true
		}
	}
	// "Enclosure LIST" of a RAID controller, "Enclosure Information" of
	// an HBA.
	for _, key := range []string{"Enclosure LIST", "Enclosure Information"} {
		for _, row := range storList(rd[key]) {
			n, _ := strconv.Atoi(storStr(row["PD"]))
			c.encls = append(c.encls, storEncl{eid: storStr(row["EID"]), state: storStr(row["State"]), pds: n})
		}
	}
	// Per-drive keys, at the top (/cALL/eALL/sALL show all J) or inside
	// "Physical Device Information" (an HBA's show all J).
	drivesIn := func(m map[string]any) {
		for _, k := range storSortedKeys(m) {
			dm := storDriveRe().FindStringSubmatch(k)
			if dm == nil {
				continue
			}
			id := dm[2] + ":" + dm[3]
			something = true
			switch suffix := strings.TrimSpace(dm[4]); suffix {
			case "":
				for _, row := range storList(m[k]) {
					c.pds = append(c.pds, storPDRow(row))
				}
				c.drive(id).table = true
			case "- Detailed Information":
				d := c.drive(id)
				d.detailed = true
				for _, sk := range storSortedKeys(storObj(m[k])) {
					if !strings.HasSuffix(sk, " State") {
						continue
					}
					st := storObj(storObj(m[k])[sk])
					if v := storStr(st["S.M.A.R.T alert flagged by drive"]); v != "" {
						d.smartSeen = true
						d.smart = storSmartAlert(v)
					}
					d.predictive, _ = strconv.Atoi(storStr(st["Predictive Failure Count"]))
				}
			}
		}
	}
	drivesIn(rd)
	drivesIn(storObj(rd["Physical Device Information"]))
	if c.basics || c.statusSeen {
		something = true
	}
	if !something {
		msg := "no controller, drive or virtual drive data"
		if c.cmdStatus != "" && !strings.EqualFold(c.cmdStatus, "success") {
			msg = fmt.Sprintf("command status %s: %s", c.cmdStatus, c.cmdDesc)
		}
		c.problems = append(c.problems, msg)
	}
	if c.vdN >= 0 && c.closed["VD LIST"] && c.vdN != c.rows["VD LIST"] {
		c.problems = append(c.problems, fmt.Sprintf("%d virtual drives announced, %d listed", c.vdN, c.rows["VD LIST"]))
	}
	if c.pdN >= 0 && c.closed["PD LIST"] && c.pdN != c.rows["PD LIST"] {
		c.problems = append(c.problems, fmt.Sprintf("%d physical drives announced, %d listed", c.pdN, c.rows["PD LIST"]))
	}
	if c.bbuPresent && len(c.power) == 0 {
		c.problems = append(c.problems, "BBU present but no CacheVault/BBU state reported")
	}
}

// storSmartAlert reads "S.M.A.R.T alert flagged by drive": an HBA in IT
// mode prints N/A for every drive, which flags nothing.
func storSmartAlert(v string) bool {
	return !notReported(v) && !strings.EqualFold(v, "no")
}

func storVDRow(dgvd, level, state, size, name string) *storVD {
	vd := &storVD{level: level, state: state, size: size, name: name}
	vd.dg, vd.vd, _ = strings.Cut(dgvd, "/")
	return vd
}

func storPDRow(row map[string]any) *storPD {
	return &storPD{id: storStr(row["EID:Slt"]), state: storStr(row["State"]), status: storStr(row["Status"]),
		dg: storStr(row["DG"]), size: storStr(row["Size"]), model: storStr(row["Model"])}
}

// storTable is the text table being read: storcli frames each table with
// rules of dashes, header between the first two, rows until the third.
type storTable struct {
	state  int // 0 none, 1 after the opening rule, 2 after the header, 3 in rows
	rule   int // length of the opening rule
	header []string
}

// storParseText reads the text form of show all.
func storParseText(in Input) ([]*storCtl, error) {
	lines := strings.Split(string(in.Data), "\n")
	ctls := map[int]*storCtl{}
	var order []*storCtl
	get := func(n int) *storCtl {
		c := ctls[n]
		if c == nil {
			c = newStorCtl(n)
			ctls[n] = c
			order = append(order, c)
		}
		return c
	}
	var (
		c       *storCtl
		section string
		drive   string // the drive the current section is about
		tab     storTable
		first   int
	)
	for i, raw := range lines {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if line == "" {
			continue
		}
		if first == 0 {
			first = i + 1
		}
		if c != nil && strings.Contains(strings.ToLower(line), "perccli") {
			c.perc = true
		}
		if strings.Trim(line, "-") == "" && len(line) >= 5 {
			// The three rules of a table have one length; a shorter one
			// is a rule cut short by truncation, not the table's end.
			switch {
			case tab.state == 0:
				tab.state, tab.rule = 1, len(line)
			case tab.state == 2 && len(line) == tab.rule:
				tab.state = 3
			case tab.state == 3 && len(line) == tab.rule:
				tab.state = 0
				if c != nil {
					c.closed[section] = true
					if drive != "" && strings.HasPrefix(section, "Drive ") {
						c.drive(drive).table = true
					}
				}
			}
			continue
		}
		switch tab.state {
		case 1:
			tab.header = strings.Fields(line)
			tab.state = 2
			continue
		case 2:
			continue // a header wrapped onto two lines: not one storcli prints
		case 3:
			if c != nil {
				storTextRow(c, section, drive, tab.header, strings.Fields(line))
			}
			continue
		}
		if strings.Trim(line, "=") == "" {
			continue
		}
		if m := storSectionRe().FindStringSubmatch(line); m != nil && !strings.Contains(line, " = ") {
			section = m[1]
			drive = ""
			if dm := storDriveRe().FindStringSubmatch(section); dm != nil {
				n, _ := strconv.Atoi(dm[1])
				c = get(n)
				drive = dm[2] + ":" + dm[3]
				d := c.drive(drive)
				if strings.Contains(dm[4], "Detailed Information") {
					d.detailed = true
				}
			}
			if c != nil {
				switch section {
				case "Basics":
					c.basics = true
				case "Scheduled Tasks":
					c.sched = true
				case "Supported VD Operations":
					c.vdOps = true
				}
			}
			continue
		}
		key, value, ok := storKeyValue(line)
		if !ok {
			continue
		}
		if key == "Controller" {
			n, err := strconv.Atoi(value)
			if err != nil {
				continue
			}
			if section != "Basics" {
				// The command status block that opens each controller's
				// output: "Controller = N", "Status = ...".
				section, drive = "", ""
			}
			c = get(n)
			continue
		}
		if c == nil {
			continue
		}
		switch {
		case section == "" && key == "Status":
			c.cmdStatus = value
		case section == "" && key == "Description":
			c.cmdDesc = value
		case key == "Model" && section == "Basics", key == "Product Name" && c.model == "":
			c.model = value
			if storPercRe().MatchString(value) {
				c.perc = true
			}
		case key == "Controller Status":
			c.status, c.statusSeen = value, true
		case key == "Driver Name":
			c.driver = value
		case key == "BBU" && section == "HwCfg":
			c.bbuPresent = strings.EqualFold(value, "present")
		case key == "Drive Groups" || key == "Virtual Drives" || key == "Physical Drives":
			n, err := strconv.Atoi(value)
			if err != nil {
				// A count cut off or unreadable: nothing can be checked
				// against it, so the output cannot be trusted.
				c.problems = append(c.problems, fmt.Sprintf("unreadable %q", line))
				continue
			}
			switch key {
			case "Drive Groups":
				c.dg = n
			case "Virtual Drives":
				c.vdN = n
			default:
				c.pdN = n
			}
		case key == "Scheduled Tasks":
			c.sched = true
		case key == "Predictive Failure Count" && drive != "":
			c.drive(drive).predictive, _ = strconv.Atoi(value)
		case key == "S.M.A.R.T alert flagged by drive" && drive != "" && value != "":
			d := c.drive(drive)
			d.smartSeen = true
			d.smart = storSmartAlert(value)
		}
	}
	if len(order) == 0 {
		if first == 0 {
			return nil, &ParseError{Tool: storTool, Name: in.Name, Msg: "empty output"}
		}
		return nil, &ParseError{Tool: storTool, Name: in.Name, Line: first, Msg: "no storcli controller output"}
	}
	for _, c := range order {
		storCheckText(c)
	}
	return order, nil
}

// storKeyValue splits "Key = value" (storcli's spacing: legend lines such
// as "DG=Disk Group Index|..." have none and are not values).
func storKeyValue(line string) (key, value string, ok bool) {
	if i := strings.Index(line, " = "); i > 0 {
		return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+3:]), true
	}
	if strings.HasSuffix(line, " =") {
		return strings.TrimSpace(strings.TrimSuffix(line, " =")), "", true
	}
	return "", "", false
}

// storSizeUnits are the words that follow a size number in storcli tables.
var storSizeUnits = map[string]bool{"B": true, "KB": true, "MB": true, "GB": true, "TB": true, "PB": true,
	"KiB": true, "MiB": true, "GiB": true, "TiB": true, "PiB": true}

// storFields maps a text row onto its header: storcli separates columns
// by blanks, a size takes two words ("278.464 GB") and the last column
// (a VD name) may be empty or hold blanks.
func storFields(header, row []string) map[string]string {
	out := map[string]string{}
	j := 0
	for i, h := range header {
		if j >= len(row) {
			break
		}
		if i == len(header)-1 {
			out[h] = strings.Join(row[j:], " ")
			break
		}
		v := row[j]
		j++
		if h == "Size" && j < len(row) && storSizeUnits[row[j]] {
			v += " " + row[j]
			j++
		}
		out[h] = v
	}
	return out
}

// storTextRow files one table row by the section it is in.
func storTextRow(c *storCtl, section, drive string, header, row []string) {
	f := storFields(header, row)
	switch {
	case section == "TOPOLOGY":
		c.topo = append(c.topo, storTopo{dg: f["DG"], arr: f["Arr"], row: f["Row"], eid: f["EID:Slot"], typ: f["Type"], state: f["State"]})
	case section == "VD LIST":
		c.vds = append(c.vds, storVDRow(f["DG/VD"], f["TYPE"], f["State"], f["Size"], f["Name"]))
	case section == "PD LIST", drive != "" && strings.HasPrefix(section, "Drive "):
		c.pds = append(c.pds, &storPD{id: f["EID:Slt"], state: f["State"], dg: f["DG"], size: f["Size"], model: f["Model"]})
	case section == "Cachevault_Info" || section == "BBU_Info":
		c.power = append(c.power, storPower{kind: section, model: f["Model"], state: f["State"]})
	case section == "Enclosure Information" || section == "Enclosure LIST":
		n, _ := strconv.Atoi(f["PD"])
		c.encls = append(c.encls, storEncl{eid: f["EID"], state: f["State"], pds: n})
	default:
		return
	}
	c.rows[section]++
}

// storCheckText decides whether a controller's text output is complete.
func storCheckText(c *storCtl) {
	need := func(cond bool, msg string) {
		if !cond {
			c.problems = append(c.problems, msg)
		}
	}
	hba := strings.HasPrefix(strings.ToLower(c.driver), "mpt") || (!c.vdOps && c.rows["Enclosure Information"] > 0)
	if c.basics {
		need(c.statusSeen, "no Controller Status")
		need(c.sched, "output ends before Scheduled Tasks")
		if hba {
			need(c.closed["Enclosure Information"], "enclosure table missing or cut")
		} else {
			lists := c.dg >= 0 || c.vdN >= 0 || c.pdN >= 0
			need(lists || c.closed["Cachevault_Info"] || c.closed["BBU_Info"], "no drive group, drive or battery information")
			if c.dg > 0 {
				need(c.closed["TOPOLOGY"], "TOPOLOGY table missing or cut")
				need(c.vdN >= 0, "VD LIST missing")
				need(c.pdN >= 0, "PD LIST missing")
			}
			if c.bbuPresent {
				need(c.closed["Cachevault_Info"] || c.closed["BBU_Info"], "BBU present but its state table is missing or cut")
			}
		}
	}
	if c.vdN > 0 {
		need(c.closed["VD LIST"] && c.rows["VD LIST"] == c.vdN,
			fmt.Sprintf("VD LIST cut: %d virtual drives announced, %d listed", c.vdN, c.rows["VD LIST"]))
	}
	if c.pdN > 0 {
		need(c.closed["PD LIST"] && c.rows["PD LIST"] == c.pdN,
			fmt.Sprintf("PD LIST cut: %d physical drives announced, %d listed", c.pdN, c.rows["PD LIST"]))
	}
	want := 0
	for _, e := range c.encls {
		want += e.pds
	}
	if hba && c.closed["Enclosure Information"] {
		need(len(c.drives) >= want, fmt.Sprintf("%d drives in the enclosures, %d listed", want, len(c.drives)))
	}
	detailed := false
	for _, d := range c.drives {
		detailed = detailed || d.detailed
	}
	for _, id := range c.drvOrder {
		d := c.drives[id]
		need(d.table, "drive "+id+": table missing or cut")
		if detailed {
			need(d.smartSeen, "drive "+id+": detailed information missing or cut")
		}
	}
	if !c.basics && len(c.drives) == 0 && len(c.vds) == 0 && len(c.pds) == 0 {
		msg := "no controller, drive or virtual drive data"
		if c.cmdStatus != "" && !strings.EqualFold(c.cmdStatus, "success") {
			msg = fmt.Sprintf("command status %s: %s", c.cmdStatus, c.cmdDesc)
		}
		c.problems = append(c.problems, msg)
	}
}

// storVDVerdict judges a VD or TOPOLOGY array state (legend: Optl=Optimal,
// Dgrd=Degraded, Pdgd=Partially Degraded, OfLn=OffLine, Rec=Recovery,
// Cac=CacheCade; storcli2 may spell them out).
func storVDVerdict(state string) (Verdict, string) {
	switch strings.ToLower(strings.Join(strings.Fields(state), " ")) {
	case "optl", "optimal", "cac":
		return OK, ""
	case "dgrd", "degraded", "pdgd", "partially degraded":
		return Degraded, "state " + state
	case "ofln", "offline", "failed":
		return Failed, "state " + state
	case "rec", "recovery", "rbld", "rebuild":
		return Rebuilding, ""
	}
	if notReported(state) {
		return Unknown, "no state reported"
	}
	return Unknown, fmt.Sprintf("unrecognised state %q", state)
}

// storPDVerdict judges a drive: storcli's State (Onln, Offln, UGood,
// UBad, GHS, DHS, Rbld, Failed, Msng, JBOD, Cpybck, the shielded states),
// or storcli2's State (role: Conf, UConf, GHS, DHS, JBOD) with Status
// (health: Online, Offline, Rebuild, Failed, Missing, Good, Bad...).
func storPDVerdict(state, status string) (v Verdict, role, reason string) {
	s := strings.ToLower(strings.TrimSpace(state))
	if status != "" && notReported(status) {
		// storcli2 printed a health column but no health in it.
		if notReported(state) {
			return Unknown, "", "no state reported"
		}
		status = ""
		if s == "conf" || s == "uconf" {
			return Unknown, "", fmt.Sprintf("state %s with no status reported", state)
		}
	}
	if status != "" {
		switch s {
		case "conf", "onln", "online":
			role = "member"
		case "uconf", "ugood", "ubad":
			role = "unconfigured"
		case "ghs", "dhs":
			role = "spare"
		case "jbod":
			role = "passthrough"
		default:
			return Unknown, "", fmt.Sprintf("unrecognised state %q", state)
		}
		switch st := strings.ToLower(strings.TrimSpace(status)); st {
		case "online", "onln", "good", "ugood", "optimal", "cpybck", "copyback":
			return OK, role, ""
		case "rebuild", "rbld":
			return Rebuilding, "rebuild-target", "rebuilding"
		case "offline", "offln", "failed", "missing", "msng", "bad", "ubad":
			return Degraded, role, st
		}
		return Unknown, role, fmt.Sprintf("unrecognised status %q", status)
	}
	switch s {
	case "onln", "online", "cpybck":
		return OK, "member", ""
	case "ugood", "ugunsp":
		return OK, "unconfigured", ""
	case "ghs", "dhs":
		return OK, "spare", ""
	case "jbod":
		return OK, "passthrough", ""
	case "rbld":
		return Rebuilding, "rebuild-target", "rebuilding"
	case "offln", "failed", "msng":
		return Degraded, "member", state
	case "ubad":
		return Degraded, "unconfigured", state
	case "ugshld", "hspshld", "cfshld", "cbshld":
		// Shielded: the firmware found errors and is diagnosing the drive.
		return Degraded, "", state
	}
	if notReported(state) {
		return Unknown, "", "no state reported"
	}
	return Unknown, "", fmt.Sprintf("unrecognised state %q", state)
}

// storPDNotReported reports whether a drive row says nothing about the
// drive's state (State and any Status N/A, "-" or empty).
func storPDNotReported(p *storPD) bool {
	return notReported(p.state) && notReported(p.status)
}

// storBuild merges what the inputs said about controller n and judges it.
func storBuild(n int, parts []*storCtl) *Controller {
	c := &Controller{ID: fmt.Sprintf("c%d", n), Arrays: []*Array{}}
	var (
		vds      []*storVD
		seenVD   = map[string]bool{}
		seenTopo = map[storTopo]bool{}
		pds      = map[string]*storPD{}
		pdOrder  []string
		topo     []storTopo
		power    []storPower
		encls    []storEncl
		drives   []*storDrive
		problems []string
		status   string
	)
	addPD := func(p *storPD) {
		if p.id == "" {
			return
		}
		if old := pds[p.id]; old != nil {
			// Keep the worse of two reported states; a state not
			// reported never replaces one that is.
			ov, _, _ := storPDVerdict(old.state, old.status)
			nv, _, _ := storPDVerdict(p.state, p.status)
			oldNone, newNone := storPDNotReported(old), storPDNotReported(p)
			if (nv > ov && !newNone) || (oldNone && !newNone) {
				old.state, old.status = p.state, p.status
			}
			if old.dg == "" || old.dg == "-" {
				old.dg = p.dg
			}
			if old.model == "" {
				old.model = p.model
			}
			if old.size == "" {
				old.size = p.size
			}
			return
		}
		cp := *p
		pds[p.id] = &cp
		pdOrder = append(pdOrder, p.id)
	}
	for _, p := range parts {
		if c.Model == "" {
			c.Model = p.model
		}
		if status == "" {
			status = p.status
		}
		for _, vd := range p.vds {
			if key := vd.dg + "/" + vd.vd; !seenVD[key] {
				seenVD[key] = true
				vds = append(vds, vd)
			}
		}
		for _, pd := range p.pds {
			addPD(pd)
		}
		for _, t := range p.topo {
			// The same TOPOLOGY may come from the text and the JSON form.
			if !seenTopo[t] {
				seenTopo[t] = true
				topo = append(topo, t)
			}
		}
		power = append(power, p.power...)
		encls = append(encls, p.encls...)
		for _, id := range p.drvOrder {
			drives = append(drives, p.drives[id])
		}
		problems = append(problems, p.problems...)
	}
	c.Status = status

	mkDisk := func(p *storPD) *Disk {
		v, role, reason := storPDVerdict(p.state, p.status)
		st := p.state
		if p.status != "" {
			st = p.status
		}
		return &Disk{ID: p.id, Model: p.model, Size: p.size, State: st, Role: role, Verdict: v, Reason: reason}
	}
	used := map[string]bool{}
	for _, vd := range vds {
		a := &Array{ID: "v" + vd.vd, Name: vd.name, Level: vd.level, Size: vd.size, State: vd.state, Members: vd.drives}
		a.Verdict, a.Reason = storVDVerdict(vd.state)
		// A VD LIST state not reported is no evidence: the first
		// TOPOLOGY array row that reports one judges the array instead.
		stateReported := !notReported(vd.state)
		// Members: the VD's own list (storcli2), else the drives of its
		// drive group in PD LIST.
		var members []*storPD
		if vd.hasMembers {
			for _, m := range vd.members {
				addPD(m)
				members = append(members, pds[m.id])
			}
		} else {
			for _, id := range pdOrder {
				if pds[id].dg == vd.dg && vd.dg != "" {
					members = append(members, pds[id])
				}
			}
		}
		byID := map[string]*Disk{}
		for _, m := range members {
			if m == nil || byID[m.id] != nil {
				continue
			}
			d := mkDisk(m)
			if d.Role == "unconfigured" || d.Role == "" {
				d.Role = "member"
			}
			byID[m.id] = d
			a.Disks = append(a.Disks, d)
			used[m.id] = true
		}
		// TOPOLOGY of the drive group: array/span rows and drive rows.
		topoDrives := 0
		for _, t := range topo {
			if t.dg != vd.dg {
				continue
			}
			if !strings.EqualFold(t.typ, "DRIVE") {
				if notReported(t.state) {
					continue
				}
				tv, treason := storVDVerdict(t.state)
				if !stateReported {
					stateReported = true
					a.Verdict, a.Reason = tv, ""
					if tv != OK {
						a.Reason = "TOPOLOGY " + t.typ + " " + treason
					}
					continue
				}
				if tv > a.Verdict {
					a.Verdict = tv
					a.Reason = "TOPOLOGY " + t.typ + " " + treason
					if tv == Unknown {
						a.Reason = "TOPOLOGY " + t.typ + ": " + treason
					}
				}
				continue
			}
			topoDrives++
			tv, role, treason := storPDVerdict(t.state, "")
			if t.eid == "" || t.eid == "-" {
				id := fmt.Sprintf("missing(%s/%s/%s)", t.dg, t.arr, t.row)
				a.Disks = append(a.Disks, &Disk{ID: id, State: t.state, Role: "member",
					Verdict: Worst(tv, Degraded), Reason: "missing member (TOPOLOGY)"})
				continue
			}
			d := byID[t.eid]
			if d == nil {
				d = &Disk{ID: t.eid, State: t.state, Role: role, Verdict: tv, Reason: treason}
				if d.Role == "" || d.Role == "unconfigured" {
					d.Role = "member"
				}
				byID[t.eid] = d
				a.Disks = append(a.Disks, d)
				used[t.eid] = true
			} else if notReported(t.state) {
				// No evidence either way: the PD LIST state stands.
			} else if tv > d.Verdict || (d.Verdict == Unknown && notReported(d.State)) {
				d.State, d.Verdict, d.Reason = t.state, tv, "TOPOLOGY: "+treason
				if tv == Rebuilding {
					d.Role = "rebuild-target"
				}
			}
		}
		if a.Members == 0 {
			a.Members = topoDrives
		}
		if a.Members == 0 {
			a.Members = len(a.Disks)
		}
		rebuilding, bad := 0, 0
		for _, d := range a.Disks {
			switch d.Verdict {
			case Rebuilding:
				rebuilding++
			case Degraded, Failed:
				bad++
			}
		}
		a.Missing = bad
		if a.Verdict == Degraded && rebuilding > 0 && bad == 0 {
			a.Verdict, a.Reason, a.Activity = Rebuilding, "", "rebuild"
		}
		if a.Verdict == Rebuilding && a.Activity == "" {
			a.Activity = "rebuild"
		}
		if storHasWord(vd.curCache, "WT") && storHasWord(vd.defCache, "WB") {
			c.Warnings = append(c.Warnings, Warning{Component: "cache",
				Message: fmt.Sprintf("%s: current cache %s, default %s", a.ID, vd.curCache, vd.defCache)})
		}
		c.Arrays = append(c.Arrays, a)
	}
	for _, id := range pdOrder {
		if used[id] {
			continue
		}
		p := pds[id]
		d := mkDisk(p)
		if len(vds) == 0 && d.Role == "unconfigured" && d.Verdict == OK && p.dg != "" && p.dg != "-" && p.dg != "F" {
			d.Role = "passthrough" // an HBA's drive
		}
		c.Disks = append(c.Disks, d)
	}
	for _, id := range pdOrder {
		if pds[id].dg == "F" {
			c.Warnings = append(c.Warnings, Warning{Component: "disk", Message: "disk " + id + ": carries a foreign configuration"})
		}
	}
	warned := map[string]bool{}
	for _, d := range drives {
		if d.predictive > 0 && !warned["p"+d.id] {
			warned["p"+d.id] = true
			c.Warnings = append(c.Warnings, Warning{Component: "disk",
				Message: fmt.Sprintf("disk %s: predictive failure count %d", d.id, d.predictive)})
		}
		if d.smart && !warned["s"+d.id] {
			warned["s"+d.id] = true
			c.Warnings = append(c.Warnings, Warning{Component: "disk",
				Message: fmt.Sprintf("disk %s: drive flagged a S.M.A.R.T. alert", d.id)})
		}
	}
	for _, p := range power {
		st := strings.ToLower(p.state)
		if st == "optimal" || strings.Contains(st, "learn") {
			continue
		}
		what := "CacheVault"
		if p.kind == "BBU_Info" {
			what = "BBU"
		}
		msg := fmt.Sprintf("%s %s state %q", what, p.model, p.state)
		if notReported(p.state) {
			// Its state is the only sign the cache is safe: not
			// reported is not fine.
			msg = fmt.Sprintf("%s %s: state not reported (%q)", what, p.model, p.state)
		}
		c.Warnings = append(c.Warnings, Warning{Component: "bbu", Message: msg})
	}
	for _, e := range encls {
		if !strings.EqualFold(e.state, "OK") && !notReported(e.state) {
			c.Warnings = append(c.Warnings, Warning{Component: "enclosure",
				Message: fmt.Sprintf("enclosure %s state %q", e.eid, e.state)})
		}
	}

	switch st := strings.ToLower(status); {
	case notReported(status):
		// Not reported: the drives and VDs judge the controller, and
		// with none it cannot be judged.
		if status != "" && len(c.Arrays) == 0 && len(c.Disks) == 0 {
			c.Verdict, c.Reason = Unknown, fmt.Sprintf("controller status not reported (%q) and no drives", status)
		}
	case st == "optimal", st == "ok":
	case st == "needs attention":
		c.Warnings = append(c.Warnings, Warning{Component: "controller", Message: "controller status " + status})
	case st == "failure", st == "failed":
		c.Verdict, c.Reason = Degraded, "controller status "+status
	default:
		c.Verdict, c.Reason = Unknown, fmt.Sprintf("unrecognised controller status %q", status)
	}
	if len(problems) > 0 {
		c.Verdict = Worst(c.Verdict, Unknown)
		why := "incomplete output: " + strings.Join(problems, "; ")
		if c.Reason != "" {
			why = c.Reason + "; " + why
		}
		c.Reason = why
	}
	return c
}

// storHasWord reports whether a comma-separated cache policy such as
// "NR,WB" holds word.
func storHasWord(list, word string) bool {
	for _, w := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(w), word) {
			return true
		}
	}
	return false
}
