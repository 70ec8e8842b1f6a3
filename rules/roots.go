package rules

import (
	"path"
	"sort"
	"strings"
)

// SelectionRoots returns the directories the selection lines can reach:
// for each selective or equal rule, the directory part of the literal
// prefix of its regex ("/etc" for "/etc", "/usr" for "/usr/lib.*"), with
// every root inside another one dropped. A rule whose regex has no literal
// start ("/.*" or one written without a leading "/") gives "/". The paths
// are in the scanned namespace (without root_prefix). agent watch marks
// the file systems holding them and those mounted below them.
func (p *Policy) SelectionRoots() []string {
	var roots []string
	for _, r := range p.Rules {
		if r.Kind != Selective && r.Kind != Equal {
			continue
		}
		lit := literalPrefix(r.Regex)
		if lit == "" {
			lit = "/"
		}
		// The literal may end inside a name ("/usr/li" of "/usr/li.*"):
		// only the part up to its last "/" is certainly a directory,
		// unless the regex is the literal itself.
		if rx := strings.TrimSuffix(unescapeRegex(r.Regex), "$"); rx != lit && !strings.HasPrefix(rx, lit+"/") {
			lit = path.Dir(lit)
		}
		roots = append(roots, path.Clean(lit))
	}
	sort.Strings(roots)
	var out []string
	for _, r := range roots {
		if n := len(out); n > 0 && within(r, out[n-1]) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// unescapeRegex drops the backslash of every escaped byte (`\.` → `.`),
// enough to compare a regex with its literalPrefix.
func unescapeRegex(rx string) string {
	var b strings.Builder
	for i := 0; i < len(rx); i++ {
		if rx[i] == '\\' && i+1 < len(rx) {
			i++
		}
		b.WriteByte(rx[i])
	}
	return b.String()
}
