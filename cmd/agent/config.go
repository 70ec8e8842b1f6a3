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
	if re := c.String("limit"); re != "" {
		if err := pol.SetLimit(re); err != nil {
			return nil, fmt.Errorf("%w: --limit: %v", errUsage, err)
		}
	}
	return pol, nil
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

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "configuration commands",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "parse the configuration and report every error (like aide --config-check)",
			Action: func(c *cli.Context) error {
				pol, err := loadPolicy(c)
				if err != nil {
					return err
				}
				notices(c, pol, c.App.ErrWriter)
				if !c.Bool("quiet") {
					for _, s := range pol.Ignored {
						fmt.Fprintf(c.App.ErrWriter, "agent: notice: %s\n", s)
					}
					fmt.Fprintf(c.App.Writer, "%s: %d rules, %d groups: ok\n", c.String("config"), len(pol.Rules), len(pol.Groups))
				}
				return nil
			},
		}},
	}
}
