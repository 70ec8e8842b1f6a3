package report

import (
	"bufio"
	"bytes"
	"fmt"
)

// Pending is a report rendered into a buffer but for its tail: the
// baselines with their digests and the end time, which both layouts put
// last. A run can start rendering as soon as it knows its changes and
// learn the rest meanwhile (a new baseline's digest once the file is
// written); Finish then renders the tail from the report as it is by
// then. Until Finish returns, the report must not change but for End,
// BaselineDigest and NewBaselineDigest.
type Pending struct {
	finish func() error
}

// Finish renders the tail and completes the buffer. It is called once.
func (p *Pending) Finish() error { return p.finish() }

// TextBody renders r into b as WriteText does, but for the tail.
func TextBody(b *bytes.Buffer, r *Report) *Pending {
	bw := bufio.NewWriter(b)
	t := &textWriter{w: bw, r: r}
	t.body()
	return &Pending{finish: func() error {
		t.tail()
		return bw.Flush()
	}}
}

// JSONBody renders r into b as WriteJSON does, but for the tail.
func JSONBody(b *bytes.Buffer, r *Report) *Pending {
	j := &jsonWriter{r: r, b: b}
	// About 650 bytes per listed change with its details and provenance
	// (measured on a package upgrade).
	j.b.Grow(4096 + 700*(r.Added+r.Removed+r.Changed))
	j.body()
	return &Pending{finish: func() error {
		j.tail()
		if j.err != nil {
			return fmt.Errorf("report: json: %w", j.err)
		}
		j.b.WriteByte('\n')
		return nil
	}}
}
