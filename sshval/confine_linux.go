package sshval

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// What the confined program may reach besides the rule's root: the dynamic
// loader and the shared libraries it maps (rsync links libc, libacl,
// libpopt, liblz4, libzstd, libxxhash, libcrypto and libz from
// /usr/lib/<triplet>, through the /lib and /lib64 links on merged-/usr
// systems), the loader's cache, the account and group databases rsync
// reads to map owner and group names (-o/-g without --numeric-ids), and
// /dev/null. All are world-readable system files; nothing else of the
// filesystem is reachable.
var (
	libDirs  = []string{"/lib", "/lib64", "/lib32", "/libx32", "/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32"}
	etcFiles = []string{"/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"}
)

const devNull = "/dev/null"

// landlockABI returns the kernel's Landlock ABI version, 0 if it has none
// (too old, or landlock missing from the lsm= list).
func landlockABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Run replaces the running process with d.Argv[0] as p says: it confines
// the calling OS thread (a Landlock domain, or a private mount namespace
// and chroot), drops to p.Account, sets no_new_privs and execs. Like Exec,
// it only returns on error, and then nothing was executed; but the process
// may already be half confined or without privileges, so the caller must
// only report the error and exit.
func Run(d Decision, p *Plan) error {
	if err := checkArgv(d); err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w: no plan", ErrConfine)
	}
	// Every step below changes this OS thread, which then execs. It is
	// never unlocked, so the Go runtime never reuses it for another
	// goroutine.
	runtime.LockOSThread()
	argv := d.Argv
	env := environFor(p.Account)
	rulesetFD := -1
	var rulesetFlags uint32
	switch p.Mode {
	case ConfineLandlock:
		fd, flags, err := landlockRuleset(d)
		if err != nil {
			return fmt.Errorf("%w: landlock: %w", ErrConfine, err)
		}
		if fd < 0 {
			return fmt.Errorf("%w: landlock: this kernel has no Landlock", ErrConfine)
		}
		rulesetFD, rulesetFlags = fd, flags
	case ConfineChroot:
		var err error
		if argv, err = enterChroot(d); err != nil {
			return fmt.Errorf("%w: chroot: %w", ErrConfine, err)
		}
	case ConfinePaths, "":
	default:
		return fmt.Errorf("%w: unknown confine mode %q", ErrConfine, p.Mode)
	}
	if p.Account.Drop {
		if err := drop(p.Account); err != nil {
			return fmt.Errorf("%w: run as %s: %w", ErrConfine, p.Account, err)
		}
	}
	if p.Mode == ConfineLandlock || p.Mode == ConfineChroot {
		// No set-uid gain after this, for the program and all it starts;
		// Landlock requires it of an unprivileged thread.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("%w: no_new_privs: %w", ErrConfine, err)
		}
	}
	if rulesetFD >= 0 {
		err := llsys.LandlockRestrictSelf(rulesetFD, rulesetFlags)
		unix.Close(rulesetFD)
		if err != nil {
			return fmt.Errorf("%w: landlock restrict: %w", ErrConfine, err)
		}
	}
	err := syscall.Exec(argv[0], argv, env)
	return &os.PathError{Op: "exec", Path: argv[0], Err: err}
}

// drop clears the supplementary groups and sets the real, effective and
// saved group and user ids, then checks that they all took.
func drop(a Account) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(a.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", a.GID, err)
	}
	if err := syscall.Setuid(a.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", a.UID, err)
	}
	ru, eu, su := unix.Getresuid()
	rg, eg, sg := unix.Getresgid()
	if ru != a.UID || eu != a.UID || su != a.UID || rg != a.GID || eg != a.GID || sg != a.GID {
		return fmt.Errorf("ids are %d/%d/%d:%d/%d/%d after the change", ru, eu, su, rg, eg, sg)
	}
	if groups, err := syscall.Getgroups(); err != nil || len(groups) > 0 && !(len(groups) == 1 && groups[0] == a.GID) {
		return fmt.Errorf("supplementary groups %v remain (%v)", groups, err)
	}
	return nil
}

// Landlock access rights of the rule's root.
const (
	llRead = llsys.AccessFSReadFile | llsys.AccessFSReadDir
	// llWrite is what a receiving rsync does: create, replace (rename of
	// its temp file), remove, truncate. Device nodes are left out unless
	// the rule says devices yes; Refer is added apart (see WithRefer).
	llWrite = llsys.AccessFSWriteFile | llsys.AccessFSRemoveDir | llsys.AccessFSRemoveFile |
		llsys.AccessFSMakeDir | llsys.AccessFSMakeReg | llsys.AccessFSMakeSym |
		llsys.AccessFSMakeFifo | llsys.AccessFSMakeSock | llsys.AccessFSTruncate
	llDevices = llsys.AccessFSMakeChar | llsys.AccessFSMakeBlock
	llExec    = llsys.AccessFSExecute
)

// landlockRuleset builds the Landlock ruleset of d's rule, best effort
// over the ABI versions (an older kernel enforces the rights it knows):
// beneath the root, read (pull) or read and write (push), never execute;
// read and execute on the program and the library directories; read on
// the loader cache and the account databases; read and write on
// /dev/null. TCP bind and connect are denied, and signals and abstract
// Unix sockets are scoped to the domain. It returns fd -1 if the kernel
// has no Landlock.
func landlockRuleset(d Decision) (int, uint32, error) {
	r := d.Rule
	root, err := filepath.EvalSymlinks(r.Root)
	if err != nil {
		return -1, 0, fmt.Errorf("root %s: %w", r.Root, err)
	}
	rights := landlock.AccessFSSet(llRead)
	if !isSender(d.Argv) {
		rights |= llWrite
		if r.Devices {
			rights |= llDevices
		}
	}
	rootRule := landlock.PathAccess(rights, root)
	if !isSender(d.Argv) {
		// rsync renames across directories (--delay-updates,
		// --partial-dir, --backup-dir) and links with -H.
		rootRule = rootRule.WithRefer()
	}
	rules := []landlock.Rule{
		rootRule,
		landlock.PathAccess(llsys.AccessFSReadFile|llExec, d.Argv[0]),
		landlock.PathAccess(llRead|llExec, libDirs...).IgnoreIfMissing(),
		landlock.PathAccess(llsys.AccessFSReadFile, etcFiles...).IgnoreIfMissing(),
		landlock.PathAccess(llsys.AccessFSReadFile|llsys.AccessFSWriteFile, devNull).IgnoreIfMissing(),
	}
	return landlock.V11.BestEffort().NewRulesetFD(rules...)
}

// Mount flags of the read-only binds in the chroot skeleton.
const roBind = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV

// stageDir is where the skeleton's tmpfs is mounted in the private mount
// namespace before the chroot; only this process's namespace sees it.
// Every source is opened before it is covered, so a root below /tmp is
// fine.
const stageDir = "/tmp"

// enterChroot makes the calling thread's view of the filesystem a
// read-only tmpfs skeleton holding only the rule's root (bind-mounted at
// its real path, read-only for a pull), the program, the library
// directories, the etc files and /dev/null (read-only binds), and chroots
// into it, as rsync's daemon does with "use chroot". It returns d.Argv
// with the root as the rules spell it rewritten to its real path, where it
// is mounted. Afterwards a symlink pointing anywhere outside the root
// resolves inside the skeleton, which holds nothing to read and cannot be
// written.
func enterChroot(d Decision) ([]string, error) {
	r := d.Rule
	root, err := filepath.EvalSymlinks(r.Root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", r.Root, err)
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make / private: %w", err)
	}

	type bind struct {
		path  string // where it is in the skeleton (and on the host)
		fd    int    // O_PATH descriptor of the source
		dir   bool
		flags uintptr // per-mount flags after the bind
		link  string  // a symlink to recreate instead of a bind
	}
	var binds []bind
	defer func() {
		for _, b := range binds {
			if b.fd >= 0 {
				unix.Close(b.fd)
			}
		}
	}()
	add := func(p string, flags uintptr, optional bool) error {
		fi, err := os.Lstat(p)
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			binds = append(binds, bind{path: p, fd: -1, link: t})
			return nil
		}
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		binds = append(binds, bind{path: p, fd: fd, dir: fi.IsDir(), flags: flags})
		return nil
	}
	rootFlags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if isSender(d.Argv) {
		rootFlags |= unix.MS_RDONLY
	}
	for _, p := range libDirs {
		if err := add(p, roBind, true); err != nil {
			return nil, err
		}
	}
	for _, p := range etcFiles {
		if err := add(p, roBind|unix.MS_NOEXEC, true); err != nil {
			return nil, err
		}
	}
	if err := add(devNull, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NOEXEC, true); err != nil {
		return nil, err
	}
	prog, err := filepath.EvalSymlinks(d.Argv[0])
	if err != nil {
		return nil, err
	}
	if err := add(prog, roBind, false); err != nil {
		return nil, err
	}
	if prog != d.Argv[0] {
		// The program runs by the path the rule names.
		binds[len(binds)-1].path = d.Argv[0]
	}
	if err := add(root, rootFlags, false); err != nil {
		return nil, err
	}

	// The skeleton must be searchable by the account the program drops
	// to, whatever umask sshd left. The thread's umask is its own since
	// the unshare (CLONE_NEWNS implies CLONE_FS), and is restored for the
	// program.
	defer unix.Umask(unix.Umask(0o022))
	if err := unix.Mount("sshval", stageDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return nil, fmt.Errorf("mount tmpfs on %s: %w", stageDir, err)
	}
	for _, b := range binds {
		dst := filepath.Join(stageDir, b.path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if b.link != "" {
			if err := os.Symlink(b.link, dst); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			if b.dir {
				err = os.Mkdir(dst, 0o755)
			} else {
				err = os.WriteFile(dst, nil, 0o600)
			}
			if err != nil {
				return nil, err
			}
		}
		src := "/proc/thread-self/fd/" + strconv.Itoa(b.fd)
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("bind %s: %w", b.path, err)
		}
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|b.flags, ""); err != nil {
			return nil, fmt.Errorf("remount %s: %w", b.path, err)
		}
	}
	if err := unix.Mount("", stageDir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("remount skeleton read-only: %w", err)
	}
	if err := unix.Chroot(stageDir); err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return nil, fmt.Errorf("chdir /: %w", err)
	}
	return rewriteRoot(d.Argv, r.Root, root), nil
}

// rewriteRoot replaces the root prefix from by to in the arguments after
// the program: whole words ("/data/x/dest/") and option values
// ("--link-dest=/data/x/prev").
func rewriteRoot(argv []string, from, to string) []string {
	if from == to {
		return argv
	}
	out := append([]string(nil), argv...)
	for i := 1; i < len(out); i++ {
		prefix, v := "", out[i]
		if strings.HasPrefix(v, "--") {
			if k, val, ok := strings.Cut(v, "="); ok {
				prefix, v = k+"=", val
			}
		}
		if v == from || strings.HasPrefix(v, from+"/") {
			out[i] = prefix + to + v[len(from):]
		}
	}
	return out
}
