package report

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrEscape is returned by UnescapeJSONPath for a malformed escape sequence.
var ErrEscape = errors.New("report: malformed path escape")

// EscapePath renders p the way aide 0.18.3 prints names and values in its
// plain reports: each control byte (0x00-0x1f and 0x7f) becomes a backslash
// and three octal digits ("\012" for a newline, "\011" for a tab, "\033" for
// ESC), and every other byte is copied unchanged. Backslashes, spaces,
// quotes, '%' and bytes 0x80-0xff (valid UTF-8 or not) are NOT escaped, as in
// aide, so the result may be invalid UTF-8 and is not always reversible (a
// name holding a literal `\012` prints like one holding a newline). The
// escaping exists so a file name cannot forge report lines or terminal escape
// sequences; JSON reports use the reversible EscapeJSONPath instead.
func EscapePath(p string) string {
	i := 0
	for i < len(p) && !isControl(p[i]) {
		i++
	}
	if i == len(p) {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 8)
	b.WriteString(p[:i])
	for ; i < len(p); i++ {
		c := p[i]
		if isControl(c) {
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + (c>>3)&7)
			b.WriteByte('0' + c&7)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isControl(c byte) bool { return c < 0x20 || c == 0x7f }

// EscapeJSONPath makes a path (bytes, not necessarily UTF-8) safe for a JSON
// string without losing a byte: a literal backslash becomes `\\` and every
// byte that is not part of a valid UTF-8 sequence becomes `\xHH` (two
// lower-case hex digits). Everything else, control characters included, is
// kept (the JSON encoder escapes those itself). The mapping is injective, so
// two different paths never share a JSON key, and UnescapeJSONPath reverses
// it. A path without backslashes that is valid UTF-8 is unchanged, which is
// what aide itself prints.
func EscapeJSONPath(p string) string {
	if asciiNoBackslash(p) || utf8.ValidString(p) && !strings.Contains(p, `\`) {
		return p
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\\' {
			b.WriteString(`\\`)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(p[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			i++
			continue
		}
		b.WriteString(p[i : i+size])
		i += size
	}
	return b.String()
}

// UnescapeJSONPath reverses EscapeJSONPath. It returns ErrEscape for a
// backslash followed by anything but `\` or `xHH`.
func UnescapeJSONPath(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			b.WriteByte('\\')
			i++
			continue
		}
		if i+3 < len(s) && s[i+1] == 'x' {
			hi, ok1 := unhex(s[i+2])
			lo, ok2 := unhex(s[i+3])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 3
				continue
			}
		}
		return "", ErrEscape
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// asciiNoBackslash reports whether p is ASCII without a backslash (the
// common path, which EscapeJSONPath returns as it is), eight bytes at a
// time.
func asciiNoBackslash(p string) bool {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		if w := load8(p[i:]); w&highBits != 0 || hasByte(w, '\\') {
			return false
		}
	}
	for ; i < len(p); i++ {
		if p[i] >= utf8.RuneSelf || p[i] == '\\' {
			return false
		}
	}
	return true
}

// The eight-bytes-at-a-time scans of EscapeJSONPath and plainJSON: a
// string's bytes as one little-endian word, each byte's lowest and
// highest bit.
const (
	lowBits  = 0x0101010101010101
	highBits = 0x8080808080808080
)

// load8 is the first eight bytes of s (at least eight) as one word.
func load8(s string) uint64 {
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasByte reports whether one of the eight bytes of w is c.
func hasByte(w uint64, c byte) bool {
	x := w ^ uint64(c)*lowBits
	return (x-lowBits)&^x&highBits != 0
}
