// Command agent is opsagent's single binary: file integrity (AIDE-compatible),
// reports, RAID probe, AoE export supervisor, SSH forced-command validator and
// the scheduler that runs them. This package is the only one that reads flags,
// prints, and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"opsagent/db"
	"opsagent/rules"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes: a user contract, documented in README.md. 1, 2 and 4 are the
// added/removed/changed bits of check, update and compare (as in AIDE).
const (
	exitOK          = 0
	exitIncomplete  = 3  // init/check completed with unreadable entries
	exitWrite       = 14 // write error
	exitInvalidArg  = 15 // invalid argument
	exitConfig      = 17 // configuration error
	exitIO          = 18 // I/O error
	exitVersion     = 19 // baseline format version mismatch
	exitLocked      = 21 // another agent holds the state lock
	exitCorrupt     = 24 // corrupt database
	exitInterrupted = 25 // interrupted by a signal
)

// exitError carries an explicit exit code for an outcome that is not a
// failure of the run (check found differences) or whose class no sentinel
// names.
type exitError struct {
	code int
	err  error // may be nil: exit silently with code
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Sentinels of the command layer.
var (
	errInterrupted = errors.New("interrupted")
	errUsage       = errors.New("invalid argument")
	errWrite       = errors.New("write error")
)

// exitCode maps an error returned by a command to the process exit code. It
// is the one place where error classes become exit codes.
func exitCode(err error) int {
	var ee *exitError
	var pe *rules.ParseError
	var el rules.ErrorList
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errInterrupted), errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, errUsage):
		return exitInvalidArg
	case errors.As(err, &pe), errors.As(err, &el), errors.Is(err, errConfig):
		return exitConfig
	case errors.Is(err, db.ErrLocked):
		return exitLocked
	case errors.Is(err, db.ErrCorrupt), errors.Is(err, db.ErrUnusable):
		return exitCorrupt
	case errors.Is(err, db.ErrVersion):
		return exitVersion
	case errors.Is(err, errWrite), outOfSpace(err):
		return exitWrite
	default:
		return exitIO
	}
}

// outOfSpace reports whether err is a write that failed for want of room:
// no space or no inodes left (ENOSPC), a quota (EDQUOT), a file size limit
// (EFBIG), or a read-only file system (EROFS).
func outOfSpace(err error) bool {
	for _, e := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EROFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code. Deferred cleanup in the
// commands always runs, because urfave/cli is told never to exit by itself.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	code := exitCode(err)
	if err != nil {
		var ee *exitError
		var el rules.ErrorList
		switch {
		case errors.As(err, &el):
			// One line per config error, each with file:line.
			for _, pe := range el {
				fmt.Fprintf(stderr, "agent: %v\n", pe)
			}
		case !errors.As(err, &ee) || ee.err != nil:
			fmt.Fprintf(stderr, "agent: %v\n", err)
		}
	}
	return code
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "agent",
		Usage:                "file integrity, RAID, AoE and SSH guard for servers",
		Version:              version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		// Never let urfave/cli call os.Exit: deferred cleanup must run.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"AGENT_CONFIG"},
				Value: defaultConfigPath, Usage: "configuration `FILE` (AIDE syntax); the embedded default is used when the default path does not exist"},
			&cli.StringFlag{Name: "state-dir", Usage: "override the state_dir option (`DIR` holding baseline.db)"},
			&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "only entries matching `REGEX` (implicit ^), as aide --limit"},
			&cli.IntFlag{Name: "workers", Usage: "hashing workers (default: num_workers, else one per CPU)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or notices on stderr"},
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to `FILE` (for development)"},
			&cli.BoolFlag{Name: "no-nice", Usage: "scan at normal priority (ignore the nice and ionice options)"},
		},
		Before: func(c *cli.Context) error {
			if p := c.String("cpuprofile"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					return fmt.Errorf("%w: %w", errUsage, err)
				}
			}
			return nil
		},
		After: func(c *cli.Context) error {
			if c.String("cpuprofile") != "" {
				pprof.StopCPUProfile()
			}
			return nil
		},
		Commands: []*cli.Command{
			initCommand(), checkCommand(), updateCommand(), acceptCommand(), compareCommand(), watchCommand(),
			dryInitCommand(), configCommand(), dbCommand(), reportCommand(), mailCommand(), raidCommand(), aoeCommand(), sshvalCommand(), daemonCommand(), statusCommand(), pkgCommand(), postureCommand(), metricsCommand(),
		},
	}
	setUsageErrors(app.Commands)
	return app
}

// interspersed moves the flags a (sub)command knows in front of its
// positional arguments, so that `agent aoe stop apollo --run-dir DIR` works
// like `agent aoe stop --run-dir DIR apollo` (urfave/cli v2 stops reading
// flags at the first argument). Nothing after "--" moves.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	i := 1
	// Global flags and the command path stay where they are.
	var cmd *cli.Command
	var globals []string
	for i < len(args) {
		a := args[i]
		if a == "--" {
			return joinArgs(out, globals, args[i:])
		}
		if strings.HasPrefix(a, "-") {
			dst := &out
			f := findFlag(flagsOf(cmd, app), a)
			if f == nil && cmd != nil {
				if f = findFlag(app.Flags, a); f != nil {
					dst = &globals // a global flag after the command
				}
			}
			*dst = append(*dst, a)
			if f != nil && takesValue(f) && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				*dst = append(*dst, args[i])
			}
			i++
			continue
		}
		next := findCommand(cmds, a)
		if next == nil {
			break
		}
		cmd, cmds = next, next.Subcommands
		out = append(out, a)
		i++
	}
	if cmd == nil {
		return joinArgs(out, globals, args[i:])
	}
	// The command's own flags go before its arguments; global flags given
	// after the command (`agent check --quiet`) go before the command.
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		dst := &flags
		f := findFlag(cmd.Flags, a)
		if f == nil {
			if f = findFlag(app.Flags, a); f != nil {
				dst = &globals
			}
		}
		if f == nil {
			pos = append(pos, a)
			continue
		}
		*dst = append(*dst, a)
		if takesValue(f) && !strings.Contains(a, "=") && i+1 < len(args) {
			i++
			*dst = append(*dst, args[i])
		}
	}
	return joinArgs(out, globals, append(flags, pos...))
}

// joinArgs puts the program name, the global flags found after the
// command, the rest of out, then tail.
func joinArgs(out, globals, tail []string) []string {
	res := append([]string{out[0]}, globals...)
	res = append(res, out[1:]...)
	return append(res, tail...)
}

func flagsOf(cmd *cli.Command, app *cli.App) []cli.Flag {
	if cmd == nil {
		return app.Flags
	}
	return cmd.Flags
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// findFlag returns the flag arg names ("--x", "-x", "--x=v"), or nil.
func findFlag(flags []cli.Flag, arg string) cli.Flag {
	if !strings.HasPrefix(arg, "-") || arg == "-" {
		return nil
	}
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	if dv, ok := f.(cli.DocGenerationFlag); ok {
		return dv.TakesValue()
	}
	return true
}

// usageError marks a command-line mistake (exit 15).
func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w: %v", errUsage, err)
}

// setUsageErrors makes flag errors of every (sub)command exit 15, as the
// app's own do.
func setUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = usageError
		}
		setUsageErrors(c.Subcommands)
	}
}
