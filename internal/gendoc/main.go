package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"opsagent/internal/atomicfile"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gendoc: %v\n", err)
		os.Exit(1)
	}
}

// options are gendoc's flags.
type options struct {
	Agent  string // the built agent binary
	Readme string // README.md, for the exit codes and files tables
	ManDir string // write ManDir/agent.8 when set
	Bash   string // write Bash/agent when set
	Date   string // the man page date, YYYY-MM-DD
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gendoc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.Agent, "agent", "bin/agent", "the built agent `binary` to read the CLI from")
	fs.StringVar(&o.Readme, "readme", "README.md", "`README.md` with the exit codes and files tables")
	fs.StringVar(&o.ManDir, "man", "", "write the man page agent.8 into `DIR`")
	fs.StringVar(&o.Bash, "bash", "", "write the bash completion script agent into `DIR`")
	fs.StringVar(&o.Date, "date", "", "man page `date` YYYY-MM-DD (default: SOURCE_DATE_EPOCH, else today)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || (o.ManDir == "" && o.Bash == "") {
		return errors.New("usage: gendoc [-agent BIN] [-readme README.md] [-date YYYY-MM-DD] -man DIR -bash DIR")
	}
	date, err := pageDate(o.Date, os.Getenv("SOURCE_DATE_EPOCH"), time.Now)
	if err != nil {
		return err
	}
	agent, err := filepath.Abs(o.Agent)
	if err != nil {
		return err
	}
	root, err := collect(ctx, agent)
	if err != nil {
		return err
	}
	if o.ManDir != "" {
		md, err := os.ReadFile(o.Readme)
		if err != nil {
			return err
		}
		m := manual{Root: root, Date: date}
		if m.Exit, err = readmeTable(string(md), "Exit codes"); err != nil {
			return fmt.Errorf("%s: %w", o.Readme, err)
		}
		if m.Files, err = readmeTable(string(md), "Files"); err != nil {
			return fmt.Errorf("%s: %w", o.Readme, err)
		}
		var b bytes.Buffer
		if err := writeMan(&b, m); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(o.ManDir, "agent.8"), b.Bytes()); err != nil {
			return err
		}
	}
	if o.Bash != "" {
		var b bytes.Buffer
		if err := writeBash(&b, root); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(o.Bash, "agent"), b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// pageDate picks the man page date: the flag, else SOURCE_DATE_EPOCH (the
// reproducible-builds convention, seconds since 1970, UTC), else today.
func pageDate(flagDate, epoch string, now func() time.Time) (string, error) {
	if flagDate != "" {
		if _, err := time.Parse(time.DateOnly, flagDate); err != nil {
			return "", fmt.Errorf("-date %q: want YYYY-MM-DD: %w", flagDate, err)
		}
		return flagDate, nil
	}
	if epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return "", fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		return time.Unix(sec, 0).UTC().Format(time.DateOnly), nil
	}
	return now().Format(time.DateOnly), nil
}

// writeFile writes data to path (0644: both files are installed world
// readable) atomically, creating the directory.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}
