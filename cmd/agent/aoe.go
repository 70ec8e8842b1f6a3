package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/aoe"
	"opsagent/report"
	"opsagent/rules"
)

// aoeFlags are the flags every aoe subcommand takes.
func aoeFlags(extra ...cli.Flag) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "exports", Usage: "vbladed.conf `FILE` (default: the aoe_config option, /etc/vbladed.conf)"},
		&cli.StringFlag{Name: "run-dir", Usage: "`DIR` for pid and state files (default: the run_dir option, /run/agent); they live in DIR/aoe"},
	}, extra...)
}

// aoeSetup is what every aoe subcommand needs: the exports, where they are
// kept, and the vblade binary.
type aoeSetup struct {
	cfg    *aoe.Config
	runDir string
	vblade string
	path   string
}

// loadAOE reads agent.conf for the defaults, then the exports file. A bad
// exports file is a config error (exit 17) that names file and line.
func loadAOE(c *cli.Context) (*aoeSetup, error) {
	pol, err := loadPolicy(c)
	if err != nil {
		return nil, err
	}
	s := &aoeSetup{path: pol.Options.AOEConfig, runDir: pol.Options.RunDir, vblade: pol.Options.Vblade}
	if p := c.String("exports"); p != "" {
		s.path = p
	}
	if d := c.String("run-dir"); d != "" {
		s.runDir = d
	}
	if s.path == "" {
		s.path = rules.DefaultAOEConfig
	}
	if s.runDir == "" {
		s.runDir = rules.DefaultRunDir
	}
	if s.vblade == "" {
		s.vblade = "vblade"
	}
	cfg, err := aoe.Load(s.path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	s.cfg = cfg
	return s, nil
}

// aliases returns the aliases a start/stop/restart applies to: the one
// named, or every export.
//
// stop also takes an alias that is no longer in the file, so that an export
// removed from the config while it runs can still be stopped.
func (s *aoeSetup) aliases(c *cli.Context) ([]string, error) {
	if c.NArg() > 1 {
		return nil, fmt.Errorf("%w: at most one ALIAS", errUsage)
	}
	if a := c.Args().First(); a != "" {
		if _, ok := s.cfg.Export(a); !ok && c.Command.Name != "stop" {
			return nil, fmt.Errorf("%w: no export %q in %s", errUsage, a, s.path)
		}
		return []string{a}, nil
	}
	var out []string
	for _, e := range s.cfg.Exports {
		out = append(out, e.Alias)
	}
	return out, nil
}

func aoeCommand() *cli.Command {
	return &cli.Command{
		Name:  "aoe",
		Usage: "ATA over Ethernet exports (vbladed.conf) served by vblade",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "validate the exports file and print the exports",
				Flags: aoeFlags(),
				Action: func(c *cli.Context) error {
					s, err := loadAOE(c)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintf(tw, "ALIAS\tSHELF.SLOT\tIFACE\tMACS\tFILE\n")
					for _, e := range s.cfg.Exports {
						macs := strings.Join(e.MACs, ",")
						if macs == "" {
							macs = "any"
						}
						fmt.Fprintf(tw, "%s\t%d.%d\t%s\t%s\t%s\n", e.Alias, s.cfg.Shelf, e.Slot, e.Iface, macs, e.File)
					}
					return wrapWrite(tw.Flush())
				},
			},
			{
				Name:      "start",
				Usage:     "start an export (all without ALIAS); without a running supervisor the vblade runs detached and unsupervised",
				ArgsUsage: "[ALIAS]",
				Flags:     aoeFlags(),
				Action: eachAlias(func(c *cli.Context, s *aoeSetup, a string) (string, error) {
					unsup, pid, err := aoe.Start(s.runDir, a, s.cfg, s.vblade)
					if err != nil {
						return "", err
					}
					if !unsup {
						return fmt.Sprintf("running (pid %d)", pid), nil
					}
					e, _ := s.cfg.Export(a)
					aoeNotify(c, startedLine(e, pid))
					return fmt.Sprintf("started (pid %d), unsupervised: no 'agent aoe supervise' is running to restart it", pid), nil
				}),
			},
			{
				Name:      "stop",
				Usage:     "stop an export (all without ALIAS) and keep it stopped until 'start' (the mark is cleared by a reboot)",
				ArgsUsage: "[ALIAS]",
				Flags:     aoeFlags(),
				Action: eachAlias(func(c *cli.Context, s *aoeSetup, a string) (string, error) {
					return "stopped", aoe.Stop(s.runDir, a)
				}),
			},
			{
				Name:      "restart",
				Usage:     "restart an export (all without ALIAS), applying a changed exports file",
				ArgsUsage: "[ALIAS]",
				Flags:     aoeFlags(),
				Action: eachAlias(func(c *cli.Context, s *aoeSetup, a string) (string, error) {
					return "restarted", aoe.Restart(s.runDir, a, s.cfg, s.vblade)
				}),
			},
			{
				Name:  "status",
				Usage: "show every export: alias, shelf.slot, pid, state, restarts, since",
				Flags: aoeFlags(&cli.BoolFlag{Name: "json", Usage: "print JSON"}),
				Action: func(c *cli.Context) error {
					s, err := loadAOE(c)
					if err != nil {
						return err
					}
					st, err := aoe.Status(s.runDir, s.cfg)
					if err != nil {
						return err
					}
					if c.Bool("json") {
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						return wrapWrite(enc.Encode(st))
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintf(tw, "ALIAS\tSHELF.SLOT\tPID\tSTATE\tRESTARTS\tSINCE\n")
					for _, e := range st {
						since := "-"
						if !e.Since.IsZero() {
							since = e.Since.Local().Format(time.DateTime)
						}
						pid := "-"
						if e.PID > 0 {
							pid = fmt.Sprint(e.PID)
						}
						fmt.Fprintf(tw, "%s\t%d.%d\t%s\t%s\t%d\t%s\n", e.Alias, e.Shelf, e.Slot, pid, e.State, e.Restarts, since)
					}
					return wrapWrite(tw.Flush())
				},
			},
			{
				Name:  "supervise",
				Usage: "run in the foreground, start every export not marked stopped and keep them alive (SIGTERM stops them and exits 0)",
				Flags: aoeFlags(),
				Action: func(c *cli.Context) error {
					s, err := loadAOE(c)
					if err != nil {
						return err
					}
					sup := &aoe.Supervisor{
						Vblade: s.vblade, RunDir: s.runDir, ConfigPath: s.path,
						Logger: cliLogger(c, 0),
						Notify: func(line string) { aoeNotify(c, line) },
					}
					pol, _ := loadPolicy(c) // loadAOE loaded it already
					obsDone := make(chan struct{})
					if pol != nil {
						obs := newAOEObserver(pol.Options, s.runDir, s.path, func(f string, a ...any) {
							fmt.Fprintf(c.App.ErrWriter, "agent: warning: "+f+"\n", a...)
						})
						go func() { defer close(obsDone); obs.run(c.Context, aoeObservePoll) }()
					} else {
						close(obsDone)
					}
					defer func() { <-obsDone }()
					if err := sup.Run(c.Context); err != nil {
						return err
					}
					return nil
				},
			},
		},
	}
}

// startedLine is the log line of a vblade start, as the supervisor writes it.
func startedLine(e aoe.Export, pid int) string {
	macs := strings.Join(e.MACs, ",")
	if macs == "" {
		macs = "any"
	}
	return fmt.Sprintf("started vblade for %s (pid:%d file:%s iface:%s mac:%s)", e.Alias, pid, e.File, e.Iface, macs)
}

// aoeNotify writes a supervisor event to stderr and syslog.
func aoeNotify(c *cli.Context, line string) {
	fmt.Fprintln(c.App.ErrWriter, line)
	_ = report.Syslog(report.FacilityDaemon, report.SeverityNotice, report.DefaultSyslogTag, line)
}

// eachAlias runs fn for the named export or every export, printing
// "alias: outcome" per export and failing with all errors together.
func eachAlias(fn func(c *cli.Context, s *aoeSetup, alias string) (string, error)) cli.ActionFunc {
	return func(c *cli.Context) error {
		s, err := loadAOE(c)
		if err != nil {
			return err
		}
		aliases, err := s.aliases(c)
		if err != nil {
			return err
		}
		var errs []string
		for _, a := range aliases {
			msg, err := fn(c, s, a)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", a, err))
				continue
			}
			fmt.Fprintf(c.App.Writer, "%s: %s\n", a, msg)
		}
		return joinAOEErrors(errs)
	}
}

func joinAOEErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "\n"))
}
