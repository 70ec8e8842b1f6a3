package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// ruleNode is a node of aide's rule tree that holds rules: the rules whose
// regex's literal directory prefix (nodePath) is path.
type ruleNode struct {
	path   string
	parent *ruleNode // nearest ancestor node holding rules
	equ    []compiledRule
	sel    []compiledRule
	neg    []compiledRule // negative and prune rules, config order
}

type compiledRule struct {
	r  *Rule
	rx *byteRegex
}

// ruleIndex is the rule tree of a Policy.
type ruleIndex struct {
	nodes map[string]*ruleNode // nodes holding rules
	// exists holds every node aide's tree has before the walk: each rule
	// node and all its ancestors. aide walks a directory no rule selects
	// when such a node exists.
	exists map[string]bool
}

func buildIndex(rules []*Rule) *ruleIndex {
	idx := &ruleIndex{nodes: map[string]*ruleNode{}, exists: map[string]bool{"/": true}}
	for _, r := range rules {
		if r == nil || !strings.HasPrefix(r.Regex, "/") {
			continue
		}
		rx, err := compileByteRegex(r.Regex)
		if err != nil {
			continue // hand-built policies only; Parse refuses bad regexes
		}
		np := nodePath(r.Regex)
		n := idx.nodes[np]
		if n == nil {
			n = &ruleNode{path: np}
			idx.nodes[np] = n
			for q := np; ; q = ParentDir(q) {
				idx.exists[q] = true
				if q == "/" {
					break
				}
			}
		}
		cr := compiledRule{r: r, rx: rx}
		switch r.Kind {
		case Equal:
			n.equ = append(n.equ, cr)
		case Negative, Prune:
			n.neg = append(n.neg, cr)
		default:
			n.sel = append(n.sel, cr)
		}
	}
	for _, n := range idx.nodes {
		for q := n.path; q != "/"; {
			q = ParentDir(q)
			if pn := idx.nodes[q]; pn != nil {
				n.parent = pn
				break
			}
		}
	}
	return idx
}

// ParentDir is the parent directory of a clean absolute path, "/" for
// "/x" and "/": path.Dir without its Clean, so it never allocates.
func ParentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func (p *Policy) index() *ruleIndex {
	if idx := p.idx.Load(); idx != nil {
		return idx
	}
	idx := buildIndex(p.Rules)
	p.idx.Store(idx)
	return idx
}

// SetLimit restricts selection to paths matching re at their first byte,
// like aide's --limit. Directories the limit could still match below are
// descended but not selected. An empty re removes the limit.
func (p *Policy) SetLimit(re string) error {
	if re == "" {
		p.limit, p.limitSrc = nil, ""
		return nil
	}
	rx, err := compileByteRegex(re)
	if err != nil {
		return fmt.Errorf("limit %q: %w", re, err)
	}
	p.limit, p.limitSrc = rx, re
	return nil
}

// Limit returns the regex set by SetLimit, "" when none.
func (p *Policy) Limit() string { return p.limitSrc }

// maxChain bounds the node chain kept on the stack; deeper trees spill.
const maxChain = 32

// Match decides what to do with path (absolute, bytes in a string, no
// trailing slash) of file type t. It follows aide 0.18.3's selection:
//
//   - the rule tree nodes are the literal directory prefixes of the rules;
//     the search starts at the deepest node that is an ancestor of path's
//     directory and walks up to the root;
//   - equal rules are tried only in the node that is exactly path's
//     directory (so =/dir/ selects /dir's direct children, =/foo selects
//     /foo and /foobar but no children);
//   - selective rules are tried in each node until one matches; inside a
//     node the first rule in config order that matches (regex and type
//     restriction) wins;
//   - after a positive match, the negative rules of every node on the way,
//     root first, are checked: an unrestricted one that matches path (or,
//     for nodes above it, one of path's parent directories) deselects it; a
//     type-restricted one that matches deselects only this entry.
//
// Descend reports whether a directory's children must be visited: when it is
// selected, when some rule could still match below it (a partial regex
// match, or a regex match refused by the type restriction), or when the
// rule tree has a node at or below it. A prune (-/re) match never descends.
//
// A path inside an Exclusion is never selected nor descended; Excluded says
// why, unless the rules alone would skip it already (so dry-init keeps
// aide's line for it).
func (p *Policy) Match(path string, t FileType) Match {
	m := p.match(path, t)
	if len(p.excl) > 0 && (m.Selected || m.Descend) {
		if why := p.excluded(path); why != "" {
			return Match{Excluded: why}
		}
	}
	return m
}

// match is Match without the exclusions.
func (p *Policy) match(path string, t FileType) Match {
	if p.limit != nil {
		full, partial := p.limit.matchPartial(path)
		if !full {
			return Match{Outside: true, Descend: partial && t == TypeDir, Limit: p.limitSrc}
		}
	}
	idx := p.index()
	dir := ParentDir(path)
	var start *ruleNode
	for q := dir; ; q = ParentDir(q) {
		if n := idx.nodes[q]; n != nil {
			start = n
			break
		}
		if q == "/" {
			break
		}
	}
	var buf [maxChain]*ruleNode
	chain := buf[:0]
	for n := start; n != nil; n = n.parent {
		chain = append(chain, n)
	}
	wantPartial := t == TypeDir
	var (
		rule     *Rule
		positive bool
		partial  bool
	)
	for i, n := range chain {
		if i == 0 && n.path == dir && len(n.equ) > 0 {
			cr, part := checkList(n.equ, path, t, wantPartial)
			partial = partial || part
			if cr != nil {
				rule, positive = cr.r, true
			}
		}
		if !positive && len(n.sel) > 0 {
			cr, part := checkList(n.sel, path, t, wantPartial)
			partial = partial || part
			if cr != nil {
				rule, positive = cr.r, true
			}
		}
	}
	pruned := false
	if positive {
	negatives:
		for i := len(chain) - 1; i >= 0; i-- {
			n := chain[i]
			if len(n.neg) == 0 {
				continue
			}
			// A parent directory below this node matching an unrestricted
			// negative rule deselects everything under it.
			for a := ParentDir(path); len(a) > len(n.path); a = ParentDir(a) {
				for _, cr := range n.neg {
					if cr.r.Kind == Negative && cr.r.Types != 0 || cr.r.Kind == Prune && !cr.r.Types.Has(TypeDir) {
						continue
					}
					if cr.rx.match(a) {
						rule, positive, partial, pruned = cr.r, false, false, cr.r.Kind == Prune
						break negatives
					}
				}
			}
			for _, cr := range n.neg {
				if !cr.rx.match(path) || !cr.r.Types.Has(t) {
					continue
				}
				rule, positive = cr.r, false
				if cr.r.Kind == Negative && cr.r.Types != 0 {
					partial = true // restricted: only this entry is dropped
				} else {
					partial, pruned = false, cr.r.Kind == Prune
				}
				break negatives
			}
		}
	}
	if positive {
		return Match{Selected: true, Descend: t == TypeDir, Attrs: rule.Attrs, Rule: rule}
	}
	return Match{
		Descend: t == TypeDir && !pruned && (partial || idx.exists[path]),
		Rule:    rule,
	}
}

// checkList returns the first rule of list whose regex matches path and
// whose restriction allows t; partial reports a regex that matched only
// partially or matched but was refused by its restriction (computed only
// when wantPartial).
func checkList(list []compiledRule, path string, t FileType, wantPartial bool) (found *compiledRule, partial bool) {
	for i := range list {
		cr := &list[i]
		var full, part bool
		if wantPartial {
			full, part = cr.rx.matchPartial(path)
		} else {
			full = cr.rx.match(path)
		}
		if full {
			if cr.r.Types.Has(t) {
				return cr, partial
			}
			partial = true
		} else if part {
			partial = true
		}
	}
	return nil, partial
}

// EscapePath renders a path as aide prints it: bytes below 0x20 and 0x7f as
// a backslash and three octal digits, everything else as is.
func EscapePath(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 3*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b.WriteByte('\\')
			o := strconv.FormatUint(uint64(c), 8)
			b.WriteString(strings.Repeat("0", 3-len(o)))
			b.WriteString(o)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// RuleString renders r as aide shows a rule: "=/re f,d p+u+g", "!/re (none)".
func (r *Rule) RuleString() string {
	switch r.Kind {
	case Equal:
		return "=" + r.Regex + " " + r.Types.AIDEString() + " " + r.Attrs.AIDEString()
	case Negative:
		return "!" + r.Regex + " " + r.Types.AIDEString()
	case Prune:
		return "-" + r.Regex + " " + r.Types.AIDEString()
	}
	return r.Regex + " " + r.Types.AIDEString() + " " + r.Attrs.AIDEString()
}

// origin renders "(file:line: 'text')" with aide's ", prefix: '...'" tail.
func (r *Rule) origin() string {
	s := "(" + r.File + ":" + strconv.Itoa(r.Line) + ": '" + r.Text
	if r.Prefix != "" {
		s += "', prefix: '" + r.Prefix
	}
	return s + "')"
}

// DryInitLine renders one line of `aide --dry-init` output for path of type
// t and its Match, e.g.
//
//	[X] f '/etc/hosts': selective rule: '/etc (none) p+u+g+s+md5' (/etc/aide.conf:13: '/etc NORMAL')
//	[ ] d '/proc': negative rule: '!/proc (none)' (/etc/aide.conf:20: '!/proc')
//	[ ] f '/x': no matching rule
//	[ ] d '/usr': outside of limit '/etc'
//	[ ] d '/var/lib/agent': excluded: agent state_dir
//
// The limit named in an "outside of limit" line is m.Limit.
func DryInitLine(path string, t FileType, m Match) string {
	head := "[ ] "
	if m.Selected {
		head = "[X] "
	}
	head += string(t.Letter()) + " '" + EscapePath(path) + "': "
	switch {
	case m.Excluded != "":
		return head + "excluded: " + m.Excluded
	case m.Outside:
		return head + "outside of limit '" + EscapePath(m.Limit) + "'"
	case m.Rule == nil:
		return head + "no matching rule"
	}
	r := m.Rule
	what := "selective rule: '"
	switch r.Kind {
	case Equal:
		what = "equal rule: '"
	case Negative, Prune:
		what = "negative rule: '"
	}
	return head + what + EscapePath(r.RuleString()) + "' " + EscapePath(r.origin())
}

// DryInitLine is the package function DryInitLine; kept as a method for
// callers that hold the policy.
func (p *Policy) DryInitLine(path string, t FileType, m Match) string {
	return DryInitLine(path, t, m)
}
