package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "the kept reports (report_dir)",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list the kept reports, oldest first",
				Action: func(c *cli.Context) error {
					pol, err := loadPolicy(c)
					if err != nil {
						return err
					}
					h := report.History{Dir: pol.Options.ReportDir}
					items, err := h.List()
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tKIND\tTIME\tSIZE")
					for _, it := range items {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", it.ID, it.Kind, it.Time.Format(time.DateTime), it.Size)
					}
					if err := tw.Flush(); err != nil {
						return wrapWrite(err)
					}
					partial, err := h.Incomplete()
					if err != nil {
						return err
					}
					for _, name := range partial {
						fmt.Fprintf(c.App.Writer, "incomplete: %s (a report being written, or left by a killed run; removed once %s old)\n",
							report.EscapePath(name), report.StaleTempAge)
					}
					return nil
				},
			},
			{
				Name:      "show",
				Usage:     "print a kept report (ID, latest or latest-KIND)",
				ArgsUsage: "[ID|latest|latest-KIND]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the JSON form"}},
				Action: func(c *cli.Context) error {
					if c.NArg() > 1 {
						return fmt.Errorf("%w: report show takes one ID", errUsage)
					}
					pol, err := loadPolicy(c)
					if err != nil {
						return err
					}
					ref := c.Args().First()
					if ref == "" {
						ref = "latest"
					}
					h := report.History{Dir: pol.Options.ReportDir}
					it, err := h.Get(ref)
					if err != nil {
						if errors.Is(err, report.ErrNoReport) {
							return &exitError{code: 1, err: err}
						}
						return err
					}
					path := it.TextPath
					if c.Bool("json") {
						path = it.JSONPath
					}
					if path == "" {
						return fmt.Errorf("report %s has no %s form", it.ID, map[bool]string{true: "JSON", false: "text"}[c.Bool("json")])
					}
					f, err := os.Open(path)
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = io.Copy(c.App.Writer, f)
					return wrapWrite(err)
				},
			},
		},
	}
}
