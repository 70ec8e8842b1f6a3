package sshval

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// ErrConfine marks an allowed command that is refused all the same because
// the confinement or the account its rule asks for cannot be had: Landlock
// missing, chroot without root, an unknown run_as account, a failed mount.
// Nothing was executed (fail closed).
var ErrConfine = errors.New("sshval: cannot confine the command")

// Plan is how an allowed Decision is carried out: under which kernel
// confinement and as which account. Prepare makes it; Run applies it.
type Plan struct {
	// Mode is the confinement: ConfineLandlock, ConfineChroot or
	// ConfinePaths, or "" for a command rule, which has no root to confine
	// the program to.
	Mode string
	// Detail says more about Mode for people, as "Landlock ABI 7".
	Detail string
	// Account is who the program runs as.
	Account Account
	// Warning is set when the command runs with only sshval's user-space
	// path checks (confine paths): the caller logs it on every use.
	Warning string
}

// Account is the identity the program runs under.
type Account struct {
	Name string // user name, or the decimal uid if passwd has none
	UID  int
	GID  int
	Home string // "/" if unknown
	// Drop says the process changes identity before the exec: setgroups
	// (none), setgid, setuid. It is set whenever sshval runs as root,
	// so root's supplementary groups are cleared even without run_as.
	Drop bool
}

// String is "NAME (uid U, gid G)".
func (a Account) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", a.Name, a.UID, a.GID)
}

// Prepare decides how d will run when sshval's process has the uid uid
// (the login account of the key, or root): the confinement mode of its rule
// (the rule's "confine", or the strongest the machine has: Landlock, else
// chroot when uid is 0) and the run_as account. Every error wraps
// ErrConfine and says why, for the log and the client; then nothing may be
// executed. Prepare only probes (the Landlock ABI, passwd and group); Run
// does the work.
func Prepare(d Decision, uid int) (*Plan, error) {
	if err := checkArgv(d); err != nil {
		return nil, err
	}
	p := &Plan{}
	acct, err := account(d.Rule, uid)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfine, err)
	}
	p.Account = acct
	if d.Rule == nil || d.Rule.Kind != KindRsync {
		return p, nil
	}
	r := d.Rule
	abi := landlockABI()
	switch r.Confine {
	case ConfineLandlock:
		if abi < 1 {
			return nil, fmt.Errorf("%w: rule %s says confine landlock, but this kernel has no Landlock (Linux 5.13 and later, with landlock in the lsm= list)", ErrConfine, r.Name)
		}
		p.Mode = ConfineLandlock
	case ConfineChroot:
		if uid != 0 {
			return nil, fmt.Errorf("%w: rule %s says confine chroot, which needs sshval to run as root (the key's account is uid %d)", ErrConfine, r.Name, uid)
		}
		p.Mode = ConfineChroot
	case ConfinePaths:
		p.Mode = ConfinePaths
		p.Detail = "user-space path checks only"
		p.Warning = fmt.Sprintf("rule %s runs with confine paths: only user-space path checks keep the command below %s, "+
			"and a symlink swapped in at the right moment (by a local user or a second connection) escapes them", r.Name, r.Root)
	case "":
		switch {
		case abi >= 1:
			p.Mode = ConfineLandlock
		case uid == 0:
			p.Mode = ConfineChroot
		default:
			return nil, fmt.Errorf("%w: rule %s: no kernel confinement is available: this kernel has no Landlock and sshval does not run as root for chroot "+
				"(say confine paths in the rule to accept user-space path checks only)", ErrConfine, r.Name)
		}
	default:
		return nil, fmt.Errorf("%w: rule %s: unknown confine mode %q", ErrConfine, r.Name, r.Confine)
	}
	switch p.Mode {
	case ConfineLandlock:
		p.Detail = "Landlock ABI " + strconv.Itoa(abi)
	case ConfineChroot:
		p.Detail = "private mount namespace, chroot"
	}
	return p, nil
}

// account resolves the rule's run_as ("USER" or "USER:GROUP", names or
// decimal ids) for a process running as uid. Without run_as the program
// keeps uid and its primary group. A numeric user without a passwd entry
// needs an explicit group. Anything but uid itself needs root.
func account(r *Rule, uid int) (Account, error) {
	spec := ""
	if r != nil {
		spec = r.RunAs
	}
	if spec == "" {
		a := Account{Name: strconv.Itoa(uid), UID: uid, GID: -1, Home: "/", Drop: uid == 0}
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			a.Name, a.Home = u.Username, u.HomeDir
			a.GID, _ = strconv.Atoi(u.Gid)
		}
		if a.GID < 0 {
			if uid == 0 {
				a.GID = 0
			} else {
				return Account{}, fmt.Errorf("uid %d has no passwd entry", uid)
			}
		}
		return a, nil
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	a := Account{GID: -1, Home: "/"}
	u, err := lookupUser(name)
	switch {
	case err == nil:
		a.Name, a.Home = u.Username, u.HomeDir
		a.UID, _ = strconv.Atoi(u.Uid)
		a.GID, _ = strconv.Atoi(u.Gid)
	case isDecimal(name) && hasGroup:
		a.Name = name
		a.UID, _ = strconv.Atoi(name)
	default:
		return Account{}, fmt.Errorf("run_as %s: %w", spec, err)
	}
	if hasGroup {
		g, err := lookupGroup(group)
		switch {
		case err == nil:
			a.GID, _ = strconv.Atoi(g.Gid)
		case isDecimal(group):
			a.GID, _ = strconv.Atoi(group)
		default:
			return Account{}, fmt.Errorf("run_as %s: %w", spec, err)
		}
	}
	if a.Home == "" {
		a.Home = "/"
	}
	if uid != 0 && a.UID != uid {
		return Account{}, fmt.Errorf("run_as %s needs sshval to run as root (the key's account is uid %d)", spec, uid)
	}
	if uid != 0 && hasGroup && a.GID != os.Getgid() {
		return Account{}, fmt.Errorf("run_as %s: only root can change the group", spec)
	}
	a.Drop = uid == 0
	return a, nil
}

func lookupUser(s string) (*user.User, error) {
	if isDecimal(s) {
		return user.LookupId(s)
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if isDecimal(s) {
		return user.LookupGroupId(s)
	}
	return user.LookupGroup(s)
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isSender reports whether an rsync argv is a pull (rsync --server
// --sender): the client only reads.
func isSender(argv []string) bool {
	for _, a := range argv[1:] {
		if a == "." {
			return false
		}
		if a == "--sender" {
			return true
		}
	}
	return false
}
