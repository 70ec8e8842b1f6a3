package scanner

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// xattrAttrs are the attributes read from extended attributes.
const xattrAttrs = rules.AttrSet(1)<<rules.AttrXattrs | rules.AttrSet(1)<<rules.AttrACL |
	rules.AttrSet(1)<<rules.AttrSELinux | rules.AttrSet(1)<<rules.AttrCaps

// readAttrs need the file opened for reading (aide disables them, keeping
// the entry, when it cannot open the file).
const readAttrs = rules.HashAttrs | rules.AttrSet(1)<<rules.AttrE2fsattrs

// The extended attributes with their own rule attribute; every other name
// goes to Entry.Xattrs.
const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
	xattrSELinux    = "security.selinux"
	xattrCaps       = "security.capability"
)

// worker is one hasher goroutine's state: digest states, the read buffer
// and xattr buffers are reused for every file it records.
type worker struct {
	s     *scan
	d     digester
	buf   []byte
	xlist []byte
	xval  []byte
	pre   Prefix // scratch for the digests of a growing file's old size
}

func newWorker(s *scan) *worker { return &worker{s: s} }

// close returns the pooled read buffer.
func (w *worker) close() {
	if w.buf != nil {
		readBufPool.put(w.buf)
		w.buf = nil
	}
}

// do records the entry j names. It returns nil when there is nothing to
// emit: the path vanished before lstat (as aide, which skips it), or its
// real type is not selected. It always releases j's references.
func (w *worker) do(ctx context.Context, j *job) *Entry {
	defer j.release()
	if ctx.Err() != nil {
		return nil
	}
	if j.dir != nil {
		e := j.dir
		if j.self != nil {
			w.extras(e, xsrc{fd: j.self.fd})
		}
		return e
	}
	s := w.s
	s.hook("lstat", j.path)
	var st unix.Stat_t
	if err := fstatatZ(j.parent.fd, j.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			s.gone(j.path, err)
			return nil
		}
		return &Entry{Path: j.path, Type: j.hint, Attrs: effectiveAttrs(j.attrs, j.hint) &^ readAttrs,
			Err: (&fs.PathError{Op: "lstat", Path: j.path, Err: err}).Error()}
	}
	t := rules.TypeFromMode(st.Mode)
	attrs := j.attrs
	if t != j.hint {
		// The walker guessed from d_type, or the entry was replaced since
		// readdir: decide again with the real type.
		m := s.match(j.path, t)
		if !m.Selected {
			return nil
		}
		attrs = m.Attrs
	}
	e := &Entry{Path: j.path, Attrs: effectiveAttrs(attrs, t)}
	fillStat(e, &st)

	switch t {
	case rules.TypeSymlink:
		if e.Attrs.Has(rules.AttrLinkName) {
			w.readlink(e, j)
		}
	case rules.TypeFile, rules.TypeDir:
		if t == rules.TypeFile && s.opts.Reuse != nil && s.opts.Reuse(e) {
			e.Reused = true
			return e
		}
		if e.Attrs&readAttrs != 0 {
			if s.fsOf(j, &st) == "" {
				w.readFile(ctx, e, j)
				return e
			}
			e.Attrs &^= readAttrs
			s.pseudo.Add(1)
		}
	}
	if e.Attrs&xattrAttrs != 0 {
		w.xattrs(e, w.pathSrc(j))
	}
	return e
}

// readFile opens a regular file (or a directory that appeared since
// readdir) checked against its lstat, and records e2fsattrs, xattrs and
// digests from that one descriptor. Never called for FIFOs, sockets,
// devices or files on pseudo file systems (fsOf), so an open can never
// block or have side effects.
func (w *worker) readFile(ctx context.Context, e *Entry, j *job) {
	w.s.hook("open", e.Path)
	fd, err := openNoatime(j.parent.fd, j.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		// As aide: keep the entry, drop what needs reading, say why.
		e.Attrs &^= readAttrs
		e.Err = (&fs.PathError{Op: "open", Path: e.Path, Err: err}).Error()
		if e.Attrs&xattrAttrs != 0 {
			w.xattrs(e, w.pathSrc(j))
		}
		return
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		e.Attrs &^= readAttrs
		e.Err = (&fs.PathError{Op: "fstat", Path: e.Path, Err: err}).Error()
		return
	}
	if !sameFile(e, &st) {
		e.Attrs &^= readAttrs
		e.Err = (&fs.PathError{Op: "hash", Path: e.Path, Err: ErrReplaced}).Error()
		return
	}
	w.extras(e, xsrc{fd: fd})
	if e.Type != rules.TypeFile || e.Attrs&rules.HashAttrs == 0 {
		return
	}
	prefix := int64(0)
	if e.Attrs.Has(rules.AttrGrowing) && w.s.opts.BaselineSize != nil {
		if n, ok := w.s.opts.BaselineSize(e.Path); ok && n > 0 {
			prefix = n
		}
	}
	// The prefix digests live in the worker, so that files without a
	// baseline size cost no allocation.
	pre := &w.pre
	n, more, got, err := w.hashFD(ctx.Done(), fd, e.Attrs, &e.Digests, e.Size, prefix, pre, e.Path)
	if err != nil {
		e.Attrs &^= rules.HashAttrs
		e.Digests = Digests{}
		e.Err = (&fs.PathError{Op: "read", Path: e.Path, Err: err}).Error()
		return
	}
	if got {
		p := *pre
		e.Prefix = &p
	}
	if w.s.opts.Uncompress && e.Attrs.Has(rules.AttrCompressed) {
		e.Uncompressed = w.gunzipDigests(ctx.Done(), fd, e.Attrs)
	}
	w.s.filesHashed.Add(1)
	w.s.bytesHashed.Add(n)
	// The digests must describe the file as stat'ed: bytes past its size, a
	// short read, or a moved size, mtime or ctime mean it was written while
	// we read (syncthing's HashFile). The digests are kept; the report lists
	// the entry.
	if err := unix.Fstat(fd, &st); err != nil || more || n != e.Size || st.Size != e.Size ||
		st.Mtim != unixTimespec(e.Mtime) || st.Ctim != unixTimespec(e.Ctime) {
		e.Err = (&fs.PathError{Op: "hash", Path: e.Path, Err: ErrChanged}).Error()
	}
}

// sameFile reports whether the opened file (st) is the one lstat described
// in e. Like aide's stat_cmp it looks beyond dev and inode, which a file
// system may reuse at once for a replacement. For a growing file, growth in
// between is accepted and e is refreshed from st, so the digests describe
// what the entry says.
func sameFile(e *Entry, st *unix.Stat_t) bool {
	if st.Dev != e.Dev || st.Ino != e.Inode || st.Mode != e.Mode || st.Uid != e.UID || st.Gid != e.GID {
		return false
	}
	if st.Size == e.Size && st.Mtim == unixTimespec(e.Mtime) && st.Ctim == unixTimespec(e.Ctime) {
		return true
	}
	if e.Attrs.Has(rules.AttrGrowing) && st.Size >= e.Size {
		fillStat(e, st)
		return true
	}
	return false
}

func unixTimespec(ns int64) unix.Timespec { return unix.NsecToTimespec(ns) }

// hashFD reads fd once, feeding every digest attrs asks for the first size
// bytes (size is the file's stat'ed size), and stores the digests in out;
// more reports that the file held bytes past size. Reading stops at the
// first read that goes past size, so it never takes more than size plus
// one buffer (readBufSize), however much the file delivers: a
// /proc/PID/pagemap reports size 0 and delivers 256 GiB, a log may grow
// faster than it is read. Bytes past size are never hashed, so the digests
// cover exactly what was stat'ed or more is set. Probing with a whole
// buffer rather than one byte costs the same system call and suits files
// that refuse short or unaligned reads (pagemap wants multiples of 8).
// n < size means the file ended early. When prefix > 0 and the file holds
// at least that many bytes, pre receives the digests of the first prefix
// bytes and got is true. It stops with context.Canceled when done is
// closed.
func (w *worker) hashFD(done <-chan struct{}, fd int, attrs rules.AttrSet, out *Digests, size, prefix int64, pre *Prefix, path string) (n int64, more, got bool, err error) {
	if w.buf == nil {
		w.buf = readBufPool.get()
	}
	w.d.start(attrs)
	first := true
	for {
		select {
		case <-done:
			return n, false, false, context.Canceled
		default:
		}
		k, err := unix.Read(fd, w.buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return n, false, false, err
		}
		if k <= 0 {
			break
		}
		// A short read of a regular file is its end: no read for the
		// zero that would say so. (Anywhere else, one that is not leaves
		// fewer bytes than stat'ed, which the callers take for a change.)
		short := k < len(w.buf)
		if left := size - n; int64(k) > left {
			more = true
			k = int(max(left, 0))
		}
		chunk := w.buf[:k]
		if prefix > 0 && !got && n+int64(k) >= prefix {
			cut := prefix - n
			w.d.write(chunk[:cut])
			w.d.sum(attrs, &pre.Digests)
			pre.Size = prefix
			got = true
			chunk = chunk[cut:]
		}
		w.d.write(chunk)
		n += int64(k)
		if more {
			break
		}
		if first && w.s != nil {
			first = false
			w.s.hook("read", path)
		}
		if short {
			break
		}
	}
	w.d.sum(attrs, out)
	return n, more, got, nil
}

func (w *worker) readlink(e *Entry, j *job) {
	buf := w.xval
	if len(buf) < 256 {
		buf = make([]byte, 256)
	}
	for {
		n, err := unix.Readlinkat(j.parent.fd, plain(j.name), buf)
		if err != nil {
			e.Err = (&fs.PathError{Op: "readlink", Path: e.Path, Err: err}).Error()
			return
		}
		if n < len(buf) {
			e.LinkTarget = string(buf[:n])
			w.xval = buf
			return
		}
		buf = make([]byte, 2*len(buf))
	}
}

// xsrc names the file whose extended attributes are read: an open
// descriptor (fd >= 0) or, for files that are not opened (symlinks,
// devices, ...), a path used with the l* calls that never follow.
type xsrc struct {
	fd   int
	path string
}

// pathSrc is the xattr source for j: its path on disk, or, when that is
// too long for the kernel, the same name reached through its open parent
// directory via /proc/self/fd (short whatever the depth).
func (w *worker) pathSrc(j *job) xsrc {
	p := w.s.diskPath(j.path)
	if len(p) >= unix.PathMax && j.parent != nil && j.parent != cwd {
		p = "/proc/self/fd/" + strconv.Itoa(j.parent.fd) + "/" + plain(j.name)
	}
	return xsrc{fd: -1, path: p}
}

func (x xsrc) list(buf []byte) (int, error) {
	if x.fd >= 0 {
		return unix.Flistxattr(x.fd, buf)
	}
	return unix.Llistxattr(x.path, buf)
}

func (x xsrc) get(name string, buf []byte) (int, error) {
	if x.fd >= 0 {
		return unix.Fgetxattr(x.fd, name, buf)
	}
	return unix.Lgetxattr(x.path, name, buf)
}

// extras records what needs the file itself rather than its stat: ext2
// flags (via the descriptor) and extended attributes.
func (w *worker) extras(e *Entry, src xsrc) {
	if e.Attrs.Has(rules.AttrE2fsattrs) && src.fd >= 0 {
		flags, err := unix.IoctlGetUint32(src.fd, unix.FS_IOC_GETFLAGS)
		switch {
		case err == nil:
			e.E2fsattrs = flags
		case unsupported(err):
		default:
			e.setErr(&fs.PathError{Op: "getflags", Path: e.Path, Err: err})
		}
	}
	if e.Attrs&xattrAttrs != 0 {
		w.xattrs(e, src)
	}
}

// dropAbsent removes from e.Attrs what aide does not record: caps for a
// file without capabilities, selinux where there is no label (SELinux
// disabled). A capability set later still shows, as security.capability
// under xattrs.
func dropAbsent(e *Entry) {
	if len(e.Caps) == 0 {
		e.Attrs &^= rules.AttrCaps.Set()
	}
	if e.SELinux == "" {
		e.Attrs &^= rules.AttrSELinux.Set()
	}
}

// unsupported reports errors meaning "this file system has no such thing",
// which are not problems of the entry.
func unsupported(err error) bool {
	return err == unix.ENOTSUP || err == unix.EOPNOTSUPP || err == unix.ENOTTY ||
		err == unix.EINVAL || err == unix.ENOSYS || err == unix.ENODATA
}

// setErr records err unless an earlier problem is already recorded.
func (e *Entry) setErr(err error) {
	if e.Err == "" {
		e.Err = err.Error()
	}
}

// xattrs lists the extended attributes of src and keeps those the rule asks
// for. Unsupported file systems yield nothing, silently.
func (w *worker) xattrs(e *Entry, src xsrc) {
	if len(w.xlist) == 0 {
		w.xlist = make([]byte, 1024)
	}
	var n int
	for {
		var err error
		n, err = src.list(w.xlist)
		if err == nil {
			break
		}
		if err == unix.ERANGE {
			sz, err2 := src.list(nil)
			if err2 != nil {
				err = err2
			} else {
				w.xlist = make([]byte, max(sz, 2*len(w.xlist)))
				continue
			}
		}
		if err == unix.EINTR {
			continue
		}
		if !unsupported(err) {
			e.setErr(&fs.PathError{Op: "listxattr", Path: e.Path, Err: err})
		}
		return
	}
	names := w.xlist[:n]
	for len(names) > 0 {
		i := indexNUL(names)
		if i < 0 {
			i = len(names)
		}
		name := names[:i]
		if i < len(names) {
			names = names[i+1:]
		} else {
			names = nil
		}
		if len(name) == 0 {
			continue
		}
		var want rules.Attr
		switch string(name) {
		case xattrACLAccess, xattrACLDefault:
			want = rules.AttrACL
		case xattrSELinux:
			want = rules.AttrSELinux
		case xattrCaps:
			want = rules.AttrCaps
		default:
			want = rules.AttrXattrs
		}
		// aide lists security.capability among the xattrs too.
		alsoXattr := string(name) == xattrCaps && e.Attrs.Has(rules.AttrXattrs)
		if !e.Attrs.Has(want) && !alsoXattr {
			continue
		}
		sname := string(name)
		val, err := w.getxattr(src, sname)
		if err != nil {
			if !unsupported(err) {
				e.setErr(&fs.PathError{Op: "getxattr", Path: e.Path, Err: err})
			}
			continue
		}
		switch sname {
		case xattrACLAccess:
			e.ACLAccess = val
		case xattrACLDefault:
			e.ACLDefault = val
		case xattrSELinux:
			for len(val) > 0 && val[len(val)-1] == 0 {
				val = val[:len(val)-1]
			}
			e.SELinux = string(val)
		case xattrCaps:
			if e.Attrs.Has(rules.AttrCaps) {
				e.Caps = val
			}
			if alsoXattr {
				e.Xattrs = append(e.Xattrs, Xattr{Name: sname, Value: val})
			}
		default:
			e.Xattrs = append(e.Xattrs, Xattr{Name: sname, Value: val})
		}
	}
	slices.SortFunc(e.Xattrs, func(a, b Xattr) int {
		return cmpString(a.Name, b.Name)
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// getxattr returns a fresh copy of the value of name.
func (w *worker) getxattr(src xsrc, name string) ([]byte, error) {
	if len(w.xval) < 256 {
		w.xval = make([]byte, 256)
	}
	for {
		n, err := src.get(name, w.xval)
		if err == nil {
			return append([]byte(nil), w.xval[:n]...), nil
		}
		if err == unix.ERANGE {
			sz, err2 := src.get(name, nil)
			if err2 != nil {
				return nil, err2
			}
			w.xval = make([]byte, max(sz, 2*len(w.xval)))
			continue
		}
		if err == unix.EINTR {
			continue
		}
		return nil, err
	}
}

// HashFile hashes the regular file at path the way Scan does: opened without
// following symlinks and without blocking, read once into every digest attrs
// asks for up to its stat'ed size (bytes past it are a change, not read),
// checked against its own fstat afterwards. It returns the digests,
// the number of bytes read, and an *fs.PathError (Op "hash" wrapping
// ErrNotRegular or ErrChanged, or the failing system call's error). With
// ErrChanged the digests are returned too.
func HashFile(path string, attrs rules.AttrSet) (Digests, int64, error) {
	var d Digests
	fd, err := openNoatime(unix.AT_FDCWD, cstring(path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return d, 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var before unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		return d, 0, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if before.Mode&unix.S_IFMT != unix.S_IFREG {
		return d, 0, &fs.PathError{Op: "hash", Path: path, Err: ErrNotRegular}
	}
	w := &worker{}
	defer w.close()
	n, more, _, err := w.hashFD(nil, fd, attrs, &d, max(before.Size, 0), 0, nil, path)
	if err != nil {
		return Digests{}, n, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	var after unix.Stat_t
	if err := unix.Fstat(fd, &after); err != nil {
		return d, n, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if more || n != before.Size || after.Size != before.Size || after.Mtim != before.Mtim || after.Ctim != before.Ctim {
		return d, n, &fs.PathError{Op: "hash", Path: path, Err: ErrChanged}
	}
	return d, n, nil
}
