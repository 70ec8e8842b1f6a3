package main

import (
	"errors"
	"fmt"
	"strings"
)

// errReadme is the class of every error about README.md content gendoc needs.
var errReadme = errors.New("README")

// readmeTable returns the body rows of the first Markdown table after the
// heading whose text is heading (any level), each row split into trimmed
// cells. It reads tables like
//
//	| code | meaning |
//	|---|---|
//	| 0 | success; for check/update/compare: no differences |
//
// A `\|` inside a cell is a literal '|'.
func readmeTable(md, heading string) ([][]string, error) {
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	start := -1
	for i, l := range lines {
		if t, ok := headingText(l); ok && t == heading {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: no heading %q", errReadme, heading)
	}
	var rows [][]string
	inTable := false
	for i := start; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if _, ok := headingText(lines[i]); ok {
			break
		}
		if !strings.HasPrefix(l, "|") {
			if inTable {
				break
			}
			continue
		}
		if !inTable {
			// The header row, then the |---|---| delimiter row.
			if i+1 >= len(lines) || !isDelimiterRow(lines[i+1]) {
				return nil, fmt.Errorf("%w: line %d: table under %q has no delimiter row", errReadme, i+1, heading)
			}
			inTable = true
			i++
			continue
		}
		rows = append(rows, splitRow(l))
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: no table rows under %q", errReadme, heading)
	}
	return rows, nil
}

// headingText returns the text of an ATX heading line ("### Exit codes").
func headingText(line string) (string, bool) {
	t := strings.TrimLeft(line, "#")
	n := len(line) - len(t)
	if n == 0 || n > 6 || !strings.HasPrefix(t, " ") {
		return "", false
	}
	return strings.TrimSpace(t), true
}

func isDelimiterRow(line string) bool {
	l := strings.TrimSpace(line)
	if !strings.HasPrefix(l, "|") {
		return false
	}
	for _, c := range splitRow(l) {
		c = strings.Trim(c, ":")
		if c == "" || strings.Trim(c, "-") != "" {
			return false
		}
	}
	return true
}

// splitRow splits "| a | b \| c |" into ["a", "b | c"].
func splitRow(line string) []string {
	l := strings.TrimSpace(line)
	l = strings.TrimPrefix(l, "|")
	if strings.HasSuffix(l, "|") && !strings.HasSuffix(l, `\|`) {
		l = l[:len(l)-1]
	}
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cur.WriteByte('|')
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(l[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}
