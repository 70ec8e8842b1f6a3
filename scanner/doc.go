// Package scanner walks a file system tree the way AIDE does and records one
// Entry per selected path, hashing regular files with a bounded pool of
// workers; it also owns Compare, the pure function that decides which
// attributes of two Entries differ.
//
// Scan never follows symlinks, never opens FIFOs, sockets or devices, never
// crosses into /proc or /sys unless a rule names them, and turns every
// per-file problem (unreadable, vanished, changed while read) into an Entry
// with Err set instead of aborting. It never writes to stdout or stderr and
// logs only through the *slog.Logger it is given.
package scanner
