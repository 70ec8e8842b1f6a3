package raidcheck

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ToolTWCLI is the tool name of 3ware/AMCC/LSI tw_cli results.
const ToolTWCLI = "tw_cli"

// twKind is the table a header line opens.
type twKind int

const (
	twNone   twKind = iota
	twCtl           // show / info: controller table
	twEncSum        // show: enclosure summary
	twUnit          // info cN unitstatus
	twPort          // info cN drivestatus
	twBBU           // info cN bbustatus
	twEncl          // /cN/eN show all: enclosure status
	twFan           // /cN/eN show all: fans
	twTemp          // /cN/eN show all: temperature sensors
	twPSU           // /cN/eN show all: power supplies
	twSlot          // /cN/eN show all: slots
	twAlarm         // /cN/eN show all: alarms
)

var twKindNames = [...]string{"", "controller", "enclosure summary", "unit status", "drive status", "bbu status", "enclosure status", "fan", "temperature sensor", "power supply", "slot", "alarm"}

var (
	// A controller, unit, port, bbu or enclosure ID opening a row.
	twCtlID  = lazyRegexp(`^c(\d+)$`)
	twUnitID = lazyRegexp(`^u\d+$`)
	// "p0     OK               u0     931.51 GB   1953525168    S246JDWZ134931"
	// "p8    OK             -    136.73 GB SAS   -   /c0/e0/slt3  SEAGATE ST3146855SS"
	// "p5     NOT-PRESENT      -      -           -             -"
	twPortRe = lazyRegexp(`^(p\d+)\s+(\S+)\s+(u\d+|-)\s+(\d+(?:\.\d+)?\s+[KMGTP]?B|-)(?:\s+(.*?))?\s*$`)
	// "/c0/e0 Vendor = LSI CORP" opens an enclosure block of show all;
	// 9650SE-era CLIs print "/e0" without the controller.
	twEnclBlock = lazyRegexp(`^(?:/c(\d+))?/e(\d+)\s+\S.*=`)
	twEnclID    = lazyRegexp(`^(?:/c(\d+))?/e(\d+)$`)
	twSpeedLine = lazyRegexp(`^\s+-+Speed-+\s*$`)
	twKeyValue  = lazyRegexp(`^/c\d+\S*\s.*=`)
	// A controller named in an input's name: "info c1 unitstatus",
	// "host.info-c1-drivestatus.txt", "/c1/e0 show all".
	twNameCtl = lazyRegexp(`(?i)(?:^|[^a-z0-9])c(\d+)(?:[^0-9]|$)`)
)

type twUnitRow struct {
	id, typ, status, size string
	rcmpl, vim, cmpl      string // progress columns; "" when absent
}

type twPortRow struct {
	id, status, unit, size, model string
}

// twCtlData is what the inputs say about one controller.
type twCtlData struct {
	num                 int
	id, model, bbu      string
	shown               bool // a controller table row was read
	units, drives       int
	notOpt              int
	unitRows            []*twUnitRow
	portRows            []*twPortRow
	sawUnits, sawPorts  bool
	warnings            []Warning
	problems            []string // each makes the controller Unknown
	unknownWhy          []string // unrecognised component words
	sawBBUTable, hasBBU bool
	encBlocksIncomplete []string
}

type twData struct {
	ctls map[int]*twCtlData
}

func (d *twData) ctl(num int) *twCtlData {
	c := d.ctls[num]
	if c == nil {
		c = &twCtlData{num: num, id: "c" + strconv.Itoa(num)}
		d.ctls[num] = c
	}
	return c
}

func (c *twCtlData) warn(component, msg string) {
	for _, w := range c.warnings {
		if w.Component == component && w.Message == msg {
			return
		}
	}
	c.warnings = append(c.warnings, Warning{Component: component, Message: msg})
}

// ParseTWCLI reads the outputs of 3ware/AMCC/LSI tw_cli: `show` or `info`
// (the controller table, possibly followed by the enclosure summary),
// `info cN unitstatus`, `info cN drivestatus` (the old Port/Blocks/Serial
// and the newer VPort/Type/Phy/Encl-Slot/Model layouts), `info cN
// bbustatus` and `/cN/eN show all`. Each input is classified by the
// headers of the tables it holds, so outputs come in any order and one
// input may hold several tables (`tw_cli /c0 show` prints units, ports and
// the BBU together).
//
// tw_cli does not print the controller in its unit, drive and BBU tables,
// so their controller is read from the input's name ("info c1 unitstatus",
// "x.info-c1-unitstatus.txt"), c0 when the name has none. Controllers are
// "c0", "c1"...; units become arrays "u0"..., ports disks "p0"... under
// their unit, or in Controller.Disks when their unit is "-" (not in any
// unit). SPARE units are arrays too, whose disks have the role "spare".
//
// Unit verdicts: OK, VERIFYING and VERIFY-PAUSED are OK (a verify is
// routine); INITIALIZING, INIT-PAUSED, REBUILDING, REBUILD-PAUSED,
// MIGRATING, MIGRATE-PAUSED and RECOVERY are Rebuilding, with the progress
// from %RCmpl, %V/I/M or %Cmpl; DEGRADED is Degraded; INOPERABLE is Failed
// (a failed SPARE unit counts as a failed disk: Degraded). Port DEGRADED
// on a REBUILDING unit is the rebuild target (Rebuilding); on any other
// unit it is Degraded, and when no unit status was read it is taken as the
// rebuild target. NOT-PRESENT is ignored on a free port and Degraded on a
// unit member; DEVICE-ERROR, ECC-ERROR, DCB-DATA-CHECK, OFFLINE and
// INOPERABLE ports are Degraded; SMART-FAILURE is OK with a predictive
// failure warning. UNKNOWN and any word not listed here is Unknown.
//
// Component warnings: a BBU that is not OK (Testing and Charging are a
// learn cycle, not an alarm), a BBU offline or out of its voltage or
// temperature range, and an enclosure that reports anything but OK in its
// status, fan, temperature, power supply, slot or alarm tables
// (ALARM-ACTIVATED, an activated alarm; NOT-INSTALLED, NO-DEVICE and
// NOT-REPORTABLE are ignored). A component word this parser does not know
// makes the controller Unknown.
//
// A controller table with units not optimal (NotOpt) and no unit status
// makes the controller Rebuilding at least (it cannot tell which state);
// when unit or drive status was read too, the counts in the controller
// table must match them, or the controller is Unknown.
//
// tw_cli prints a blank line after every table, but saved outputs often
// lose it (and the final newline, or gain CRLF line ends), so the input
// may end right after a table's last row. That row must then have every
// column of its header (a size counts for two words): a row cut short
// makes its controller Unknown (truncated), and so does an unrecognised
// last line after a table (a header cut in half) or an enclosure block
// without its status and alarm tables. An output cut exactly between two
// rows of a lone table cannot be told from a complete one; given with the
// controller table (`show`, which the probe always runs), the unit and
// drive counts there catch the missing rows. Enclosures printed as
// "/e0" (9650SE era) belong to the controller of the input's name. An input with no recognisable table, a
// header not followed by its dashes, a controller, unit, drive or BBU table
// with no rows, or an "Error:" line from tw_cli returns a *ParseError
// (errors.Is ErrParse).
func ParseTWCLI(in []Input) (*Result, error) {
	if len(in) == 0 {
		return nil, &ParseError{Tool: ToolTWCLI, Name: "(none)", Msg: "no input"}
	}
	d := &twData{ctls: map[int]*twCtlData{}}
	for _, inp := range in {
		if err := d.read(inp); err != nil {
			return nil, err
		}
	}
	r := &Result{Tool: ToolTWCLI, Controllers: []*Controller{}}
	nums := make([]int, 0, len(d.ctls))
	for n := range d.ctls {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		r.Controllers = append(r.Controllers, d.ctls[n].build())
	}
	r.Finish()
	return r, nil
}

// twHeader recognises a table header by its first columns.
func twHeader(line string) (twKind, []string) {
	f := strings.Fields(line)
	if len(f) < 2 || line[0] == ' ' || line[0] == '\t' {
		return twNone, nil
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
	// "Ctl   Model        (V)Ports  Drives   Units   NotOpt  RRate   VRate  BBU"
	case f[0] == "Ctl" && has("NotOpt") && has("Units") && has("Drives"):
		return twCtl, f
	// "Enclosure     Slots  Drives  Fans  TSUnits  PSUnits  Alarms"
	case (f[0] == "Enclosure" || f[0] == "Encl") && has("Slots"):
		return twEncSum, f
	// "Unit  UnitType  Status         %RCmpl  %V/I/M  Stripe  Size(GB)  Cache  AVrfy"
	case f[0] == "Unit" && f[1] == "UnitType" && has("Status"):
		return twUnit, f
	// "Port   Status           Unit   Size        Blocks        Serial"
	// "VPort Status         Unit Size      Type  Phy Encl-Slot    Model"
	case (f[0] == "Port" || f[0] == "VPort") && f[1] == "Status" && has("Unit"):
		return twPort, f
	// "Name  OnlineState  BBUReady  Status    Volt     Temp     Hours  LastCapTest"
	case f[0] == "Name" && has("OnlineState") && has("Status"):
		return twBBU, f
	// "Encl        Status"
	case f[0] == "Encl" && f[1] == "Status":
		return twEncl, f
	case f[0] == "Fan" && f[1] == "Status":
		return twFan, f
	case f[0] == "TempSensor" && f[1] == "Status":
		return twTemp, f
	case f[0] == "PowerSupply" && f[1] == "Status":
		return twPSU, f
	case f[0] == "Slot" && f[1] == "Status":
		return twSlot, f
	case f[0] == "Alarm" && f[1] == "Status":
		return twAlarm, f
	}
	return twNone, nil
}

// twEnclState tracks one enclosure block of `show all`.
type twEnclState struct {
	ctl              *twCtlData
	id               string
	sawEncl, sawAlrm bool
}

// read adds the tables of one input.
func (d *twData) read(inp Input) error {
	perr := func(line int, format string, a ...any) error {
		return &ParseError{Tool: ToolTWCLI, Name: inp.Name, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if len(strings.TrimSpace(string(inp.Data))) == 0 {
		return perr(0, "empty input")
	}
	// The controller of the tables that do not name it.
	hint := 0
	if ms := twNameCtl().FindAllStringSubmatch(inp.Name, -1); len(ms) > 0 {
		if n, err := strconv.Atoi(ms[len(ms)-1][1]); err == nil {
			hint = n
		}
	}
	const (
		outside = iota
		wantRule
		inRows
	)
	st := outside
	var kind twKind
	var header []string
	rows, headerLine, tables := 0, 0, 0
	var encl *twEnclState
	problem := func(format string, a ...any) {
		c := d.ctl(hint)
		if encl != nil {
			c = encl.ctl
		}
		c.problems = append(c.problems, inp.Name+": "+fmt.Sprintf(format, a...))
	}
	endEncl := func() {
		if encl == nil {
			return
		}
		if !encl.sawEncl || !encl.sawAlrm {
			problem("enclosure %s: output incomplete (no %s table)", encl.id, map[bool]string{true: "alarm", false: "status"}[encl.sawEncl])
		}
		encl = nil
	}
	// endTable closes the current table; a controller, unit, drive or BBU
	// table without rows answers nothing.
	endTable := func() error {
		if st == inRows && rows == 0 {
			switch kind {
			case twCtl, twUnit, twPort, twBBU:
				return perr(headerLine, "%s table has no rows", twKindNames[kind])
			}
		}
		st = outside
		return nil
	}
	// strayTail is the line number of an unrecognised line that follows a
	// table and is not followed by anything known: the input was cut in
	// the middle of a header or of an enclosure block's first line.
	strayTail := 0
	lastShort := false // the last table row read lacks columns of its header
	lines := vendorLines(inp.Data)
	for i, line := range lines {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "Error:") || strings.HasPrefix(trimmed, "Error (") {
			return perr(n, "tw_cli reported an error: %s", vendorClip(trimmed))
		}
		if st == wantRule {
			if i == len(lines)-1 && trimmed == "" {
				continue // the output ends right after the header
			}
			if !vendorIsRule(line, '-') {
				return perr(n, "%s header is not followed by a ---- line", twKindNames[kind])
			}
			st, rows = inRows, 0
			continue
		}
		// A blank line, the next header or the next enclosure block ends
		// a table.
		if trimmed == "" {
			if err := endTable(); err != nil {
				return err
			}
			continue
		}
		strayTail = 0
		if m := twEnclBlock().FindStringSubmatch(line); m != nil {
			if err := endTable(); err != nil {
				return err
			}
			c := hint
			if m[1] != "" {
				c, _ = strconv.Atoi(m[1])
			}
			if encl == nil || encl.id != twEnclName(m[1], m[2]) {
				endEncl()
				encl = &twEnclState{ctl: d.ctl(c), id: twEnclName(m[1], m[2])}
			}
			continue
		}
		if k, h := twHeader(line); k != twNone {
			if err := endTable(); err != nil {
				return err
			}
			kind, header, st, headerLine = k, h, wantRule, n
			tables++
			switch k {
			case twEncl, twFan, twTemp, twPSU, twSlot, twAlarm:
				if encl == nil {
					// A show all block whose vendor lines were cut
					// off or not printed.
					encl = &twEnclState{ctl: d.ctl(hint), id: "/c" + strconv.Itoa(hint) + "/e?"}
				}
				if k == twEncl {
					encl.sawEncl = true
				}
				if k == twAlarm {
					encl.sawAlrm = true
				}
			default:
				endEncl()
			}
			continue
		}
		if st != inRows {
			// Outside a table: a shell prompt, the command line, the
			// "---Speed---" line above the fan header, the "/c0 Model =
			// 9650SE-16ML" lines of show all.
			if tables > 0 && !twSpeedLine().MatchString(line) && !twKeyValue().MatchString(line) {
				strayTail = n
			}
			continue
		}
		rows++
		lastShort = !twRowComplete(kind, header, line)
		if !d.row(kind, header, hint, encl, line) {
			problem("line %d: unreadable %s row %q", n, twKindNames[kind], vendorClip(trimmed))
		}
	}
	if strayTail > 0 {
		problem("line %d: output ends in an unrecognised line %q (truncated)", strayTail, vendorClip(strings.TrimSpace(lines[strayTail-1])))
	}
	switch st {
	case wantRule:
		problem("output ends after the %s header (truncated)", twKindNames[kind])
	case inRows:
		// The input ends in a table's rows: complete unless its last
		// row was cut short.
		if lastShort {
			problem("output ends inside the %s table, in a row with fewer columns than its header (truncated)", twKindNames[kind])
		}
		if err := endTable(); err != nil {
			return err
		}
	}
	endEncl()
	if tables == 0 {
		return perr(0, "no tw_cli table (controller, unit, drive, bbu or enclosure)")
	}
	return nil
}

// twRowComplete reports whether a table row has a value for every column
// of its header; a drive's size takes two words ("931.51 GB") unless it
// is "-". The last column (serial, model) may hold more words.
func twRowComplete(kind twKind, header []string, line string) bool {
	need := len(header)
	if kind == twPort {
		m := twPortRe().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		if m[4] != "-" {
			need++
		}
	}
	return len(strings.Fields(line)) >= need
}

func twEnclName(ctl, enc string) string {
	if ctl == "" {
		return "/e" + enc
	}
	return "/c" + ctl + "/e" + enc
}

// twColumn returns the value under the header column name, "" if absent.
func twColumn(header, f []string, name string) string {
	for i, h := range header {
		if h == name && i < len(f) {
			return f[i]
		}
	}
	return ""
}

// row reads one row of a table; false means it has not the table's shape.
func (d *twData) row(kind twKind, header []string, hint int, encl *twEnclState, line string) bool {
	f := strings.Fields(line)
	switch kind {
	case twCtl:
		// "c0    9650SE-16ML  16        16       1       0       5       1      OK"
		m := twCtlID().FindStringSubmatch(f[0])
		if m == nil || len(f) != len(header) {
			return false
		}
		num, _ := strconv.Atoi(m[1])
		units, err1 := strconv.Atoi(twColumn(header, f, "Units"))
		drives, err2 := strconv.Atoi(twColumn(header, f, "Drives"))
		notOpt, err3 := strconv.Atoi(twColumn(header, f, "NotOpt"))
		if err1 != nil || err2 != nil || err3 != nil {
			return false
		}
		c := d.ctl(num)
		c.shown, c.model, c.units, c.drives, c.notOpt = true, f[1], units, drives, notOpt
		c.bbu = twColumn(header, f, "BBU")
		return true
	case twEncSum:
		// "/c0/e0        12     2       3     1        2        1"
		// Counts only; the states are in show all.
		return twEnclID().MatchString(f[0])
	case twUnit:
		if !twUnitID().MatchString(f[0]) {
			// "u0-0  DISK  OK ..." sub-units of `info cN uN`: the unit
			// row above them carries the state.
			return strings.HasPrefix(f[0], "u") && strings.Contains(f[0], "-") && len(f) >= 3
		}
		if len(f) != len(header) {
			return false
		}
		u := &twUnitRow{
			id:     f[0],
			typ:    twColumn(header, f, "UnitType"),
			status: twColumn(header, f, "Status"),
			rcmpl:  twColumn(header, f, "%RCmpl"),
			vim:    twColumn(header, f, "%V/I/M"),
			cmpl:   twColumn(header, f, "%Cmpl"),
		}
		if s := twColumn(header, f, "Size(GB)"); s != "" && s != "-" {
			u.size = s + " GB"
		} else if s := twColumn(header, f, "Size(TB)"); s != "" && s != "-" {
			u.size = s + " TB"
		}
		c := d.ctl(hint)
		c.sawUnits = true
		c.unitRows = append(c.unitRows, u)
		return true
	case twPort:
		m := twPortRe().FindStringSubmatch(line)
		if m == nil {
			return false
		}
		p := &twPortRow{id: m[1], status: m[2], unit: m[3]}
		if m[4] != "-" {
			p.size = strings.Join(strings.Fields(m[4]), " ")
		}
		if twColumn(header, header, "Model") == "Model" {
			// "SAS   -   /c0/e0/slt3  SEAGATE ST3146855SS": the model
			// follows the type, phy and enclosure slot.
			rest := strings.Fields(m[5])
			if len(rest) >= 4 {
				p.model = strings.Join(rest[3:], " ")
			}
		}
		c := d.ctl(hint)
		c.sawPorts = true
		c.portRows = append(c.portRows, p)
		return true
	case twBBU:
		// "bbu   On           Yes       OK        OK       OK       255    07-May-2022"
		if !strings.HasPrefix(f[0], "bbu") || len(f) != len(header) {
			return false
		}
		c := d.ctl(hint)
		c.sawBBUTable = true
		c.judgeBBUTable(f[0], twColumn(header, f, "OnlineState"), twColumn(header, f, "BBUReady"),
			twColumn(header, f, "Status"), twColumn(header, f, "Volt"), twColumn(header, f, "Temp"))
		return true
	case twEncl, twFan, twTemp, twPSU, twSlot, twAlarm:
		return d.enclRow(kind, encl, f)
	}
	return false
}

// enclRow judges one row of an enclosure's show all.
func (d *twData) enclRow(kind twKind, encl *twEnclState, f []string) bool {
	if len(f) < 2 || encl == nil {
		return false
	}
	c := encl.ctl
	name, status := f[0], strings.ToUpper(f[1])
	switch kind {
	case twEncl:
		// "/c0/e0      ALARM-ACTIVATED"
		if !twEnclID().MatchString(name) {
			return false
		}
		if notReported(status) {
			return true // no status: nothing to judge
		}
		switch status {
		case "OK":
		case "ALARM-ACTIVATED", "FAILED", "FAULT", "ERROR", "DEGRADED", "WARNING", "CRITICAL":
			c.warn("enclosure", name+": "+f[1])
		default:
			c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("enclosure %s: unrecognised status %q", name, vendorClip(f[1])))
		}
		return true
	case twAlarm:
		// "alm0      ACTIVATED       ON        UNMUTE"
		if !strings.HasPrefix(name, "alm") {
			return false
		}
		if notReported(status) {
			return true
		}
		switch status {
		case "OK", "DEACTIVATED", "NOT-ACTIVATED", "OFF", "NOT-INSTALLED", "NO-DEVICE", "NOT-REPORTABLE":
		default:
			msg := encl.id + " " + name + ": " + f[1]
			if len(f) >= 4 {
				msg += " (" + f[2] + ", " + f[3] + ")"
			}
			c.warn("enclosure", msg)
		}
		return true
	}
	prefix := map[twKind]string{twFan: "fan", twTemp: "temp", twPSU: "pw", twSlot: "sl"}[kind]
	if !strings.HasPrefix(name, prefix) && !(kind == twPSU && strings.HasPrefix(name, "psu")) {
		return false
	}
	if notReported(status) {
		return true
	}
	switch status {
	case "OK", "NOT-INSTALLED", "NO-DEVICE", "NOT-REPORTABLE":
	case "FAILED", "FAULT", "ERROR", "DEGRADED", "WARNING", "CRITICAL", "HIGH", "LOW", "TOO-HIGH", "TOO-LOW",
		"OVER-TEMP", "UNDER-TEMP", "OFF", "STOPPED", "REMOVED", "IDENTIFY", "PREDICTED-FAULT":
		c.warn("enclosure", encl.id+" "+name+": "+f[1])
	default:
		c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("enclosure %s %s: unrecognised status %q", encl.id, name, vendorClip(f[1])))
	}
	return true
}

// twBBUStatus judges the BBU Status word of the controller table or of
// bbustatus. It returns a warning message, or unknown for a word it does
// not know.
func twBBUStatus(s string) (warn string, unknown bool) {
	if notReported(s) {
		// The controller table's BBU column says "-" when there is
		// none; N/A reports nothing either.
		return "", false
	}
	switch strings.ToUpper(s) {
	case "OK":
		return "", false
	case "TESTING", "CHARGING":
		// A learn cycle or recharge: the cache runs write-through for a
		// while, which is routine.
		return "", false
	case "WEAKBAT":
		return "battery weak (WeakBat): replace it", false
	case "FAULT", "ERROR", "FAILED", "NOT-PRESENT", "NOTPRESENT", "NOT-READY", "LOW", "HIGH":
		return "battery status " + s, false
	}
	return "", true
}

// judgeBBUTable judges one row of bbustatus.
func (c *twCtlData) judgeBBUTable(name, online, ready, status, volt, temp string) {
	c.hasBBU = true
	if notReported(status) && !strings.EqualFold(online, "off") {
		// A battery row without a status: nothing says it is fine.
		c.warn("bbu", name+": status not reported")
	} else if w, unk := twBBUStatus(status); unk {
		c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("%s: unrecognised status %q", name, vendorClip(status)))
	} else if w != "" {
		c.warn("bbu", name+": "+w)
	}
	learning := strings.EqualFold(status, "Testing") || strings.EqualFold(status, "Charging")
	switch strings.ToLower(online) {
	case "on", "-", "n/a", "na", "unknown":
	case "off":
		c.warn("bbu", name+": offline (OnlineState Off)")
	default:
		c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("%s: unrecognised OnlineState %q", name, vendorClip(online)))
	}
	switch strings.ToLower(ready) {
	case "yes", "n/a", "na", "unknown":
	case "no", "-":
		if !learning && strings.EqualFold(status, "OK") {
			c.warn("bbu", name+": not ready (BBUReady No)")
		}
	default:
		c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("%s: unrecognised BBUReady %q", name, vendorClip(ready)))
	}
	for _, x := range [...][2]string{{"voltage", volt}, {"temperature", temp}} {
		if notReported(x[1]) {
			continue
		}
		switch strings.ToUpper(x[1]) {
		case "OK":
		case "LOW", "HIGH", "TOO-LOW", "TOO-HIGH":
			c.warn("bbu", name+": "+x[0]+" "+x[1])
		default:
			c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("%s: unrecognised %s %q", name, x[0], vendorClip(x[1])))
		}
	}
}

// twUnitJudge maps a unit status word to a verdict; pct is the progress
// the row gives for it.
func twUnitJudge(u *twUnitRow) (activity string, progress float64, v Verdict, reason string) {
	pick := func(cols ...string) (float64, bool) {
		for _, s := range cols {
			if p, ok := vendorPercent(s); ok {
				return p, true
			}
		}
		return 0, false
	}
	note := func(what string, p float64, ok bool) string {
		if ok {
			return fmt.Sprintf("%s (%s%%)", what, strconv.FormatFloat(p, 'f', -1, 64))
		}
		return what
	}
	st := strings.ToUpper(u.status)
	switch st {
	case "OK":
		return "", 0, OK, ""
	case "VERIFYING", "VERIFY-PAUSED":
		p, _ := pick(u.vim, u.cmpl, u.rcmpl)
		return "verify", p, OK, ""
	case "INITIALIZING", "INIT-PAUSED":
		p, ok := pick(u.vim, u.cmpl, u.rcmpl)
		return "initialize", p, Rebuilding, note(strings.ToLower(st), p, ok)
	case "REBUILDING", "REBUILD-PAUSED":
		p, ok := pick(u.rcmpl, u.cmpl, u.vim)
		return "rebuild", p, Rebuilding, note(strings.ToLower(st), p, ok)
	case "MIGRATING", "MIGRATE-PAUSED":
		p, ok := pick(u.vim, u.cmpl, u.rcmpl)
		return "migrate", p, Rebuilding, note(strings.ToLower(st), p, ok)
	case "RECOVERY":
		p, ok := pick(u.rcmpl, u.vim, u.cmpl)
		return "recovery", p, Rebuilding, note("recovery", p, ok)
	case "DEGRADED":
		return "", 0, Degraded, "degraded"
	case "INOPERABLE":
		return "", 0, Failed, "inoperable"
	case "UNKNOWN":
		return "", 0, Unknown, "tw_cli reports the unit state as UNKNOWN"
	}
	if notReported(u.status) {
		return "", 0, Unknown, "no state reported"
	}
	return "", 0, Unknown, fmt.Sprintf("unrecognised state %q", vendorClip(u.status))
}

// twPortJudge judges a port; unit is its unit's row, nil when the unit
// status was not read or the port is in no unit.
func twPortJudge(p *twPortRow, unit *twUnitRow, c *twCtlData) (role string, v Verdict, reason string, skip bool) {
	if p.unit != "-" {
		role = "member"
		if unit != nil && strings.EqualFold(unit.typ, "SPARE") {
			role = "spare"
		}
	} else {
		role = "unconfigured"
	}
	switch strings.ToUpper(p.status) {
	case "OK", "VERIFYING", "VERIFY-PAUSED":
		return role, OK, "", false
	case "INITIALIZING", "INIT-PAUSED", "MIGRATING", "MIGRATE-PAUSED", "RECOVERY":
		return role, Rebuilding, strings.ToLower(p.status), false
	case "REBUILDING", "REBUILD-PAUSED":
		return "rebuild-target", Rebuilding, strings.ToLower(p.status), false
	case "DEGRADED":
		switch {
		case p.unit == "-":
			return role, Degraded, "degraded, in no unit", false
		case unit == nil:
			// Only the drive table was read. tw_cli marks the drive a
			// rebuild writes to DEGRADED; the unit's own state, when
			// read, decides whether it is one.
			return "rebuild-target", Rebuilding, "degraded: taken as the rebuild target (unit status not read)", false
		}
		switch strings.ToUpper(unit.status) {
		case "REBUILDING", "REBUILD-PAUSED", "RECOVERY":
			return "rebuild-target", Rebuilding, "rebuild target of " + p.unit, false
		}
		return role, Degraded, "degraded", false
	case "NOT-PRESENT":
		if p.unit == "-" {
			return "", OK, "", true // an empty port
		}
		return role, Degraded, "missing from " + p.unit, false
	case "SMART-FAILURE":
		c.warn("disk", p.id+": SMART-FAILURE (predictive failure): replace it")
		return role, OK, "", false
	case "DEVICE-ERROR", "ECC-ERROR", "DCB-DATA-CHECK", "OFFLINE", "INOPERABLE", "FAILED":
		return role, Degraded, strings.ToLower(p.status), false
	case "UNKNOWN":
		return role, Unknown, "tw_cli reports the drive state as UNKNOWN", false
	}
	if notReported(p.status) {
		return role, Unknown, "no state reported", false
	}
	return role, Unknown, fmt.Sprintf("unrecognised state %q", vendorClip(p.status)), false
}

// build turns what the inputs said about one controller into a Controller.
func (c *twCtlData) build() *Controller {
	ctl := &Controller{ID: c.id, Model: c.model, Arrays: []*Array{}}
	arrays := map[string]*Array{}
	units := map[string]*twUnitRow{}
	for _, u := range c.unitRows {
		if a := arrays[u.id]; a != nil {
			// The same unit from two inputs: keep the worse state; a
			// state not reported never replaces one that is.
			act, p, v, why := twUnitJudge(u)
			oldNone, newNone := notReported(a.State), notReported(u.status)
			if !newNone && (v > a.Verdict || oldNone) {
				a.State, a.Activity, a.Progress, a.Verdict, a.Reason = u.status, act, p, v, why
				units[u.id] = u
			}
			continue
		}
		act, p, v, why := twUnitJudge(u)
		if strings.EqualFold(u.typ, "SPARE") && v == Failed {
			v = Degraded // a failed spare is a failed disk, not lost data
		}
		a := &Array{ID: u.id, Level: u.typ, Size: u.size, State: u.status, Activity: act, Progress: p, Verdict: v, Reason: why}
		arrays[u.id] = a
		units[u.id] = u
		ctl.Arrays = append(ctl.Arrays, a)
	}
	// The same port from two inputs (`/c0 show` and `info c0
	// drivestatus`): keep the worse reported state.
	var ports []*twPortRow
	portByID := map[string]int{}
	for _, p := range c.portRows {
		i, seen := portByID[p.id]
		if !seen {
			portByID[p.id] = len(ports)
			ports = append(ports, p)
			continue
		}
		old := ports[i]
		if notReported(p.status) {
			continue
		}
		_, ov, _, _ := twPortJudge(old, units[old.unit], &twCtlData{})
		_, nv, _, _ := twPortJudge(p, units[p.unit], &twCtlData{})
		if nv > ov || notReported(old.status) {
			ports[i] = p
		}
	}
	present := 0
	for _, p := range ports {
		role, v, why, skip := twPortJudge(p, units[p.unit], c)
		if skip {
			continue
		}
		if !strings.EqualFold(p.status, "NOT-PRESENT") {
			present++
		}
		disk := &Disk{ID: p.id, Model: p.model, Size: p.size, State: p.status, Role: role, Verdict: v, Reason: why}
		if p.unit == "-" {
			ctl.Disks = append(ctl.Disks, disk)
			continue
		}
		a := arrays[p.unit]
		if a == nil {
			// No unit status for this unit: an array known only by
			// its drives, judged by them.
			a = &Array{ID: p.unit}
			arrays[p.unit] = a
			ctl.Arrays = append(ctl.Arrays, a)
		}
		a.Disks = append(a.Disks, disk)
	}
	for _, a := range ctl.Arrays {
		// A unit known only by its drives, or one whose drive reads
		// rebuilding while the unit row lags: the drive tells.
		for _, dk := range a.Disks {
			if dk.Verdict == Rebuilding && a.Verdict < Rebuilding {
				a.Verdict, a.Reason = Rebuilding, "disk "+dk.ID+" "+dk.Reason
			}
		}
	}
	sort.SliceStable(ctl.Arrays, func(i, j int) bool { return twNum(ctl.Arrays[i].ID) < twNum(ctl.Arrays[j].ID) })
	if c.shown {
		if c.bbu != "" {
			if w, unk := twBBUStatus(c.bbu); unk {
				c.unknownWhy = append(c.unknownWhy, fmt.Sprintf("controller table: unrecognised BBU status %q", vendorClip(c.bbu)))
			} else if w != "" {
				c.warn("bbu", "bbu: "+w)
			}
		}
		if c.sawUnits && len(units) != c.units {
			c.problems = append(c.problems, fmt.Sprintf("controller table lists %d units, unit status %d", c.units, len(units)))
		}
		if c.sawPorts && present != c.drives {
			c.problems = append(c.problems, fmt.Sprintf("controller table lists %d drives, drive status %d", c.drives, present))
		}
		if !c.sawUnits && c.notOpt > 0 {
			// Not optimal is any unit state but OK and VERIFYING:
			// initializing, rebuilding, migrating, degraded,
			// inoperable... Without unit status it can say no more.
			ctl.Verdict = Rebuilding
			ctl.Reason = fmt.Sprintf("%d of %d units not optimal (unit status not read)", c.notOpt, c.units)
		}
	}
	ctl.Warnings = c.warnings
	why := append(append([]string{}, c.problems...), c.unknownWhy...)
	if len(why) > 0 {
		ctl.Verdict = Unknown
		ctl.Reason = strings.Join(why, "; ")
	}
	return ctl
}

// twNum orders "u2" before "u10".
func twNum(id string) int {
	n, err := strconv.Atoi(strings.TrimLeft(id, "cpu"))
	if err != nil {
		return 1 << 30
	}
	return n
}
