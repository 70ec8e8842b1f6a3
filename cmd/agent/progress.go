package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"opsagent/scanner"
)

// progress draws a one-line progress display on a terminal: entries,
// bytes hashed, rate and, when the expected entry count is known (the
// baseline's), the ETA.
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress returns nil (no display) unless w is a terminal and quiet is
// off. expected is the baseline's entry count, or 0 when unknown.
func newProgress(w io.Writer, quiet bool, verb string, expected uint64) *progress {
	f, ok := w.(*os.File)
	if quiet || !ok || !isTerminal(f) {
		return nil
	}
	max := int64(-1)
	if expected > 0 {
		max = int64(expected)
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(verb),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("entries"),
		progressbar.OptionSetPredictTime(expected > 0),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionSpinnerType(14),
	)
	return &progress{bar: bar}
}

// update is scanner.Options.Progress.
func (p *progress) update(st scanner.Stats) {
	p.bar.Describe(fmt.Sprintf("scanning, %s hashed", humanBytes(st.BytesHashed)))
	_ = p.bar.Set64(st.Entries)
}

func (p *progress) finish() {
	if p != nil {
		_ = p.bar.Clear()
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
