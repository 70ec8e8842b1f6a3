package sshval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultCounters is the drop directory of the decision counters when the
// rules file has no "counters" setting (and the default of agent.conf's
// sshval_counters, which the collector reads).
const DefaultCounters = "/var/lib/agent-sshval"

// CountersMode is the mode of the counters directory, owned by root: like
// /var/spool/cron/crontabs, every user may create a file in it but nobody
// but root may list it, and the sticky bit keeps users from removing or
// renaming one another's files.
const CountersMode = 0o733 | fs.ModeSticky

// maxCounterFile caps a counter file the collector reads; a real one is
// under 100 bytes.
const maxCounterFile = 4096

// maxCounterFiles caps the entries of the directory the collector looks
// at, so that a user who creates a million files cannot stall it.
const maxCounterFiles = 10000

// countWait bounds how long Count waits for the lock of the counter file
// (another connection of the same user holds it for microseconds; only the
// user themselves could hold it longer).
const countWait = 2 * time.Second

// Counter errors.
var (
	// ErrCountersDir: the counters directory is missing or not a directory
	// owned by root with mode 1733; nothing is counted.
	ErrCountersDir = errors.New("sshval: counters directory")
	// ErrCounterFile: a counter file is not a regular file owned by the
	// uid it is named for, not 0600, too large, busy, or malformed.
	ErrCounterFile = errors.New("sshval: counter file")
)

// Counts is the content of one counter file: the decisions of one login
// account.
type Counts struct {
	Allowed, Refused uint64
	Last             time.Time // the last decision counted, second precision; zero if none
}

// CheckCountersDir reports whether fi (an Lstat of the directory) is a
// directory owned by root with mode 1733. Anything else could let one
// user read, replace or remove another's counters.
func CheckCountersDir(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: %s: no owner", ErrCountersDir, fi.Name())
	}
	return checkDir(st.Mode, st.Uid, fi.Name())
}

// checkDir checks the stat mode and owner of the counters directory.
func checkDir(mode, uid uint32, name string) error {
	switch {
	case mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%w: %s is not a directory", ErrCountersDir, name)
	case uid != 0:
		return fmt.Errorf("%w: %s is not owned by root", ErrCountersDir, name)
	case mode&0o7777 != 0o1733:
		return fmt.Errorf("%w: %s has mode %04o, want 1733", ErrCountersDir, name, mode&0o7777)
	}
	return nil
}

// EnsureCountersDir creates dir (root only) with mode 1733 when it is
// missing, and checks it either way. An existing directory with another
// owner or mode is reported, never changed: an admin may have meant it.
func EnsureCountersDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		// Mkdir's mode goes through the umask; chmod says it exactly.
		if err := os.Chmod(dir, CountersMode); err != nil {
			return fmt.Errorf("%w: %w", ErrCountersDir, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	if err := CheckCountersDir(fi); err != nil {
		return fmt.Errorf("%w (%s)", err, dir)
	}
	return nil
}

// Count adds one decision (allowed or not) at now to the counter file of
// uid in dir, "dir/UID", creating it 0600. The file is opened without
// following a symlink and must be a regular file owned by uid; its update
// (read, add, rewrite) holds an exclusive flock, so concurrent connections
// never lose a count. A directory that does not exist wraps
// fs.ErrNotExist (counting is not set up); any other problem wraps
// ErrCountersDir or ErrCounterFile. The caller never lets an error change
// its decision.
func Count(dir string, uid int, allowed bool, now time.Time) error {
	// O_PATH: the directory is not readable by the login user, only
	// searchable.
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %s: %w", ErrCountersDir, dir, fs.ErrNotExist)
		}
		return fmt.Errorf("%w: %s: %w", ErrCountersDir, dir, err)
	}
	defer unix.Close(dfd)
	var dst unix.Stat_t
	if err := unix.Fstat(dfd, &dst); err != nil {
		return fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	if err := checkDir(dst.Mode, dst.Uid, dir); err != nil {
		return err
	}
	name := strconv.Itoa(uid)
	fd, err := unix.Openat(dfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCounterFile, filepath.Join(dir, name), err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, name))
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%w: %w", ErrCounterFile, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != uid {
		return fmt.Errorf("%w: %s is not a regular file owned by uid %d", ErrCounterFile, f.Name(), uid)
	}
	if st.Mode&0o7777 != 0o600 {
		if err := unix.Fchmod(fd, 0o600); err != nil {
			return fmt.Errorf("%w: %w", ErrCounterFile, err)
		}
	}
	if err := flockWait(fd, unix.LOCK_EX, countWait); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCounterFile, f.Name(), err)
	}
	c, err := readCounts(f)
	if err != nil {
		// A file the user broke starts over rather than stopping the count.
		c = Counts{}
	}
	if allowed {
		c.Allowed++
	} else {
		c.Refused++
	}
	c.Last = now.Truncate(time.Second)
	b := FormatCounts(c)
	if _, err := f.WriteAt(b, 0); err != nil {
		return fmt.Errorf("%w: %w", ErrCounterFile, err)
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		return fmt.Errorf("%w: %w", ErrCounterFile, err)
	}
	return nil
}

// flockWait takes the flock how, retrying a held lock until wait passed.
func flockWait(fd, how int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(fd, how|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("locked by another process")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readCounts(f *os.File) (Counts, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxCounterFile+1))
	if err != nil {
		return Counts{}, err
	}
	return ParseCounts(b)
}

// FormatCounts returns the text of a counter file:
//
//	allowed 12
//	refused 3
//	last 1715000000
//
// (last, Unix seconds, only once a decision was counted).
func FormatCounts(c Counts) []byte {
	s := "allowed " + strconv.FormatUint(c.Allowed, 10) + "\nrefused " + strconv.FormatUint(c.Refused, 10) + "\n"
	if !c.Last.IsZero() {
		s += "last " + strconv.FormatInt(c.Last.Unix(), 10) + "\n"
	}
	return []byte(s)
}

// ParseCounts parses a counter file strictly: at most maxCounterFile bytes,
// lines "KEY VALUE" with the keys allowed, refused and last, each at most
// once, values decimal without sign or leading zeros, every line ended by
// a newline. An empty file (created, not yet written) is all zeros.
func ParseCounts(b []byte) (Counts, error) {
	var c Counts
	if len(b) > maxCounterFile {
		return c, fmt.Errorf("%w: larger than %d bytes", ErrCounterFile, maxCounterFile)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return c, fmt.Errorf("%w: last line not complete", ErrCounterFile)
	}
	if len(b) == 0 {
		return c, nil
	}
	seen := map[string]bool{}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		key, val, ok := strings.Cut(string(line), " ")
		n, err := strconv.ParseUint(val, 10, 63)
		if !ok || err != nil || (len(val) > 1 && val[0] == '0') {
			return Counts{}, fmt.Errorf("%w: line %d: want KEY NUMBER", ErrCounterFile, i+1)
		}
		if seen[key] {
			return Counts{}, fmt.Errorf("%w: line %d: %s given twice", ErrCounterFile, i+1, key)
		}
		seen[key] = true
		switch key {
		case "allowed":
			c.Allowed = n
		case "refused":
			c.Refused = n
		case "last":
			if n > 1<<40 {
				return Counts{}, fmt.Errorf("%w: line %d: last %d is not a time", ErrCounterFile, i+1, n)
			}
			c.Last = time.Unix(int64(n), 0)
		default:
			return Counts{}, fmt.Errorf("%w: line %d: unknown key %q", ErrCounterFile, i+1, Escape(key))
		}
	}
	return c, nil
}

// UserCounts is the counter file of one uid, as the collector read it.
type UserCounts struct {
	UID int
	Counts
}

// CounterProblem is a file of the counters directory the collector
// ignored. UID is the uid the file is named for, -1 for a name that is
// none.
type CounterProblem struct {
	UID  int
	Name string // the entry's name, escaped
	Err  error
}

func (p CounterProblem) Error() string { return p.Err.Error() }

// ReadCounters reads every counter file of dir, as root, in uid order. A
// file is used only if it is a regular file named by a decimal uid, owned
// by that uid, not writable by group or others, and parses; every other
// entry is a CounterProblem (a file someone pre-created for another user
// is one). It waits briefly for a file being updated (shared flock). The
// error is for the directory itself (missing, wrong owner or mode,
// unreadable); then there are no counts.
func ReadCounters(dir string) ([]UserCounts, []CounterProblem, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	if err := CheckCountersDir(fi); err != nil {
		return nil, nil, fmt.Errorf("%w (%s)", err, dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	names, err := d.Readdirnames(maxCounterFiles + 1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: %w", ErrCountersDir, err)
	}
	var probs []CounterProblem
	if len(names) > maxCounterFiles {
		probs = append(probs, CounterProblem{UID: -1, Name: "", Err: fmt.Errorf("%w: more than %d entries in %s; the rest is not read", ErrCountersDir, maxCounterFiles, dir)})
		names = names[:maxCounterFiles]
	}
	sort.Strings(names)
	var out []UserCounts
	for _, name := range names {
		uid, err := strconv.Atoi(name)
		if err != nil || uid < 0 || strconv.Itoa(uid) != name {
			probs = append(probs, CounterProblem{UID: -1, Name: Escape(name),
				Err: fmt.Errorf("%w: %s: not named by a uid", ErrCounterFile, Escape(filepath.Join(dir, name)))})
			continue
		}
		c, err := readCounterFile(filepath.Join(dir, name), uid)
		if err != nil {
			probs = append(probs, CounterProblem{UID: uid, Name: name, Err: err})
			continue
		}
		out = append(out, UserCounts{UID: uid, Counts: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out, probs, nil
}

func readCounterFile(path string, uid int) (Counts, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Counts{}, fmt.Errorf("%w: %s: %w", ErrCounterFile, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Counts{}, fmt.Errorf("%w: %s: %w", ErrCounterFile, path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return Counts{}, fmt.Errorf("%w: %s: not a regular file", ErrCounterFile, path)
	case int(st.Uid) != uid:
		return Counts{}, fmt.Errorf("%w: %s: owned by uid %d, not by the uid it is named for (pre-created by someone else?)", ErrCounterFile, path, st.Uid)
	case st.Mode&0o022 != 0:
		return Counts{}, fmt.Errorf("%w: %s: writable by group or others", ErrCounterFile, path)
	}
	if err := flockWait(fd, unix.LOCK_SH, time.Second); err != nil {
		return Counts{}, fmt.Errorf("%w: %s: %w", ErrCounterFile, path, err)
	}
	c, err := readCounts(f)
	if err != nil {
		if errors.Is(err, ErrCounterFile) {
			return Counts{}, fmt.Errorf("%s: %w", path, err)
		}
		return Counts{}, fmt.Errorf("%w: %s: %w", ErrCounterFile, path, err)
	}
	return c, nil
}
