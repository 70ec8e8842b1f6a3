package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"opsagent/aoe"
	"opsagent/rules"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "the daemon's jobs (next run, last result) and the AoE exports",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			// status is what an admin runs when things go wrong: a broken
			// config must not hide the daemon's state.
			dir := c.String("state-dir")
			pol, err := loadPolicy(c)
			if err != nil {
				fmt.Fprintf(c.App.ErrWriter, "agent: warning: %v\n", err)
				pol = nil
			} else if dir == "" {
				dir = pol.Options.StateDir
			}
			if dir == "" {
				dir = rules.DefaultStateDir
			}
			var st daemonStatus
			b, err := os.ReadFile(filepath.Join(dir, daemonStatusName))
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return err
			default:
				if err := json.Unmarshal(b, &st); err != nil {
					return fmt.Errorf("%s: %w", filepath.Join(dir, daemonStatusName), err)
				}
			}
			running := daemonRunning(dir)
			var exports []aoe.ExportStatus
			if pol != nil {
				exports = aoeStatus(pol)
			}
			ws := readWatchStatus(dir)
			readIncremental(c, pol, dir, &ws)
			if c.Bool("json") {
				out := struct {
					Running bool               `json:"running"`
					Daemon  *daemonStatus      `json:"daemon,omitempty"`
					AoE     []aoe.ExportStatus `json:"aoe"`
					Watch   watchStatus        `json:"watch"`
				}{Running: running, AoE: exports, Watch: ws}
				if st.Format != 0 {
					out.Daemon = &st
				}
				if out.AoE == nil {
					out.AoE = []aoe.ExportStatus{}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return wrapWrite(enc.Encode(out))
			}
			w := c.App.Writer
			switch {
			case running:
				fmt.Fprintf(w, "daemon: running (pid %d, since %s)\n", st.PID, st.Started.Local().Format(time.DateTime))
			case st.Format != 0:
				fmt.Fprintf(w, "daemon: not running (last status %s)\n", st.Updated.Local().Format(time.DateTime))
			default:
				fmt.Fprintf(w, "daemon: not running\n")
			}
			if len(st.Jobs) > 0 {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "JOB\tSCHEDULE\tNEXT\tLAST RUN\tLAST RESULT\n")
				for _, j := range st.Jobs {
					next, last := "-", "-"
					if running && !j.Next.IsZero() {
						next = j.Next.Local().Format(time.DateTime)
					}
					if !j.LastStart.IsZero() {
						last = j.LastStart.Local().Format(time.DateTime)
					}
					result := j.LastResult
					if j.LastError != "" {
						result += " (" + j.LastError + ")"
					}
					if j.Running {
						result = "running"
					}
					if result == "" {
						result = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.Schedule, next, last, result)
				}
				tw.Flush()
			}
			if len(exports) > 0 {
				fmt.Fprintln(w)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "EXPORT\tSHELF.SLOT\tPID\tSTATE\tRESTARTS\n")
				for _, e := range exports {
					fmt.Fprintf(tw, "%s\t%d.%d\t%d\t%s\t%d\n", e.Alias, e.Shelf, e.Slot, e.PID, e.State, e.Restarts)
				}
				tw.Flush()
			}
			fmt.Fprintln(w)
			writeWatchStatus(w, ws)
			return nil
		},
	}
}

// daemonRunning reports whether a daemon holds state_dir's lock.
func daemonRunning(dir string) bool { return lockHeld(filepath.Join(dir, daemonPidName)) }

// lockHeld reports whether a process holds an exclusive flock on the file
// at path, probed with a shared lock that fails while it does. A missing
// file is no holder; a symlink is never followed.
func lockHeld(path string) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// aoeStatus is the state of the exports of aoe_config, if that file exists
// and loads.
func aoeStatus(pol *rules.Policy) []aoe.ExportStatus {
	path := pol.Options.AOEConfig
	if path == "" {
		path = rules.DefaultAOEConfig
	}
	cfg, err := aoe.Load(path)
	if err != nil {
		return nil
	}
	runDir := pol.Options.RunDir
	if runDir == "" {
		runDir = rules.DefaultRunDir
	}
	st, err := aoe.Status(runDir, cfg)
	if err != nil {
		return nil
	}
	return st
}
