package report

import (
	"strconv"
	"strings"
	"time"
)

// stampLayout is the time stamp in report and kept-baseline names, the
// layout of the cron script's `date +%Y%m%d-%H%M%S` (aide.log.20110315-162841)
// and of the db package's kept generations.
const stampLayout = "20060102-150405"

// maxKindLen bounds a kind so a name stays well under NAME_MAX.
const maxKindLen = 32

// maxSuffix is the largest -N suffix Save tries and the parser accepts.
const maxSuffix = 9999

// Extensions of the two files of one report and of a kept baseline.
const (
	extText     = ".txt"
	extJSON     = ".json"
	extBaseline = ".db"
)

// baselineKind is the "kind" part of a kept baseline generation's name,
// baseline-YYYYMMDD-HHMMSS[-N].db.
const baselineKind = "baseline"

// stampName is a parsed name of the form <kind>-YYYYMMDD-HHMMSS[-N]<ext>.
// It keeps the stamp as written so format gives back exactly the name it
// was parsed from (a local time that falls in a DST gap would not survive a
// trip through time.Time).
type stampName struct {
	Kind  string // [a-z]{1,32}
	Stamp string // YYYYMMDD-HHMMSS, a valid calendar time
	N     int    // 1 without suffix, else 2..maxSuffix
	Ext   string // ".txt", ".json", ".db" or "" for a bare ID
}

// id is the report ID: the name without its extension.
func (s stampName) id() string {
	if s.N <= 1 {
		return s.Kind + "-" + s.Stamp
	}
	return s.Kind + "-" + s.Stamp + "-" + strconv.Itoa(s.N)
}

func (s stampName) format() string { return s.id() + s.Ext }

// time reads the stamp as a wall-clock time in loc.
func (s stampName) time(loc *time.Location) time.Time {
	t, err := time.ParseInLocation(stampLayout, s.Stamp, loc)
	if err != nil {
		// parseID already checked the stamp parses.
		return time.Time{}
	}
	return t
}

// validKind reports whether k can name a report: lower-case ASCII letters
// only, so a kind can never hold a '-', '.', '/' or anything else that
// would make a name ambiguous or escape report_dir.
func validKind(k string) bool {
	if k == "" || len(k) > maxKindLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 'a' || k[i] > 'z' {
			return false
		}
	}
	return true
}

// parseReportName parses a report file name,
// <kind>-YYYYMMDD-HHMMSS[-N].txt or .json, e.g. check-20261121-101500-2.txt.
func parseReportName(name string) (stampName, bool) {
	s, ok := parseFileName(name)
	if !ok || (s.Ext != extText && s.Ext != extJSON) {
		return stampName{}, false
	}
	return s, true
}

// parseBaselineName parses a kept baseline generation's name,
// baseline-YYYYMMDD-HHMMSS[-N].db, as the db package writes it.
func parseBaselineName(name string) (stampName, bool) {
	s, ok := parseFileName(name)
	if !ok || s.Kind != baselineKind || s.Ext != extBaseline {
		return stampName{}, false
	}
	return s, true
}

// parseFileName splits name at its first dot into an ID and an extension
// and parses both.
func parseFileName(name string) (stampName, bool) {
	i := strings.IndexByte(name, '.')
	if i < 0 {
		return stampName{}, false
	}
	s, ok := parseID(name[:i])
	if !ok {
		return stampName{}, false
	}
	switch ext := name[i:]; ext {
	case extText, extJSON, extBaseline:
		s.Ext = ext
		return s, true
	}
	return stampName{}, false
}

// parseID parses a report ID, <kind>-YYYYMMDD-HHMMSS[-N]:
//
//	check-20261121-101500
//	check-20261121-101500-2
//
// N is decimal without leading zeros and at least 2 (the first report of a
// second has no suffix), so every ID has exactly one spelling.
func parseID(id string) (stampName, bool) {
	var s stampName
	dash := strings.IndexByte(id, '-')
	if dash < 0 || !validKind(id[:dash]) {
		return s, false
	}
	s.Kind, id = id[:dash], id[dash+1:]
	if len(id) < len(stampLayout) || !isStamp(id[:len(stampLayout)]) {
		return s, false
	}
	s.Stamp, id = id[:len(stampLayout)], id[len(stampLayout):]
	s.N = 1
	if id == "" {
		return s, true
	}
	if id[0] != '-' {
		return s, false
	}
	n, ok := parseSuffix(id[1:])
	if !ok {
		return stampName{}, false
	}
	s.N = n
	return s, true
}

// isStamp reports whether v is exactly YYYYMMDD-HHMMSS with a valid date
// and time. The digit check comes first because time.Parse accepts a
// one-digit hour, which would let two spellings mean one time.
func isStamp(v string) bool {
	if len(v) != len(stampLayout) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if i == 8 {
			if v[i] != '-' {
				return false
			}
		} else if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	_, err := time.Parse(stampLayout, v)
	return err == nil
}

// parseSuffix parses the N of a -N suffix: 2..maxSuffix, no leading zero.
func parseSuffix(v string) (int, bool) {
	if v == "" || len(v) > len(strconv.Itoa(maxSuffix)) || v[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	if n < 2 || n > maxSuffix {
		return 0, false
	}
	return n, true
}
