package rules

import (
	"fmt"
	"strings"
)

// attrByName maps config-language attribute names to attributes.
var attrByName = func() map[string]Attr {
	m := make(map[string]Attr, numAttrs)
	for a := Attr(0); a < numAttrs; a++ {
		m[attrNames[a]] = a
	}
	return m
}()

// skippedHashes are the hashes aide knows but the agent does not compute.
// They are accepted and dropped with one warning per name per config.
var skippedHashes = map[string]bool{
	"rmd160": true, "tiger": true, "haval": true, "gost": true, "crc32": true,
	"crc32b": true, "whirlpool": true, "stribog256": true, "stribog512": true,
}

// aideOrder is the order in which aide 0.18.3 prints attributes (its
// internal attribute numbering, seen in `aide --log-level=rule` output).
// blake3 is the agent's own and goes last.
var aideOrder = []Attr{
	AttrLinkName, AttrPerm, AttrUID, AttrGID, AttrSize, AttrAtime, AttrCtime,
	AttrMtime, AttrInode, AttrBlocks, AttrNlink, AttrMD5, AttrSHA1, AttrACL,
	AttrSizeGrowing, AttrIgnoreName, AttrANF, AttrARF, AttrSHA256, AttrSHA512,
	AttrSELinux, AttrXattrs, AttrFtype, AttrE2fsattrs, AttrCaps, AttrGrowing,
	AttrCompressed, AttrBLAKE3,
}

// AIDEString renders s the way aide prints an attribute set, e.g.
// "l+p+u+g+s+m+c+md5": aide's own attribute order, "" for the empty set.
func (s AttrSet) AIDEString() string {
	var b strings.Builder
	for _, a := range aideOrder {
		if s.Has(a) {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(attrNames[a])
		}
	}
	return b.String()
}

func set(attrs ...Attr) AttrSet {
	var s AttrSet
	for _, a := range attrs {
		s |= a.Set()
	}
	return s
}

// Built-in groups (aide.conf(5) "Default groups").
var (
	groupR = set(AttrPerm, AttrFtype, AttrInode, AttrLinkName, AttrNlink, AttrUID, AttrGID,
		AttrSize, AttrMtime, AttrCtime, AttrMD5) | ExtraAttrs
	groupL    = set(AttrPerm, AttrFtype, AttrInode, AttrLinkName, AttrNlink, AttrUID, AttrGID) | ExtraAttrs
	groupGrow = set(AttrPerm, AttrFtype, AttrLinkName, AttrUID, AttrGID, AttrInode, AttrNlink,
		AttrSize, AttrGrowing) | ExtraAttrs
)

// builtinGroups returns a fresh map of aide's default compound groups.
func builtinGroups() map[string]AttrSet {
	return map[string]AttrSet{
		"R": groupR, "L": groupL, ">": groupGrow, "H": HashAttrs, "X": ExtraAttrs, "E": 0,
	}
}

// exprError is an attribute-expression error with its sentinel.
type exprError struct {
	sentinel error
	msg      string
}

func (e *exprError) Error() string { return e.msg }
func (e *exprError) Unwrap() error { return e.sentinel }

// parseExpr evaluates an attribute expression "A+B-C" (spaces allowed around
// the operators, as aide's lexer allows) against groups. skipped receives
// each aide-only hash name met (accepted, not computed).
func parseExpr(expr string, groups map[string]AttrSet, skipped func(name string)) (AttrSet, error) {
	var result AttrSet
	op := byte('+')
	i := 0
	first := true
	for {
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t') {
			i++
		}
		start := i
		for i < len(expr) && isExprChar(expr[i]) {
			i++
		}
		name := expr[start:i]
		if name == "" {
			if i < len(expr) {
				return 0, &exprError{ErrSyntax, fmt.Sprintf("unexpected character %q in attribute expression", expr[i])}
			}
			if first {
				return 0, &exprError{ErrSyntax, "missing attribute expression"}
			}
			return 0, &exprError{ErrSyntax, "attribute expression ends with an operator"}
		}
		first = false
		v, err := lookupAttr(name, groups, skipped)
		if err != nil {
			return 0, err
		}
		if op == '+' {
			result |= v
		} else {
			result &^= v
		}
		for i < len(expr) && (expr[i] == ' ' || expr[i] == '\t') {
			i++
		}
		if i == len(expr) {
			return result, nil
		}
		switch expr[i] {
		case '+', '-':
			op = expr[i]
			i++
		default:
			return 0, &exprError{ErrSyntax, fmt.Sprintf("unexpected %q in attribute expression", expr[i:])}
		}
	}
}

func isExprChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '>'
}

func lookupAttr(name string, groups map[string]AttrSet, skipped func(string)) (AttrSet, error) {
	if v, ok := groups[name]; ok {
		return v, nil
	}
	if a, ok := attrByName[name]; ok {
		if a == AttrBLAKE3 || a == AttrSizeGrowing {
			// blake3 is the agent's; S is deprecated in aide but still valid.
			return a.Set(), nil
		}
		return a.Set(), nil
	}
	if skippedHashes[name] {
		if skipped != nil {
			skipped(name)
		}
		return 0, nil
	}
	if name[0] >= 'A' && name[0] <= 'Z' {
		return 0, &exprError{ErrUnknownGroup, fmt.Sprintf("group %q is not defined", name)}
	}
	return 0, &exprError{ErrUnknownAttr, fmt.Sprintf("unknown attribute %q", name)}
}

// restriction letters in aide's rendering order.
var restrictionOrder = []FileType{TypeFile, TypeDir, TypeFIFO, TypeSymlink, TypeBlockDev,
	TypeCharDev, TypeSocket, TypeDoor, TypePort}

// AIDEString renders a restriction as aide does: "(none)" or "f,d".
func (s TypeSet) AIDEString() string {
	if s == 0 {
		return "(none)"
	}
	var b strings.Builder
	for _, t := range restrictionOrder {
		if s&(1<<t) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(t.Letter())
		}
	}
	return b.String()
}

// parseRestriction parses "f,d" (spaces around commas allowed). "0" is the
// explicit empty restriction. Solaris D and P are refused, as aide on Linux does.
func parseRestriction(s string) (TypeSet, error) {
	var ts TypeSet
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if len(part) != 1 {
			return 0, fmt.Errorf("%w %q", ErrBadRestriction, part)
		}
		var t FileType
		switch part[0] {
		case '0':
			continue
		case 'f':
			t = TypeFile
		case 'd':
			t = TypeDir
		case 'l':
			t = TypeSymlink
		case 'c':
			t = TypeCharDev
		case 'b':
			t = TypeBlockDev
		case 'p':
			t = TypeFIFO
		case 's':
			t = TypeSocket
		default:
			return 0, fmt.Errorf("%w %q", ErrBadRestriction, part)
		}
		ts |= 1 << t
	}
	return ts, nil
}
