package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// errHelp is the class of every error about help output gendoc cannot read.
var errHelp = errors.New("unexpected help output")

// flagSpec is one flag as the help lists it, e.g.
//
//	--config FILE, -c FILE   configuration FILE (AIDE syntax); ... [$AGENT_CONFIG]
type flagSpec struct {
	Names []string // every spelling with its dashes: "--config", "-c"
	Meta  string   // the value placeholder ("FILE", "value"); empty for a boolean flag
	Usage string
}

// commandSpec is one entry of a COMMANDS section:
//
//	check     scan and report differences from the baseline (exit bits: ...)
type commandSpec struct {
	Names []string // name, then aliases
	Usage string
}

// helpPage is the parsed output of `agent [COMMAND...] --help`.
type helpPage struct {
	Name        string // NAME before " - ": "agent raid check"
	Usage       string // NAME after " - "
	UsageLine   string // USAGE: "agent compare [command options] OLD.db NEW.db"
	Version     string // VERSION (the app's page only)
	Description []string
	Commands    []commandSpec
	Flags       []flagSpec // OPTIONS or GLOBAL OPTIONS
}

// gap separates the columns urfave/cli aligns with a tabwriter (padding 2).
var gap = regexp.MustCompile(`\S(\s{2,})\S`)

// splitColumns splits "left   right" at the first run of two or more spaces.
func splitColumns(s string) (left, right string) {
	loc := gap.FindStringSubmatchIndex(s)
	if loc == nil {
		return s, ""
	}
	return s[:loc[2]], s[loc[3]:]
}

// parseHelp reads one help page. Sections start at column 0 and end with
// ':'; their lines are indented by three spaces.
func parseHelp(text string) (*helpPage, error) {
	p := &helpPage{}
	section := ""
	var lastFlag *flagSpec
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		lineno := i + 1
		if strings.TrimSpace(line) == "" {
			if section == "DESCRIPTION" {
				p.Description = append(p.Description, "")
			}
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			if !strings.HasSuffix(line, ":") {
				return nil, fmt.Errorf("%w: line %d: %q is not a section heading", errHelp, lineno, line)
			}
			section = strings.TrimSuffix(line, ":")
			lastFlag = nil
			switch section {
			case "NAME", "USAGE", "VERSION", "DESCRIPTION", "COMMANDS", "OPTIONS", "GLOBAL OPTIONS":
			default:
				return nil, fmt.Errorf("%w: line %d: unknown section %q", errHelp, lineno, section)
			}
			continue
		}
		body := strings.TrimPrefix(line, "   ")
		trimmed := strings.TrimSpace(line)
		switch section {
		case "":
			return nil, fmt.Errorf("%w: line %d: text before the first section", errHelp, lineno)
		case "NAME":
			name, usage, _ := strings.Cut(trimmed, " - ")
			p.Name, p.Usage = joinText(p.Name, name), joinText(p.Usage, usage)
		case "USAGE":
			p.UsageLine = joinText(p.UsageLine, trimmed)
		case "VERSION":
			p.Version = joinText(p.Version, trimmed)
		case "DESCRIPTION":
			p.Description = append(p.Description, strings.TrimRight(body, " \t"))
		case "COMMANDS":
			names, usage := splitColumns(trimmed)
			if usage == "" && strings.HasSuffix(names, ":") {
				continue // a category heading; the man page lists commands in help order
			}
			c := commandSpec{Usage: usage}
			for n := range strings.SplitSeq(names, ",") {
				if n = strings.TrimSpace(n); n == "" || strings.ContainsAny(n, " \t") {
					return nil, fmt.Errorf("%w: line %d: bad command name %q", errHelp, lineno, n)
				}
				c.Names = append(c.Names, n)
			}
			p.Commands = append(p.Commands, c)
		case "OPTIONS", "GLOBAL OPTIONS":
			if !strings.HasPrefix(trimmed, "-") {
				if lastFlag == nil {
					return nil, fmt.Errorf("%w: line %d: %q in %s is not a flag", errHelp, lineno, trimmed, section)
				}
				// A usage text that went on to the next line.
				lastFlag.Usage = joinText(lastFlag.Usage, trimmed)
				continue
			}
			f, err := parseFlag(trimmed)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %w", errHelp, lineno, err)
			}
			p.Flags = append(p.Flags, f)
			lastFlag = &p.Flags[len(p.Flags)-1]
		}
	}
	for len(p.Description) > 0 && p.Description[len(p.Description)-1] == "" {
		p.Description = p.Description[:len(p.Description)-1]
	}
	if p.Name == "" {
		return nil, fmt.Errorf("%w: no NAME section", errHelp)
	}
	return p, nil
}

// parseFlag reads "--config FILE, -c FILE   usage".
func parseFlag(line string) (flagSpec, error) {
	spec, usage := splitColumns(line)
	f := flagSpec{Usage: usage}
	for alt := range strings.SplitSeq(spec, ", ") {
		fields := strings.Fields(alt)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "-") || fields[0] == "-" || fields[0] == "--" {
			return flagSpec{}, fmt.Errorf("bad flag %q", alt)
		}
		meta := strings.Join(fields[1:], " ")
		if len(f.Names) > 0 && meta != f.Meta {
			return flagSpec{}, fmt.Errorf("flag %q: value %q differs from %q", alt, meta, f.Meta)
		}
		f.Names = append(f.Names, fields[0])
		f.Meta = meta
	}
	return f, nil
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + " " + b
}

// command is one node of the command tree read from the binary.
type command struct {
	Path        []string // command names from the app down; empty for the app itself
	Aliases     []string
	Page        *helpPage
	Subcommands []*command
}

// maxDepth bounds the recursion should a binary list itself as a subcommand.
const maxDepth = 6

// helpTimeout bounds one `agent ... --help` run.
const helpTimeout = 20 * time.Second

// collect reads the help of the agent at path and of every command below it.
func collect(ctx context.Context, agent string) (*command, error) {
	root := &command{}
	if err := fill(ctx, agent, root); err != nil {
		return nil, err
	}
	return root, nil
}

func fill(ctx context.Context, agent string, c *command) error {
	if len(c.Path) > maxDepth {
		return fmt.Errorf("%w: commands nested deeper than %d: %s", errHelp, maxDepth, strings.Join(c.Path, " "))
	}
	text, err := runHelp(ctx, agent, c.Path)
	if err != nil {
		return err
	}
	page, err := parseHelp(text)
	if err != nil {
		return fmt.Errorf("agent %s--help: %w", strings.Join(append(c.Path, ""), " "), err)
	}
	c.Page = page
	for _, cs := range page.Commands {
		if cs.Names[0] == "help" {
			continue // urfave/cli's own help command, on every level
		}
		sub := &command{Path: append(append([]string(nil), c.Path...), cs.Names[0]), Aliases: cs.Names[1:]}
		if err := fill(ctx, agent, sub); err != nil {
			return err
		}
		if sub.Page.Usage == "" {
			sub.Page.Usage = cs.Usage
		}
		c.Subcommands = append(c.Subcommands, sub)
	}
	return nil
}

// runHelp runs `agent PATH... --help` with an empty environment (no
// AGENT_CONFIG, no locale) and returns its standard output.
func runHelp(ctx context.Context, agent string, path []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, helpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent, append(append([]string(nil), path...), "--help")...)
	cmd.Env = []string{}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s --help: %w: %s", agent, strings.Join(path, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// walk calls fn for c and every command below it, depth first in help order.
func (c *command) walk(fn func(*command)) {
	fn(c)
	for _, s := range c.Subcommands {
		s.walk(fn)
	}
}
