package raidcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"opsagent/internal/capped"
)

// ErrTimeout means a vendor CLI did not finish within Probe.Timeout; its
// tool is then Unknown.
var ErrTimeout = errors.New("raidcheck: command timed out")

// ErrUnknownTool is returned by ParseTool for a name Tools does not list.
var ErrUnknownTool = errors.New("raidcheck: unknown tool")

const (
	// defaultTimeout bounds one CLI run. MegaCli and storcli take seconds
	// on a healthy controller but can hang for minutes on a sick one; a
	// minute keeps the daily job from stalling while leaving slow
	// controllers room.
	defaultTimeout = 60 * time.Second
	// maxOutput bounds what one command may print. The largest real output
	// we know (MegaCli -PDList on 100 disks) is under 1 MiB; more than
	// this is a runaway tool, reported as such rather than parsed cut.
	maxOutput = 16 << 20
	// maxStderr is how much of stderr is kept for the error text.
	maxStderr = 64 << 10
	// waitDelay is how long Wait waits for the CLI's pipes after the
	// process is killed (a grandchild may hold them open).
	waitDelay = time.Second
)

// tool is one entry of the registry: how to find a RAID tool, what to run,
// and how to read what it prints.
type tool struct {
	name string // as in Result.Tool and `agent raid parse --tool`
	// family groups the tools that manage the same controllers (MegaCli,
	// storcli and perccli all speak to MegaRAID cards).
	family string
	bins   []string // binary names looked up on PATH and in ExtraDirs, preferred first
	paths  []string // the vendors' usual absolute install paths
	// drivers are the kernel drivers of the family's controllers, matched
	// against /sys/class/scsi_host/*/proc_name and /sys/bus/pci/drivers.
	// They are set on the one tool of a family that reports a detected
	// controller whose CLI is missing.
	drivers []string
	// hints are drivers that often drive plain HBAs, which need no RAID
	// CLI: they are logged, never an alert.
	hints []string
	// scsi says whether a /proc/scsi/scsi vendor and model belong to the
	// family's controllers (their logical drives show up there).
	scsi func(vendor, model string) bool
	// cmds are the argvs (after the binary) run first, in order.
	cmds []cliCommand
	// more derives further commands from the output of the first one
	// (tw_cli: one set per controller and enclosure `show` lists).
	more func(first []byte) []cliCommand
	// fallback is run instead when the output of cmds fails or does not
	// parse (storcli's text output when the JSON one fails).
	fallback []cliCommand
	// procFile is the file under ProcRoot read instead of running a CLI
	// (mdstat).
	procFile string
	parse    func(in []Input) (*Result, error)
}

// cliCommand is one CLI invocation. An optional command (battery, enclosure)
// that fails or prints what the parser rejects costs a warning, not the
// whole tool.
type cliCommand struct {
	args     []string
	optional bool
}

// reqCmd is a required command; optCmd an optional one.
func reqCmd(args ...string) cliCommand { return cliCommand{args: args} }
func optCmd(args ...string) cliCommand { return cliCommand{args: args, optional: true} }

// tools is the registry, in the order results are returned.
var tools = []tool{
	{
		name:    "areca",
		family:  "areca",
		bins:    []string{"cli64", "cli32", "areca-cli", "areca_cli64", "areca_cli32"},
		paths:   []string{"/usr/local/sbin/cli64", "/usr/local/sbin/cli32", "/usr/sbin/cli64", "/usr/sbin/cli32", "/usr/sbin/areca-cli", "/opt/areca/cli64"},
		drivers: []string{"arcmsr"},
		scsi:    func(v, _ string) bool { return strings.EqualFold(v, "Areca") },
		cmds:    []cliCommand{reqCmd("rsf", "info"), reqCmd("vsf", "info"), reqCmd("disk", "info")},
		parse:   ParseAreca,
	},
	{
		name:    "tw_cli",
		family:  "3ware",
		bins:    []string{"tw_cli", "tw-cli", "tw_cli64"},
		paths:   []string{"/usr/sbin/tw_cli", "/usr/sbin/tw-cli", "/usr/local/sbin/tw_cli", "/opt/3ware/tw_cli", "/opt/AMCC/CLI/tw_cli"},
		drivers: []string{"3w-9xxx", "3w-sas", "3w-xxxx"},
		scsi: func(v, _ string) bool {
			return strings.EqualFold(v, "3ware") || strings.EqualFold(v, "AMCC")
		},
		cmds:  []cliCommand{reqCmd("show")},
		more:  twcliCommands,
		parse: ParseTWCLI,
	},
	{
		name:   "megacli",
		family: "megaraid",
		bins:   []string{"MegaCli64", "MegaCli", "megacli"},
		paths:  []string{"/opt/MegaRAID/MegaCli/MegaCli64", "/opt/MegaRAID/MegaCli/MegaCli", "/opt/megacli/megacli", "/usr/sbin/megacli"},
		cmds: []cliCommand{
			reqCmd("-LdInfo", "-Lall", "-aALL", "-NoLog"),
			reqCmd("-PDList", "-aALL", "-NoLog"),
			optCmd("-AdpBbuCmd", "-GetBbuStatus", "-aALL", "-NoLog"),
		},
		parse: ParseMegaCli,
	},
	{
		name:    "storcli",
		family:  "megaraid",
		bins:    []string{"storcli64", "storcli", "storcli2"},
		paths:   []string{"/opt/MegaRAID/storcli/storcli64", "/opt/MegaRAID/storcli/storcli", "/opt/MegaRAID/storcli2/storcli2", "/opt/lsi/storcli/storcli", "/opt/lsi/storcli64/storcli64"},
		drivers: []string{"megaraid_sas", "mpi3mr"},
		hints:   []string{"mpt3sas", "mpt2sas"},
		scsi:    megaraidSCSI,
		cmds:    []cliCommand{reqCmd("/call", "show", "all", "J")},
		// Old storcli builds have no JSON; the text has the same tables.
		fallback: []cliCommand{reqCmd("/call", "show", "all")},
		parse:    ParseStorcli,
	},
	{
		name:     "perccli",
		family:   "megaraid",
		bins:     []string{"perccli64", "perccli", "perccli2"},
		paths:    []string{"/opt/MegaRAID/perccli/perccli64", "/opt/MegaRAID/perccli/perccli", "/opt/MegaRAID/perccli2/perccli2", "/opt/dell/perccli/perccli64", "/opt/bin/perccli"},
		cmds:     []cliCommand{reqCmd("/call", "show", "all", "J")},
		fallback: []cliCommand{reqCmd("/call", "show", "all")},
		parse:    ParseStorcli,
	},
	{
		name:     ToolMdstat,
		family:   "md",
		procFile: "mdstat",
		parse:    ParseMdstat,
	},
}

// megaraidSCSI matches the logical drives of MegaRAID-based cards in
// /proc/scsi/scsi: "LSI MR9260-8i", "AVAGO MR9361-8i", "DELL PERC H730P
// Mini", or anything calling itself MegaRAID.
func megaraidSCSI(vendor, model string) bool {
	switch strings.ToUpper(vendor) {
	case "LSI", "AVAGO", "BROADCOM":
		if strings.HasPrefix(model, "MR") {
			return true
		}
	case "DELL":
		if strings.Contains(strings.ToUpper(model), "PERC") {
			return true
		}
	}
	return strings.Contains(strings.ToUpper(vendor+" "+model), "MEGARAID")
}

// Tools returns the names of every tool the probe knows, in the order Run
// returns results; each is a valid argument of ParseTool.
func Tools() []string {
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.name
	}
	return names
}

// ParseTool parses saved outputs of the named tool (areca, tw_cli, megacli,
// storcli, perccli, mdstat), as `agent raid parse` does. Each input is
// classified by its content, so outputs of several commands can be given
// together. An unknown name returns ErrUnknownTool; the parsers' errors
// are *ParseError (errors.Is ErrParse). For mdstat, a Result with no
// controllers and a nil error means "no md arrays" (see ParseMdstat).
func ParseTool(name string, in []Input) (*Result, error) {
	for _, t := range tools {
		if t.name == name {
			r, err := t.parse(in)
			if r != nil {
				r.Tool = t.name // perccli shares the storcli parser
			}
			return r, err
		}
	}
	return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownTool, name, strings.Join(Tools(), ", "))
}

// Probe finds the RAID tools that apply to this host, runs them and judges
// what they print. The zero value probes the real system.
type Probe struct {
	// PathEnv is the PATH searched for the CLIs and given to them; ""
	// means the agent's own $PATH. Relative entries are skipped.
	PathEnv string
	// ExtraDirs are searched after PATH for every tool's binary names
	// (cron's PATH lacks the sbin directories). nil means the default
	// /usr/local/sbin, /usr/local/bin, /usr/sbin, /sbin, /opt/bin; an
	// empty non-nil slice means none.
	ExtraDirs []string
	// ProcRoot is where /proc is mounted; "" means /proc.
	ProcRoot string
	// SysRoot is where /sys is mounted; "" means /sys.
	SysRoot string
	// Timeout bounds each command; 0 means 60 s.
	Timeout time.Duration
	// Logger receives debug lines about detection and commands; nil
	// discards them.
	Logger *slog.Logger
}

// Run detects the controllers, runs the CLI of every tool that is
// installed (even when no controller was detected) and reads
// ProcRoot/mdstat, and returns one Result per tool, in registry order (see
// Tools). Everything that goes wrong with one tool is in its Result, with
// verdict Unknown and Err set: a CLI that times out (ErrTimeout), fails
// without output, or prints what its parser cannot read, and a controller
// that is detected (scsi_host proc_name, PCI driver binding or
// /proc/scsi/scsi vendor) but whose CLI is missing. A tool with neither a
// CLI nor a detected controller is skipped (ErrNotPresent, logged at
// debug), and so is /proc/mdstat without arrays: an empty slice means no
// RAID here. The error is non-nil only when ctx ends (the results so far
// are returned with it) or no working directory can be made for the CLIs.
//
// The CLIs run one at a time, each with an argv (never a shell), the
// environment LC_ALL=C and PATH only, and a fresh temporary working
// directory, so log files some of them write (storcli.log) land there and
// are removed.
func (p *Probe) Run(ctx context.Context) ([]*Result, error) {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	found := make([]string, len(tools))
	familyHasCLI := map[string]bool{}
	for i, t := range tools {
		if t.procFile != "" {
			continue
		}
		found[i] = p.lookup(t)
		if found[i] != "" {
			familyHasCLI[t.family] = true
			log.Debug("raid tool found", "tool", t.name, "path", found[i])
		}
	}
	detected := p.detect(log)

	var dir string
	defer func() {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}()
	var out []*Result
	for i, t := range tools {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		switch {
		case t.procFile != "":
			if r := p.readProc(t, log); r != nil {
				out = append(out, r)
			}
		case found[i] != "":
			if dir == "" {
				d, err := os.MkdirTemp("", "agent-raid-")
				if err != nil {
					return out, fmt.Errorf("raidcheck: working directory for the CLIs: %w", err)
				}
				dir = d
			}
			r, err := p.runTool(ctx, t, found[i], dir, log)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		case detected[t.name] != "" && !familyHasCLI[t.family]:
			r := &Result{Tool: t.name, Err: fmt.Sprintf("controller detected (%s) but %s not found", detected[t.name], t.bins[0])}
			r.Finish()
			log.Debug("raid controller without its CLI", "tool", t.name, "evidence", detected[t.name], "looked_for", strings.Join(t.bins, ","))
			out = append(out, r)
		default:
			log.Debug("raid tool skipped", "tool", t.name, "err", ErrNotPresent)
		}
	}
	return out, nil
}

// lookup returns the path of the tool's CLI, or "": each name on PATH,
// then the usual install paths, then each name in ExtraDirs.
func (p *Probe) lookup(t tool) string {
	pathEnv := p.PathEnv
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH")
	}
	dirs := filepath.SplitList(pathEnv)
	for _, name := range t.bins {
		for _, d := range dirs {
			// An empty or relative entry means the current directory,
			// which root must never run tools from.
			if d == "" || !filepath.IsAbs(d) {
				continue
			}
			if c := filepath.Join(d, name); isExecutable(c) {
				return c
			}
		}
	}
	for _, c := range t.paths {
		if isExecutable(c) {
			return c
		}
	}
	extra := p.ExtraDirs
	if extra == nil {
		extra = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/sbin", "/opt/bin"}
	}
	for _, name := range t.bins {
		for _, d := range extra {
			if c := filepath.Join(d, name); filepath.IsAbs(d) && isExecutable(c) {
				return c
			}
		}
	}
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pciAddrRe matches a PCI device entry of a driver directory, e.g.
// /sys/bus/pci/drivers/megaraid_sas/0000:03:00.0.
var pciAddrRe = lazyRegexp(`^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// detect returns, per reporting tool name, the first evidence of one of its
// family's controllers: a driver name or "scsi Vendor Model".
func (p *Probe) detect(log *slog.Logger) map[string]string {
	procRoot, sysRoot := p.ProcRoot, p.SysRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	// Drivers that own a SCSI host or a PCI device.
	bound := map[string]bool{}
	hosts, _ := filepath.Glob(filepath.Join(sysRoot, "class", "scsi_host", "*", "proc_name"))
	for _, h := range hosts {
		if b, err := os.ReadFile(h); err == nil {
			bound[strings.TrimSpace(string(b))] = true
		}
	}
	for _, t := range tools {
		for _, drv := range append(append([]string(nil), t.drivers...), t.hints...) {
			ents, err := os.ReadDir(filepath.Join(sysRoot, "bus", "pci", "drivers", drv))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if pciAddrRe().MatchString(e.Name()) {
					bound[drv] = true
					break
				}
			}
		}
	}
	// "  Vendor: Areca    Model: ARC-1880-VOL#000 Rev: R001"
	var scsi [][2]string
	if b, err := readBounded(filepath.Join(procRoot, "scsi", "scsi")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			_, rest, ok := strings.Cut(line, "Vendor:")
			if !ok {
				continue
			}
			vendor, rest, _ := strings.Cut(rest, "Model:")
			model, _, _ := strings.Cut(rest, "Rev:")
			scsi = append(scsi, [2]string{strings.TrimSpace(vendor), strings.TrimSpace(model)})
		}
	}
	found := map[string]string{}
	for _, t := range tools {
		for _, drv := range t.drivers {
			if bound[drv] && found[t.name] == "" {
				found[t.name] = drv
			}
		}
		for _, vm := range scsi {
			if t.scsi != nil && found[t.name] == "" && t.scsi(vm[0], vm[1]) {
				found[t.name] = "scsi " + vm[0] + " " + vm[1]
			}
		}
		for _, drv := range t.hints {
			if bound[drv] {
				log.Debug("raid: HBA driver present; alerts only if its CLI reports a problem", "driver", drv, "tool", t.name)
			}
		}
		if found[t.name] != "" {
			log.Debug("raid controller detected", "tool", t.name, "evidence", found[t.name])
		}
	}
	return found
}

// readBounded reads a whole file of at most maxOutput bytes (procfs files
// report size 0, so os.ReadFile's size hint does not help).
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxOutput+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(b) > maxOutput {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxOutput)
	}
	return b, nil
}

// readProc reads a procfs file such as /proc/mdstat and parses it; nil
// means nothing here (no file, or no arrays in it).
func (p *Probe) readProc(t tool, log *slog.Logger) *Result {
	root := p.ProcRoot
	if root == "" {
		root = "/proc"
	}
	path := filepath.Join(root, t.procFile)
	data, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Debug("raid tool skipped", "tool", t.name, "path", path, "err", ErrNotPresent)
		return nil
	}
	if err != nil {
		r := &Result{Tool: t.name, Err: err.Error()}
		r.Finish()
		return r
	}
	r, err := t.parse([]Input{{Name: path, Data: data}})
	if err != nil {
		r = &Result{Tool: t.name, Err: err.Error()}
		r.Finish()
		return r
	}
	if len(r.Controllers) == 0 {
		log.Debug("raid tool skipped: no arrays", "tool", t.name, "path", path)
		return nil
	}
	return r
}

// cmdRun is one command's outcome: its output as an Input, and why it failed
// (nil when it printed something, even with a non-zero exit status).
type cmdRun struct {
	cmd cliCommand
	in  Input
	err error
}

// runTool runs the tool's commands and parses their outputs. Only ctx
// ending is returned as an error; every other problem is in the Result.
func (p *Probe) runTool(ctx context.Context, t tool, bin, dir string, log *slog.Logger) (*Result, error) {
	cmds := t.cmds
	runs, err := p.runAll(ctx, bin, dir, cmds, log)
	if err != nil {
		return nil, err
	}
	if t.more != nil && len(runs) > 0 && runs[0].err == nil {
		extra, err := p.runAll(ctx, bin, dir, t.more(runs[0].in.Data), log)
		if err != nil {
			return nil, err
		}
		runs = append(runs, extra...)
	}
	r, perr := parseRuns(t, runs)
	if perr != nil && len(t.fallback) > 0 {
		log.Debug("raid tool: trying the fallback commands", "tool", t.name, "err", perr)
		fb, err := p.runAll(ctx, bin, dir, t.fallback, log)
		if err != nil {
			return nil, err
		}
		r2, ferr := parseRuns(t, fb)
		if ferr == nil {
			return r2, nil
		}
		perr = fmt.Errorf("%w; fallback: %w", perr, ferr)
	}
	if perr != nil {
		r = &Result{Tool: t.name, Err: perr.Error()}
		r.Finish()
	}
	return r, nil
}

// runAll runs cmds in order. The error is ctx's, when it ends.
func (p *Probe) runAll(ctx context.Context, bin, dir string, cmds []cliCommand, log *slog.Logger) ([]cmdRun, error) {
	var runs []cmdRun
	for _, c := range cmds {
		in, err := p.runCommand(ctx, bin, dir, c.args)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return runs, ctxErr
		}
		if err != nil {
			log.Debug("raid command failed", "cmd", in.Name, "err", err)
		}
		runs = append(runs, cmdRun{cmd: c, in: in, err: err})
	}
	return runs, nil
}

// parseRuns parses the outputs. A required command that failed fails the
// tool; an optional one that failed, or whose output the parser rejects,
// is left out with a warning on every controller.
func parseRuns(t tool, runs []cmdRun) (*Result, error) {
	var ins []Input
	var dropped []string
	for _, r := range runs {
		switch {
		case r.err == nil:
			ins = append(ins, r.in)
		case r.cmd.optional:
			dropped = append(dropped, r.err.Error())
		default:
			return nil, r.err
		}
	}
	for {
		res, err := t.parse(ins)
		if err == nil && res == nil {
			err = fmt.Errorf("%s: parser returned no result", t.name)
		}
		if err == nil {
			res.Tool = t.name
			if len(dropped) > 0 {
				for _, c := range res.Controllers {
					for _, d := range dropped {
						c.Warnings = append(c.Warnings, Warning{Component: "controller", Message: d})
					}
				}
				res.Finish()
			}
			return res, nil
		}
		// Leave out an optional command's output the parser rejects and
		// try again: a controller without a battery must not make the
		// whole tool unknown.
		var pe *ParseError
		i := -1
		if errors.As(err, &pe) {
			for j, in := range ins {
				if in.Name == pe.Name && runIsOptional(runs, in.Name) {
					i = j
				}
			}
		}
		if i < 0 {
			return nil, err
		}
		dropped = append(dropped, err.Error())
		ins = append(ins[:i:i], ins[i+1:]...)
		if len(ins) == 0 {
			return nil, err
		}
	}
}

func runIsOptional(runs []cmdRun, name string) bool {
	for _, r := range runs {
		if r.in.Name == name {
			return r.cmd.optional
		}
	}
	return false
}

// runCommand runs bin with args and returns its output as an Input named by
// the command line. A non-zero exit status with output is not an error:
// MegaCli exits non-zero routinely, and the parser judges what it printed.
// Errors: ErrTimeout, a start failure, output over maxOutput, or a failure
// with nothing on stdout (with stderr's first line).
func (p *Probe) runCommand(ctx context.Context, bin, dir string, args []string) (Input, error) {
	name := strings.Join(append([]string{filepath.Base(bin)}, args...), " ")
	in := Input{Name: name}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pathEnv := p.PathEnv
	if pathEnv == "" {
		pathEnv = os.Getenv("PATH")
	}
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=" + pathEnv}
	cmd.Dir = dir
	cmd.Stdin = nil
	stdout := &capped.Buffer{Max: maxOutput}
	stderr := &capped.Buffer{Max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	in.Data = stdout.Bytes()
	if cctx.Err() != nil && ctx.Err() == nil {
		return in, fmt.Errorf("%s: %w after %v", name, ErrTimeout, timeout)
	}
	if ctx.Err() != nil {
		return in, fmt.Errorf("%s: %w", name, ctx.Err())
	}
	if stdout.Over() {
		return in, fmt.Errorf("%s: output larger than %d bytes", name, maxOutput)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return in, fmt.Errorf("%s: %w", name, err)
	}
	if len(bytes.TrimSpace(in.Data)) == 0 {
		msg := stderrLine(stderr.Bytes())
		switch {
		case err != nil && msg != "":
			return in, fmt.Errorf("%s: %w: %s", name, err, msg)
		case err != nil:
			return in, fmt.Errorf("%s: %w and no output", name, err)
		case msg != "":
			return in, fmt.Errorf("%s: no output: %s", name, msg)
		default:
			return in, fmt.Errorf("%s: no output", name)
		}
	}
	return in, nil
}

func stderrLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}

// The tw_cli `show` lines that name what to ask about next:
//
//	c0    9650SE-16ML  16        16       1       0       5       1      OK
//	/c0/e0        12     2       3     1        2        1
var (
	twShowCtlRe  = lazyRegexp(`^(c\d+)\s+\S`)
	twShowEnclRe = lazyRegexp(`^(/c\d+/e\d+)\s`)
)

// twcommands lists the commands for every controller and enclosure a
// `tw_cli show` output names: unitstatus and drivestatus always,
// bbustatus unless the BBU column says "-" (no battery module), and
// `/cN/eN show all` for each enclosure.
func twcliCommands(show []byte) []cliCommand {
	var cmds []cliCommand
	bbuCol := -1
	for _, line := range strings.Split(string(show), "\n") {
		line = strings.TrimRight(line, "\r")
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "Ctl" {
			bbuCol = -1
			for i, f := range fields {
				if f == "BBU" {
					bbuCol = i
				}
			}
			continue
		}
		if m := twShowCtlRe().FindStringSubmatch(line); m != nil {
			c := m[1]
			cmds = append(cmds, reqCmd("info", c, "unitstatus"), reqCmd("info", c, "drivestatus"))
			if bbuCol >= 0 && bbuCol < len(fields) && fields[bbuCol] != "-" {
				cmds = append(cmds, optCmd("info", c, "bbustatus"))
			}
			continue
		}
		if m := twShowEnclRe().FindStringSubmatch(line); m != nil {
			cmds = append(cmds, optCmd(m[1], "show", "all"))
		}
	}
	return cmds
}
