package rules

import (
	"opsagent/internal/lineerr"

	"errors"
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

// ParseError is an error at a position of a config file: "file:line: msg",
// or "file:line:col: msg" for regular expressions (Line and Col are
// 1-based). It unwraps to its cause, which wraps one of the sentinels.
type ParseError = lineerr.Error

// ErrorList is every error found in one pass over a config, in order.
type ErrorList = lineerr.List
