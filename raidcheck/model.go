package raidcheck

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Verdict is the judgement of an array, a disk, a controller or a whole
// probe. The zero value is OK.
type Verdict uint8

// The verdicts, in increasing severity: failed > degraded > unknown >
// rebuilding > ok. Unknown is worse than rebuilding because it alerts (fail
// closed): an output the agent cannot judge must reach a human.
const (
	OK         Verdict = iota // all arrays optimal (also checking/verifying/patrol, hot spares, JBOD)
	Rebuilding                // redundancy being restored: rebuild, recovery, resync, initialize, reshape
	Unknown                   // could not judge: unrecognised state, unparseable output, tool missing
	Degraded                  // running without full redundancy, or a disk in a failed/bad state
	Failed                    // an array is offline/failed/inactive: data unavailable
)

var verdictNames = [...]string{"ok", "rebuilding", "unknown", "degraded", "failed"}

// String returns the verdict's name: ok, rebuilding, unknown, degraded, failed.
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// MarshalText writes the verdict's name (used by encoding/json).
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads a verdict's name.
func (v *Verdict) UnmarshalText(b []byte) error {
	for i, n := range verdictNames {
		if string(b) == n {
			*v = Verdict(i)
			return nil
		}
	}
	return fmt.Errorf("raidcheck: unknown verdict %q", b)
}

// Worst returns the more severe of a and b.
func Worst(a, b Verdict) Verdict {
	if b > a {
		return b
	}
	return a
}

// Input is one saved or captured output of a RAID tool. Name labels errors
// (a file name or the command line that produced it).
type Input struct {
	Name string
	Data []byte
}

// Result is what one tool's outputs say about the controllers it manages.
type Result struct {
	Tool        string        `json:"tool"` // areca, tw_cli, megacli, storcli, perccli, mdstat
	Controllers []*Controller `json:"controllers"`
	Verdict     Verdict       `json:"verdict"`
	// Err is why the tool could not be judged (missing CLI, unparseable
	// output, timeout); the verdict is then Unknown.
	Err string `json:"error,omitempty"`
}

// Controller is one RAID controller (or, for Linux md, the md subsystem).
type Controller struct {
	ID       string    `json:"id"`               // e.g. "c0", "md"
	Model    string    `json:"model,omitempty"`  // as the tool names it
	Status   string    `json:"status,omitempty"` // the tool's own word for the controller, if any
	Arrays   []*Array  `json:"arrays"`
	Disks    []*Disk   `json:"disks,omitempty"` // disks outside every array: spares, unconfigured, failed leftovers
	Warnings []Warning `json:"warnings,omitempty"`
	Verdict  Verdict   `json:"verdict"`
	Reason   string    `json:"reason,omitempty"` // why the verdict, when not ok
}

// Array is a logical drive: a RAID set, volume set, unit, VD or md array.
type Array struct {
	ID       string  `json:"id"`              // e.g. "u0", "0/0", "md0", "VD1"
	Name     string  `json:"name,omitempty"`  // the admin's name for it, if any
	Level    string  `json:"level,omitempty"` // e.g. "RAID5", "raid1"
	Size     string  `json:"size,omitempty"`  // as printed by the tool
	State    string  `json:"state"`           // the tool's state words, e.g. "Partially Degraded", "Rebuilding"
	Activity string  `json:"activity,omitempty"`
	Progress float64 `json:"progress,omitempty"` // percent of Activity done; 0 when not given
	Members  int     `json:"members,omitempty"`  // disks the array should have, when the tool says
	Missing  int     `json:"missing,omitempty"`  // of those, how many are absent or failed
	Disks    []*Disk `json:"disks,omitempty"`
	Verdict  Verdict `json:"verdict"`
	Reason   string  `json:"reason,omitempty"`
}

// Disk is a physical drive.
type Disk struct {
	ID      string  `json:"id"` // e.g. "p3", "32:10", "sdc1", "E3 S12"
	Model   string  `json:"model,omitempty"`
	Size    string  `json:"size,omitempty"`
	State   string  `json:"state"`          // the tool's words, e.g. "Online", "Failed", "Rebuild", "HotSpare"
	Role    string  `json:"role,omitempty"` // member, spare, unconfigured, passthrough, rebuild-target
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason,omitempty"`
}

// Warning is a component problem that does not change an array's state:
// battery, cache policy, predictive failure, enclosure alarm.
type Warning struct {
	Component string `json:"component"` // bbu, cache, disk, enclosure, controller
	Message   string `json:"message"`
}

// ErrParse is the class of every "output could not be read" error; the
// ParseError says where.
var ErrParse = errors.New("raidcheck: cannot parse tool output")

// ErrNotPresent means a tool's CLI is not installed (not an alert by itself).
var ErrNotPresent = errors.New("raidcheck: tool not present")

// ParseError locates a parse problem: the tool, the input's name and the
// 1-based line.
type ParseError struct {
	Tool string
	Name string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s:%d: %s", e.Tool, e.Name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Tool, e.Name, e.Msg)
}

// Unwrap makes errors.Is(err, ErrParse) true.
func (e *ParseError) Unwrap() error { return ErrParse }

// Finish computes the verdicts upward: every controller takes the worst of
// its arrays and loose disks (and Unknown when it has neither and no
// reason to be trusted), the result the worst of its controllers. Parsers
// set array and disk verdicts, then call Finish. A result with Err set, or
// with no controller at all, is Unknown.
func (r *Result) Finish() {
	v := OK
	for _, c := range r.Controllers {
		cv := c.Verdict
		for _, a := range c.Arrays {
			for _, d := range a.Disks {
				// A disk in a failed or bad state still needs replacing
				// while another rebuild runs.
				if d.Verdict == Degraded || d.Verdict == Failed {
					a.Verdict = Worst(a.Verdict, Degraded)
					if a.Reason == "" {
						a.Reason = "disk " + d.ID + " " + strings.ToLower(d.State)
					}
				} else if d.Verdict == Unknown {
					a.Verdict = Worst(a.Verdict, Unknown)
				}
			}
			cv = Worst(cv, a.Verdict)
		}
		for _, d := range c.Disks {
			dv := d.Verdict
			if dv == Failed {
				dv = Degraded // a failed spare or unconfigured-bad disk: replace it
			}
			cv = Worst(cv, dv)
		}
		c.Verdict = cv
		v = Worst(v, cv)
	}
	if r.Err != "" || len(r.Controllers) == 0 {
		v = Worst(v, Unknown)
	}
	r.Verdict = v
}

// HasWarnings reports whether any controller carries a component warning.
func (r *Result) HasWarnings() bool {
	for _, c := range r.Controllers {
		if len(c.Warnings) > 0 {
			return true
		}
	}
	return false
}

// notReported reports whether a cell holds one of the words RAID tools
// print for "no value": empty, "-", "N/A", "NA", "N.A.", "Unknown" (any
// case). Such a cell is never an alert and never evidence that something
// is fine: a flag or counter reading it is ignored, and a state reading it
// judges nothing (the array or disk stays Unknown unless another section
// or input reports its state).
func notReported(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "-", "--", "n/a", "na", "n.a.", "n.a", "unknown", "not available", "not applicable":
		return true
	}
	return false
}

// lazyRegexp returns a function that compiles expr on its first call and
// returns the same Regexp after. The parsers' expressions are compiled this
// way so that a process that parses no RAID output (every sshval session
// starts this binary) does not compile them all at start.
// Every one is kept in lazyRegexps, so a test compiles them all.
func lazyRegexp(expr string) func() *regexp.Regexp {
	f := sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
	lazyRegexps = append(lazyRegexps, f)
	return f
}

var lazyRegexps []func() *regexp.Regexp
