// Package raidcheck runs the RAID vendors' command-line tools (Areca cli64,
// 3ware tw_cli, MegaRAID MegaCli and storcli/perccli) and reads Linux md's
// /proc/mdstat, parses what they print into controllers, arrays and disks,
// and judges each with a Verdict. Anything it does not recognise is Unknown,
// which alerts: it fails closed, never OK.
//
// A cell a tool fills with N/A, NA, N.A., "-", Unknown or nothing (see
// notReported) reports nothing: it is never an alert (an IT-mode HBA's
// "S.M.A.R.T alert flagged by drive = N/A" flags nothing) and never
// evidence that something is fine. A flag or counter reading it is
// ignored; an array or disk state reading it is Unknown unless another
// section or input reports that state, and it never replaces a reported
// one when inputs are merged; a battery state reading it warns. Parsers do
// not depend on trailing blank lines, a final newline or LF line ends.
// /proc/mdstat, written by the kernel, has no such cells.
//
// Each tool has one file with a pure parser over saved outputs (areca.go,
// twcli.go, megacli.go, storcli.go, mdstat.go); probe.go finds the tools and
// runs them with an argv, a timeout and LC_ALL=C, never through a shell.
// The package never prints and never exits.
package raidcheck
