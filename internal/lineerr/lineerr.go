// Package lineerr is the error type the config parsers share (agent.conf,
// vbladed.conf, sshval rules): an error at a file, line and optional column
// that unwraps to its cause, and the list of every error one pass found.
package lineerr

import (
	"strconv"
	"strings"
)

// Error is an error at a position of a file. Line and Col are 1-based;
// Line 0 means the error belongs to no line, Col 0 that the column is
// unknown.
type Error struct {
	File string
	Line int
	Col  int
	Err  error
}

// Error renders "file:line:col: cause", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause, which wraps the parser's sentinel.
func (e *Error) Unwrap() error { return e.Err }

// List is every error one pass over a file found, in order.
type List []*Error

// Error lists each error on its own line.
func (l List) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap exposes every entry to errors.Is and errors.As.
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns nil for an empty list and the list otherwise, so that an
// empty List never becomes a non-nil error.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
