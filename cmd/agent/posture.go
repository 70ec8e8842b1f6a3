package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/urfave/cli/v2"

	"opsagent/db"
	"opsagent/notify"
	"opsagent/posture"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
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
			&cli.BoolFlag{Name: "mail", Usage: "mail the report to mail_to when there are findings (not waived); undeliverable mail is spooled"},
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
	cfg.Owned = packageOwned(c.Context, pol.Options)
	cfg.Exec.Workers = c.Int("workers")
	cfg.Host, _ = os.Hostname()
	rep, err := posture.Check(c.Context, cfg)
	if err != nil {
		return err
	}
	var text, js bytes.Buffer
	if err := posture.WriteText(&text, rep); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	if err := posture.WriteJSON(&js, rep); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	// Kept like every other report; a failure to keep it is said, and the
	// run goes on (the findings still print and mail).
	id, herr := (&report.History{Dir: pol.Options.ReportDir}).Save(report.HistoryPosture, text.Bytes(), js.Bytes())
	if herr != nil {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: cannot keep the posture report in %s: %v\n", pol.Options.ReportDir, herr)
	}
	out := text.Bytes()
	if c.Bool("json") {
		out = js.Bytes()
	}
	if !(c.Bool("quiet") && rep.ExitCode() == 0) {
		if _, err := c.App.Writer.Write(out); err != nil {
			return fmt.Errorf("%w: %w", errWrite, err)
		}
	}
	observePosture(pol.Options, rep, func(format string, args ...any) {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: "+format+"\n", args...)
	})
	if c.Bool("mail") && rep.Findings > 0 {
		postureMail(c, pol, rep, text.Bytes(), id)
	}
	switch rep.ExitCode() {
	case 1:
		return &exitError{code: exitPostureFindings}
	case 3:
		return &exitError{code: exitPostureIncomplete}
	}
	return nil
}

// postureMail mails the plain posture report; a mail that cannot be
// delivered is spooled (report.Deliver) and said on stderr.
func postureMail(c *cli.Context, pol *rules.Policy, rep *posture.Report, text []byte, id string) {
	cfg := mailConfig(pol.Options, rep.Host, cliLogger(c, 0))
	if len(cfg.To) == 0 {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: --mail: mail_to is not set in the config; no mail sent\n")
		return
	}
	name := id + ".txt"
	if id == "" {
		name = "posture.txt"
	}
	subject := fmt.Sprintf("[agent] %s: posture: %d %s", rep.Host, rep.Findings, map[bool]string{true: "finding", false: "findings"}[rep.Findings == 1])
	if rep.Waived > 0 {
		subject += fmt.Sprintf(" (%d waived)", rep.Waived)
	}
	msg, err := report.NewReportMessage(cfg, subject, text, name)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: cannot build the posture mail: %v\n", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 5*time.Minute)
	defer cancel()
	deliverMail(ctx, pol.Options, cfg, msg, cliLogger(c, 0), c.App.ErrWriter, stderrWarn(c.App.ErrWriter))
}

// postureConfig turns the posture options into a posture.Config; the
// regexes were checked when the config was parsed.
func postureConfig(pol *rules.Policy) (posture.Config, error) {
	o := pol.Options
	cfg := posture.Config{TmpDirs: o.PostureTmpDirs, WebRoots: o.PostureWebRoots, WritableDirs: baselineWritableDirs(o)}
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

// postureMaxAge is how old the kept posture report an integrity report
// quotes may be before the report says so.
const postureMaxAge = 48 * time.Hour

// addPosture gives the integrity report of a live run (check, update) its
// hardening section: the files that became set-uid, set-gid or gained
// capabilities since the baseline (from the comparison, no extra walk),
// and the findings of agent posture: with posture_in_report = last (the
// default) those of the newest kept posture report (the daemon makes one
// every posture_schedule), with run a fresh check of the running host (not
// with root_prefix), with no none. Posture never fails the integrity run.
func (r *integrityRun) addPosture(rep *report.Report) {
	info := &report.PostureInfo{Privileged: report.NewPrivileged(rep.Changes)}
	rep.Posture = info
	o := r.pol.Options
	switch o.PostureInReport {
	case "no":
		info.Ran = false
	case "run":
		r.runPosture(info)
	default:
		lastPosture(info, o.ReportDir, time.Now())
	}
}

// lastPosture fills info from the newest posture report kept in dir.
func lastPosture(info *report.PostureInfo, dir string, now time.Time) {
	it, err := (&report.History{Dir: dir}).Get("latest-" + report.HistoryPosture)
	if err != nil {
		if !errors.Is(err, report.ErrNoReport) && !errors.Is(err, fs.ErrNotExist) {
			info.Note = "the last agent posture report cannot be read: " + err.Error()
		}
		return
	}
	var doc struct {
		Findings int `json:"findings"`
		Waived   int `json:"waived"`
	}
	js, err := os.ReadFile(it.JSONPath)
	if err == nil {
		err = json.Unmarshal(js, &doc)
	}
	if err != nil {
		info.Note = "the last agent posture report " + it.ID + " cannot be read: " + err.Error()
		return
	}
	info.Ran, info.From, info.JSON = true, it.Time, js
	info.Findings, info.Waived = doc.Findings, doc.Waived
	if info.Findings > 0 && it.TextPath != "" {
		info.Text, _ = os.ReadFile(it.TextPath)
	}
	if age := now.Sub(it.Time); age > postureMaxAge {
		info.Note = fmt.Sprintf("the last agent posture report (%s) is %d days old", it.ID, int(age.Hours()/24))
	}
}

// runPosture runs agent posture now, on the running host.
func (r *integrityRun) runPosture(info *report.PostureInfo) {
	if root := r.pol.Options.RootPrefix; root != "" && root != "/" {
		info.Note = "agent posture looks at the running host, not at root_prefix " + root + ": not run"
		return
	}
	cfg, err := postureConfig(r.pol)
	if err != nil {
		info.Note = "agent posture not run: " + err.Error()
		return
	}
	cfg.Host = r.host
	cfg.Exec.Workers = r.c.Int("workers")
	cfg.Owned = packageOwned(r.ctx, r.pol.Options)
	prep, err := posture.Check(r.ctx, cfg)
	if err != nil {
		info.Note = "agent posture stopped: " + err.Error()
		return
	}
	var text, js bytes.Buffer
	if err := posture.WriteText(&text, prep); err == nil {
		info.Text = text.Bytes()
	}
	if err := posture.WriteJSON(&js, prep); err == nil {
		info.JSON = js.Bytes()
	}
	info.Ran, info.From = true, prep.Time
	info.Findings, info.Waived = prep.Findings, prep.Waived
	if len(prep.Incomplete) > 0 {
		info.Note = "agent posture could not check everything: " + strings.Join(prep.Incomplete, "; ")
	}
}

// packageOwned is posture's owner lookup: whether the package manager's
// records list a path; nil (no such check) where there are none. A
// process's exe is the running host's path, so root_prefix plays no part.
func packageOwned(ctx context.Context, o rules.Options) func(string) bool {
	o.RootPrefix = ""
	db, _ := openPackageDB(ctx, o, time.Time{})
	if db == nil {
		return nil
	}
	return func(p string) bool { return len(db.Owners(p)) > 0 }
}

// observePosture writes the posture metrics and sends one event per
// finding that is not waived (the flood limit applies). Problems are
// warnings: monitoring never changes the exit status.
func observePosture(o rules.Options, rep *posture.Report, warn func(string, ...any)) {
	run := notify.PostureRun{Time: rep.Time, Findings: map[string]int{}, Waived: rep.Waived, Incomplete: len(rep.Incomplete) > 0}
	var events []notify.Event
	for _, m := range rep.Mounts {
		if len(m.Missing) > 0 && !m.Waived {
			run.Findings["mount"] += len(m.Missing)
			events = append(events, notify.Event{Kind: notify.EventPosture, Severity: report.SeverityWarning, Path: m.Dir,
				Message: m.Dir + ": missing " + strings.Join(m.Missing, ", "), Fields: map[string]string{"finding": "mount"}})
		}
	}
	for _, e := range rep.Executables {
		if !e.Waived {
			run.Findings["executable"]++
			events = append(events, notify.Event{Kind: notify.EventPosture, Severity: report.SeverityWarning, Path: e.Path,
				Message: "executable in a writable place: " + e.Path, Fields: map[string]string{"finding": "executable"}})
		}
	}
	for _, p := range rep.Processes {
		if !p.Waived {
			run.Findings["process"]++
			events = append(events, notify.Event{Kind: notify.EventPosture, Severity: report.SeverityErr, Path: p.Exe,
				Message: fmt.Sprintf("process %d %s", p.PID, p.Reason), Fields: map[string]string{"finding": "process", "pid": fmt.Sprint(p.PID)}})
		}
	}
	if m := metricsOf(o); m.Enabled() {
		if err := m.Update(notify.JobPosture, func(map[string]*dto.MetricFamily) *notify.Set { return notify.PostureSet(run) }); err != nil {
			warn("metrics: %v", err)
		}
	}
	ev := openEvents(o, warn)
	if ev == nil {
		return
	}
	for _, e := range events {
		if err := ev.Emit(e); err != nil {
			warn("events: %v", err)
			break
		}
	}
	if err := ev.Close(); err != nil {
		warn("events: %v", err)
	}
}

// baselineWritableDirs returns, sorted, the world-writable directories the
// baseline recorded under the integrity scan's trees (none without a
// baseline, or with root_prefix: posture looks at the running host).
func baselineWritableDirs(o rules.Options) []string {
	if o.RootPrefix != "" && o.RootPrefix != "/" {
		return nil
	}
	b, err := db.Open(filepath.Join(o.StateDir, baselineName))
	if err != nil {
		return nil
	}
	defer b.Close()
	var out []string
	_ = b.Dirs(func(e *scanner.Entry) error {
		if e.Mode&0o002 != 0 {
			out = append(out, e.Path)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
