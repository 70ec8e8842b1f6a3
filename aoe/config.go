package aoe

import (
	"opsagent/internal/lineerr"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Sentinel causes of config errors. Every *ParseError unwraps to exactly one
// of them, so callers and tests classify errors with errors.Is.
var (
	// ErrSyntax: a line that is not a comment, a SHELF setting or a
	// five-field export line; an unknown KEY=value setting; a control
	// character; a malformed alias.
	ErrSyntax = errors.New("aoe: syntax error")
	// ErrShelf: a missing, repeated, misplaced or out-of-range SHELF.
	ErrShelf = errors.New("aoe: invalid shelf")
	// ErrSlot: a slot that is not a decimal number in 0-254.
	ErrSlot = errors.New("aoe: invalid slot")
	// ErrMAC: a malformed, multicast, all-zero or repeated MAC address, or
	// a malformed MAC list.
	ErrMAC = errors.New("aoe: invalid MAC address")
	// ErrFile: a FILE that is not absolute, does not exist, or is neither a
	// regular file nor a block device.
	ErrFile = errors.New("aoe: invalid export file")
	// ErrIface: an IFACE that is not a valid interface name or does not
	// exist.
	ErrIface = errors.New("aoe: invalid interface")
	// ErrDupAlias: an alias used by two export lines.
	ErrDupAlias = errors.New("aoe: duplicate alias")
	// ErrDupTarget: two export lines with the same shelf.slot address.
	ErrDupTarget = errors.New("aoe: duplicate shelf.slot")
	// ErrDupFile: the same file (by cleaned path or by identity) exported by
	// two lines. Every export of this format is read-write, so two vblade
	// processes would corrupt it.
	ErrDupFile = errors.New("aoe: file exported twice")
)

// errTooMany ends an ErrorList that was cut at maxErrors. It wraps no public
// sentinel: it only says that more errors were not listed.
var errTooMany = errors.New("aoe: too many errors (stopping here)")

// Limits that come from vblade, AoE and the Linux kernel.
const (
	// maxErrors caps one ErrorList; an admin fixes a hundred lines and runs
	// the check again.
	maxErrors = 100
	// maxShelf is the highest usable shelf: 0xffff is the AoE broadcast
	// shelf, and vblade keeps the shelf in a 16-bit field (70000 silently
	// becomes 4464).
	maxShelf = 65534
	// reservedShelf is refused even though it fits in 16 bits.
	reservedShelf = 4095
	// maxSlot is the highest usable slot: 255 is the AoE broadcast slot.
	maxSlot = 254
	// maxMACs is vblade's Nmasks. Its -m parser writes past a fixed array of
	// 32 addresses without a bound check, so a longer list corrupts vblade.
	maxMACs = 32
	// maxIfaceLen is IFNAMSIZ-1: the kernel refuses longer interface names.
	maxIfaceLen = 15
	// maxAliasLen keeps aliases usable as file names under the run
	// directory and readable in status output.
	maxAliasLen = 64
	// sectorSize is the AoE sector; vblade refuses a file with no whole
	// sector ("0-sector file size is too small").
	sectorSize = 512
	// anyKeyword in the MAC column exports to every host (vblade without -m).
	anyKeyword = "any"
)

// Config is one parsed vbladed.conf.
type Config struct {
	// File names the config in errors (the name given to Parse).
	File string
	// Shelf is the AoE major address shared by every export, 0-65534 but
	// never 4095.
	Shelf int
	// Exports are the export lines in file order.
	Exports []Export

	// shelfLine is the line of the SHELF setting, so that a shelf error
	// found by Validate can point at it.
	shelfLine int
}

// Export is one export line: `SLOT FILE MAC[,MAC...] IFACE ALIAS`.
type Export struct {
	// Slot is the AoE minor address, 0-254.
	Slot int
	// File is the exported regular file or block device, an absolute path
	// exactly as written (vblade opens it as given and follows symlinks).
	File string
	// MACs are the hosts allowed to use the export, each canonical
	// lower-case aa:bb:cc:dd:ee:ff. Empty means every host (vblade without
	// -m); Parse produces that only from the explicit keyword "any".
	MACs []string
	// Iface is the network interface vblade serves on.
	Iface string
	// Alias names the export for commands and logs; unique in a config.
	Alias string
	// Line is the 1-based line of the export in the config; 0 if the
	// export was not parsed from a file.
	Line int
}

// Argv returns the command line that serves e: the vblade binary, then
// `-m mac1,mac2` when MACs is non-empty, then shelf, slot, interface and
// file. It is meant for exec without a shell; every word is one argument.
// IFACE never starts with '-' and FILE is absolute, so vblade's getopt
// cannot take either for an option.
func (e Export) Argv(vblade string, shelf int) []string {
	argv := make([]string, 0, 7)
	argv = append(argv, vblade)
	if len(e.MACs) > 0 {
		argv = append(argv, "-m", strings.Join(e.MACs, ","))
	}
	return append(argv, strconv.Itoa(shelf), strconv.Itoa(e.Slot), e.Iface, e.File)
}

// Export returns the first export named alias.
func (c *Config) Export(alias string) (Export, bool) {
	for _, e := range c.Exports {
		if e.Alias == alias {
			return e, true
		}
	}
	return Export{}, false
}

// Format renders c in canonical form: a `SHELF="N"` line, then one export
// line per export with single spaces between fields, MACs in canonical form
// and "any" for an empty MAC list. Comments and layout of the original are
// not kept. Parse(Format(c)) yields the same shelf and exports (Line aside).
func (c *Config) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SHELF=%q\n", strconv.Itoa(c.Shelf))
	for _, e := range c.Exports {
		macs := anyKeyword
		if len(e.MACs) > 0 {
			macs = strings.Join(e.MACs, ",")
		}
		fmt.Fprintf(&b, "%d %s %s %s %s\n", e.Slot, e.File, macs, e.Iface, e.Alias)
	}
	return b.String()
}

// ParseError is an error at a line of a config file ("file:line: cause"; a
// Line of 0 belongs to no line). It unwraps to its cause, which wraps one of
// the package's sentinels.
type ParseError = lineerr.Error

// ErrorList holds every error found in one config, sorted by line. It is cut
// after 100 errors, with a last entry saying so.
type ErrorList = lineerr.List

// collector gathers the errors of one config.
type collector struct {
	file string
	errs ErrorList
}

// add records err at line. It reports false once the cap is reached, so
// loops can stop early.
func (c *collector) add(line int, err error) bool {
	if len(c.errs) > maxErrors {
		return false
	}
	if len(c.errs) == maxErrors {
		c.errs = append(c.errs, &ParseError{File: c.file, Line: line, Err: errTooMany})
		return false
	}
	c.errs = append(c.errs, &ParseError{File: c.file, Line: line, Err: err})
	return true
}

func (c *collector) full() bool { return len(c.errs) > maxErrors }

// merge sorts errs by line (stable, so the order within a line is kept) and
// re-applies the cap.
func merge(file string, lists ...ErrorList) ErrorList {
	var all ErrorList
	for _, l := range lists {
		for _, e := range l {
			if e.Err != errTooMany {
				all = append(all, e)
			}
		}
	}
	truncated := len(all) < countAll(lists)
	slices.SortStableFunc(all, func(a, b *ParseError) int { return a.Line - b.Line })
	if len(all) > maxErrors || truncated {
		last := 0
		if len(all) > maxErrors {
			all = all[:maxErrors]
		}
		if len(all) > 0 {
			last = all[len(all)-1].Line
		}
		all = append(all, &ParseError{File: file, Line: last, Err: errTooMany})
	}
	return all
}

func countAll(lists []ErrorList) int {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	return n
}

// Parse reads a vbladed.conf from r. name labels errors and becomes
// Config.File. Parse checks syntax and every value on its own line; it
// touches no file system and no network, so whether files and interfaces
// exist and whether lines clash is left to Validate.
//
// The format, line by line:
//
//	# a comment; blank lines are ignored
//	SHELF="7"            # exactly one, before any export; quotes optional
//	1 /srv/apollo.img 00:16:e6:d3:ed:e5,00:16:e6:d3:ed:e6 eth1 apollo
//	2 /dev/vg0/zeus any eth1 zeus   # "any": no -m, every host may connect
//
// Fields are separated by spaces, tabs or CRs (so CRLF files work). A field that starts with '#' starts a comment that runs to the
// end of the line, so `/srv/a#1.img` is a file name but ` #x` is a comment.
// A MAC is six two-digit hex pairs separated by ':' or '-', or 12 hex
// digits, in either case; it is stored lower-case with colons.
//
// On any error Parse returns a nil *Config and an ErrorList with every
// error of the file; a read error is returned as it is, wrapped.
func Parse(r io.Reader, name string) (*Config, error) {
	c, errs, err := parse(r, name)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// parse returns the config made of the well-formed lines together with the
// errors of the others, so that Load can also validate what did parse.
func parse(r io.Reader, name string) (*Config, ErrorList, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	col := &collector{file: name}
	c := &Config{File: name, Shelf: -1}
	firstExport := 0
	lines := strings.Split(string(data), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the final newline ends a line, it does not start one
	}
	for i, text := range lines {
		if col.full() {
			break
		}
		n := i + 1
		if b, ok := controlByte(text); ok {
			col.add(n, fmt.Errorf("%w: control character 0x%02x", ErrSyntax, b))
			continue
		}
		fields := splitFields(text)
		for j, f := range fields {
			if f[0] == '#' {
				fields = fields[:j]
				break
			}
		}
		switch {
		case len(fields) == 0:
			continue
		case strings.Contains(fields[0], "="):
			// SHELF="7"
			parseSetting(col, c, n, fields, firstExport)
		case len(fields) >= 2 && strings.HasPrefix(fields[1], "=") && isIdent(fields[0]):
			// SHELF = 7: the shell and vbladectl read this as a command.
			col.add(n, fmt.Errorf("%w: no spaces allowed around = in %s=", ErrSyntax, fields[0]))
		default:
			// 1 /srv/apollo.img 00:16:e6:d3:ed:e5 eth1 apollo
			if firstExport == 0 {
				firstExport = n
				if c.shelfLine == 0 {
					col.add(n, fmt.Errorf("%w: export line before the SHELF line", ErrShelf))
				}
			}
			if e, ok := parseExport(col, n, fields); ok {
				c.Exports = append(c.Exports, e)
			}
		}
	}
	if c.shelfLine == 0 && firstExport == 0 && !col.full() {
		col.add(1, fmt.Errorf("%w: no SHELF line", ErrShelf))
	}
	return c, col.errs, nil
}

// parseSetting handles a KEY=value line; SHELF is the only key. A malformed
// SHELF line still counts as the SHELF line, so that one typo does not also
// produce "no SHELF line" and "export before SHELF" errors.
func parseSetting(col *collector, c *Config, n int, fields []string, firstExport int) {
	key, val, _ := strings.Cut(fields[0], "=")
	if key != "SHELF" {
		col.add(n, fmt.Errorf("%w: unknown setting %q (only SHELF is allowed)", ErrSyntax, key))
		return
	}
	if c.shelfLine != 0 {
		col.add(n, fmt.Errorf("%w: second SHELF line (the first is line %d)", ErrShelf, c.shelfLine))
		return
	}
	c.shelfLine = n
	if firstExport != 0 {
		col.add(n, fmt.Errorf("%w: SHELF must come before the export lines (first export on line %d)", ErrShelf, firstExport))
	}
	if len(fields) > 1 {
		col.add(n, fmt.Errorf("%w: unexpected %q after the SHELF value", ErrSyntax, fields[1]))
		return
	}
	if len(val) > 0 && (val[0] == '"' || val[0] == '\'') {
		q := val[0]
		if len(val) < 2 || val[len(val)-1] != q {
			col.add(n, fmt.Errorf("%w: unbalanced quote in SHELF value %s", ErrSyntax, val))
			return
		}
		val = val[1 : len(val)-1]
	}
	shelf, err := parseShelf(val)
	if err != nil {
		col.add(n, err)
		return
	}
	c.Shelf = shelf
}

// parseExport checks the five fields of an export line. It reports every
// bad field, not only the first.
func parseExport(col *collector, n int, fields []string) (Export, bool) {
	if len(fields) != 5 {
		col.add(n, fmt.Errorf("%w: export line has %d fields, want 5 (SLOT FILE MAC[,MAC...] IFACE ALIAS)", ErrSyntax, len(fields)))
		return Export{}, false
	}
	e := Export{File: fields[1], Iface: fields[3], Alias: fields[4], Line: n}
	ok := true
	fail := func(err error) {
		ok = false
		col.add(n, err)
	}
	slot, err := parseSlot(fields[0])
	if err != nil {
		fail(err)
	}
	e.Slot = slot
	if err := checkFilePath(e.File); err != nil {
		fail(err)
	}
	macs, errs := parseMACList(fields[2])
	for _, err := range errs {
		fail(err)
	}
	e.MACs = macs
	if err := checkIface(e.Iface); err != nil {
		fail(err)
	}
	if err := checkAlias(e.Alias); err != nil {
		fail(err)
	}
	return e, ok
}

// controlByte returns the first control byte of a line other than tab and
// CR: none has a place in this format, and a NUL could not reach vblade's
// argv anyway.
func controlByte(s string) (byte, bool) {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if (b < 0x20 && b != '\t' && b != '\r') || b == 0x7f {
			return b, true
		}
	}
	return 0, false
}

// splitFields splits on ASCII spaces, tabs and CRs only, as the shell's read
// does with its default IFS; any other byte, including non-ASCII, belongs
// to a field.
func splitFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b == '_' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || i > 0 && b >= '0' && b <= '9') {
			return false
		}
	}
	return true
}

// parseDecimal accepts only plain decimal digits (leading zeros allowed):
// no sign, no hex, no spaces, because vblade's atoi would read "abc" as 0
// and "0x10" as 0 without complaint.
func parseDecimal(s string, limit int) (int, string) {
	if s == "" {
		return 0, "is empty"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "is not a decimal number"
		}
	}
	t := strings.TrimLeft(s, "0")
	if len(t) > 9 {
		return 0, fmt.Sprintf("is out of range 0-%d", limit)
	}
	v, _ := strconv.Atoi("0" + t) // only digits, at most 10 of them: cannot fail
	if v > limit {
		return 0, fmt.Sprintf("is out of range 0-%d", limit)
	}
	return v, ""
}

func parseShelf(s string) (int, error) {
	v, why := parseDecimal(s, maxShelf)
	if why != "" {
		return 0, fmt.Errorf("%w: %q %s", ErrShelf, s, why)
	}
	if err := checkShelf(v); err != nil {
		return 0, err
	}
	return v, nil
}

func checkShelf(v int) error {
	if v < 0 || v > maxShelf {
		return fmt.Errorf("%w: %d is out of range 0-%d", ErrShelf, v, maxShelf)
	}
	if v == reservedShelf {
		return fmt.Errorf("%w: shelf %d is reserved", ErrShelf, v)
	}
	return nil
}

func parseSlot(s string) (int, error) {
	v, why := parseDecimal(s, maxSlot)
	if why != "" {
		if why != "is empty" && why != "is not a decimal number" {
			why += " (255 is the broadcast slot)"
		}
		return 0, fmt.Errorf("%w: %q %s", ErrSlot, s, why)
	}
	return v, nil
}

func checkSlot(v int) error {
	if v < 0 || v > maxSlot {
		return fmt.Errorf("%w: %d is out of range 0-%d (255 is the broadcast slot)", ErrSlot, v, maxSlot)
	}
	return nil
}

func checkFilePath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: %q is not an absolute path", ErrFile, p)
	}
	if _, bad := controlByte(p); bad || strings.ContainsAny(p, " \t\r") {
		return fmt.Errorf("%w: %q contains a space or control character", ErrFile, p)
	}
	return nil
}

// checkIface applies the kernel's rules for a device name (dev_valid_name:
// at most 15 bytes, not "." or "..", no '/', ':' or whitespace) and refuses
// a leading '-', which vblade's getopt would read as an option.
func checkIface(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty interface name", ErrIface)
	case len(s) > maxIfaceLen:
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrIface, s, maxIfaceLen)
	case s == "." || s == "..":
		return fmt.Errorf("%w: %q is not an interface name", ErrIface, s)
	case strings.HasPrefix(s, "-"):
		return fmt.Errorf("%w: %q starts with '-' (vblade would read it as an option)", ErrIface, s)
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b == '/' || b == ':' || b <= ' ' || b == 0x7f {
			return fmt.Errorf("%w: %q contains %q", ErrIface, s, string(b))
		}
	}
	return nil
}

// checkAlias allows [A-Za-z0-9_.-]+ up to 64 bytes, not starting with '-'
// (it would read as a flag of `agent aoe start ALIAS`) or '.' (which would
// allow "." and ".." as names of files under the run directory).
func checkAlias(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty alias", ErrSyntax)
	case len(s) > maxAliasLen:
		return fmt.Errorf("%w: alias %q is longer than %d bytes", ErrSyntax, s, maxAliasLen)
	case s[0] == '-' || s[0] == '.':
		return fmt.Errorf("%w: alias %q must not start with %q", ErrSyntax, s, s[:1])
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '.' || b == '-') {
			return fmt.Errorf("%w: alias %q contains %q (allowed: letters, digits, _ . -)", ErrSyntax, s, string(b))
		}
	}
	return nil
}

// parseMACList parses the MAC column: "any" alone, or a comma-separated
// list of MACs. A bad entry is never skipped the way vblade skips it (which
// would leave the export open to more hosts than written, or to all of
// them); it is an error, one per bad entry.
func parseMACList(s string) ([]string, []error) {
	if s == anyKeyword {
		return nil, nil
	}
	var (
		macs []string
		errs []error
	)
	parts := strings.Split(s, ",")
	if len(parts) > maxMACs {
		errs = append(errs, fmt.Errorf("%w: %d addresses, vblade accepts at most %d", ErrMAC, len(parts), maxMACs))
	}
	seen := make(map[string]bool, len(parts))
	for i, p := range parts {
		switch {
		case p == "":
			errs = append(errs, fmt.Errorf("%w: empty entry %d in MAC list %q", ErrMAC, i+1, s))
			continue
		case p == anyKeyword:
			errs = append(errs, fmt.Errorf("%w: %q must stand alone in the MAC column", ErrMAC, anyKeyword))
			continue
		}
		m, err := parseMAC(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[m] {
			errs = append(errs, fmt.Errorf("%w: %s is listed twice", ErrMAC, m))
			continue
		}
		seen[m] = true
		macs = append(macs, m)
	}
	return macs, errs
}

// parseMAC accepts aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff in
// either case and returns the lower-case colon form. It refuses group and
// digit counts other than six pairs (the classic typo 00:16:E6:D3:ED:E51,
// which vblade reads as ...:e5 and ignores the rest), a mix of separators,
// multicast addresses including broadcast (a sender address is never
// multicast, so such an entry matches no host and is surely a typo) and the
// all-zero address (no host sends from it).
func parseMAC(s string) (string, error) {
	var hex string
	sep := ""
	switch {
	case strings.Contains(s, ":") && strings.Contains(s, "-"):
		return "", fmt.Errorf("%w: %q mixes ':' and '-'", ErrMAC, s)
	case strings.Contains(s, ":"):
		sep = ":"
	case strings.Contains(s, "-"):
		sep = "-"
	}
	if sep == "" {
		if len(s) != 12 || !isHex(s) {
			return "", fmt.Errorf("%w: %q is not six hex pairs (aa:bb:cc:dd:ee:ff or 12 hex digits)", ErrMAC, s)
		}
		hex = s
	} else {
		groups := strings.Split(s, sep)
		if len(groups) != 6 {
			return "", fmt.Errorf("%w: %q has %d groups, want 6", ErrMAC, s, len(groups))
		}
		for i, g := range groups {
			if len(g) != 2 || !isHex(g) {
				return "", fmt.Errorf("%w: %q: group %d %q is not two hex digits", ErrMAC, s, i+1, g)
			}
		}
		hex = strings.Join(groups, "")
	}
	hex = strings.ToLower(hex)
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hex[i : i+2])
	}
	m := b.String()
	first, _ := strconv.ParseUint(hex[:2], 16, 8)
	switch {
	case m == "ff:ff:ff:ff:ff:ff":
		return "", fmt.Errorf("%w: %s is the broadcast address and matches no sender", ErrMAC, m)
	case first&1 != 0:
		return "", fmt.Errorf("%w: %s is a multicast address and matches no sender", ErrMAC, m)
	case m == "00:00:00:00:00:00":
		return "", fmt.Errorf("%w: %s is the all-zero address and matches no sender", ErrMAC, m)
	}
	return m, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F') {
			return false
		}
	}
	return s != ""
}

// Env is what Validate asks of the system. A nil field means the real
// system: os.Stat and a lookup of the interface by name in the current
// network namespace.
type Env struct {
	// Stat follows symlinks, as vblade's open does.
	Stat func(path string) (fs.FileInfo, error)
	// InterfaceExists reports whether a network interface of that name
	// exists.
	InterfaceExists func(name string) bool
}

func (env Env) withDefaults() Env {
	if env.Stat == nil {
		env.Stat = os.Stat
	}
	if env.InterfaceExists == nil {
		env.InterfaceExists = func(name string) bool {
			_, err := net.InterfaceByName(name)
			return err == nil
		}
	}
	return env
}

// Validate checks what Parse cannot see: that every FILE exists and is a
// regular file of at least one 512-byte sector or a block device, that every
// IFACE exists, and that no two exports share an alias, a slot (the shelf is
// global) or a file, compared by cleaned path and by identity (device and
// inode of a regular file, device number of a block device) through
// env.Stat. It also re-checks every value the way Parse does, so a Config
// built in code gets the same guarantees. It returns nil or an ErrorList with
// every problem, sorted by line.
func (c *Config) Validate(env Env) error {
	return c.validate(env, true).Err()
}

// validate runs the checks; values selects the per-line value checks that
// Parse has already made for a parsed config.
func (c *Config) validate(env Env, values bool) ErrorList {
	env = env.withDefaults()
	col := &collector{file: c.File}
	if values {
		if err := checkShelf(c.Shelf); err != nil {
			col.add(c.shelfLine, err)
		}
	}
	type fileID struct {
		block    bool
		dev, ino uint64
	}
	var (
		aliases = map[string]int{}
		slots   = map[int]int{}
		paths   = map[string]int{}
		ids     = map[fileID]Export{}
		ifaces  = map[string]bool{}
	)
	for _, e := range c.Exports {
		if col.full() {
			break
		}
		n := e.Line
		if values {
			for _, err := range checkValues(e) {
				col.add(n, err)
			}
		}
		if first, dup := aliases[e.Alias]; dup {
			col.add(n, fmt.Errorf("%w: %q is already used on line %d", ErrDupAlias, e.Alias, first))
		} else {
			aliases[e.Alias] = n
		}
		if first, dup := slots[e.Slot]; dup {
			col.add(n, fmt.Errorf("%w: slot %d is already exported on line %d", ErrDupTarget, e.Slot, first))
		} else {
			slots[e.Slot] = n
		}
		exists, seen := ifaces[e.Iface]
		if !seen {
			exists = env.InterfaceExists(e.Iface)
			ifaces[e.Iface] = exists
		}
		if !exists {
			col.add(n, fmt.Errorf("%w: %q does not exist", ErrIface, e.Iface))
		}

		clean := filepath.Clean(e.File)
		samePath := false
		if first, dup := paths[clean]; dup {
			samePath = true
			col.add(n, fmt.Errorf("%w: %s is already exported on line %d", ErrDupFile, e.File, first))
		} else {
			paths[clean] = n
		}
		fi, err := env.Stat(e.File)
		if err != nil {
			col.add(n, fmt.Errorf("%w: %w", ErrFile, err))
			continue
		}
		mode := fi.Mode()
		block := mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0
		switch {
		case block:
		case mode.IsRegular():
			if fi.Size() < sectorSize {
				col.add(n, fmt.Errorf("%w: %s is %d bytes, smaller than one %d-byte sector", ErrFile, e.File, fi.Size(), sectorSize))
			}
		default:
			col.add(n, fmt.Errorf("%w: %s is a %s, not a regular file or block device", ErrFile, e.File, typeName(mode)))
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || samePath {
			continue
		}
		id := fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
		if block {
			// Two device nodes (say /dev/sdb and a copy made by mknod)
			// are different inodes for one disk: compare the device.
			id = fileID{block: true, dev: uint64(st.Rdev)}
		}
		if first, dup := ids[id]; dup {
			col.add(n, fmt.Errorf("%w: %s is the same file as %s, already exported on line %d", ErrDupFile, e.File, first.File, first.Line))
		} else {
			ids[id] = e
		}
	}
	return merge(c.File, col.errs)
}

// checkValues re-checks the values of an export that did not necessarily
// come from Parse.
func checkValues(e Export) []error {
	var errs []error
	if err := checkSlot(e.Slot); err != nil {
		errs = append(errs, err)
	}
	if err := checkFilePath(e.File); err != nil {
		errs = append(errs, err)
	}
	if len(e.MACs) > maxMACs {
		errs = append(errs, fmt.Errorf("%w: %d addresses, vblade accepts at most %d", ErrMAC, len(e.MACs), maxMACs))
	}
	seen := map[string]bool{}
	for _, m := range e.MACs {
		c, err := parseMAC(m)
		switch {
		case err != nil:
			errs = append(errs, err)
		case c != m:
			errs = append(errs, fmt.Errorf("%w: %q is not in canonical form %s", ErrMAC, m, c))
		case seen[m]:
			errs = append(errs, fmt.Errorf("%w: %s is listed twice", ErrMAC, m))
		}
		seen[m] = true
	}
	if err := checkIface(e.Iface); err != nil {
		errs = append(errs, err)
	}
	if err := checkAlias(e.Alias); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// Load reads, parses and validates the vbladed.conf at path against the
// real system, and reports the errors of both steps at once, sorted by line
// (the validation covers the lines that parsed). A config with any error is
// not returned: nothing may start from it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load exports: %w", err)
	}
	defer f.Close()
	c, perrs, err := parse(f, path)
	if err != nil {
		return nil, err
	}
	verrs := c.validate(Env{}, false)
	if errs := merge(path, perrs, verrs); len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}
