package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// table is one rendered table: a header and rows of cells.
type table struct {
	Head []string
	Rows [][]string
}

// rowTable renders measured rows: median, min-max, peak RSS, peak RssAnon.
func rowTable(rows []*row) table {
	t := table{Head: []string{"command", "median s", "min-max s", "peak RSS MiB", "peak RssAnon MiB", "note"}}
	for _, r := range rows {
		cells := []string{r.Name}
		switch {
		case r.Skip != "":
			cells = append(cells, "-", "-", "-", "-", "skipped: "+r.Skip)
		case !r.usable():
			cells = append(cells, "-", "-", "-", "-", fmt.Sprintf("failed: %v", r.Err))
		default:
			lo, hi := r.span()
			rss, anon := r.peaks()
			anonCell := "-"
			if anon >= 0 {
				anonCell = fmt.Sprintf("%.1f", float64(anon)/mib)
			}
			var notes []string
			if r.Entries >= 0 {
				notes = append(notes, fmt.Sprintf("%d entries", r.Entries))
			}
			if r.Err != nil {
				notes = append(notes, fmt.Sprintf("failed later: %v", r.Err))
			}
			notes = append(notes, r.Warn...)
			cells = append(cells, fmt.Sprintf("%.2f", r.median().Seconds()),
				fmt.Sprintf("%.2f-%.2f", lo.Seconds(), hi.Seconds()),
				fmt.Sprintf("%.1f", float64(rss)/mib), anonCell, strings.Join(notes, "; "))
		}
		t.Rows = append(t.Rows, cells)
	}
	return t
}

// measuredText is v with two decimals, or as many more (up to six) as
// it takes to tell it from the threshold max: 0.052 against 0.05 is not
// shown as "0.05" beside a FAIL.
func measuredText(v, max float64) string {
	for d := 2; ; d++ {
		s := strconv.FormatFloat(v, 'f', d, 64)
		if d == 6 || v == max || s != strconv.FormatFloat(max, 'f', d, 64) {
			return s
		}
	}
}

// checkTable renders acceptance checks with their threshold and verdict.
func checkTable(checks []check) table {
	t := table{Head: []string{"criterion", "measured", "threshold", "result"}}
	for _, c := range checks {
		val, verdict := "n/a", "FAIL"
		if math.IsNaN(c.Value) {
			verdict = "FAIL (" + c.Missing + ")"
		} else {
			val = measuredText(c.Value, c.Max)
			if c.Unit != "" {
				val += " " + c.Unit
			}
			if c.pass() {
				verdict = "PASS"
			}
		}
		limit := fmt.Sprintf("≤ %g", c.Max)
		if c.Unit != "" {
			limit += " " + c.Unit
		}
		t.Rows = append(t.Rows, []string{c.Name, val, limit, verdict})
	}
	return t
}

// header returns the lines describing the run.
func (r *results) header() []string {
	c := r.Config
	h := []string{
		"date: " + r.Started.UTC().Format(time.RFC3339),
		fmt.Sprintf("machine: %d CPUs (%s/%s)", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		fmt.Sprintf("tree: %s, %d entries, %.2f GiB in regular files", c.Tree, r.Entries, float64(r.Bytes)/(1<<30)),
		fmt.Sprintf("rules: NORMAL = %s (blake3 row: NORMAL = %s), one selection line for the tree", normalMD5Rule, normalBLAKE3Rule),
		fmt.Sprintf("workers: agent --workers %d, aide num_workers=%d, md5sum/b3sum in %d parallel processes", c.Workers, c.Workers, c.Workers),
		fmt.Sprintf("runs: 1 warm-up + %d timed, round-robin over the rows; everything at the same priority (no nice)", c.Runs),
	}
	for _, v := range r.Versions {
		h = append(h, "version: "+v)
	}
	return h
}

// synthHeader describes the synthetic tree.
func (r *results) synthHeader() string {
	return fmt.Sprintf("synthetic tree: %d files of a few bytes, %d per directory, created in %.1f s; one run each, no warm-up",
		r.Config.MFiles, filesPerDir, r.MFilesTime.Seconds())
}

// writeText prints the results as aligned plain-text tables.
func (r *results) writeText(w io.Writer) error {
	var b strings.Builder
	for _, l := range r.header() {
		b.WriteString(l + "\n")
	}
	if len(r.Rows) > 0 {
		b.WriteString("\n")
		writeAligned(&b, rowTable(r.Rows))
		b.WriteString("\nratios of medians measured side by side in this run:\n")
		writeAligned(&b, checkTable(r.Checks))
	}
	if len(r.PkgRows) > 0 {
		b.WriteString("\n")
		for _, l := range r.pkgHeader() {
			b.WriteString(l + "\n")
		}
		writeAligned(&b, rowTable(r.PkgRows))
		b.WriteString("\n")
		writeAligned(&b, checkTable(r.PkgChecks))
	}
	if len(r.PostRows) > 0 {
		b.WriteString("\n" + r.PostNote + "\n")
		writeAligned(&b, rowTable(r.PostRows))
		b.WriteString("\n")
		writeAligned(&b, checkTable(r.PostChecks))
	}
	if len(r.WatchRows) > 0 {
		b.WriteString("\nwatch rows: " + strings.Join(r.WatchNotes, "\n") + "\n")
		writeAligned(&b, rowTable(r.WatchRows))
		b.WriteString("\n")
		writeAligned(&b, checkTable(r.WatchChecks))
	}
	if len(r.Synth) > 0 {
		b.WriteString("\n" + r.synthHeader() + "\n")
		writeAligned(&b, rowTable(r.Synth))
		b.WriteString("\n")
		writeAligned(&b, checkTable(r.SynthChecks))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMarkdown writes the same results as Markdown tables, for pasting
// into a note.
func (r *results) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("## make bench\n\n")
	for _, l := range r.header() {
		b.WriteString("- " + mdEscape(l) + "\n")
	}
	if len(r.Rows) > 0 {
		b.WriteString("\n")
		writeMarkdownTable(&b, rowTable(r.Rows))
		b.WriteString("\nRatios of medians measured side by side in this run:\n\n")
		writeMarkdownTable(&b, checkTable(r.Checks))
	}
	if len(r.PkgRows) > 0 {
		b.WriteString("\n")
		for _, l := range r.pkgHeader() {
			b.WriteString("- " + mdEscape(l) + "\n")
		}
		b.WriteString("\n")
		writeMarkdownTable(&b, rowTable(r.PkgRows))
		b.WriteString("\n")
		writeMarkdownTable(&b, checkTable(r.PkgChecks))
	}
	if len(r.PostRows) > 0 {
		b.WriteString("\n" + mdEscape(r.PostNote) + ".\n\n")
		writeMarkdownTable(&b, rowTable(r.PostRows))
		b.WriteString("\n")
		writeMarkdownTable(&b, checkTable(r.PostChecks))
	}
	if len(r.WatchRows) > 0 {
		for _, n := range r.WatchNotes {
			b.WriteString("\n- " + mdEscape(n))
		}
		b.WriteString("\n\n")
		writeMarkdownTable(&b, rowTable(r.WatchRows))
		b.WriteString("\n")
		writeMarkdownTable(&b, checkTable(r.WatchChecks))
	}
	if len(r.Synth) > 0 {
		b.WriteString("\n" + mdEscape(r.synthHeader()) + ".\n\n")
		writeMarkdownTable(&b, rowTable(r.Synth))
		b.WriteString("\n")
		writeMarkdownTable(&b, checkTable(r.SynthChecks))
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + mdEscape(n) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeAligned(b *strings.Builder, t table) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Head, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func writeMarkdownTable(b *strings.Builder, t table) {
	line := func(cells []string) {
		esc := make([]string, len(cells))
		for i, c := range cells {
			esc[i] = mdEscape(c)
		}
		b.WriteString("| " + strings.Join(esc, " | ") + " |\n")
	}
	line(t.Head)
	sep := make([]string, len(t.Head))
	for i := range sep {
		sep[i] = "---"
	}
	b.WriteString("|" + strings.Join(sep, "|") + "|\n")
	for _, r := range t.Rows {
		line(r)
	}
}

// mdEscape keeps a cell from breaking the table or turning into markup.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "*", `\*`, "_", `\_`, "\n", " ").Replace(s)
}
