// Package report renders the outcome of an integrity run (init, check,
// update, compare) as AIDE 0.18.3's plain text report and as a versioned JSON
// document, keeps reports as timestamped files with a maximum age, sends them
// to syslog, and mails them with an on-disk spool so that no report is lost.
//
// Rendering owns the layout only: it formats the []scanner.Change that
// scanner.Compare produced and never decides again what changed. Everything a
// report shows (times, host, versions, paths, digests, time zone, user names)
// is injected through Report, so the same Report always renders to the same
// bytes.
//
// History, Prune, the syslog writer, mail delivery and the Spool touch the
// file system, sockets and the network only where they are told to (a
// directory, a socket path, an SMTP URL or sendmail binary given by the
// caller) and read the clock only through an injectable Now. The package
// never prints and never exits; problems are returned as errors.
package report
