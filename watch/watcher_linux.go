package watch

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by Open when fanotify cannot be used here: no
// CAP_SYS_ADMIN, a kernel without FAN_REPORT_DFID_NAME (Linux < 5.9), or a
// container that forbids it.
var ErrUnavailable = errors.New("fanotify is not available")

// Event is one change resolved to a path on the host.
type Event struct {
	Path string // absolute, on the host (root_prefix included)
	Mask uint64
	PID  int32
}

// Dir reports whether the event is about a directory.
func (e Event) Dir() bool { return e.Mask&MaskOnDir != 0 }

// Mark is one file system the watcher marked, or failed to.
type Mark struct {
	Path string // the path the mark was placed through
	FSID [2]int32
	Err  error // nil when marked
}

// Watcher reads the events of the file systems it marked. Its methods are
// not safe for concurrent use, except Close.
type Watcher struct {
	fd     int
	wake   int // eventfd: Wake makes a waiting Read return
	self   int32
	marks  []Mark
	mounts map[[2]int32]int // fsid → an O_PATH descriptor on that file system
	dirs   map[string]string
	buf    []byte

	// Counters since Open.
	Events, Overflows, Unresolved uint64
	// LastRecords is how many records the last Read got from the kernel,
	// the watcher's own and unresolvable ones included: 0 means its queue
	// was empty.
	LastRecords int
}

// maxDirCache bounds the handle → path cache; it is emptied when full.
const maxDirCache = 1 << 16

// Open starts a fanotify group and marks the file system holding each of
// paths with FAN_MARK_FILESYSTEM. A path whose file system cannot be
// marked (no file handles, a pseudo file system) is listed in Marks with
// its error; Open fails only when fanotify itself is unavailable or no
// file system could be marked.
func Open(paths []string, queueUnlimited bool) (*Watcher, error) {
	flags := uint(unix.FAN_CLASS_NOTIF | unix.FAN_CLOEXEC | unix.FAN_NONBLOCK | unix.FAN_REPORT_DFID_NAME)
	if queueUnlimited {
		flags |= unix.FAN_UNLIMITED_QUEUE
	}
	fd, err := unix.FanotifyInit(flags, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		switch {
		case errors.Is(err, unix.EPERM):
			return nil, fmt.Errorf("%w: fanotify_init: %v (needs CAP_SYS_ADMIN in the initial user namespace)", ErrUnavailable, err)
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("%w: fanotify_init with FAN_REPORT_DFID_NAME: %v (needs Linux 5.9 or later)", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("%w: fanotify_init: %v", ErrUnavailable, err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch: eventfd: %w", err)
	}
	w := &Watcher{fd: fd, wake: wake, self: int32(os.Getpid()), mounts: map[[2]int32]int{}, dirs: map[string]string{}, buf: make([]byte, 256<<10)}
	for _, p := range paths {
		w.marks = append(w.marks, w.mark(p))
	}
	if len(w.mounts) == 0 {
		w.Close()
		var errs []error
		for _, m := range w.marks {
			errs = append(errs, m.Err)
		}
		return nil, fmt.Errorf("%w: no file system could be marked: %w", ErrUnavailable, errors.Join(errs...))
	}
	return w, nil
}

func (w *Watcher) mark(p string) Mark {
	m := Mark{Path: p}
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil {
		m.Err = fmt.Errorf("statfs %s: %w", p, err)
		return m
	}
	m.FSID = sfs.Fsid.Val
	if _, ok := w.mounts[m.FSID]; ok {
		return m // the same file system, marked already
	}
	if m.FSID == [2]int32{} {
		m.Err = fmt.Errorf("%s: the file system has no fsid, fanotify cannot name its files", p)
		return m
	}
	mfd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	if err != nil {
		m.Err = fmt.Errorf("open %s: %w", p, err)
		return m
	}
	if err := unix.FanotifyMark(w.fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, Mask, unix.AT_FDCWD, p); err != nil {
		unix.Close(mfd)
		m.Err = fmt.Errorf("fanotify_mark %s: %w", p, err)
		return m
	}
	w.mounts[m.FSID] = mfd
	return m
}

// Marks lists the file systems Open marked and the ones it could not.
func (w *Watcher) Marks() []Mark { return w.marks }

// Wake makes a Read that waits (now or next) return at once; it is safe
// to call from another goroutine while Read runs.
func (w *Watcher) Wake() {
	var one [8]byte
	one[0] = 1 // any non-zero count wakes poll, whatever the byte order
	if w.wake >= 0 {
		unix.Write(w.wake, one[:])
	}
}

// Close releases the group and its marks.
func (w *Watcher) Close() error {
	if w.wake >= 0 {
		unix.Close(w.wake)
		w.wake = -1
	}
	for _, fd := range w.mounts {
		unix.Close(fd)
	}
	w.mounts = nil
	return unix.Close(w.fd)
}

// Read waits up to timeoutMS for events and returns those it read,
// resolved to paths; the watcher's own events are dropped. overflow is
// true when the kernel said it lost events (then the caller must not
// trust its picture any more). A nil slice and no error is a timeout.
func (w *Watcher) Read(timeoutMS int) (evs []Event, overflow bool, err error) {
	w.LastRecords = 0
	pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.wake), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, timeoutMS)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("watch: poll: %w", err)
	}
	if pfd[1].Revents&unix.POLLIN != 0 {
		var b [8]byte
		unix.Read(w.wake, b[:])
	}
	if n == 0 || pfd[0].Revents&unix.POLLIN == 0 {
		return nil, false, nil
	}
	k, err := unix.Read(w.fd, w.buf)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("watch: read: %w", err)
	}
	perr := ParseEvents(w.buf[:max(k, 0)], func(r Record) {
		w.LastRecords++
		if r.Overflow() {
			overflow = true
			w.Overflows++
			return
		}
		w.Events++
		if r.PID == w.self {
			return
		}
		if r.Mask&MaskOnDir != 0 && r.Mask&(MaskMovedFrom|MaskMovedTo|MaskDelete|MaskDeleteSelf) != 0 {
			// A directory moved or went: cached paths below it are
			// stale. Resolve this event first, then forget them.
			defer clear(w.dirs)
		}
		p, ok := w.resolve(r)
		if !ok {
			w.Unresolved++
			return
		}
		evs = append(evs, Event{Path: p, Mask: r.Mask, PID: r.PID})
	})
	if perr != nil {
		return evs, overflow, perr
	}
	return evs, overflow, nil
}

// resolve turns a record's directory handle and name into a path.
func (w *Watcher) resolve(r Record) (string, bool) {
	key := strconv.Itoa(int(r.FSID[0])) + ":" + strconv.Itoa(int(r.FSID[1])) + ":" + strconv.Itoa(int(r.HandleType)) + ":" + string(r.Handle)
	dir, ok := w.dirs[key]
	if !ok {
		mfd, known := w.mounts[r.FSID]
		if !known {
			return "", false
		}
		fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(r.HandleType, r.Handle), unix.O_PATH|unix.O_CLOEXEC)
		if err != nil {
			// ESTALE: the directory is gone already; what was in it is
			// gone too, which the next scan sees without the journal.
			return "", false
		}
		dir, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		unix.Close(fd)
		if err != nil || len(dir) == 0 || dir[0] != '/' || strings.HasSuffix(dir, " (deleted)") {
			return "", false
		}
		if len(w.dirs) >= maxDirCache {
			clear(w.dirs)
		}
		w.dirs[key] = dir
	}
	if r.Self || r.Name == "" || r.Name == "." {
		return dir, true
	}
	return path.Join(dir, r.Name), true
}
