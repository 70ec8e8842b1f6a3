// Package posture checks the hardening of the places an attacker drops a
// payload into: whether the temp dirs are separate mounts with noexec,
// nosuid and nodev (from /proc/self/mountinfo), which executables sit in
// writable places, and which processes run from there or from a deleted
// file, with their TCP and UDP sockets.
//
// The parsers (ParseMountinfo, ParseNetSockets, ParseProcStat) are pure
// functions over the text the kernel writes; CheckMounts is a pure
// function over parsed mounts. The I/O shells (ScanExecutables,
// ScanProcesses, Check) read /proc and the file system only: posture never
// remounts, kills, deletes or changes anything, never follows a symlink
// when it opens a file, never prints, and returns per-file and per-process
// problems as data (counts and notes), not as errors.
package posture
