package sshval

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Exec errors. Both mean that nothing was executed.
var (
	// ErrNotAllowed is returned by Exec (and set as Cmd.Err by Command) for a
	// Decision whose Allow is false.
	ErrNotAllowed = errors.New("sshval: decision does not allow execution")
	// ErrArgv is returned for an allowed Decision whose Argv is empty, whose
	// program is not an absolute clean path, or which contains a NUL byte.
	ErrArgv = errors.New("sshval: unusable argv")
)

// execPath is the only PATH the executed program sees. The program itself
// is always given by absolute path, so PATH only matters for what that
// program starts in turn.
const execPath = "/usr/bin:/bin"

// Exec replaces the running process with d.Argv[0], passing d.Argv as the
// argument vector and the minimal environment of Environ. It runs only when
// d.Allow is true and never goes through a shell. It is Prepare for the
// process's effective uid followed by Run: the program runs confined as
// d.Rule says. On success it does not return; every return is an error,
// and then nothing was executed.
func Exec(d Decision) error {
	p, err := Prepare(d, os.Geteuid())
	if err != nil {
		return err
	}
	return Run(d, p)
}

// Command returns an *exec.Cmd with exactly the program, argv and
// environment Exec would use, so tests can run the decision without
// replacing the test process. For a Decision Exec would refuse, the Cmd's
// Err field holds the same error and Start/Run return it.
func Command(d Decision) *exec.Cmd {
	cmd := &exec.Cmd{Env: Environ()}
	if err := checkArgv(d); err != nil {
		cmd.Err = err
		return cmd
	}
	cmd.Path = d.Argv[0]
	cmd.Args = append([]string(nil), d.Argv...)
	return cmd
}

func checkArgv(d Decision) error {
	if !d.Allow {
		return ErrNotAllowed
	}
	if len(d.Argv) == 0 {
		return fmt.Errorf("%w: empty", ErrArgv)
	}
	prog := d.Argv[0]
	// A relative or unclean program name would be resolved against the
	// working directory (the login user's home, which that user controls).
	if !filepath.IsAbs(prog) || filepath.Clean(prog) != prog {
		return fmt.Errorf("%w: program %q is not a clean absolute path", ErrArgv, prog)
	}
	for _, a := range d.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: NUL byte in argument", ErrArgv)
		}
	}
	return nil
}

// Environ returns the environment given to the executed program, built from
// scratch: PATH=/usr/bin:/bin, HOME, USER and LOGNAME from the passwd entry of
// the real user id, and LANG=C. Nothing of the incoming environment is passed
// on: not SSH_ORIGINAL_COMMAND or SSH_CONNECTION (the program has no use for
// them), not LD_* or similar loader variables, and not the variables an rsync
// server would honour (RSYNC_PARTIAL_DIR, CVSIGNORE, RSYNC_ICONV), which a
// user-controlled ~/.ssh/environment could otherwise set. The rsync server
// needs none of them. If the passwd entry cannot be found, HOME is "/" and
// USER/LOGNAME are left out rather than taken from the untrusted
// environment.
func Environ() []string {
	uid := os.Getuid()
	a := Account{Home: "/"}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.HomeDir != "" {
		a.Name, a.Home = u.Username, u.HomeDir
	}
	return environFor(a)
}

// environFor is Environ for the account a: USER and LOGNAME are left out
// when a has no name from passwd.
func environFor(a Account) []string {
	env := []string{"PATH=" + execPath}
	if a.Name != "" && a.Home != "" && !isDecimal(a.Name) {
		env = append(env, "HOME="+a.Home, "USER="+a.Name, "LOGNAME="+a.Name)
	} else {
		env = append(env, "HOME=/")
	}
	return append(env, "LANG=C")
}
