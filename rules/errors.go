package rules

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel causes of parse errors. A ParseError unwraps to one of them.
var (
	ErrUnknownOption  = errors.New("rules: unknown config option")
	ErrBadValue       = errors.New("rules: invalid option value")
	ErrUnknownAttr    = errors.New("rules: unknown attribute")
	ErrUnknownGroup   = errors.New("rules: group is not defined")
	ErrBadGroupName   = errors.New("rules: invalid group name")
	ErrBadRegex       = errors.New("rules: invalid regular expression")
	ErrBadRestriction = errors.New("rules: invalid file type restriction")
	ErrSyntax         = errors.New("rules: syntax error")
	ErrInclude        = errors.New("rules: include failed")
	ErrXInclude       = errors.New("rules: x_include failed")
	ErrUnbalancedIf   = errors.New("rules: unbalanced @@if/@@else/@@endif")
	ErrBadVariable    = errors.New("rules: invalid variable name")
	ErrTooManyErrors  = errors.New("rules: too many errors")
)

// maxErrors caps how many errors one pass collects.
const maxErrors = 100

// ParseError is an error at a position of a config file. Line and Col are
// 1-based; Col is 0 when the column is unknown (only regex errors have one).
type ParseError struct {
	File string
	Line int
	Col  int
	Err  error
}

// Error renders "file:line: msg" or "file:line:col: msg".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Line))
	if e.Col > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Col))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause, which wraps one of the sentinels.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrorList is every error found in one pass over a config, in order.
type ErrorList []*ParseError

// Error lists each error on its own line.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes the errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns nil for an empty list and the list otherwise.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
