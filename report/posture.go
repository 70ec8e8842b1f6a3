package report

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

// PostureInfo is the hardening section of an integrity report: the new
// set-uid, set-gid and capability files the comparison found, and the
// findings of agent posture run alongside (rendered by the posture
// package; report only places them).
type PostureInfo struct {
	// Privileged lists the files that became set-uid, set-gid or gained
	// file capabilities since the baseline (added, or changed to it).
	Privileged []Privileged
	// Findings and Waived are agent posture's counts; Text is its plain
	// report and JSON its JSON document (both empty when it did not run).
	Findings, Waived int
	Text, JSON       []byte
	// Ran says whether posture findings are included; From is when that
	// posture check ran.
	Ran  bool
	From time.Time
	// Note says why posture did not run or ran in part, if so.
	Note string
}

// Privileged is one file that gained a privilege since the baseline.
type Privileged struct {
	Path  string
	What  []string // "set-uid", "set-gid", "capabilities"
	Mode  uint32
	UID   uint32
	GID   uint32
	Added bool
}

// NewPrivileged returns, sorted by path, the regular files among changes
// that are new and set-uid, set-gid or with file capabilities, or that
// changed to gain one of those. Capabilities are seen only where the
// rule records caps; set-id bits wherever a change is reported.
func NewPrivileged(changes []scanner.Change) []Privileged {
	const setuid, setgid = 0o4000, 0o2000
	var out []Privileged
	for _, ch := range changes {
		n := ch.New
		if n == nil || n.Type != rules.TypeFile {
			continue
		}
		var oldMode uint32
		var oldCaps []byte
		if ch.Old != nil && ch.Old.Type == rules.TypeFile {
			oldMode, oldCaps = ch.Old.Mode, ch.Old.Caps
		}
		var what []string
		if n.Mode&setuid != 0 && oldMode&setuid == 0 {
			what = append(what, "set-uid")
		}
		if n.Mode&setgid != 0 && oldMode&setgid == 0 {
			what = append(what, "set-gid")
		}
		if len(n.Caps) > 0 && !bytes.Equal(n.Caps, oldCaps) {
			what = append(what, "capabilities")
		}
		if len(what) > 0 {
			out = append(out, Privileged{Path: n.Path, What: what, Mode: n.Mode, UID: n.UID, GID: n.GID, Added: ch.Old == nil})
		}
	}
	slices.SortFunc(out, func(a, b Privileged) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// posture writes the hardening section: one line when there is nothing
// to say, else the privileged files and posture's own report.
func (t *textWriter) posture() {
	p := t.r.Posture
	if p == nil {
		return
	}
	if len(p.Privileged) == 0 && p.Findings == 0 && p.Note == "" {
		if !p.Ran {
			t.line("Posture: no new set-uid, set-gid or capability files; agent posture has not run (see posture_schedule)")
			t.line("")
			return
		}
		t.printf("Posture: no new set-uid, set-gid or capability files, no posture findings (%d waived) at %s\n\n", p.Waived, t.r.timestamp(p.From))
		return
	}
	t.section(fmt.Sprintf("Posture: %d new privileged %s, %d posture %s (%d waived):",
		len(p.Privileged), plural(len(p.Privileged), "file", "files"), p.Findings, plural(p.Findings, "finding", "findings"), p.Waived))
	if p.Note != "" {
		t.line("Note: " + EscapePath(p.Note))
		t.line("")
	}
	if p.Ran {
		t.line("agent posture at " + t.r.timestamp(p.From))
	} else {
		t.line("agent posture has not run (see posture_schedule)")
	}
	t.line("")
	if len(p.Privileged) > 0 {
		t.line("New set-uid, set-gid or capability files since the baseline:")
		for _, f := range p.Privileged {
			how := "changed"
			if f.Added {
				how = "added"
			}
			t.printf("  %s %s, mode %04o, uid %d, gid %d: %s\n", how, strings.Join(f.What, "+"), f.Mode&0o7777, f.UID, f.GID, EscapePath(f.Path))
		}
		t.line("")
	}
	if p.Findings > 0 && len(p.Text) > 0 {
		t.w.Write(p.Text)
		if !bytes.HasSuffix(p.Text, []byte("\n")) {
			t.line("")
		}
		t.line("")
	}
}

// posture writes the JSON posture object: {findings, waived, [time],
// [note], [new_privileged: [{path, what, mode, uid, gid, added}]],
// [report: agent posture's document]}.
func (j *jsonWriter) posture() {
	p := j.r.Posture
	if p == nil {
		return
	}
	j.key("posture")
	j.open('{')
	j.kn("findings", int64(p.Findings))
	j.kn("waived", int64(p.Waived))
	if p.Ran {
		j.kv("time", j.r.timestamp(p.From))
	}
	if p.Note != "" {
		j.kv("note", EscapeJSONPath(p.Note))
	}
	if len(p.Privileged) > 0 {
		j.key("new_privileged")
		j.open('[')
		for _, f := range p.Privileged {
			j.key("")
			j.open('{')
			j.kv("path", EscapeJSONPath(f.Path))
			j.key("what")
			j.open('[')
			for _, w := range f.What {
				j.key("")
				j.str(w)
			}
			j.close(']')
			j.kn("mode", int64(f.Mode&0o7777))
			j.kn("uid", int64(f.UID))
			j.kn("gid", int64(f.GID))
			j.key("added")
			j.b.WriteString(fmt.Sprint(f.Added))
			j.close('}')
		}
		j.close(']')
	}
	if len(bytes.TrimSpace(p.JSON)) > 0 {
		j.key("report")
		j.raw(bytes.TrimSpace(p.JSON))
	}
	j.close('}')
}

// postureSuffix is the subject's ", N posture findings" part.
func postureSuffix(r *Report) string {
	p := r.Posture
	if p == nil {
		return ""
	}
	var parts []string
	if n := len(p.Privileged); n > 0 {
		parts = append(parts, fmt.Sprintf("%d new privileged %s", n, plural(n, "file", "files")))
	}
	if p.Findings > 0 {
		parts = append(parts, fmt.Sprintf("%d posture %s", p.Findings, plural(p.Findings, "finding", "findings")))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}
