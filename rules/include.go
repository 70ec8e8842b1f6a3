package rules

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// sysOps is the I/O the parser needs beyond pure text: includes, executed
// snippets, "@@if exists" and the host name.
type sysOps interface {
	hostname() string
	exists(path string) bool
}

// osSys is sysOps on the real system.
type osSys struct{}

func (osSys) hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

func (osSys) exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// include handles @@include / @@x_include with args FILE or DIR REGEX [PREFIX].
func (p *parser) include(file string, line int, execute bool, args []string, prefix string, depth int) {
	sentinel := ErrInclude
	if execute {
		sentinel = ErrXInclude
	}
	if p.opts.NoIncludes {
		p.errAt(file, line, 0, fmt.Errorf("%w: includes are disabled", ErrInclude))
		return
	}
	if depth+1 > maxIncludeDepth {
		p.errAt(file, line, 0, fmt.Errorf("%w: includes nested deeper than %d", ErrInclude, maxIncludeDepth))
		return
	}
	if len(args) == 1 {
		p.includeFile(file, line, execute, args[0], false, prefix, depth)
		return
	}
	dir, pattern := args[0], args[1]
	if len(args) == 3 {
		prefix += args[2]
	}
	re, err := regexp.Compile(latin1(pattern))
	if err != nil {
		p.errAt(file, line, 0, fmt.Errorf("%w: bad file name regex %q: %v", ErrBadRegex, pattern, err))
		return
	}
	if execute {
		if err := checkExecOwner(dir); err != nil {
			p.errAt(file, line, 0, fmt.Errorf("%w: directory %w", sentinel, err))
			return
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		p.errAt(file, line, 0, fmt.Errorf("%w: %w", sentinel, err))
		return
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names) // lexical order, as aide (scandir + alphasort)
	for _, n := range names {
		if !re.MatchString(latin1(n)) {
			continue
		}
		path := strings.TrimSuffix(dir, "/") + "/" + n
		fi, err := os.Lstat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue // aide: skip, not a regular file
		}
		p.includeFile(file, line, execute, path, true, prefix, depth)
	}
}

// includeFile reads (or, for an executable under x_include, runs) one file
// and parses its content.
func (p *parser) includeFile(file string, line int, execute bool, path string, fromDir bool, prefix string, depth int) {
	fi, err := os.Stat(path)
	if err != nil {
		sentinel := ErrInclude
		if execute {
			sentinel = ErrXInclude
		}
		p.errAt(file, line, 0, fmt.Errorf("%w: %w", sentinel, err))
		return
	}
	if execute && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		if err := checkExecOwner(path); err != nil {
			p.errAt(file, line, 0, fmt.Errorf("%w: %w", ErrXInclude, err))
			return
		}
		out, err := p.run(path)
		if err != nil {
			p.errAt(file, line, 0, fmt.Errorf("%w: %w", ErrXInclude, err))
			return
		}
		p.parseSource(path+" (stdout)", out, prefix, depth+1)
		return
	}
	if !fi.Mode().IsRegular() {
		p.errAt(file, line, 0, fmt.Errorf("%w: %s is not a regular file", ErrInclude, path))
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		p.errAt(file, line, 0, fmt.Errorf("%w: %w", ErrInclude, err))
		return
	}
	p.parseSource(path, data, prefix, depth+1)
}

// checkExecOwner applies aide's rule for executed config: the file (or
// directory) must be owned by root or the current user and must not be
// group- or world-writable.
func checkExecOwner(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &fs.PathError{Op: "x_include", Path: path, Err: fmt.Errorf("cannot determine owner")}
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return &fs.PathError{Op: "x_include", Path: path, Err: fmt.Errorf("owned by uid %d, neither root nor the current user", st.Uid)}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &fs.PathError{Op: "x_include", Path: path, Err: fmt.Errorf("group- or world-writable (mode %v)", fi.Mode().Perm())}
	}
	return nil
}

// run executes an x_include snippet: argv [path], no shell. It inherits the
// environment, as aide's does, plus @@x_include_setenv variables. Any output
// on stderr or a non-zero exit is an error.
func (p *parser) run(path string) ([]byte, error) {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), p.setenv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return nil, &fs.PathError{Op: "execute", Path: path, Err: fmt.Errorf("%w: %s", err, firstLine(msg))}
		}
		return nil, &fs.PathError{Op: "execute", Path: path, Err: err}
	}
	if stderr.Len() > 0 {
		return nil, &fs.PathError{Op: "execute", Path: path, Err: fmt.Errorf("wrote to stderr: %s", firstLine(strings.TrimSpace(stderr.String())))}
	}
	return stdout.Bytes(), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
