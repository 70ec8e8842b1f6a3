package posture

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Process is a process whose executable is in a writable place, or
// deleted.
type Process struct {
	PID     int       `json:"pid"`
	UID     uint32    `json:"uid"`
	User    string    `json:"user,omitempty"`
	Exe     string    `json:"exe"`               // without the " (deleted)" suffix
	Deleted bool      `json:"deleted,omitempty"` // the file it runs from is gone (or a memfd)
	Reason  string    `json:"reason"`            // why it is listed
	Cmdline []string  `json:"cmdline"`
	Start   time.Time `json:"start,omitempty"`
	Sockets []Socket  `json:"sockets,omitempty"`
	Note    string    `json:"note,omitempty"` // what of it could not be read
	Waived  bool      `json:"waived,omitempty"`
}

// ProcStats counts the processes ScanProcesses looked at.
type ProcStats struct {
	Seen   int `json:"seen"`
	Denied int `json:"denied"` // exe link not readable (another user's process, without privilege)
}

// ProcOptions say where to look; the zero value reads /proc.
type ProcOptions struct {
	ProcRoot string // default /proc
	// Places are the writable directories (temp dirs, world-writable mount
	// points, web roots), symlinks resolved: a process whose exe is under
	// one is listed.
	Places []string
	// Owned, when set, says whether a package owns the executable at a
	// path (the package manager's records): a process whose exe no
	// package owns is listed. Nil when there are no package records.
	Owned func(path string) bool
}

const deletedSuffix = " (deleted)"

// ScanProcesses lists every process whose /proc/PID/exe is under one of
// opt.Places, in a world-writable directory, or deleted, sorted by pid,
// with its TCP and UDP sockets (matched by the socket:[INODE] links of its
// fds, from the tables of its own network namespace). Processes whose exe
// cannot be read are counted in Denied; kernel threads (no exe) are
// skipped. The error is only for an unreadable ProcRoot.
func ScanProcesses(opt ProcOptions) ([]Process, ProcStats, error) {
	root := opt.ProcRoot
	if root == "" {
		root = "/proc"
	}
	var stats ProcStats
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, stats, err
	}
	var btime int64
	if b, err := os.ReadFile(filepath.Join(root, "stat")); err == nil {
		btime, _ = parseBootTime(b)
	}
	dirMode := map[string]fs.FileMode{}
	var out []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		pdir := filepath.Join(root, e.Name())
		exe, err := os.Readlink(filepath.Join(pdir, "exe"))
		if err != nil {
			switch {
			case errors.Is(err, fs.ErrPermission):
				stats.Seen++
				stats.Denied++
			}
			continue // ENOENT: a kernel thread, or gone
		}
		stats.Seen++
		p := Process{PID: pid, Exe: exe}
		if s, ok := strings.CutSuffix(exe, deletedSuffix); ok {
			p.Exe, p.Deleted = s, true
		}
		p.Reason = whyListed(p.Exe, p.Deleted, opt.Places, dirMode)
		if p.Reason == "" && opt.Owned != nil && !opt.Owned(p.Exe) {
			p.Reason = "runs a file no package owns"
		}
		if p.Reason == "" {
			continue
		}
		fillProcess(&p, pdir, btime)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, stats, nil
}

// whyListed says why a process running exe is suspicious, "" when it is
// not. dirMode caches the mode of exe directories.
func whyListed(exe string, deleted bool, places []string, dirMode map[string]fs.FileMode) string {
	if deleted {
		return "runs from a deleted file"
	}
	for _, pl := range places {
		if under(exe, pl) {
			return "runs from " + pl
		}
	}
	dir := filepath.Dir(exe)
	m, ok := dirMode[dir]
	if !ok {
		if fi, err := os.Lstat(dir); err == nil {
			m = fi.Mode()
		}
		dirMode[dir] = m
	}
	if m.IsDir() && m.Perm()&0o002 != 0 {
		return "runs from world-writable directory " + dir
	}
	return ""
}

// fillProcess reads uid, command line, start time and sockets of p; what
// cannot be read goes into p.Note.
func fillProcess(p *Process, pdir string, btime int64) {
	var notes []string
	if b, err := os.ReadFile(filepath.Join(pdir, "status")); err == nil {
		p.UID, _ = parseStatusUID(b)
	}
	if b, err := os.ReadFile(filepath.Join(pdir, "cmdline")); err == nil {
		b = bytes.TrimRight(b, "\x00")
		if len(b) > 0 {
			for _, a := range bytes.Split(b, []byte{0}) {
				p.Cmdline = append(p.Cmdline, strings.ToValidUTF8(string(a), "?"))
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(pdir, "stat")); err == nil {
		if ps, err := ParseProcStat(b); err == nil && btime > 0 {
			// USER_HZ is 100 on every Linux architecture Go supports.
			const hz = 100
			p.Start = time.Unix(btime+int64(ps.StartTicks/hz), int64(ps.StartTicks%hz)*(1e9/hz)).UTC()
		}
	}
	inodes, err := socketInodes(pdir)
	if err != nil {
		notes = append(notes, "sockets not readable: "+errText(err))
	}
	if len(inodes) > 0 {
		for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
			f, err := os.Open(filepath.Join(pdir, "net", proto))
			if err != nil {
				continue // no IPv6, say
			}
			socks, err := ParseNetSockets(f, f.Name(), proto)
			f.Close()
			if err != nil {
				notes = append(notes, err.Error())
				continue
			}
			for _, s := range socks {
				if inodes[s.Inode] {
					p.Sockets = append(p.Sockets, s)
				}
			}
		}
	}
	p.Note = strings.Join(notes, "; ")
}

// socketInodes returns the inodes of the socket:[N] links in pdir/fd.
func socketInodes(pdir string) (map[uint64]bool, error) {
	fdDir := filepath.Join(pdir, "fd")
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return nil, err
	}
	inodes := map[uint64]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	return inodes, nil
}

// errText is an error without its path, for notes that name the process.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
