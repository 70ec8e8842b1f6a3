package rules

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadOptions tune Load and Parse.
type LoadOptions struct {
	// Hostname is the short host name for @@{HOSTNAME} and "@@if hostname".
	// Empty means os.Hostname() cut at the first dot.
	Hostname string
	// AgentVersion is the value of the predefined variable AGENT (always
	// defined when the agent parses, so "@@ifdef AGENT" holds).
	AgentVersion string
	// Defines are extra predefined variables.
	Defines map[string]string
	// Before and After are config lines parsed before and after the file
	// (aide's -B and -A).
	Before, After []string
	// NoIncludes refuses @@include and @@x_include (ErrInclude): for
	// parsing untrusted text such as fuzz input, which must not read files
	// or run programs.
	NoIncludes bool
}

// maxIncludeDepth is aide's limit on nested includes.
const maxIncludeDepth = 16

// Load reads the config file at path, with its includes.
func Load(path string, opts LoadOptions) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return parseAll(path, data, opts)
}

// Parse parses a config from r; name labels errors and rules. Includes are
// resolved as aide does: paths are used as written (absolute, or relative to
// the working directory).
func Parse(r io.Reader, name string, opts LoadOptions) (*Policy, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	return parseAll(name, data, opts)
}

func parseAll(name string, data []byte, opts LoadOptions) (*Policy, error) {
	p := newParser(opts)
	if len(opts.Before) > 0 {
		p.parseSource("(before)", []byte(strings.Join(opts.Before, "\n")), "", 0)
	}
	p.parseSource(name, data, "", 0)
	if len(opts.After) > 0 {
		p.parseSource("(after)", []byte(strings.Join(opts.After, "\n")), "", 0)
	}
	p.checkMail()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	pol := p.pol
	if pol.Options.ReportDir == "" {
		pol.Options.ReportDir = strings.TrimSuffix(pol.Options.StateDir, "/") + "/reports"
	}
	pol.Digest = sha256.Sum256([]byte(pol.Format()))
	return pol, nil
}

// parser holds the state of one pass over a config and its includes.
type parser struct {
	opts       LoadOptions
	hostname   string
	vars       map[string]string
	groups     map[string]AttrSet
	pol        *Policy
	errs       ErrorList
	warnedHash map[string]bool
	seen       map[string]bool // options met (for first-wins)
	setenv     []string        // @@x_include_setenv
	sys        sysOps
}

func newParser(opts LoadOptions) *parser {
	p := &parser{
		opts:       opts,
		vars:       map[string]string{},
		groups:     builtinGroups(),
		pol:        &Policy{Options: defaultOptions(), Groups: map[string]AttrSet{}},
		warnedHash: map[string]bool{},
		seen:       map[string]bool{},
		sys:        osSys{},
	}
	p.hostname = opts.Hostname
	if p.hostname == "" {
		p.hostname = p.sys.hostname()
	}
	p.vars["HOSTNAME"] = p.hostname
	p.vars["AGENT"] = opts.AgentVersion
	for k, v := range opts.Defines {
		p.vars[k] = v
	}
	return p
}

// errorf records an error at file:line. It stops collecting at maxErrors.
func (p *parser) errAt(file string, line, col int, err error) {
	if len(p.errs) >= maxErrors {
		return
	}
	if len(p.errs) == maxErrors-1 {
		err = fmt.Errorf("%w (stopping here)", ErrTooManyErrors)
	}
	p.errs = append(p.errs, &ParseError{File: file, Line: line, Col: col, Err: err})
}

func (p *parser) warn(file string, line int, format string, args ...any) {
	p.pol.Warnings = append(p.pol.Warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
}

// ifFrame is one open @@if.
type ifFrame struct {
	line      int
	taking    bool // the current branch is used
	parentOn  bool // the enclosing context is active
	inElse    bool
	stmts     int // statements in the current branch (aide refuses empty branches)
	directive string
}

// parseSource parses one config text. prefix is the RULE_PREFIX in force.
func (p *parser) parseSource(name string, data []byte, prefix string, depth int) {
	var stack []*ifFrame
	active := func() bool {
		if len(stack) == 0 {
			return true
		}
		top := stack[len(stack)-1]
		return top.parentOn && top.taking
	}
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, raw := range lines {
		lineno := i + 1
		text := string(raw)
		t := strings.Trim(text, " \t\r")
		if t == "" || t[0] == '#' {
			continue
		}
		if len(stack) > 0 {
			stack[len(stack)-1].stmts++
		}
		if strings.HasPrefix(t, "@@") && !strings.HasPrefix(t, "@@{") {
			word, rest := cutWord(t[2:])
			switch word {
			case "if", "ifdef", "ifndef", "ifhost", "ifnhost":
				f := &ifFrame{line: lineno, parentOn: active(), directive: word}
				if f.parentOn {
					ok, err := p.condition(word, rest)
					if err != nil {
						p.errAt(name, lineno, 0, err)
					}
					f.taking = ok
				}
				stack = append(stack, f)
				continue
			case "else":
				if len(stack) == 0 || stack[len(stack)-1].inElse {
					p.errAt(name, lineno, 0, fmt.Errorf("%w: @@else without @@if", ErrUnbalancedIf))
					continue
				}
				top := stack[len(stack)-1]
				if top.stmts <= 1 {
					p.errAt(name, lineno, 0, fmt.Errorf("%w: empty @@%s block (aide refuses it)", ErrSyntax, top.directive))
				}
				top.inElse, top.taking, top.stmts = true, !top.taking, 0
				continue
			case "endif":
				if len(stack) == 0 {
					p.errAt(name, lineno, 0, fmt.Errorf("%w: @@endif without @@if", ErrUnbalancedIf))
					continue
				}
				top := stack[len(stack)-1]
				if top.stmts <= 1 {
					p.errAt(name, lineno, 0, fmt.Errorf("%w: empty @@%s block (aide refuses it)", ErrSyntax, top.directive))
				}
				stack = stack[:len(stack)-1]
				continue
			}
			if !active() {
				continue
			}
			p.directive(name, lineno, word, rest, prefix, depth)
			continue
		}
		if !active() {
			continue
		}
		p.statement(name, lineno, text, t, prefix)
	}
	for _, f := range stack {
		p.errAt(name, f.line, 0, fmt.Errorf("%w: @@%s without @@endif", ErrUnbalancedIf, f.directive))
	}
}

// cutWord splits s at the first blank into a word and the trimmed rest.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.Trim(s[i:], " \t")
}

// condition evaluates the argument of an @@if-like directive.
func (p *parser) condition(directive, rest string) (bool, error) {
	switch directive {
	case "ifdef", "ifndef":
		if !isVarName(rest) {
			return false, fmt.Errorf("%w: @@%s needs one variable name, got %q", ErrSyntax, directive, rest)
		}
		_, ok := p.vars[rest]
		return ok == (directive == "ifdef"), nil
	case "ifhost", "ifnhost":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return false, fmt.Errorf("%w: @@%s needs one host name, got %q", ErrSyntax, directive, rest)
		}
		return (p.expand(rest) == p.hostname) == (directive == "ifhost"), nil
	}
	words := splitWords(rest)
	neg := false
	for len(words) > 0 && words[0] == "not" {
		neg = !neg
		words = words[1:]
	}
	if len(words) != 2 {
		return false, fmt.Errorf("%w: @@if expects [not...] defined VAR | hostname NAME | exists PATH, got %q", ErrSyntax, rest)
	}
	arg := p.expand(words[1])
	var v bool
	switch words[0] {
	case "defined":
		if !isVarName(words[1]) {
			return false, fmt.Errorf("%w: %q", ErrBadVariable, words[1])
		}
		_, v = p.vars[words[1]]
	case "hostname":
		v = arg == p.hostname
	case "exists":
		v = p.sys.exists(arg)
	default:
		return false, fmt.Errorf("%w: unknown @@if function %q", ErrSyntax, words[0])
	}
	return v != neg, nil
}

func isVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isEnvName(s string) bool {
	return isVarName(s) && !(s[0] >= '0' && s[0] <= '9')
}

// splitWords splits s at unescaped blanks; backslash escapes stay in the words.
func splitWords(s string) []string {
	var out []string
	start := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' || c == '\t' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
		if c == '\\' && i+1 < len(s) {
			i++
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// expand applies aide's escapes and macro substitution to one token:
// "\\" → "\", "\ " → " ", "\@" → "@" (which then starts no macro), any other
// "\x" stays as written (it belongs to the regex), and @@{VAR} becomes the
// variable's value ("" when undefined).
func (p *parser) expand(s string) string {
	if !strings.ContainsAny(s, "\\@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			n := s[i+1]
			if n == '\\' || n == ' ' || n == '@' {
				b.WriteByte(n)
			} else {
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
		case c == '@' && strings.HasPrefix(s[i:], "@@{"):
			end := strings.IndexByte(s[i+3:], '}')
			if end >= 0 && isVarName(s[i+3:i+3+end]) {
				b.WriteString(p.vars[s[i+3:i+3+end]])
				i += 3 + end
				continue
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// directive handles @@define, @@undef, @@include, @@x_include and
// @@x_include_setenv in an active part of a config.
func (p *parser) directive(file string, line int, word, rest, prefix string, depth int) {
	args := splitWords(rest)
	switch word {
	case "define":
		if len(args) < 1 || len(args) > 2 || !isVarName(args[0]) {
			p.errAt(file, line, 0, fmt.Errorf("%w: @@define VAR [VALUE], got %q", ErrSyntax, rest))
			return
		}
		val := ""
		if len(args) == 2 {
			val = p.expand(args[1])
		}
		p.vars[args[0]] = val
	case "undef":
		if len(args) != 1 || !isVarName(args[0]) {
			p.errAt(file, line, 0, fmt.Errorf("%w: @@undef VAR, got %q", ErrSyntax, rest))
			return
		}
		if _, ok := p.vars[args[0]]; !ok {
			p.warn(file, line, "variable %q to be undefined not found", args[0])
		}
		delete(p.vars, args[0])
	case "x_include_setenv":
		if len(args) != 2 || !isEnvName(args[0]) {
			p.errAt(file, line, 0, fmt.Errorf("%w: @@x_include_setenv VAR VALUE (VAR: [A-Za-z_][A-Za-z0-9_]*), got %q", ErrBadVariable, rest))
			return
		}
		p.setenv = append(p.setenv, args[0]+"="+p.expand(args[1]))
	case "include", "x_include":
		if len(args) < 1 || len(args) > 3 {
			p.errAt(file, line, 0, fmt.Errorf("%w: @@%s FILE | DIRECTORY REGEX [RULE_PREFIX], got %q", ErrSyntax, word, rest))
			return
		}
		for i := range args {
			args[i] = p.expand(args[i])
		}
		if len(args) == 1 && word == "include" && args[0] == "" {
			p.errAt(file, line, 0, fmt.Errorf("%w: empty include path", ErrInclude))
			return
		}
		p.include(file, line, word == "x_include", args, prefix, depth)
	default:
		p.errAt(file, line, 0, fmt.Errorf("%w: unknown directive @@%s", ErrSyntax, word))
	}
}

// statement handles an option, a group definition or a selection line.
// raw is the line as written, t the trimmed line.
func (p *parser) statement(file string, line int, raw, t, prefix string) {
	switch {
	case t[0] == '/':
		p.rule(file, line, raw, Selective, t, prefix)
		return
	case strings.HasPrefix(t, "=/"):
		p.rule(file, line, raw, Equal, t[1:], prefix)
		return
	case strings.HasPrefix(t, "!/"):
		p.rule(file, line, raw, Negative, t[1:], prefix)
		return
	case strings.HasPrefix(t, "-/"):
		p.rule(file, line, raw, Prune, t[1:], prefix)
		return
	}
	eq := strings.IndexByte(t, '=')
	if eq < 0 {
		w, _ := cutWord(t)
		if isOptionName(w) {
			p.errAt(file, line, 0, fmt.Errorf("%w %q", ErrUnknownOption, w))
		} else {
			p.errAt(file, line, 0, fmt.Errorf("%w: unexpected line %q", ErrSyntax, t))
		}
		return
	}
	name := strings.Trim(t[:eq], " \t")
	val := strings.Trim(t[eq+1:], " \t")
	switch {
	case isOptionName(name):
		p.option(file, line, name, val)
	case isVarName(name):
		p.group(file, line, name, val)
	default:
		p.errAt(file, line, 0, fmt.Errorf("%w %q (alphanumeric characters only)", ErrBadGroupName, name))
	}
}

// isOptionName: aide lexes lower-case words with underscores as option
// names and anything else alphanumeric as a group name.
func isOptionName(s string) bool {
	if optionByName[s] != nil || removedOptions[s] != "" {
		return true
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z' || s[i] == '_') {
			return false
		}
	}
	return true
}

func (p *parser) skippedHash(file string, line int) func(string) {
	return func(name string) {
		if !p.warnedHash[name] {
			p.warnedHash[name] = true
			p.warn(file, line, "hash %q is not computed by the agent (skipped)", name)
		}
	}
}

func (p *parser) evalExpr(file string, line int, expr string) (AttrSet, bool) {
	v, err := parseExpr(expr, p.groups, p.skippedHash(file, line))
	if err != nil {
		p.errAt(file, line, 0, err)
		return 0, false
	}
	return v, true
}

func (p *parser) group(file string, line int, name, expr string) {
	if strings.HasPrefix(expr, "#") || strings.Contains(expr, " #") || strings.Contains(expr, "\t#") {
		p.errAt(file, line, 0, fmt.Errorf("%w: unexpected character '#' (comments must be on their own line)", ErrSyntax))
		return
	}
	v, ok := p.evalExpr(file, line, expr)
	if !ok {
		return
	}
	if strings.Contains(name, "_") {
		p.warn(file, line, "special characters in group names are deprecated in aide; use only A-Za-z0-9 (%q)", name)
	}
	if old, ok := p.groups[name]; ok && old != v {
		p.warn(file, line, "redefine group %q with value %q (previous value: %q)", name, v.AIDEString(), old.AIDEString())
	}
	p.groups[name] = v
	p.pol.Groups[name] = v
}

// stripComment removes a trailing "# ..." that follows a blank.
func stripComment(v string) string {
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') && (i < 2 || v[i-2] != '\\') {
			return strings.TrimRight(v[:i], " \t")
		}
	}
	return v
}

func (p *parser) option(file string, line int, name, val string) {
	def, ok := optionByName[name]
	if !ok {
		if hint, ok := removedOptions[name]; ok {
			p.errAt(file, line, 0, fmt.Errorf("%w %q: %s", ErrUnknownOption, name, hint))
			return
		}
		p.errAt(file, line, 0, fmt.Errorf("%w %q", ErrUnknownOption, name))
		return
	}
	val = stripComment(val)
	var attrs AttrSet
	switch def.kind {
	case valExpr:
		v, ok := p.evalExpr(file, line, val)
		if !ok {
			return
		}
		attrs = v
	case valToken:
		words := splitWords(val)
		if len(words) > 1 {
			p.errAt(file, line, 0, fmt.Errorf("%w: unexpected %q after the value of %s", ErrSyntax, words[1], name))
			return
		}
		val = p.expand(val)
	case valRest:
		val = p.expand(val)
	}
	if def.notice != "" {
		p.warn(file, line, "%s %s", name, def.notice)
	}
	if def.ignored != "" {
		p.pol.Ignored = append(p.pol.Ignored, fmt.Sprintf("%s:%d: %s is ignored: %s", file, line, name, def.ignored))
	}
	if def.firstWins && p.seen[name] {
		return
	}
	p.seen[name] = true
	if err := def.set(&p.pol.Options, val, attrs); err != nil {
		p.errAt(file, line, 0, err)
		return
	}
	if p.pol.optSrc == nil {
		p.pol.optSrc = map[string]OptionSource{}
	}
	p.pol.optSrc[name] = OptionSource{File: file, Line: line}
}

// rule parses a selection line; body starts at the regex's leading '/'.
func (p *parser) rule(file string, line int, raw string, kind RuleKind, body, prefix string) {
	words := splitWords(body)
	rx := prefix + p.expand(words[0])
	rest := strings.Join(words[1:], " ")
	r := &Rule{Kind: kind, File: file, Line: line, Text: strings.TrimRight(raw, "\r"), Prefix: prefix}
	if strings.Contains(rest, "#") {
		p.errAt(file, line, 0, fmt.Errorf("%w: unexpected character '#' (comments must be on their own line)", ErrSyntax))
		return
	}
	restr, expr, hasRestr := splitRestriction(rest)
	switch kind {
	case Negative, Prune:
		if expr != "" && hasRestr {
			p.errAt(file, line, 0, fmt.Errorf("%w: negative rule must not have an attribute expression", ErrSyntax))
			return
		}
		if !hasRestr && rest != "" {
			restr = rest
		}
		if restr != "" {
			ts, err := parseRestriction(restr)
			if err != nil {
				p.errAt(file, line, 0, err)
				return
			}
			r.Types = ts
		}
	default:
		if rest == "" {
			p.errAt(file, line, 0, fmt.Errorf("%w: missing attribute expression", ErrSyntax))
			return
		}
		if hasRestr {
			ts, err := parseRestriction(restr)
			if err != nil {
				p.errAt(file, line, 0, err)
				return
			}
			r.Types = ts
		} else {
			expr = rest
			if strings.Contains(expr, ",") {
				p.errAt(file, line, 0, fmt.Errorf("%w: restriction %q without attribute expression", ErrSyntax, expr))
				return
			}
		}
		v, ok := p.evalExpr(file, line, expr)
		if !ok {
			return
		}
		r.Attrs, r.Expr = v, expr
	}
	r.Regex = rx
	if err := compileRule(r); err != nil {
		col := 0
		var re *regexError
		if errors.As(err, &re) {
			col = re.Offset + 1
		}
		p.errAt(file, line, col, err)
		return
	}
	if p.pol.Options.ConfigCheckWarnUnrestricted && r.Types == 0 {
		p.warn(file, line, "%s rule %q is unrestricted", kindName(kind), rx)
	}
	p.pol.Rules = append(p.pol.Rules, r)
}

func kindName(k RuleKind) string {
	switch k {
	case Equal:
		return "equal"
	case Negative:
		return "negative"
	case Prune:
		return "prune"
	}
	return "selective"
}

// splitRestriction splits "f, d p+u" into restriction "f, d" and expression
// "p+u". hasRestr is false when rest has no restriction part (a single
// expression, or a bare list).
func splitRestriction(rest string) (restr, expr string, hasRestr bool) {
	// The restriction is the leading comma list; it ends at the first blank
	// not next to a comma, and an expression must follow that does not begin
	// with an operator.
	i := 0
	for i < len(rest) {
		c := rest[i]
		if c == ' ' || c == '\t' {
			j := i
			for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
				j++
			}
			prevComma := i > 0 && rest[i-1] == ','
			nextComma := j < len(rest) && rest[j] == ','
			if prevComma || nextComma {
				i = j
				continue
			}
			if j < len(rest) && rest[j] != '+' && rest[j] != '-' {
				return rest[:i], rest[j:], true
			}
			return "", "", false
		}
		if c == '+' || c == '-' {
			return "", "", false
		}
		i++
	}
	return "", "", false
}

// compileRule compiles r's regex and checks its node path.
func compileRule(r *Rule) error {
	if !strings.HasPrefix(r.Regex, "/") {
		return fmt.Errorf("%w: rule %q must start with '/'", ErrBadRegex, r.Regex)
	}
	if strings.IndexByte(r.Regex, 0) >= 0 {
		return fmt.Errorf("%w: NUL byte in rule", ErrBadRegex)
	}
	if _, err := compileByteRegex(r.Regex); err != nil {
		return err
	}
	if strings.Contains(nodePath(r.Regex), "//") {
		return fmt.Errorf("%w: invalid double slash in rule %q", ErrBadRegex, r.Regex)
	}
	return nil
}
