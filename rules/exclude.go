package rules

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrExcludesRoot is returned by Exclude for a path that holds the whole
// scanned tree (state_dir=/): excluding it would leave nothing to scan.
var ErrExcludesRoot = errors.New("rules: excluded path contains the whole scanned tree")

// Exclusion is a path the agent writes itself (its state_dir, report_dir,
// run_dir, a report file, a log). It and everything below it are pruned
// from every scan, whatever the rules say, so that the agent never reports
// its own files.
type Exclusion struct {
	// Path is in the scanned namespace: absolute, clean, symlinks of the
	// host path resolved, and root_prefix removed.
	Path string
	// Host is the resolved path on the host, root_prefix included.
	Host string
	// Reason names what the agent keeps there, e.g. "agent state_dir".
	Reason string
}

// Exclude prunes hostPath and everything below it from Match (Match.Excluded
// is then reason), when it lies inside the scanned tree (root_prefix, "/"
// when unset). hostPath may be relative (to the working directory) and may
// not exist yet: it is made absolute and cleaned, and the symlinks of its
// longest existing prefix are resolved, since the scanner sees the real
// directories and never follows a symlink. A path outside the scanned tree
// is ignored; one that is the scanned root or above it is an error wrapping
// ErrExcludesRoot. A hostPath of "" is ignored.
//
// Exclude is not safe to call concurrently with Match; call it before
// scanning.
func (p *Policy) Exclude(hostPath, reason string) error {
	if hostPath == "" {
		return nil
	}
	host, err := resolvePath(hostPath)
	if err != nil {
		return fmt.Errorf("%s %s: %w", reason, hostPath, err)
	}
	rootOpt := p.Options.RootPrefix
	if rootOpt == "" {
		rootOpt = "/"
	}
	root, err := resolvePath(rootOpt)
	if err != nil {
		return fmt.Errorf("root_prefix %s: %w", rootOpt, err)
	}
	if within(root, host) {
		return fmt.Errorf("%w: %s %s holds the scanned tree %s", ErrExcludesRoot, reason, hostPath, root)
	}
	if !within(host, root) {
		return nil // not scanned
	}
	inner := host
	if root != "/" {
		inner = host[len(root):]
	}
	p.excl = append(p.excl, Exclusion{Path: inner, Host: host, Reason: reason})
	for _, r := range p.Rules {
		if r.Kind != Selective && r.Kind != Equal {
			continue
		}
		if lit := literalPrefix(r.Regex); lit != "" && within(lit, inner) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s:%d: %s %s holds the tree of rule '%s': it is not scanned",
				r.File, r.Line, reason, host, r.Text))
		}
	}
	return nil
}

// literalPrefix is the part of a rule's regex before its first
// metacharacter, with escapes removed: "/var/log" for "/var/log/.*",
// "/etc/ld.so.cache" for `/etc/ld\.so\.cache$`. "" when the regex does not
// start with "/".
func literalPrefix(rx string) string {
	if !strings.HasPrefix(rx, "/") {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(rx); i++ {
		c := rx[i]
		switch c {
		case '?', '*', '{':
			// The byte before is optional.
			s := b.String()
			return strings.TrimSuffix(s[:len(s)-1], "/")
		case '(', ')', '^', '$', '+', '[', '|', '.':
			return strings.TrimSuffix(b.String(), "/")
		case '\\':
			if i+1 < len(rx) && strings.IndexByte(".+*?()[]{}|^$\\/", rx[i+1]) >= 0 {
				i++
				b.WriteByte(rx[i])
				continue
			}
			return strings.TrimSuffix(b.String(), "/")
		}
		b.WriteByte(c)
	}
	return strings.TrimSuffix(b.String(), "/")
}

// Exclusions returns the paths set by Exclude, in the order they were added.
func (p *Policy) Exclusions() []Exclusion {
	return append([]Exclusion(nil), p.excl...)
}

// excluded returns the reason of the first exclusion that holds path, "" for
// none.
func (p *Policy) excluded(path string) string {
	for i := range p.excl {
		if within(path, p.excl[i].Path) {
			return p.excl[i].Reason
		}
	}
	return ""
}

// within reports whether path is dir or below it (both clean and absolute).
func within(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || strings.HasPrefix(path, dir) && path[len(dir)] == '/'
}

// resolvePath makes p absolute and clean and resolves the symlinks of its
// longest prefix that resolves (exists and can be searched); the rest is
// appended as written.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r, nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = append(rest, filepath.Base(cur))
		cur = parent
	}
}
