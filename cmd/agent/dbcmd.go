package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"opsagent/db"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
)

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "inspect baseline files",
		Subcommands: []*cli.Command{{
			Name:      "show",
			Usage:     "print the baseline record of PATH",
			ArgsUsage: "PATH",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "db", Usage: "database `FILE` (default: state_dir/baseline.db)"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("%w: db show takes one path", errUsage)
				}
				file := c.String("db")
				if file == "" {
					pol, err := loadPolicy(c)
					if err != nil {
						return err
					}
					file = filepath.Join(pol.Options.StateDir, baselineName)
				}
				b, err := db.Open(file)
				if err != nil {
					return err
				}
				defer b.Close()
				e, err := b.Get(c.Args().First())
				if err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
				return wrapWrite(writeEntry(c.App.Writer, e))
			},
		}},
	}
}

// writeEntry prints every recorded attribute of e, one "name: value" a line.
func writeEntry(w io.Writer, e *scanner.Entry) error {
	var b strings.Builder
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format("2006-01-02 15:04:05.000000000 +0000") }
	fmt.Fprintf(&b, "path:     %s\n", report.EscapePath(e.Path))
	fmt.Fprintf(&b, "type:     %s\n", e.Type)
	fmt.Fprintf(&b, "attrs:    %s\n", e.Attrs)
	fmt.Fprintf(&b, "mode:     %#o\n", e.Mode)
	fmt.Fprintf(&b, "uid:      %d\ngid:      %d\n", e.UID, e.GID)
	fmt.Fprintf(&b, "size:     %d\nblocks:   %d\nnlink:    %d\n", e.Size, e.Blocks, e.Nlink)
	fmt.Fprintf(&b, "inode:    %d\ndev:      %d\n", e.Inode, e.Dev)
	fmt.Fprintf(&b, "atime:    %s\nmtime:    %s\nctime:    %s\n", ts(e.Atime), ts(e.Mtime), ts(e.Ctime))
	if e.Type == rules.TypeSymlink {
		fmt.Fprintf(&b, "link:     %s\n", report.EscapePath(e.LinkTarget))
	}
	for _, h := range []struct {
		a rules.Attr
		v []byte
	}{
		{rules.AttrMD5, e.Digests.MD5[:]}, {rules.AttrSHA1, e.Digests.SHA1[:]},
		{rules.AttrSHA256, e.Digests.SHA256[:]}, {rules.AttrSHA512, e.Digests.SHA512[:]},
		{rules.AttrBLAKE3, e.Digests.BLAKE3[:]},
	} {
		if e.Attrs.Has(h.a) && e.Type == rules.TypeFile {
			fmt.Fprintf(&b, "%-9s %s\n", h.a.String()+":", hex.EncodeToString(h.v))
		}
	}
	for _, x := range e.Xattrs {
		fmt.Fprintf(&b, "xattr:    %s=%q\n", x.Name, x.Value)
	}
	if e.SELinux != "" {
		fmt.Fprintf(&b, "selinux:  %s\n", e.SELinux)
	}
	if e.Err != "" {
		fmt.Fprintf(&b, "error:    %s\n", e.Err)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
