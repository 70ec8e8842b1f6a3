package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/raidcheck"
	"opsagent/report"
	"opsagent/rules"
)

// raidStateName is the alert state file under state_dir.
const raidStateName = "raid-state.json"

func raidCommand() *cli.Command {
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print the JSON document (overall verdict in \"verdict\")"}
	return &cli.Command{
		Name:  "raid",
		Usage: "RAID controllers and Linux md: probe the vendor CLIs and judge every array",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "probe every RAID tool found; exit 0 ok, 1 rebuilding or warning, 2 degraded or failed, 3 unknown",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.BoolFlag{Name: "mail", Usage: "mail on every change of verdict and every raid_alert_repeat while not ok"},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing when all is ok (for cron)"},
					&cli.StringFlag{Name: "proc-root", Hidden: true, Value: "/proc", Usage: "where proc is mounted (tests, containers)"},
					&cli.StringFlag{Name: "sys-root", Hidden: true, Value: "/sys", Usage: "where sysfs is mounted (tests, containers)"},
				},
				Action: raidCheck,
			},
			{
				Name:      "parse",
				Usage:     "judge saved outputs of one tool (outputs of several of its commands may be given together)",
				ArgsUsage: "FILE...",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.StringFlag{Name: "tool", Required: true, Usage: "areca, tw_cli, megacli, storcli, perccli or mdstat"},
				},
				Action: raidParse,
			},
		},
	}
}

func raidParse(c *cli.Context) error {
	if c.NArg() == 0 {
		return fmt.Errorf("%w: raid parse needs at least one file", errUsage)
	}
	var in []raidcheck.Input
	for _, name := range c.Args().Slice() {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		in = append(in, raidcheck.Input{Name: name, Data: b})
	}
	res, err := raidcheck.ParseTool(c.String("tool"), in)
	if err != nil && res == nil {
		res = &raidcheck.Result{Tool: c.String("tool"), Err: err.Error()}
		res.Finish()
	}
	host, _ := os.Hostname()
	rep := raidcheck.NewReport(host, time.Now(), []*raidcheck.Result{res})
	if err := writeRAID(c, rep); err != nil {
		return err
	}
	return raidExit(rep)
}

func raidCheck(c *cli.Context) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	logger := cliLogger(c, 0)
	probe := raidcheck.Probe{ProcRoot: c.String("proc-root"), SysRoot: c.String("sys-root"), Logger: logger}
	begin := time.Now()
	results, err := probe.Run(c.Context)
	if err != nil {
		return err
	}
	now := time.Now()
	rep := raidcheck.NewReport(host, now, results)
	observeRAID(c, pol.Options, rep, now.Sub(begin))
	quietOK := c.Bool("quiet") && rep.ExitCode() == 0
	if !quietOK {
		if err := writeRAID(c, rep); err != nil {
			return err
		}
	}
	if rep.Empty() {
		return nil
	}
	o := pol.Options
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("%w: create state_dir: %w", errWrite, err)
	}
	var text, js bytes.Buffer
	if err := raidcheck.WriteText(&text, rep); err != nil {
		return err
	}
	if err := raidcheck.WriteJSON(&js, rep); err != nil {
		return err
	}
	hist := report.History{Dir: o.ReportDir}
	id, herr := hist.Save(report.HistoryRAID, text.Bytes(), js.Bytes())
	if herr != nil && !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: cannot keep the RAID report: %v\n", herr)
	}
	sev := report.SeverityNotice
	if rep.ExitCode() != 0 {
		sev = report.SeverityWarning
	}
	_ = report.Syslog(report.FacilityLocal0, sev, report.DefaultSyslogTag, rep.Headline())

	if c.Bool("mail") {
		if err := raidAlert(c, pol, rep, text.Bytes(), id, host, now); err != nil {
			return err
		}
	}
	if _, err := report.Prune(o.ReportDir, "", o.ReportMaxAge, now, ""); err != nil && !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: pruning old reports: %v\n", err)
	}
	return raidExit(rep)
}

// raidAlert mails on every change of the overall verdict and again every
// raid_alert_repeat while it is not ok, and once when it recovers. The
// state lives in state_dir/raid-state.json; a corrupt state file is an
// error, never silently reset.
func raidAlert(c *cli.Context, o *rules.Policy, rep *raidcheck.Report, text []byte, id, host string, now time.Time) error {
	path := filepath.Join(o.Options.StateDir, raidStateName)
	prev, err := raidcheck.LoadAlertState(path)
	if err != nil {
		return err
	}
	send, kind, next := raidcheck.Decide(prev, rep.Verdict, rep.Warnings, rep.Subject(), now, o.Options.RAIDAlertRepeat)
	if send {
		subject := "[agent] " + host + ": " + rep.Subject()
		switch kind {
		case "recovered":
			subject = "[agent] " + host + ": RAID recovered: " + rep.Headline()
		case "repeat":
			subject += " (still)"
		}
		cfg := mailConfig(o.Options, host, cliLogger(c, 0))
		if len(cfg.To) == 0 {
			fmt.Fprintf(c.App.ErrWriter, "agent: warning: --mail: mail_to is not set in the config; no mail sent\n")
		} else {
			name := id + ".txt"
			if id == "" {
				name = "raid.txt"
			}
			msg, err := report.NewReportMessage(cfg, subject, text, name)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Minute)
			defer cancel()
			deliverMail(ctx, o.Options, cfg, msg, cliLogger(c, 0), c.App.ErrWriter, stderrWarn(c.App.ErrWriter))
		}
	}
	return raidcheck.SaveAlertState(path, next)
}

func writeRAID(c *cli.Context, rep *raidcheck.Report) error {
	if c.Bool("json") {
		return wrapWrite(raidcheck.WriteJSON(c.App.Writer, rep))
	}
	return wrapWrite(raidcheck.WriteText(c.App.Writer, rep))
}

func raidExit(rep *raidcheck.Report) error {
	if code := rep.ExitCode(); code != 0 {
		return &exitError{code: code}
	}
	return nil
}
