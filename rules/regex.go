package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"
)

// byteRegex is a regular expression matched the way aide (PCRE2 without
// UTF) matches: on bytes, anchored at the first byte, no implicit $.
//
// Go's regexp works on UTF-8, so both the pattern and the subject are seen
// through a Latin-1 lens: byte b is the rune U+00bb. A pattern byte 0xC2 and
// an escape \xC2 then both match the path byte 0xC2, and '.' matches exactly
// one byte. An ASCII path is its own Latin-1 image, so the common case
// matches the path string directly without allocating.
type byteRegex struct {
	src  string         // pattern as bytes, as written
	re   *regexp.Regexp // \A(?:latin1(src))
	prog *syntax.Prog   // for partial matching
	// lit, when form is not formRegex, is the pattern as a literal
	// byte string: the two shapes nearly every selection line has
	// (/etc, /usr(/|$)) are matched without the regex engine.
	lit  string
	form litForm
}

// litForm is the shape of a regex that is matched as a literal.
type litForm uint8

const (
	formRegex     litForm = iota // anything else
	formPrefix                   // LIT: the subject starts with lit
	formComponent                // LIT(/|$): lit, then '/' or the end
)

// literalForm recognises LIT and LIT(/|$) in a parsed pattern.
func literalForm(re *syntax.Regexp) (string, litForm) {
	isLit := func(r *syntax.Regexp) bool {
		if r.Op != syntax.OpLiteral || r.Flags&syntax.FoldCase != 0 || len(r.Rune) == 0 {
			return false
		}
		// A rune above 0xFF (\x{141}) stands for no byte: subjects are
		// mapped to runes below 256, so only the engine gets it right.
		for _, c := range r.Rune {
			if c > 0xFF {
				return false
			}
		}
		return true
	}
	if isLit(re) {
		return latin1String(re.Rune), formPrefix
	}
	if re.Op != syntax.OpConcat || len(re.Sub) != 2 || !isLit(re.Sub[0]) {
		return "", formRegex
	}
	alt := re.Sub[1]
	for alt.Op == syntax.OpCapture && len(alt.Sub) == 1 {
		alt = alt.Sub[0]
	}
	if alt.Op != syntax.OpAlternate || len(alt.Sub) != 2 {
		return "", formRegex
	}
	a, b := alt.Sub[0], alt.Sub[1]
	if a.Op == syntax.OpEndText {
		a, b = b, a
	}
	if !isLit(a) || string(a.Rune) != "/" || b.Op != syntax.OpEndText {
		return "", formRegex
	}
	return latin1String(re.Sub[0].Rune), formComponent
}

// latin1String maps runes below 256 back to the bytes they stand for.
func latin1String(rs []rune) string {
	b := make([]byte, len(rs))
	for i, r := range rs {
		b[i] = byte(r)
	}
	return string(b)
}

// latin1 maps each byte of s to the rune of the same value.
func latin1(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

// regexError is a compile error with the byte offset aide would report.
type regexError struct {
	Offset int
	Err    error
}

func (e *regexError) Error() string { return e.Err.Error() }
func (e *regexError) Unwrap() error { return e.Err }

// pcreOnly names PCRE constructs RE2 lacks, for a clearer message than
// regexp/syntax gives.
var pcreOnly = []struct{ text, name string }{
	{"(?=", "lookahead"}, {"(?!", "negative lookahead"}, {"(?<=", "lookbehind"},
	{"(?<!", "negative lookbehind"}, {"(?>", "atomic group"}, {"(?|", "branch reset"},
	{"\\K", "\\K"}, {"*+", "possessive quantifier"}, {"++", "possessive quantifier"},
	{"?+", "possessive quantifier"}, {"(?R", "recursion"}, {"(?&", "subroutine call"},
}

// compileByteRegex compiles pattern (raw bytes).
func compileByteRegex(pattern string) (*byteRegex, error) {
	l := latin1(pattern)
	parsed, err := syntax.Parse(l, syntax.Perl)
	if err != nil {
		off := 0
		var se *syntax.Error
		if errors.As(err, &se) && se.Expr != "" {
			if i := strings.Index(l, se.Expr); i >= 0 {
				off = len(latin1ToBytes(l[:i]))
			}
		}
		msg := err.Error()
		for _, p := range pcreOnly {
			if i := strings.Index(pattern, p.text); i >= 0 {
				msg = fmt.Sprintf("%s (PCRE-only %s is not supported by the agent's RE2 engine)", msg, p.name)
				off = i
				break
			}
		}
		if strings.Contains(msg, "backreference") || strings.Contains(msg, `\1`) {
			msg += " (PCRE backreferences are not supported by the agent's RE2 engine)"
		}
		return nil, &regexError{Offset: off, Err: fmt.Errorf("%w: %s", ErrBadRegex, msg)}
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return nil, &regexError{Err: fmt.Errorf("%w: %v", ErrBadRegex, err)}
	}
	re, err := regexp.Compile(`\A(?:` + l + `)`)
	if err != nil {
		return nil, &regexError{Err: fmt.Errorf("%w: %v", ErrBadRegex, err)}
	}
	br := &byteRegex{src: pattern, re: re, prog: prog}
	br.lit, br.form = literalForm(parsed)
	return br, nil
}

func latin1ToBytes(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return out
}

// match reports whether the regex matches s (bytes) at its first byte.
func (r *byteRegex) match(s string) bool {
	switch r.form {
	case formPrefix:
		return strings.HasPrefix(s, r.lit)
	case formComponent:
		return strings.HasPrefix(s, r.lit) && (len(s) == len(r.lit) || s[len(r.lit)] == '/')
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return r.re.MatchString(latin1(s))
		}
	}
	return r.re.MatchString(s)
}

// matchPartial is PCRE2_PARTIAL_SOFT: full when the regex matches at the
// first byte; otherwise partial when the subject ran out while a match was
// still possible (more bytes could complete it). It simulates the compiled
// program as a Pike VM; it is only used off the hot path (directories that
// matched nothing, and --limit).
func (r *byteRegex) matchPartial(s string) (full, partial bool) {
	if r.match(s) {
		return true, false
	}
	prog := r.prog
	n := len(prog.Inst)
	pair := threadSetPool.Get().(*[2]threadSet)
	defer threadSetPool.Put(pair)
	cur, next := &pair[0], &pair[1]
	cur.reset(n)
	next.reset(n)
	before := rune(-1)
	for i := 0; ; i++ {
		after := rune(-1)
		if i < len(s) {
			after = rune(s[i])
		}
		if i == 0 {
			cur.add(prog, uint32(prog.Start), before, after)
		}
		if len(cur.dense) == 0 {
			return false, false
		}
		if i == len(s) {
			for _, pc := range cur.dense {
				switch prog.Inst[pc].Op {
				case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
					return false, true
				}
			}
			return false, false
		}
		c := after
		nafter := rune(-1)
		if i+1 < len(s) {
			nafter = rune(s[i+1])
		}
		next.clear()
		for _, pc := range cur.dense {
			in := &prog.Inst[pc]
			ok := false
			switch in.Op {
			case syntax.InstRune, syntax.InstRune1:
				ok = in.MatchRune(c)
			case syntax.InstRuneAny:
				ok = true
			case syntax.InstRuneAnyNotNL:
				ok = c != '\n'
			}
			if ok {
				next.add(prog, in.Out, c, nafter)
			}
		}
		cur, next = next, cur
		before = c
	}
}

// threadSet is a sparse set of program counters.
type threadSet struct {
	sparse []uint32
	dense  []uint32
}

// threadSetPool recycles the simulation's thread sets: matchPartial runs for
// every directory no rule selected, and allocating them each time made it
// the main source of garbage in Match.
var threadSetPool = sync.Pool{New: func() any { return new([2]threadSet) }}

// reset empties t and sizes it for a program of n instructions.
func (t *threadSet) reset(n int) {
	if cap(t.sparse) < n {
		t.sparse = make([]uint32, n)
		t.dense = make([]uint32, 0, n)
	}
	t.sparse = t.sparse[:n]
	t.dense = t.dense[:0]
}

func (t *threadSet) has(pc uint32) bool {
	i := t.sparse[pc]
	return int(i) < len(t.dense) && t.dense[i] == pc
}

func (t *threadSet) clear() { t.dense = t.dense[:0] }

// add follows empty transitions from pc at a position between runes before
// and after (-1 at the text edges).
func (t *threadSet) add(prog *syntax.Prog, pc uint32, before, after rune) {
	if t.has(pc) {
		return
	}
	t.sparse[pc] = uint32(len(t.dense))
	t.dense = append(t.dense, pc)
	in := &prog.Inst[pc]
	switch in.Op {
	case syntax.InstAlt, syntax.InstAltMatch:
		t.add(prog, in.Out, before, after)
		t.add(prog, in.Arg, before, after)
	case syntax.InstNop, syntax.InstCapture:
		t.add(prog, in.Out, before, after)
	case syntax.InstEmptyWidth:
		if syntax.EmptyOp(in.Arg)&^syntax.EmptyOpContext(before, after) == 0 {
			t.add(prog, in.Out, before, after)
		}
	}
}

// nodePath is aide's strrxtok(): the literal directory prefix of a rule's
// regex, which names the rule-tree node the rule hangs on. Backslashes are
// dropped (the escaped byte is kept literally), and the scan stops at the
// first of ( ^ $ ? * [ ; the result is everything before the last '/' seen.
func nodePath(rx string) string {
	p := []byte(rx)
	if len(p) == 0 {
		return "/"
	}
	p[0] = '/'
	last := 1
	for i := 1; i < len(p); i++ {
		switch p[i] {
		case '/':
			last = i
		case '(', '^', '$', '?', '*', '[':
			i = len(p)
		case '\\':
			copy(p[i:], p[i+1:])
			p = p[:len(p)-1]
		}
	}
	if last > len(p) {
		last = len(p)
	}
	return string(p[:last])
}
