package pkgdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"opsagent/internal/lineerr"
)

// ErrDNFLog is the cause of every error in dnf's rpm log: a package line
// whose package does not parse.
var ErrDNFLog = errors.New("pkgdb: malformed dnf rpm log")

// dnfRunGap splits the operations of one dnf invocation into two runs when
// it passes between two of them: a log that lost its "logging initialized"
// line must not merge a month of transactions into one window.
const dnfRunGap = 10 * time.Minute

// dnfActions maps the verbs of dnf.rpm.log to operations. The "-ed" forms
// name the package going away in an upgrade, downgrade or obsoletion (the
// old version) or, for Installed/Reinstalled/Erased, repeat the present
// form in older dnf releases; Cleanup, Verify and scriptlet lines are no
// operations.
var dnfActions = map[string]struct {
	action Action
	old    bool // the package named is the version being replaced
}{
	"Install":     {ActionInstall, false},
	"Installed":   {ActionInstall, false},
	"Reinstall":   {ActionUpgrade, false},
	"Reinstalled": {ActionUpgrade, true},
	"Upgrade":     {ActionUpgrade, false},
	"Upgraded":    {ActionUpgrade, true},
	"Downgrade":   {ActionUpgrade, false},
	"Downgraded":  {ActionUpgrade, true},
	"Obsolete":    {ActionInstall, false},
	"Obsoleted":   {ActionRemove, false},
	"Erase":       {ActionRemove, false},
	"Erased":      {ActionRemove, false},
}

// ParseDNFLog parses dnf's rpm transaction log (/var/log/dnf.rpm.log) into
// runs, oldest first. Each dnf invocation begins with an INFO "--- logging
// initialized ---" line; its package lines form one run (split where they
// are more than dnfRunGap apart), from the first line's time to the end of
// the last one's second (the log has second resolution):
//
//	2024-05-01T10:00:00+0000 INFO --- logging initialized ---
//	2024-05-01T10:00:12+0000 SUBDEBUG Upgrade: openssl-libs-1:3.2.2-6.el9.x86_64
//	2024-05-01T10:00:14+0000 SUBDEBUG Upgraded: openssl-libs-1:3.0.7-27.el9.x86_64
//	2024-05-01T10:00:15+0000 SUBDEBUG Erase: nano-5.6.1-5.el9.x86_64
//
// An Upgrade (Downgrade, Reinstall) line and the Upgraded line after it for
// the same package make one operation with both versions; Erase is a
// removal. Operation.Package is "name.arch", rpm's own spelling, as the
// log has no other way to tell a multilib pair apart. Lines without a leading timestamp (the continuation of a
// multi-line message) and messages that are no package operation are
// skipped. A package line whose package is not name-[epoch:]version-release.arch
// is a lineerr.Error unwrapping to ErrDNFLog.
func ParseDNFLog(r io.Reader, name string) ([]Run, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var runs []Run
	var cur *Run
	flush := func() {
		if cur != nil && len(cur.Ops) > 0 {
			runs = append(runs, *cur)
		}
		cur = nil
	}
	line := 0
	for sc.Scan() {
		line++
		stamp, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		t, err := time.Parse("2006-01-02T15:04:05Z0700", stamp)
		if err != nil {
			continue
		}
		t = t.UTC()
		_, msg, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
		if strings.TrimSpace(msg) == "--- logging initialized ---" {
			flush()
			continue
		}
		verb, pkg, ok := strings.Cut(msg, ": ")
		act, known := dnfActions[verb]
		if !ok || !known {
			continue
		}
		n, arch, evr, err := splitNEVRA(strings.TrimSpace(pkg))
		if err != nil {
			return nil, &lineerr.Error{File: name, Line: line, Err: fmt.Errorf("%w: %s %v", ErrDNFLog, verb, err)}
		}
		if cur != nil && t.Sub(cur.End) > dnfRunGap {
			flush()
		}
		if cur == nil {
			cur = &Run{Start: t}
		}
		if end := t.Add(time.Second); end.After(cur.End) {
			cur.End = end
		}
		cur.Ops = addDNFOp(cur.Ops, Operation{Time: t, Action: act.action, Package: n + "." + arch}, evr, act.old)
	}
	if err := sc.Err(); err != nil {
		return nil, &lineerr.Error{File: name, Line: line + 1, Err: fmt.Errorf("%w: %v", ErrDNFLog, err)}
	}
	flush()
	return runs, nil
}

// addDNFOp adds op for version evr, pairing the two lines of an upgrade and
// dropping the repeated line of an install or removal.
func addDNFOp(ops []Operation, op Operation, evr string, old bool) []Operation {
	for i := len(ops) - 1; i >= 0; i-- {
		o := &ops[i]
		if o.Package != op.Package || o.Action != op.Action {
			continue
		}
		switch {
		case old && o.OldVersion == "" && o.NewVersion != "":
			o.OldVersion = evr
			return ops
		case !old && op.Action == ActionRemove && o.OldVersion == evr:
			return ops
		case !old && op.Action != ActionRemove && o.NewVersion == evr:
			return ops
		}
	}
	switch {
	case op.Action == ActionRemove:
		op.OldVersion = evr
	case old:
		// An Upgraded line with no Upgrade before it: older dnf named the
		// new version this way.
		op.NewVersion = evr
	default:
		op.NewVersion = evr
	}
	return append(ops, op)
}

// splitNEVRA splits "name-[epoch:]version-release.arch", rpm's spelling
// of an installed package, into its name, arch and "[epoch:]version-release".
func splitNEVRA(s string) (name, arch, evr string, err error) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return "", "", "", fmt.Errorf("package %q has no arch", rpmClip(s))
	}
	arch, s = s[dot+1:], s[:dot]
	rel := strings.LastIndexByte(s, '-')
	if rel <= 0 || rel == len(s)-1 {
		return "", "", "", fmt.Errorf("package %q has no release", rpmClip(s))
	}
	ver := strings.LastIndexByte(s[:rel], '-')
	if ver <= 0 || ver == rel-1 {
		return "", "", "", fmt.Errorf("package %q has no version", rpmClip(s))
	}
	if strings.ContainsAny(s, " \t/") || strings.ContainsAny(arch, " \t/") {
		return "", "", "", fmt.Errorf("package %q has a space or slash", rpmClip(s))
	}
	return s[:ver], arch, s[ver+1:], nil
}
