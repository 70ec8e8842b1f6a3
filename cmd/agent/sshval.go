package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/notify"
	"opsagent/report"
	"opsagent/sshval"
)

// defaultSSHValRules is the rules file of the forced command. It is not
// agent.conf: sshval runs as the SSH login user, who may not read that.
const defaultSSHValRules = sshval.DefaultRules

// exitRejected is the status of a rejected forced command.
const exitRejected = 126

func rulesFlag() cli.Flag {
	return &cli.StringFlag{Name: "rules", Value: defaultSSHValRules, Usage: "sshval rules `FILE`"}
}

func sshvalCommand() *cli.Command {
	return &cli.Command{
		Name:  "sshval",
		Usage: "forced command for authorized_keys: run only what the rules allow, without a shell, logging every decision",
		Description: `Use in authorized_keys as
   command="/usr/sbin/agent sshval",restrict ssh-ed25519 AAAA... backup@host
It reads SSH_ORIGINAL_COMMAND and SSH_CONNECTION (else SSH_CLIENT), decides, logs, and either
executes the allowed command (no shell) or prints the rejection and exits 126.`,
		Flags:  []cli.Flag{rulesFlag()},
		Action: sshvalForced,
		Subcommands: []*cli.Command{
			{
				Name:      "test",
				Usage:     "print the decision for a command from a source address, the rule that made it, and the confinement and account it would run under (exit 0 allowed, 1 rejected)",
				ArgsUsage: "--from IP -- COMMAND...",
				Flags: []cli.Flag{
					rulesFlag(),
					&cli.StringFlag{Name: "from", Required: true, Usage: "source `IP` of the connection"},
					&cli.StringFlag{Name: "user", Usage: "the key's login `USER` sshval would run as (default: the account running the test)"},
				},
				Action: sshvalTest,
			},
			{
				Name:      "audit",
				Usage:     "report weak authorized_keys entries (exit 0 none, 1 findings)",
				ArgsUsage: "[--all-users | FILE...]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "all-users", Usage: "every user's ~/.ssh/authorized_keys"}},
				Action:    sshvalAudit,
			},
		},
	}
}

// sshvalForced is the forced command itself. Every failure rejects (fail
// closed): rules that cannot be read, a decision that cannot be logged to
// the configured file, an exec that fails.
func sshvalForced(c *cli.Context) error {
	cmd, set := os.LookupEnv("SSH_ORIGINAL_COMMAND")
	env := sshval.Env{Command: cmd, CommandSet: set, Connection: os.Getenv("SSH_CONNECTION"),
		Client: os.Getenv("SSH_CLIENT"), EUID: os.Geteuid()}
	if u, err := user.Current(); err == nil {
		env.User = u.Username
	}
	rules, err := sshval.LoadRules(c.String("rules"))
	var d sshval.Decision
	logger := &sshval.Logger{}
	if err != nil {
		rules = nil
		d = sshval.Decision{Command: cmd, Reason: "rules unusable: " + err.Error(), Interactive: strings.TrimSpace(cmd) == ""}
		if ap, perr := sshval.ClientAddr(env); perr == nil {
			d.From = ap
		}
	} else {
		d = sshval.Decide(env, rules)
		logger.File = rules.Log
	}
	// How the command will be confined is settled before it is logged, so
	// that a confinement the machine cannot give is logged (and told to
	// the client) as the rejection it is.
	var plan *sshval.Plan
	if d.Allow {
		if plan, err = sshval.Prepare(d, os.Geteuid()); err != nil {
			d.Allow = false
			d.Reason = strings.TrimPrefix(err.Error(), "sshval: ")
		}
	}
	if lerr := logger.Log(d); errors.Is(lerr, sshval.ErrLogFile) && d.Allow {
		// Every decision is logged; one that cannot be is not carried out.
		d.Allow = false
		d.Reason = "cannot write the log: " + lerr.Error()
	}
	if d.Allow && plan.Warning != "" {
		if werr := logger.Warn(d.From, plan.Warning); errors.Is(werr, sshval.ErrLogFile) {
			d.Allow = false
			d.Reason = "cannot write the log: " + werr.Error()
		}
	}
	sshvalRecord(d, rules, env.User, logger)
	if !d.Allow {
		fmt.Fprintf(c.App.ErrWriter, "sshval: rejected: %s\n", sshval.Escape(d.Reason))
		return &exitError{code: exitRejected}
	}
	err = sshval.Run(d, plan)
	// Only reached if the command could not be started. A confinement
	// step that failed after the decision was logged is logged too.
	if errors.Is(err, sshval.ErrConfine) {
		logger.Warn(d.From, "command not run: "+strings.TrimPrefix(err.Error(), "sshval: "))
		fmt.Fprintf(c.App.ErrWriter, "sshval: rejected: %s\n", strings.TrimPrefix(err.Error(), "sshval: "))
		return &exitError{code: exitRejected}
	}
	fmt.Fprintf(c.App.ErrWriter, "sshval: cannot run %s: %v\n", d.Argv[0], err)
	return &exitError{code: exitRejected}
}

// sshvalRecord counts the final decision d in the counters directory of
// the rules (the default one when the rules are unusable) and sends a
// refusal as an sshval.refusal event to the rules' events sink. Neither
// may change the decision: a counters directory that is set up wrong is
// one warning line in the log (a missing one is silence: counting is not
// set up), an events sink this account cannot open (a file:PATH it may not
// write) is skipped.
func sshvalRecord(d sshval.Decision, rules *sshval.Rules, login string, logger *sshval.Logger) {
	if login == "" {
		login = strconv.Itoa(os.Geteuid())
	}
	dir, events := sshval.DefaultCounters, ""
	if rules != nil {
		if rules.Counters != "" {
			dir = rules.Counters
		}
		events = rules.Events
	}
	if dir != "none" {
		if err := sshval.Count(dir, os.Geteuid(), d.Allow, time.Now()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = logger.Warn(d.From, "decision not counted (counting is off): "+strings.TrimPrefix(err.Error(), "sshval: "))
		}
	}
	if d.Allow || events == "" || events == "none" {
		return
	}
	host, _ := os.Hostname()
	ev, err := notify.OpenEvents(events, 1, host)
	if err != nil {
		return
	}
	from := "unknown"
	if d.From.IsValid() {
		from = d.From.Unmap().String()
	}
	rule := ""
	if d.Rule != nil {
		rule = d.Rule.Name
	}
	f := map[string]string{"user": login, "from": from, "command": report.EscapeJSONPath(d.Command),
		"reason": report.EscapeJSONPath(d.Reason), "rule": rule}
	if d.Interactive {
		f["interactive"] = "yes"
	}
	_ = ev.Emit(notify.Event{Kind: notify.EventSSHValRefusal, Severity: report.SeverityWarning, Message: sshval.Message(d), Fields: f})
	_ = ev.Close()
}

func sshvalTest(c *cli.Context) error {
	rules, err := sshval.LoadRules(c.String("rules"))
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	from, err := netip.ParseAddr(c.String("from"))
	if err != nil {
		return fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	words := c.Args().Slice()
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	cmd := strings.Join(words, " ")
	env := sshval.Env{Command: cmd, CommandSet: len(words) > 0, Connection: from.String() + " 50000 127.0.0.1 22", EUID: os.Geteuid()}
	d := sshval.Decide(env, rules)
	uid := os.Geteuid()
	if name := c.String("user"); name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return fmt.Errorf("%w: --user: %v", errUsage, err)
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return fmt.Errorf("%w: --user: uid %q", errUsage, u.Uid)
		}
	}
	var plan *sshval.Plan
	if d.Allow {
		if plan, err = sshval.Prepare(d, uid); err != nil {
			d.Allow = false
			d.Reason = strings.TrimPrefix(err.Error(), "sshval: ")
		}
	}
	rule := "(none)"
	if d.Rule != nil {
		rule = fmt.Sprintf("%s %s (%s:%d)", d.Rule.Kind, d.Rule.Name, rules.File, d.Rule.Line)
	}
	if d.Allow {
		mode := "none (a command rule has no root)"
		if plan.Mode != "" {
			mode = plan.Mode + " (" + plan.Detail + ")"
		}
		fmt.Fprintf(c.App.Writer, "allowed by %s\nexec: %s\nconfine: %s\nrun as: %s\n", rule, strings.Join(d.Argv, " "), mode, plan.Account)
		if plan.Warning != "" {
			fmt.Fprintf(c.App.Writer, "warning: %s\n", plan.Warning)
		}
		return nil
	}
	fmt.Fprintf(c.App.Writer, "rejected: %s\nrule: %s\n", d.Reason, rule)
	return &exitError{code: 1}
}

func sshvalAudit(c *cli.Context) error {
	files := c.Args().Slice()
	if c.Bool("all-users") {
		all, err := sshval.AllUsersKeyFiles()
		if err != nil {
			return err
		}
		files = append(files, all...)
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: audit needs FILE... or --all-users", errUsage)
	}
	findings, err := sshval.Audit(files)
	if err != nil && len(findings) == 0 {
		return err
	}
	for _, f := range findings {
		who := f.File
		if f.Line > 0 {
			who = fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if f.User != "" {
			who += " (" + f.User + ")"
		}
		fmt.Fprintf(c.App.Writer, "%s: %s: %s\n", who, f.Key, f.Problem)
	}
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: %v\n", err)
	}
	if len(findings) > 0 {
		return &exitError{code: 1}
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.Writer, "%d file(s) audited: no findings\n", len(files))
	}
	return nil
}
