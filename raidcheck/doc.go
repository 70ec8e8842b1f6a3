// Package raidcheck runs the RAID vendors' command-line tools (Areca cli64,
// 3ware tw_cli, MegaRAID MegaCli and storcli/perccli) and reads Linux md's
// /proc/mdstat, parses what they print into controllers, arrays and disks,
// and judges each with a Verdict. Anything it does not recognise is Unknown,
// which alerts: it fails closed, never OK.
//
// Each tool has one file with a pure parser over saved outputs (areca.go,
// twcli.go, megacli.go, storcli.go, mdstat.go); probe.go finds the tools and
// runs them with an argv, a timeout and LC_ALL=C, never through a shell.
// The package never prints and never exits.
package raidcheck
