package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"opsagent/examples"
	"opsagent/rules"
	"opsagent/sshval"
)

// defaultConfigPath is where the agent looks for its config; when nothing is
// there (and --config was not given), the embedded examples/agent.conf is used.
const defaultConfigPath = "/etc/agent/agent.conf"

// embeddedConfigName labels errors in the embedded default config.
const embeddedConfigName = "(embedded default agent.conf)"

var errConfig = errors.New("configuration error")

// loadPolicy reads the config named by --config (or the embedded default) and
// applies the global flags that override options.
func loadPolicy(c *cli.Context) (*rules.Policy, error) {
	opts := rules.LoadOptions{AgentVersion: version}
	path := c.String("config")
	var pol *rules.Policy
	var err error
	if _, statErr := os.Stat(path); errors.Is(statErr, fs.ErrNotExist) && !c.IsSet("config") && path == defaultConfigPath {
		pol, err = rules.Parse(bytes.NewReader(examples.AgentConf), embeddedConfigName, opts)
	} else if path == "-" {
		pol, err = rules.Parse(os.Stdin, "(stdin)", opts)
	} else {
		pol, err = rules.Load(path, opts)
	}
	if err != nil {
		// Parse errors carry file:line; anything else (a missing or
		// unreadable file) is a config error too.
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	if d := c.String("state-dir"); d != "" {
		reportDefault := pol.Options.ReportDir == "" || pol.Options.ReportDir == pol.Options.StateDir+"/reports"
		pol.Options.StateDir = d
		if reportDefault {
			pol.Options.ReportDir = strings.TrimRight(d, "/") + "/reports"
		}
	}
	if err := excludeOwn(pol); err != nil {
		return nil, err
	}
	if re := c.String("limit"); re != "" {
		if err := pol.SetLimit(re); err != nil {
			return nil, fmt.Errorf("%w: --limit: %v", errUsage, err)
		}
	}
	return pol, nil
}

// excludeOwn prunes what the agent writes from every scan, so that it never
// reports its own files: state_dir (baselines, lock, temp files, mail spool,
// daemon and RAID state), report_dir, run_dir, the report_url files and the
// decision log of the default sshval rules. The agent's own package files
// (/usr/sbin/agent, /etc/agent, ...) are scanned like any other: a package
// upgrade explains their changes (provenance class package), a trojaned
// binary is a package-mismatch. The baseline itself is vouched
// for by the BLAKE3 digest every report prints, not by the scan.
func excludeOwn(pol *rules.Policy) error {
	o := pol.Options
	runDir := o.RunDir
	if runDir == "" {
		runDir = rules.DefaultRunDir
	}
	own := [][2]string{
		{o.StateDir, "agent state_dir"},
		{o.ReportDir, "agent report_dir"},
		{runDir, "agent run_dir"},
	}
	if o.MetricsDir != "" {
		own = append(own, [2]string{o.MetricsDir, "agent metrics_dir"})
	}
	if o.SSHValCounters != "none" && o.SSHValCounters != "" {
		own = append(own, [2]string{o.SSHValCounters, "agent sshval_counters"})
	}
	if p, ok := strings.CutPrefix(o.Events, "file:"); ok {
		own = append(own, [2]string{p, "agent events file"})
	}
	for _, u := range o.ReportURLs {
		if p, ok := strings.CutPrefix(u, "file:"); ok {
			own = append(own, [2]string{p, "agent report_url"})
		}
	}
	// Unreadable or invalid sshval rules are that command's error, not ours.
	if sr, err := sshval.LoadRules(defaultSSHValRules); err == nil && sr.Log != "" {
		own = append(own, [2]string{sr.Log, "sshval log"})
	}
	for _, e := range own {
		if err := pol.Exclude(e[0], e[1]); err != nil {
			return fmt.Errorf("%w: %w", errConfig, err)
		}
	}
	return nil
}

// createOwn creates report_dir and the report_url files before a scan, so
// that the first scan already sees the directories that hold them as they
// stay: creating them later would change their parents' mtime and link
// count. Failures are left to the writes that come after the scan, which
// report them.
func createOwn(o rules.Options) {
	os.MkdirAll(o.ReportDir, 0o700)
	for _, u := range o.ReportURLs {
		if p, ok := strings.CutPrefix(u, "file:"); ok {
			if f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|syscallNoFollow, 0o600); err == nil {
				f.Close()
			}
		}
	}
}

// notices prints the config's warnings unless --quiet.
func notices(c *cli.Context, pol *rules.Policy, stderr io.Writer) {
	if c.Bool("quiet") {
		return
	}
	for _, w := range pol.Warnings {
		fmt.Fprintf(stderr, "agent: notice: %s\n", w)
	}
}

// sshvalWarnings are config check's warnings about the sshval rules file:
// push rules without run_as, and a counters directory other than the one
// agent.conf's sshval_counters has agent metrics read. Nothing when the file
// is absent or does not load (agent sshval test and audit report that).
func sshvalWarnings(file string, o rules.Options) []string {
	rs, err := sshval.LoadRules(file)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range rs.RootPushRules() {
		out = append(out, fmt.Sprintf("sshval push %s has no run_as: from a root account's key its rsync receives as root (devices, owners and set-uid bits are then refused or stripped); set run_as", s))
	}
	counters := rs.Counters
	if counters == "" {
		counters = sshval.DefaultCounters
	}
	switch {
	case counters == o.SSHValCounters:
	case counters == "none":
		out = append(out, fmt.Sprintf("%s keeps no decision counters (counters none), so agent metrics has no sshval decisions to read from %s", file, o.SSHValCounters))
	default:
		out = append(out, fmt.Sprintf("%s counts sshval's decisions in %s, but sshval_counters is %s: agent metrics reads that one; make them the same", file, counters, o.SSHValCounters))
	}
	return out
}

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "configuration commands",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "parse the configuration and report every error (like aide --config-check); also warns about sshval push rules without run_as and sshval counters agent metrics does not read",
			Flags: []cli.Flag{&cli.StringFlag{Name: "sshval-rules", Value: defaultSSHValRules, Usage: "the sshval rules `FILE` to check as well (skipped when absent)"}},
			Action: func(c *cli.Context) error {
				pol, err := loadPolicy(c)
				if err != nil {
					return err
				}
				notices(c, pol, c.App.ErrWriter)
				if !c.Bool("quiet") {
					for _, e := range pol.Exclusions() {
						fmt.Fprintf(c.App.Writer, "'%s': excluded: %s\n", rules.EscapePath(e.Path), e.Reason)
					}
					for _, s := range pol.Ignored {
						fmt.Fprintf(c.App.ErrWriter, "agent: notice: %s\n", s)
					}
					for _, s := range sshvalWarnings(c.String("sshval-rules"), pol.Options) {
						fmt.Fprintf(c.App.ErrWriter, "agent: warning: %s\n", s)
					}
					fmt.Fprintf(c.App.Writer, "%s: %d rules, %d groups: ok\n", c.String("config"), len(pol.Rules), len(pol.Groups))
				}
				return nil
			},
		}},
	}
}
