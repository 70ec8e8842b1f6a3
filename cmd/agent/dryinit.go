package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"syscall"

	"github.com/urfave/cli/v2"

	"opsagent/rules"
)

func dryInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "dry-init",
		Usage: "walk the file system and print how every entry matches the rules (like aide --dry-init)",
		Action: func(c *cli.Context) error {
			pol, err := loadPolicy(c)
			if err != nil {
				return err
			}
			notices(c, pol, c.App.ErrWriter)
			out := bufio.NewWriter(c.App.Writer)
			root := pol.Options.RootPrefix
			if err := dryWalk(c, pol, out, root, "/"); err != nil {
				return err
			}
			return wrapWrite(out.Flush())
		},
	}
}

// dryWalk prints the line of p and recurses into directories the policy
// descends into. Directory contents are visited in byte order.
func dryWalk(c *cli.Context, pol *rules.Policy, out *bufio.Writer, root, p string) error {
	if err := c.Context.Err(); err != nil {
		return errInterrupted
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(root+p, &st); err != nil {
		return nil // vanished: aide skips it too
	}
	t := rules.TypeFromMode(st.Mode)
	m := pol.Match(p, t)
	if _, err := out.WriteString(rules.DryInitLine(p, t, m) + "\n"); err != nil {
		return wrapWrite(err)
	}
	if t != rules.TypeDir || !m.Descend {
		return nil
	}
	ents, err := os.ReadDir(root + p)
	if err != nil {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "agent: %v\n", err)
		}
		return nil
	}
	for _, e := range ents {
		if err := dryWalk(c, pol, out, root, path.Join(p, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
