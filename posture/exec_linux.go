package posture

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"errors"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// DefaultHashLimit is the largest file ScanExecutables hashes; a larger
// one is listed with a note, unhashed, so a planted multi-gigabyte file
// cannot stall the run.
const DefaultHashLimit = 64 << 20

// Executable is a file in a writable place that the kernel would run: an
// ELF, a "#!" script, or any file with an execute bit.
type Executable struct {
	Path       string    `json:"path"`
	Kind       string    `json:"kind"` // elf, script or exec-bit
	Mode       string    `json:"mode"` // as ls -l shows it: "-rwxr-xr-x"
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	Owner      string    `json:"owner,omitempty"` // user name of UID, when known
	Size       int64     `json:"size"`
	MTime      time.Time `json:"mtime"`
	ELFClass   string    `json:"elf_class,omitempty"`   // ELF32 or ELF64
	ELFMachine string    `json:"elf_machine,omitempty"` // EM_X86_64, EM_AARCH64, ...
	Script     string    `json:"interpreter,omitempty"` // the "#!" line of a script
	BLAKE3     string    `json:"blake3,omitempty"`      // hex; empty when not hashed (Note says why)
	Note       string    `json:"note,omitempty"`
	Waived     bool      `json:"waived,omitempty"`
}

// ExecStats counts what a scan saw.
type ExecStats struct {
	Dirs       int `json:"dirs"`
	Files      int `json:"files"`
	Unreadable int `json:"unreadable"` // directories or files that could not be opened
}

// ExecOptions tune ScanExecutables; the zero value is usable.
type ExecOptions struct {
	// Workers walking directories in parallel; 0 = twice GOMAXPROCS
	// (the walk waits on the file system more than on the CPU).
	Workers int
	// HashLimit is the largest file hashed; 0 = DefaultHashLimit.
	HashLimit int64
}

// header is how much of each regular file is read to classify it: the ELF
// identification and e_machine (20 bytes) or a "#!" line.
const header = 128

// ScanExecutables walks each root (without following symlinks, including
// the root itself) and returns the executables found, sorted by path. A
// root reached twice (a bind mount or a symlink to another root) is walked
// once. Unreadable directories and files are counted, not errors; the
// error is ctx's when it was cancelled. Workers exit before it returns.
func ScanExecutables(ctx context.Context, roots []string, opt ExecOptions) ([]Executable, ExecStats, error) {
	if opt.Workers <= 0 {
		opt.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opt.HashLimit <= 0 {
		opt.HashLimit = DefaultHashLimit
	}
	w := &walker{opt: opt, ctx: ctx, seen: map[[2]uint64]bool{}}
	w.cond = sync.NewCond(&w.mu)
	for _, r := range roots {
		var st unix.Stat_t
		if err := unix.Lstat(r, &st); err != nil {
			if !errors.Is(err, unix.ENOENT) {
				w.stats.Unreadable++
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			w.queue = append(w.queue, strings.TrimRight(r, "/")+"/")
		}
	}
	w.pending = len(w.queue)
	var wg sync.WaitGroup
	for i := 0; i < opt.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.work()
		}()
	}
	wg.Wait()
	sort.Slice(w.found, func(i, j int) bool { return w.found[i].Path < w.found[j].Path })
	return w.found, w.stats, ctx.Err()
}

// walker is the shared state of ScanExecutables' workers: a stack of
// directories still to read (each ending in "/"), and pending, the
// directories queued or being read; when it drops to 0 the walk is done.
type walker struct {
	opt     ExecOptions
	ctx     context.Context
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []string
	pending int
	found   []Executable
	stats   ExecStats
	seen    map[[2]uint64]bool // directories read, by device and inode
}

func (w *walker) work() {
	buf := make([]byte, 32<<10)
	hdr := make([]byte, header)
	hbuf := make([]byte, 64<<10)
	var local ExecStats
	var found []Executable
	defer func() {
		w.mu.Lock()
		w.stats.Dirs += local.Dirs
		w.stats.Files += local.Files
		w.stats.Unreadable += local.Unreadable
		w.found = append(w.found, found...)
		w.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.pending > 0 {
			w.cond.Wait()
		}
		if w.pending == 0 {
			w.mu.Unlock()
			return
		}
		dir := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.mu.Unlock()

		var subdirs []string
		if w.ctx.Err() == nil {
			subdirs = w.readDir(dir, buf, hdr, hbuf, &local, &found)
		}
		w.mu.Lock()
		w.queue = append(w.queue, subdirs...)
		w.pending += len(subdirs) - 1
		if w.pending == 0 || len(subdirs) > 0 {
			w.cond.Broadcast()
		}
		w.mu.Unlock()
	}
}

// openDir opens a directory without following a symlink in any component
// (openat2 RESOLVE_NO_SYMLINKS), falling back to O_NOFOLLOW on kernels
// before 5.6.
func openDir(path string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &how)
	if errors.Is(err, unix.ENOSYS) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// readDir reads one directory (path ends in "/") and classifies its
// regular files; it returns the subdirectories to walk. Names are taken
// from the getdents buffer in place: no allocation per file unless it is
// an executable.
func (w *walker) readDir(dir string, buf, hdr, hbuf []byte, st *ExecStats, found *[]Executable) []string {
	fd, err := openDir(dir)
	if err != nil {
		st.Unreadable++
		return nil
	}
	defer unix.Close(fd)
	var ds unix.Stat_t
	if unix.Fstat(fd, &ds) != nil {
		st.Unreadable++
		return nil
	}
	// A directory reached twice (nested roots, a bind mount inside a
	// root) is read once.
	k := [2]uint64{ds.Dev, ds.Ino}
	w.mu.Lock()
	dup := w.seen[k]
	w.seen[k] = true
	w.mu.Unlock()
	if dup {
		return nil
	}
	st.Dirs++
	var subdirs []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			st.Unreadable++
			return subdirs
		}
		if n <= 0 {
			return subdirs
		}
		for off := 0; off < n; {
			// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
			if off+19 > n {
				break
			}
			reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen] // NUL-terminated, padded
			off += reclen
			nl := 0
			for nl < len(name) && name[nl] != 0 {
				nl++
			}
			if nl == len(name) || nl == 0 || name[0] == '.' && (nl == 1 || nl == 2 && name[1] == '.') {
				continue
			}
			switch typ {
			case unix.DT_DIR:
				subdirs = append(subdirs, dir+string(name[:nl])+"/")
				continue
			case unix.DT_REG, unix.DT_UNKNOWN:
			default:
				continue
			}
			var fs unix.Stat_t
			if fstatatZ(fd, &name[0], &fs, unix.AT_SYMLINK_NOFOLLOW) != nil {
				st.Unreadable++
				continue
			}
			switch fs.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				subdirs = append(subdirs, dir+string(name[:nl])+"/")
				continue
			case unix.S_IFREG:
			default:
				continue
			}
			st.Files++
			if e, ok := w.classify(fd, &name[0], &fs, hdr, hbuf, st); ok {
				e.Path = dir + string(name[:nl])
				*found = append(*found, e)
			}
		}
	}
}

// classify opens one regular file (never following a symlink, never
// updating its atime), reads its first bytes and, when it is an
// executable, hashes it.
func (w *walker) classify(dirfd int, name *byte, fs *unix.Stat_t, hdr, hbuf []byte, st *ExecStats) (Executable, bool) {
	execBit := fs.Mode&0o111 != 0
	if fs.Size == 0 && !execBit {
		return Executable{}, false
	}
	fd, err := openatZ(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		fd, err = openatZ(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	}
	if err != nil {
		if execBit {
			// Unreadable but executable: still a finding.
			e := newExecutable(fs, "exec-bit")
			e.Note = "not readable: " + err.Error()
			return e, true
		}
		st.Unreadable++
		return Executable{}, false
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || fst.Dev != fs.Dev || fst.Ino != fs.Ino || fst.Mode&unix.S_IFMT != unix.S_IFREG {
		st.Unreadable++ // replaced between stat and open
		return Executable{}, false
	}
	n, _ := unix.Pread(fd, hdr, 0)
	if n < 0 {
		n = 0
	}
	h := hdr[:n]
	var e Executable
	switch {
	case n >= 20 && string(h[:4]) == elf.ELFMAG:
		e = newExecutable(&fst, "elf")
		e.ELFClass = elf.Class(h[elf.EI_CLASS]).String()
		var m uint16
		if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
			m = uint16(h[18])<<8 | uint16(h[19])
		} else {
			m = uint16(h[19])<<8 | uint16(h[18])
		}
		e.ELFMachine = elf.Machine(m).String()
	case n >= 2 && h[0] == '#' && h[1] == '!':
		e = newExecutable(&fst, "script")
		line := h[2:]
		if i := indexNL(line); i >= 0 {
			line = line[:i]
		}
		e.Script = strings.TrimSpace(strings.ToValidUTF8(string(line), "?"))
	case execBit:
		e = newExecutable(&fst, "exec-bit")
	default:
		return Executable{}, false
	}
	if fst.Size > w.opt.HashLimit {
		e.Note = "not hashed: larger than " + sizeText(w.opt.HashLimit)
		return e, true
	}
	hs := blake3.New()
	for {
		n, err := unix.Read(fd, hbuf)
		if n > 0 {
			hs.Write(hbuf[:n])
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			e.Note = "not hashed: " + err.Error()
			return e, true
		}
		if n <= 0 {
			break
		}
	}
	e.BLAKE3 = hex.EncodeToString(hs.Sum(nil))
	var after unix.Stat_t
	if unix.Fstat(fd, &after) == nil && (after.Size != fst.Size || after.Mtim != fst.Mtim) {
		e.Note = "changed while reading"
	}
	return e, true
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func newExecutable(st *unix.Stat_t, kind string) Executable {
	return Executable{
		Kind:  kind,
		Mode:  modeString(st.Mode),
		UID:   st.Uid,
		GID:   st.Gid,
		Size:  st.Size,
		MTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
	}
}

// modeString is the mode of a regular file as ls -l shows it.
func modeString(m uint32) string {
	b := []byte("-rwxrwxrwx")
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	if m&unix.S_ISUID != 0 {
		b[3] = map[bool]byte{true: 's', false: 'S'}[b[3] == 'x']
	}
	if m&unix.S_ISGID != 0 {
		b[6] = map[bool]byte{true: 's', false: 'S'}[b[6] == 'x']
	}
	if m&unix.S_ISVTX != 0 {
		b[9] = map[bool]byte{true: 't', false: 'T'}[b[9] == 'x']
	}
	return string(b)
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
