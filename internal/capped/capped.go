// Package capped is an io.Writer that keeps the first Max bytes written to
// it and swallows the rest, recording the loss, so a chatty child process
// (a RAID CLI, rpm) is never blocked or killed by a full pipe and never
// grows the agent's memory without bound.
package capped

import "bytes"

// Buffer keeps the first Max bytes written.
type Buffer struct {
	Max  int
	buf  bytes.Buffer
	over bool
}

// Write keeps what fits under Max and reports every byte as written.
func (c *Buffer) Write(b []byte) (int, error) {
	if room := c.Max - c.buf.Len(); len(b) > room {
		c.over = true
		if room > 0 {
			c.buf.Write(b[:room])
		}
		return len(b), nil
	}
	return c.buf.Write(b)
}

// Bytes returns what was kept.
func (c *Buffer) Bytes() []byte { return c.buf.Bytes() }

// String returns what was kept.
func (c *Buffer) String() string { return c.buf.String() }

// Over reports whether bytes were dropped.
func (c *Buffer) Over() bool { return c.over }
