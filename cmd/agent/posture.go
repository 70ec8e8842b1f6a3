package main

import (
	"fmt"
	"os"
	"regexp"

	"github.com/urfave/cli/v2"

	"opsagent/posture"
	"opsagent/rules"
)

// Exit codes of agent posture (README "Hardening checks").
const (
	exitPostureFindings   = 1
	exitPostureIncomplete = 3
)

func postureCommand() *cli.Command {
	return &cli.Command{
		Name:  "posture",
		Usage: "hardening checks: temp dir mounts (noexec, nosuid, nodev), executables in writable places, processes running from them or from deleted files; exit 0 nothing found, 1 findings, 3 could not check",
		Description: "Checks each temp dir (posture_tmp_dirs, default /tmp /var/tmp /dev/shm) and every world-writable mount point:\n" +
			"a mount of its own with noexec, nosuid and nodev, else the /etc/fstab line or systemd drop-in that would fix it\n" +
			"(printed only: the agent never remounts). Lists ELF files, #! scripts and files with an execute bit in those\n" +
			"dirs and in posture_web_roots, and every process whose executable is there, in a world-writable directory or\n" +
			"deleted, with its TCP and UDP sockets. Findings whose path or exe matches a posture_allow regex are counted as\n" +
			"waived, not hidden.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the JSON document (\"format\": 1)"},
			&cli.StringFlag{Name: "mountinfo", Hidden: true, Value: "/proc/self/mountinfo", Usage: "mount table to read (tests)"},
			&cli.StringFlag{Name: "proc-root", Hidden: true, Value: "/proc", Usage: "where proc is mounted (tests, containers)"},
		},
		Action: postureRun,
	}
}

func postureRun(c *cli.Context) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	cfg, err := postureConfig(pol)
	if err != nil {
		return err
	}
	cfg.Mountinfo, cfg.ProcRoot = c.String("mountinfo"), c.String("proc-root")
	cfg.Exec.Workers = c.Int("workers")
	cfg.Host, _ = os.Hostname()
	rep, err := posture.Check(c.Context, cfg)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		err = posture.WriteJSON(c.App.Writer, rep)
	} else {
		err = posture.WriteText(c.App.Writer, rep)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	switch rep.ExitCode() {
	case 1:
		return &exitError{code: exitPostureFindings}
	case 3:
		return &exitError{code: exitPostureIncomplete}
	}
	return nil
}

// postureConfig turns the posture options into a posture.Config; the
// regexes were checked when the config was parsed.
func postureConfig(pol *rules.Policy) (posture.Config, error) {
	o := pol.Options
	cfg := posture.Config{TmpDirs: o.PostureTmpDirs, WebRoots: o.PostureWebRoots}
	if cfg.TmpDirs == nil {
		cfg.TmpDirs = rules.DefaultPostureTmpDirs
	}
	for _, re := range o.PostureAllow {
		rx, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			return cfg, fmt.Errorf("%w: posture_allow: %w", errConfig, err)
		}
		cfg.Allow = append(cfg.Allow, rx)
	}
	return cfg, nil
}
