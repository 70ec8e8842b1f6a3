// Package report renders the outcome of an integrity run (init, check,
// update, compare) as AIDE 0.18.3's plain text report and as a versioned JSON
// document.
//
// It owns the layout only: it formats the []scanner.Change that
// scanner.Compare produced and never decides again what changed. Everything a
// report shows (times, host, versions, paths, digests, time zone, user names)
// is injected through Report, so the same Report always renders to the same
// bytes. It never reads the clock, the environment or the file system, never
// prints, and writes only to the io.Writer it is given.
package report
