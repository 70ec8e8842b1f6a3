// Package aoe owns ATA over Ethernet exports: the vbladed.conf format read
// by the old vbladectl wrapper, and the supervision of the vblade processes
// that serve its exports.
//
// vblade checks almost nothing it is given: it truncates shelf 70000 to
// 4464, reads a non-numeric shelf as 0, and silently drops a malformed -m
// address, which can leave a disk open to every host on the segment. So
// Parse and Validate check everything vblade does not (shelf, slot, every
// MAC strictly, file and interface, unique alias, slot and file), report
// every error of a file at once with file and line, and a config with any
// error starts nothing. Exporting to every host must be written on purpose
// with the keyword "any" in the MAC column; a malformed MAC never means it.
//
// The supervisor starts each export as
// `vblade [-m MACS] SHELF SLOT IFACE FILE` (Export.Argv) through os/exec
// with an argv, never through a shell and never through vbladed, restarts
// exports that die with backoff, and keeps its pid and state files under
// the run directory so start, stop and status work from any shell.
//
// The package never prints to stdout or stderr and never exits the
// process: it returns values and errors (*ParseError, ErrorList and the
// Err* sentinels for errors.Is) and logs only through a logger it is given.
package aoe
