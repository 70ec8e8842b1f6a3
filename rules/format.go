package rules

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
)

// Format renders p as canonical config text: every option that differs from
// its default, then the selection lines with their expressions spelled out
// as attribute names, then the groups. Parse(Format(p)) gives a policy equal
// to p (same options, groups and rules; positions and warnings aside), and
// Digest is the SHA-256 of this text.
func (p *Policy) Format() string {
	var b strings.Builder
	b.WriteString("# canonical policy\n")
	o := &p.Options
	for i := range optionDefs {
		d := &optionDefs[i]
		if d.get == nil {
			continue
		}
		for _, v := range d.get(o) {
			b.WriteString(d.name)
			b.WriteByte('=')
			if d.kind == valExpr {
				b.WriteString(v)
			} else {
				b.WriteString(escapeConfig(v))
			}
			b.WriteByte('\n')
		}
	}
	p.formatRules(&b)
	return b.String()
}

// ScanDigest is the SHA-256 of what the entries a scan records depend on:
// the rules and groups, root_prefix, acl_no_symlink_follow and the paths
// the agent excludes from every scan. The other options (mail, schedules,
// report layout) can change without making an earlier scan stale, which
// check --incremental relies on.
func (p *Policy) ScanDigest() [32]byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# scan\nroot_prefix=%s\nacl_no_symlink_follow=%t\n", escapeConfig(p.Options.RootPrefix), p.Options.ACLNoSymlinkFollow)
	for _, e := range p.excl {
		fmt.Fprintf(&b, "excluded=%s\n", escapeConfig(e.Path))
	}
	p.formatRules(&b)
	return sha256.Sum256([]byte(b.String()))
}

// formatRules writes the rules, then the groups, as Format does.
func (p *Policy) formatRules(b *strings.Builder) {
	for _, r := range p.Rules {
		if r == nil {
			continue
		}
		switch r.Kind {
		case Equal:
			b.WriteByte('=')
		case Negative:
			b.WriteByte('!')
		case Prune:
			b.WriteByte('-')
		}
		b.WriteString(escapeConfig(r.Regex))
		if r.Types != 0 {
			b.WriteByte(' ')
			b.WriteString(r.Types.AIDEString())
		}
		if r.Kind == Selective || r.Kind == Equal {
			b.WriteByte(' ')
			b.WriteString(r.Attrs.String())
		}
		b.WriteByte('\n')
	}
	// Groups come last so that a redefined built-in (E above all, which
	// renders the empty set) cannot change what the lines above mean.
	names := make([]string, 0, len(p.Groups))
	for n := range p.Groups {
		if n != "E" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if _, ok := p.Groups["E"]; ok {
		names = append(names, "E")
	}
	for _, n := range names {
		b.WriteString(n)
		b.WriteString(" = ")
		b.WriteString(p.Groups[n].String())
		b.WriteByte('\n')
	}
}

// escapeConfig escapes a value for the config lexer: backslash, blank and
// '@' (which would start a macro) get a backslash; '#' after a blank would
// start a comment, and the blank is escaped anyway.
func escapeConfig(s string) string {
	if !strings.ContainsAny(s, "\\ @\t") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', ' ', '@':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
