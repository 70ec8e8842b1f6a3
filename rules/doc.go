// Package rules owns the agent's configuration language: AIDE 0.18's
// config syntax (options, groups, selection lines, macros, includes) plus
// the agent's own options, parsed into a *Policy. It also owns the attribute
// set and the path-selection algorithm (Policy.Match), which follows AIDE
// 0.18.3's rule tree exactly so that a config shared with aide selects the
// same files.
//
// The package never prints, never exits and never panics on input. Loading
// may read included files, run executable @@x_include snippets (argv, no
// shell) and stat paths for "@@if exists"; everything else is pure. Parse
// errors carry file and line (ParseError) and are collected in one pass into
// an ErrorList.
package rules
