package raidcheck

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// ReportFormat is the version of the JSON document Report encodes to.
const ReportFormat = 1

// Report is the outcome of one probe or parse over every tool.
type Report struct {
	Format  int       `json:"format"`
	Host    string    `json:"host,omitempty"`
	Time    time.Time `json:"time"`
	Verdict Verdict   `json:"verdict"`
	// Warnings is true when any controller carries a component warning
	// (battery, cache policy, predictive failure, enclosure alarm).
	Warnings bool      `json:"warnings"`
	Results  []*Result `json:"results"`
}

// NewReport combines the results of several tools: the overall verdict is
// the worst of theirs.
func NewReport(host string, now time.Time, results []*Result) *Report {
	r := &Report{Format: ReportFormat, Host: host, Time: now, Results: results}
	if r.Results == nil {
		r.Results = []*Result{}
	}
	for _, res := range results {
		r.Verdict = Worst(r.Verdict, res.Verdict)
		if res.HasWarnings() {
			r.Warnings = true
		}
	}
	return r
}

// Empty reports whether nothing was found: no tool and no md array.
func (r *Report) Empty() bool { return len(r.Results) == 0 }

// ExitCode is the status `agent raid check` exits with: 0 ok, 1 rebuilding
// or a component warning, 2 degraded or failed, 3 unknown or probe error.
func (r *Report) ExitCode() int {
	switch r.Verdict {
	case OK:
		if r.Warnings {
			return 1
		}
		return 0
	case Rebuilding:
		return 1
	case Degraded, Failed:
		return 2
	}
	return 3
}

// arrayRef names an array for humans: tool controller/array [name] level.
func arrayRef(res *Result, c *Controller, a *Array) string {
	s := c.ID + "/" + a.ID
	if a.Name != "" && a.Name != a.ID {
		s += " '" + a.Name + "'"
	}
	if a.Level != "" {
		s += " " + a.Level
	}
	return s
}

// why explains a verdict of an array in a few words.
func why(a *Array) string {
	switch {
	case a.Members > 0 && a.Missing > 0:
		return fmt.Sprintf("%d of %d disks failed", a.Missing, a.Members)
	case a.Reason != "":
		return a.Reason
	case a.Activity != "" && a.Progress > 0:
		return fmt.Sprintf("%s %.1f%%", a.Activity, a.Progress)
	case a.State != "":
		return a.State
	}
	return a.Verdict.String()
}

// problems lists the not-ok parts, worst first: arrays, loose disks, tool
// errors and warnings.
func (r *Report) problems() []string {
	type item struct {
		v Verdict
		s string
	}
	var items []item
	for _, res := range r.Results {
		if res.Err != "" {
			items = append(items, item{res.Verdict, res.Tool + ": " + res.Err})
		}
		for _, c := range res.Controllers {
			for _, a := range c.Arrays {
				if a.Verdict != OK {
					items = append(items, item{a.Verdict, arrayRef(res, c, a) + " (" + why(a) + ")"})
				}
			}
			for _, d := range c.Disks {
				if d.Verdict != OK {
					s := c.ID + "/" + d.ID + " disk " + strings.ToLower(d.State)
					if d.Reason != "" {
						s = c.ID + "/" + d.ID + " (" + d.Reason + ")"
					}
					items = append(items, item{d.Verdict, s})
				}
			}
			if c.Verdict != OK && c.Reason != "" {
				items = append(items, item{c.Verdict, c.ID + ": " + c.Reason})
			}
		}
	}
	// Worst first, keeping the tools' order among equals.
	sort.SliceStable(items, func(i, j int) bool { return items[i].v > items[j].v })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.s
	}
	return out
}

// warnings lists the component warnings as "controller: component: message".
func (r *Report) warnings() []string {
	var out []string
	for _, res := range r.Results {
		for _, c := range res.Controllers {
			for _, w := range c.Warnings {
				out = append(out, res.Tool+" "+c.ID+": "+w.Component+": "+w.Message)
			}
		}
	}
	return out
}

// Headline is the first line of the text output, in the Nagios plugin
// style monitoring systems read: "RAID OK - 3 arrays ok", "RAID DEGRADED -
// c0/u0 RAID-5 (1 of 4 disks failed)".
func (r *Report) Headline() string {
	if r.Empty() {
		return "no RAID found"
	}
	var n int
	for _, res := range r.Results {
		for _, c := range res.Controllers {
			n += len(c.Arrays)
		}
	}
	word := strings.ToUpper(r.Verdict.String())
	if p := r.problems(); len(p) > 0 {
		return "RAID " + word + " - " + strings.Join(p, "; ")
	}
	if w := r.warnings(); len(w) > 0 {
		return fmt.Sprintf("RAID WARNING - %d arrays ok; %s", n, strings.Join(w, "; "))
	}
	return fmt.Sprintf("RAID %s - %d arrays ok", word, n)
}

// Subject is the mail subject for this report, e.g. "RAID degraded: c0/u0
// RAID-5 (1 of 4 disks failed)"; the caller prefixes "[agent] HOST: ".
func (r *Report) Subject() string {
	if r.Verdict == OK && !r.Warnings {
		return "RAID ok"
	}
	p := r.problems()
	if len(p) == 0 {
		p = r.warnings()
	}
	s := "RAID " + r.Verdict.String()
	if r.Verdict == OK {
		s = "RAID warning"
	}
	if len(p) > 0 {
		s += ": " + p[0]
		if len(p) > 1 {
			s += fmt.Sprintf(" (and %d more)", len(p)-1)
		}
	}
	return s
}

// WriteText writes the headline, then one line per array and per problem
// disk, then the warnings.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	b.WriteString(r.Headline())
	b.WriteByte('\n')
	for _, res := range r.Results {
		if res.Err != "" {
			fmt.Fprintf(&b, "%s: %s: %s\n", res.Tool, res.Verdict, res.Err)
		}
		for _, c := range res.Controllers {
			head := res.Tool + " " + c.ID
			if c.Model != "" {
				head += " (" + c.Model + ")"
			}
			if len(c.Arrays) == 0 {
				fmt.Fprintf(&b, "%s: %s, no arrays\n", head, c.Verdict)
			}
			for _, a := range c.Arrays {
				line := fmt.Sprintf("%s %s: %s", head, arrayRef(res, c, a)[len(c.ID)+1:], a.Verdict)
				if a.State != "" {
					line += " [" + a.State + "]"
				}
				if a.Verdict != OK || a.Activity != "" {
					line += " " + why(a)
				}
				if a.Size != "" {
					line += ", " + a.Size
				}
				b.WriteString(line + "\n")
				for _, d := range a.Disks {
					if d.Verdict != OK {
						fmt.Fprintf(&b, "  disk %s: %s [%s]\n", d.ID, d.Verdict, d.State)
					}
				}
			}
			for _, d := range c.Disks {
				if d.Verdict != OK {
					fmt.Fprintf(&b, "%s disk %s: %s [%s]\n", head, d.ID, d.Verdict, d.State)
				}
			}
			for _, wn := range c.Warnings {
				fmt.Fprintf(&b, "%s warning: %s: %s\n", head, wn.Component, wn.Message)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as an indented JSON document with the overall
// verdict in the top-level field "verdict".
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
