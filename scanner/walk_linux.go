package scanner

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// dirHandle is an open directory shared by the walker and the jobs naming
// entries inside it. Entries are reached with *at system calls relative to
// it, so paths longer than PATH_MAX work and each lookup resolves one
// component only. The last release closes the descriptor.
type dirHandle struct {
	fd   int
	refs atomic.Int32
}

// cwd stands for "no directory": its fd is AT_FDCWD and it is never closed.
var cwd = &dirHandle{fd: unix.AT_FDCWD}

func (d *dirHandle) acquire() {
	if d != cwd {
		d.refs.Add(1)
	}
}

func (d *dirHandle) release() {
	if d != nil && d != cwd && d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

// job asks a worker to record one entry.
type job struct {
	seq    uint64
	path   string         // entry path without the root prefix
	parent *dirHandle     // directory holding name (a reference is held)
	name   string         // name relative to parent, NUL-terminated (see fstatatZ)
	hint   rules.FileType // type the walker saw (d_type or a stat)
	attrs  rules.AttrSet  // attributes the walker's match asked for
	// dir is set for directories the walker already stat'ed (or failed to
	// open); self is their open handle (a reference is held), or nil.
	dir  *Entry
	self *dirHandle
}

// release drops the references j holds.
func (j *job) release() {
	if j.parent != nil {
		j.parent.release()
	}
	if j.self != nil {
		j.self.release()
	}
}

// send queues j, taking a reorder-window token first; on cancellation it
// drops j's references and returns ctx.Err().
func (s *scan) send(ctx context.Context, j job) error {
	select {
	case s.tokens <- struct{}{}:
	case <-ctx.Done():
		j.release()
		return ctx.Err()
	}
	j.seq = s.seq
	s.seq++
	select {
	case s.jobs <- j:
		return nil
	case <-ctx.Done():
		j.release()
		return ctx.Err()
	}
}

// walk is the walker goroutine: it visits the root and, depth first, every
// directory the policy descends into, sending jobs in key order. It closes
// s.jobs when it returns. It returns an error only when the root cannot be
// stat'ed or ctx is done.
func (s *scan) walk(ctx context.Context) error {
	defer close(s.jobs)
	top := s.diskPath("/")
	if s.root == "" {
		top = "/"
	}
	var st unix.Stat_t
	if err := unix.Lstat(top, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: top, Err: err}
	}
	return s.visit(ctx, cwd, cstring(top), "/", rules.TypeFromMode(st.Mode), st.Dev, true)
}

// visit handles one path the walker found (name, NUL-terminated, inside
// parent). Non-
// directories become jobs; directories are opened here, stat'ed, read and
// recursed into, because their children must be known before the next
// sibling is numbered. Only ctx errors are returned.
func (s *scan) visit(ctx context.Context, parent *dirHandle, name, path string, hint rules.FileType, parentDev uint64, top bool) error {
	return s.visitIno(ctx, parent, name, path, hint, 0, parentDev, top)
}

// visitIno is visit with the entry's d_ino (0: not known).
func (s *scan) visitIno(ctx context.Context, parent *dirHandle, name, path string, hint rules.FileType, ino, parentDev uint64, top bool) error {
	if hint == rules.TypeUnknown {
		var st unix.Stat_t
		if err := fstatatZ(parent.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				s.gone(path, err)
				return nil
			}
			hint = rules.TypeUnknown
		} else {
			hint = rules.TypeFromMode(st.Mode)
		}
	}
	m := s.match(path, hint)
	inLimit := s.opts.Limit == nil || s.opts.Limit(path)
	if hint != rules.TypeDir {
		if !m.Selected || !inLimit {
			return nil
		}
		if ino != 0 && hint != rules.TypeUnknown && s.opts.SameInode != nil && s.opts.SameInode(path, hint, ino) {
			return nil
		}
		parent.acquire()
		return s.send(ctx, job{path: path, parent: parent, name: name, hint: hint, attrs: m.Attrs})
	}
	sel := m.Selected && inLimit
	descend := m.Descend && (s.opts.Enter == nil || s.opts.Enter(path))
	if !sel && !descend {
		return nil
	}

	fd, err := openNoatime(parent.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		var st unix.Stat_t
		serr := fstatatZ(parent.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case errors.Is(err, unix.ENOENT) || errors.Is(serr, unix.ENOENT):
			s.gone(path, err)
			return nil
		case serr == nil && rules.TypeFromMode(st.Mode) != rules.TypeDir:
			// Replaced by something else since readdir: a plain job again.
			return s.visit(ctx, parent, name, path, rules.TypeFromMode(st.Mode), parentDev, top)
		case !sel:
			s.log.Warn("cannot read directory", "path", path, "err", err)
			return nil
		}
		e := &Entry{Path: path, Type: rules.TypeDir, Attrs: effectiveAttrs(m.Attrs, rules.TypeDir)}
		if serr == nil {
			fillStat(e, &st)
		}
		e.Err = (&fs.PathError{Op: "open", Path: path, Err: err}).Error()
		return s.send(ctx, job{path: path, dir: e})
	}
	h := &dirHandle{fd: fd}
	h.refs.Store(1)
	defer h.release()

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		// Practically impossible on an open directory; record and go on.
		if sel {
			e := &Entry{Path: path, Type: rules.TypeDir, Attrs: effectiveAttrs(m.Attrs, rules.TypeDir)}
			e.Err = (&fs.PathError{Op: "fstat", Path: path, Err: err}).Error()
			return s.send(ctx, job{path: path, dir: e})
		}
		return nil
	}
	var e *Entry
	if sel {
		e = &Entry{Path: path, Attrs: effectiveAttrs(m.Attrs, rules.TypeDir)}
		fillStat(e, &st)
	}
	var children []dirent
	if descend && s.mayEnter(path, fd, st.Dev, parentDev, top) {
		children, err = readDir(fd)
		if err != nil {
			if e != nil {
				e.Err = (&fs.PathError{Op: "readdirent", Path: path, Err: err}).Error()
			} else {
				s.log.Warn("cannot read directory", "path", path, "err", err)
			}
		}
	}
	if e != nil {
		h.acquire()
		if err := s.send(ctx, job{path: path, dir: e, self: h}); err != nil {
			return err
		}
	}
	if s.opts.SameChildren != nil && len(children) > 0 {
		s.markSame(path, children)
	}
	for i := range children {
		c := &children[i]
		if c.same {
			children[i] = dirent{}
			continue
		}
		if err := s.visitIno(ctx, h, c.name, joinPath(path, plain(c.name)), c.typ, c.ino, st.Dev, false); err != nil {
			return err
		}
		children[i] = dirent{} // let the names go as the walk moves on
	}
	return nil
}

// markSame asks SameChildren about the listing of directory path and
// marks the entries it found unchanged.
func (s *scan) markSame(path string, children []dirent) {
	kids := slices.Grow(s.childBuf[:0], len(children))
	for _, c := range children {
		kids = append(kids, Child{Name: plain(c.name), Type: c.typ, Ino: c.ino})
	}
	same := append(slices.Grow(s.sameBuf[:0], len(children)), make([]bool, len(children))...)
	s.childBuf, s.sameBuf = kids, same
	s.opts.SameChildren(path, kids, same)
	for i := range children {
		c := &children[i]
		c.same = same[i] && kids[i].MaySkip()
	}
	clear(kids) // let the names go
}

// gone notes a path that vanished between readdir and lstat. aide logs
// "lstat() failed ... (skipping)" and records nothing; so do we.
func (s *scan) gone(path string, err error) {
	s.vanished.Add(1)
	s.log.Info("entry vanished before it was examined", "path", path, "err", err)
}

func joinPath(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// mayEnter reports whether the walker may read directory path. It refuses
// the mount points of procfs and sysfs (found by statfs where st_dev
// changes) unless some selective or equal rule's regex starts with that
// mount point: their files are not files, and reading some of them blocks or
// has side effects.
func (s *scan) mayEnter(path string, fd int, dev, parentDev uint64, top bool) bool {
	if dev == parentDev && !top {
		return true
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return true
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC && sfs.Type != unix.SYSFS_MAGIC {
		return true
	}
	if s.pol != nil {
		for _, r := range s.pol.Rules {
			if (r.Kind == rules.Selective || r.Kind == rules.Equal) && strings.HasPrefix(r.Regex, path) {
				return true
			}
		}
	}
	s.log.Info("not descending into proc/sys file system (no rule names it)", "path", path)
	return false
}

// dirent is one name read from a directory.
type dirent struct {
	name string         // NUL-terminated, ready for the *at calls
	typ  rules.FileType // from d_type; TypeUnknown when the file system does not say
	same bool           // SameChildren found it unchanged: not visited
	ino  uint64         // d_ino
}

// direntBufSize is the getdents buffer: 32 KiB holds about a thousand
// typical entries per system call.
const direntBufSize = 32 << 10

// readDir returns the names in the open directory fd (without "." and
// ".."), sorted bytewise. A trailing NUL does not change the order: NUL
// sorts below every byte a name can hold.
func readDir(fd int) ([]dirent, error) {
	buf := direntBufPool.get()
	defer direntBufPool.put(buf)
	var out []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			slices.SortFunc(out, cmpDirent)
			return out, err
		}
		if n <= 0 {
			break
		}
		// Room for this buffer's records, doubling for a long listing
		// (append grows one by a quarter at a time).
		if more := countDirents(buf[:n]); cap(out)-len(out) < more {
			out = slices.Grow(out, max(more, len(out)))
		}
		out = parseDirents(buf[:n], out)
	}
	slices.SortFunc(out, cmpDirent)
	return out, nil
}

func cmpDirent(a, b dirent) int { return strings.Compare(a.name, b.name) }

// countDirents counts the records of a getdents64 buffer (see
// parseDirents).
func countDirents(b []byte) int {
	n := 0
	for rec, rest := nextDirent(b); rec != nil; rec, rest = nextDirent(rest) {
		n++
	}
	return n
}

// nextDirent splits the first record off a getdents64 buffer; rec is nil
// at the end of b or at a record that does not fit in it.
func nextDirent(b []byte) (rec, rest []byte) {
	if len(b) < 19 {
		return nil, nil
	}
	reclen := int(b[16]) | int(b[17])<<8
	if reclen < 19 || reclen > len(b) {
		return nil, nil
	}
	return b[:reclen], b[reclen:]
}

// parseDirents appends the entries of a getdents64 buffer. Each record is
// struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type;
// char d_name[]; } with d_name NUL-terminated and padded.
func parseDirents(b []byte, out []dirent) []dirent {
	for rec, rest := nextDirent(b); rec != nil; rec, rest = nextDirent(rest) {
		nameb := rec[19:]
		i := indexNUL(nameb)
		if i < 0 {
			continue // malformed: the kernel always terminates names
		}
		nameb = nameb[:i+1]
		if i == 0 || (i == 1 && nameb[0] == '.') || (i == 2 && nameb[0] == '.' && nameb[1] == '.') {
			continue
		}
		ino := uint64(rec[0]) | uint64(rec[1])<<8 | uint64(rec[2])<<16 | uint64(rec[3])<<24 |
			uint64(rec[4])<<32 | uint64(rec[5])<<40 | uint64(rec[6])<<48 | uint64(rec[7])<<56
		out = append(out, dirent{name: string(nameb), typ: dtType(rec[18]), ino: ino})
	}
	return out
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func dtType(t uint8) rules.FileType {
	switch t {
	case unix.DT_REG:
		return rules.TypeFile
	case unix.DT_DIR:
		return rules.TypeDir
	case unix.DT_LNK:
		return rules.TypeSymlink
	case unix.DT_CHR:
		return rules.TypeCharDev
	case unix.DT_BLK:
		return rules.TypeBlockDev
	case unix.DT_FIFO:
		return rules.TypeFIFO
	case unix.DT_SOCK:
		return rules.TypeSocket
	}
	return rules.TypeUnknown
}

// openNoatime opens the NUL-terminated name relative to dirfd with
// O_NOATIME added, retrying without it on EPERM (O_NOATIME needs ownership
// or CAP_FOWNER).
func openNoatime(dirfd int, cname string, flags int) (int, error) {
	for {
		fd, err := openatZ(dirfd, cname, flags|unix.O_NOATIME)
		if err == unix.EPERM {
			fd, err = openatZ(dirfd, cname, flags)
		}
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// fillStat copies what Lstat says into e.
func fillStat(e *Entry, st *unix.Stat_t) {
	e.Type = rules.TypeFromMode(st.Mode)
	e.Mode = st.Mode
	e.UID, e.GID = st.Uid, st.Gid
	e.Size = st.Size
	e.Blocks = st.Blocks
	e.Nlink = uint64(st.Nlink)
	e.Inode = st.Ino
	e.Dev = st.Dev
	e.Rdev = st.Rdev
	e.Atime = st.Atim.Nano()
	e.Mtime = st.Mtim.Nano()
	e.Ctime = st.Ctim.Nano()
}

// effectiveAttrs drops the attributes a file of type t cannot have, as aide
// does before recording: hashes and caps only for regular files, the link
// target only for symlinks, e2fsattrs only for regular files and
// directories. Compare then sees, as aide does, a type change as a change of
// the attribute set too.
func effectiveAttrs(a rules.AttrSet, t rules.FileType) rules.AttrSet {
	if t != rules.TypeFile {
		a &^= rules.HashAttrs | rules.AttrCaps.Set()
	}
	if t != rules.TypeSymlink {
		a &^= rules.AttrLinkName.Set()
	} else {
		a &^= rules.AttrACL.Set() // aide keeps no ACL for symlinks
	}
	if t != rules.TypeFile && t != rules.TypeDir {
		a &^= rules.AttrE2fsattrs.Set()
	}
	return a
}
