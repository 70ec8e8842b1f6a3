package posture

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes r as one indented JSON document ("format": 1).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for a person: mounts, executables, processes, then
// what could not be checked and the counts. Waived findings are listed
// with "(waived)", not left out.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Hardening checks on %s at %s\n", r.Host, r.Time.Format(time.RFC3339))
	b.WriteString("\nTemp dir mounts:\n")
	if len(r.Mounts) == 0 {
		b.WriteString("  (none checked)\n")
	}
	for _, m := range r.Mounts {
		name := m.Dir
		if m.Resolved != "" {
			name += " (-> " + m.Resolved + ")"
		}
		where := "on " + m.MountPoint
		if m.Separate {
			where = m.FSType + " " + m.Source
			if m.BindOf != "" {
				where = "bind mount of " + m.BindOf
			}
		}
		verdict := "ok"
		if len(m.Missing) > 0 {
			verdict = "missing " + strings.Join(m.Missing, ", ")
		}
		fmt.Fprintf(&b, "  %s: %s (%s)%s\n", name, verdict, where, waived(m.Waived))
		if m.Fix != "" {
			for _, l := range strings.Split(strings.TrimRight(m.Fix, "\n"), "\n") {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	b.WriteString("\nExecutables in writable places:\n")
	if len(r.Executables) == 0 {
		b.WriteString("  none\n")
	}
	for _, e := range r.Executables {
		kind := e.Kind
		switch {
		case e.ELFClass != "":
			kind += " " + e.ELFClass + " " + e.ELFMachine
		case e.Script != "":
			kind += " #!" + e.Script
		}
		owner := e.Owner
		if owner == "" {
			owner = fmt.Sprint(e.UID)
		}
		fmt.Fprintf(&b, "  %s%s\n      %s %s %d bytes, modified %s, %s\n", quote(e.Path), waived(e.Waived),
			e.Mode, owner, e.Size, e.MTime.Format(time.RFC3339), kind)
		if e.BLAKE3 != "" {
			fmt.Fprintf(&b, "      blake3 %s\n", e.BLAKE3)
		}
		if e.Note != "" {
			fmt.Fprintf(&b, "      %s\n", e.Note)
		}
	}
	b.WriteString("\nProcesses running from writable places or deleted files:\n")
	if len(r.Processes) == 0 {
		b.WriteString("  none\n")
	}
	for _, p := range r.Processes {
		user := p.User
		if user == "" {
			user = fmt.Sprint(p.UID)
		}
		exe := quote(p.Exe)
		if p.Deleted {
			exe += " (deleted)"
		}
		fmt.Fprintf(&b, "  pid %d user %s: %s%s\n", p.PID, user, exe, waived(p.Waived))
		fmt.Fprintf(&b, "      %s", p.Reason)
		if !p.Start.IsZero() {
			fmt.Fprintf(&b, ", started %s", p.Start.Format(time.RFC3339))
		}
		fmt.Fprintf(&b, "\n      cmdline: %s\n", quote(strings.Join(p.Cmdline, " ")))
		for _, s := range p.Sockets {
			if s.Remote == "0.0.0.0:0" || s.Remote == "[::]:0" {
				fmt.Fprintf(&b, "      %s %s %s\n", s.Proto, s.State, s.Local)
			} else {
				fmt.Fprintf(&b, "      %s %s %s -> %s\n", s.Proto, s.State, s.Local, s.Remote)
			}
		}
		if p.Note != "" {
			fmt.Fprintf(&b, "      %s\n", p.Note)
		}
	}
	if len(r.Incomplete) > 0 {
		b.WriteString("\nNot checked:\n")
		for _, s := range r.Incomplete {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	fmt.Fprintf(&b, "\n%d findings, %d waived; %d files in %d directories and %d processes looked at\n",
		r.Findings, r.Waived, r.Exec.Files, r.Exec.Dirs, r.Procs.Seen)
	_, err := io.WriteString(w, b.String())
	return err
}

func waived(w bool) string {
	if w {
		return " (waived)"
	}
	return ""
}

// quote shows a path or command line with control characters and invalid
// UTF-8 escaped, so a planted file name cannot forge report lines.
func quote(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			q := fmt.Sprintf("%q", s)
			return q
		}
	}
	return s
}
