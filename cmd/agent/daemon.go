package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"opsagent/aoe"
	"opsagent/cron"
	"opsagent/internal/atomicfile"
	"opsagent/report"
	"opsagent/rules"
)

// Files of the daemon under state_dir.
const (
	daemonPidName    = "daemon.pid"
	daemonStatusName = "daemon.json"
	// daemonConfigName is the canonical text of the config the daemon
	// runs on; its jobs read it, so that a broken config file left after a
	// failed reload does not break them.
	daemonConfigName = "daemon-config.conf"
)

// Fixed schedules of the housekeeping jobs.
const (
	schedulePrune = "@daily"
	scheduleSpool = "@every 15m"
	// scheduleSSHVal collects the sshval decision counters into
	// metrics_dir.
	scheduleSSHVal = "@every 1m"
)

// jobGrace is how long a job's subprocess has to finish after SIGTERM;
// with the daemon's own wind-down it keeps a stop under 10 s.
const jobGrace = 8 * time.Second

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the integrity, RAID, pruning and mail jobs on their schedules and supervise the AoE exports (SIGHUP reloads, SIGTERM stops)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "proc-root", Hidden: true, Usage: "passed to the RAID job (tests, containers)"},
			&cli.StringFlag{Name: "sys-root", Hidden: true, Usage: "passed to the RAID job (tests, containers)"},
		},
		Action: runDaemon,
	}
}

// daemon is one `agent daemon` process.
type daemon struct {
	c        *cli.Context
	exe      string
	log      *slog.Logger
	stateDir string
	started  time.Time

	statusMu sync.Mutex // one writer of daemon.json at a time

	mu      sync.Mutex
	pol     *rules.Policy
	sched   *cron.Scheduler
	results map[string]string // last result of each job, e.g. "exit 4"
}

func runDaemon(c *cli.Context) error {
	pol, err := loadPolicy(c)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the agent binary: %w", err)
	}
	d := &daemon{
		c: c, exe: exe, pol: pol, stateDir: pol.Options.StateDir, started: time.Now(),
		log:     slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)),
		results: map[string]string{},
	}
	if err := os.MkdirAll(d.stateDir, 0o700); err != nil {
		return fmt.Errorf("%w: create state_dir: %w", errWrite, err)
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	sched, err := d.build(pol)
	if err != nil {
		return err
	}
	if err := d.snapshot(pol); err != nil {
		return err
	}
	d.sched = sched
	sched.Start()
	d.writeStatus()
	d.log.Info("daemon started", "pid", os.Getpid(), "config", c.String("config"), "state_dir", d.stateDir)
	d.syslog(report.SeverityNotice, "daemon started")

	ctx := c.Context
	aoeDone := d.startAOE(ctx, pol)
	watchDone := d.startWatch(ctx, pol)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			d.reload()
		case <-ctx.Done():
			d.log.Info("stopping")
			stopCtx, cancel := context.WithTimeout(context.Background(), jobGrace+time.Second)
			d.mu.Lock()
			s := d.sched
			d.mu.Unlock()
			if err := s.Stop(stopCtx); err != nil {
				d.log.Warn("a job did not stop in time", "err", err)
			}
			cancel()
			<-aoeDone
			<-watchDone
			d.writeStatus()
			d.syslog(report.SeverityNotice, "daemon stopped")
			d.log.Info("daemon stopped")
			return nil
		}
	}
}

// lock makes this the only daemon of state_dir: an exclusive flock on
// daemon.pid, which then holds our pid.
func (d *daemon) lock() (func(), error) {
	path := filepath.Join(d.stateDir, daemonPidName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWrite, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "unknown"
		}
		return nil, &exitError{code: exitLocked, err: fmt.Errorf("another agent daemon (pid %s) holds the lock %s", holder, path)}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		os.Remove(path)
		f.Close()
	}, nil
}

// scheduleOf parses a schedule option, naming the config line on error.
func scheduleOf(pol *rules.Policy, option, spec string) (cron.Schedule, error) {
	s, err := cron.ParseSchedule(spec)
	if err == nil {
		return s, nil
	}
	if src, ok := pol.OptionSource(option); ok {
		return s, fmt.Errorf("%w: %s:%d: %s: %w", errConfig, src.File, src.Line, option, err)
	}
	return s, fmt.Errorf("%w: %s: %w", errConfig, option, err)
}

// build makes the scheduler of a config. Its errors are config errors.
func (d *daemon) build(pol *rules.Policy) (*cron.Scheduler, error) {
	o := pol.Options
	check, err := scheduleOf(pol, "schedule_check", o.ScheduleCheck)
	if err != nil {
		return nil, err
	}
	raid, err := scheduleOf(pol, "schedule_raid", o.ScheduleRAID)
	if err != nil {
		return nil, err
	}
	posture, err := scheduleOf(pol, "posture_schedule", o.SchedulePosture)
	if err != nil {
		return nil, err
	}
	prune, _ := cron.ParseSchedule(schedulePrune)
	spool, _ := cron.ParseSchedule(scheduleSpool)
	sshvalSched, _ := cron.ParseSchedule(scheduleSSHVal)
	s := cron.New(cron.Options{Logger: d.log, OnDone: func(cron.Status) { d.writeStatus() }})
	for _, j := range []struct {
		name  string
		sched cron.Schedule
		job   cron.Job
	}{
		{"integrity", check, d.integrityJob},
		{"raid", raid, d.raidJob},
		{"posture", posture, d.postureJob},
		{"prune", prune, d.pruneJob},
		{"mail-spool", spool, d.spoolJob},
		{"sshval-metrics", sshvalSched, d.sshvalJob},
	} {
		if err := s.Add(j.name, j.sched, j.job); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// reload rereads the config on SIGHUP. A bad config is reported and the
// running one stays; a good one replaces the schedule, letting a job that
// runs finish.
func (d *daemon) reload() {
	pol, err := loadPolicy(d.c)
	var sched *cron.Scheduler
	if err == nil {
		sched, err = d.build(pol)
	}
	if err == nil {
		err = d.snapshot(pol)
	}
	if err != nil {
		msg := configErrorText(err)
		d.log.Error("reload failed, keeping the running config", "err", msg)
		d.syslog(report.SeverityErr, "reload failed, keeping the running config: "+msg)
		return
	}
	d.mu.Lock()
	old := d.sched
	d.pol, d.sched = pol, sched
	d.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour)
		defer cancel()
		_ = old.Drain(ctx)
	}()
	sched.Start()
	d.writeStatus()
	d.log.Info("config reloaded")
	d.syslog(report.SeverityNotice, "config reloaded")
}

// configErrorText flattens a config error list into one line per error.
func configErrorText(err error) string {
	var el rules.ErrorList
	if errors.As(err, &el) {
		var parts []string
		for _, pe := range el {
			parts = append(parts, pe.Error())
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}

func (d *daemon) policy() *rules.Policy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pol
}

// snapshot writes the canonical form of pol for the jobs (0600, atomic).
func (d *daemon) snapshot(pol *rules.Policy) error {
	path := filepath.Join(d.stateDir, daemonConfigName)
	text := "# The configuration agent daemon runs on, in canonical form, written\n" +
		"# from " + d.c.String("config") + " at its last (re)load. Do not edit: edit that file and send SIGHUP.\n" +
		pol.Format()
	if err := atomicfile.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}

// baseArgs are the global flags the job subprocesses run with: the
// snapshot of the running config and the state_dir.
func (d *daemon) baseArgs() []string {
	args := []string{"--config", filepath.Join(d.stateDir, daemonConfigName), "--state-dir", d.stateDir}
	return append(args, "--quiet")
}

// integrityJob runs check or update (check_mode), or init when there is
// no baseline yet, with --mail.
func (d *daemon) integrityJob(ctx context.Context) error {
	pol := d.policy()
	args := []string{"check"}
	switch pol.Options.CheckMode {
	case "update":
		args = []string{"update"}
	case "incremental":
		// A full check when the journal is not trusted or the last full
		// one is full_check_every old (check --incremental decides).
		args = []string{"check", "--incremental"}
	}
	if _, err := os.Stat(filepath.Join(pol.Options.StateDir, baselineName)); errors.Is(err, fs.ErrNotExist) {
		args = []string{"init"}
	}
	return d.runJob(ctx, "integrity", append(append(d.baseArgs(), args...), "--mail"))
}

// postureJob runs the hardening checks, mailing their findings.
func (d *daemon) postureJob(ctx context.Context) error {
	return d.runJob(ctx, "posture", append(d.baseArgs(), "posture", "--mail"))
}

func (d *daemon) raidJob(ctx context.Context) error {
	args := append(d.baseArgs(), "raid", "check", "--mail", "--quiet")
	if p := d.c.String("proc-root"); p != "" {
		args = append(args, "--proc-root", p)
	}
	if s := d.c.String("sys-root"); s != "" {
		args = append(args, "--sys-root", s)
	}
	return d.runJob(ctx, "raid", args)
}

func (d *daemon) pruneJob(ctx context.Context) error {
	o := d.policy().Options
	removed, err := report.Prune(o.ReportDir, o.StateDir, o.ReportMaxAge, time.Now(), filepath.Join(o.StateDir, baselineName))
	d.setResult("prune", fmt.Sprintf("%d removed", len(removed)))
	return err
}

// sshvalJob writes agent_sshval.prom from the sshval counters directory
// (creating that directory when missing).
func (d *daemon) sshvalJob(ctx context.Context) error {
	o := d.policy().Options
	if o.MetricsDir == "" || o.SSHValCounters == "none" {
		d.setResult("sshval-metrics", "off")
		return nil
	}
	problems := 0
	collectSSHVal(metricsOf(o), o.SSHValCounters, func(f string, a ...any) {
		problems++
		d.log.Warn(fmt.Sprintf(f, a...), "job", "sshval-metrics")
	})
	d.setResult("sshval-metrics", fmt.Sprintf("%d problems", problems))
	return nil
}

func (d *daemon) spoolJob(ctx context.Context) error {
	o := d.policy().Options
	if len(o.MailTo) == 0 {
		d.setResult("mail-spool", "mail not configured")
		return nil
	}
	host, _ := os.Hostname()
	cfg := mailConfig(o, host, d.log)
	sent, remaining, err := mailSpool(o, d.log).Flush(ctx, func(m []byte) error { return report.Send(ctx, cfg, m) })
	d.setResult("mail-spool", fmt.Sprintf("%d sent, %d remaining", sent, remaining))
	return err
}

// runJob runs the agent itself with args. Exit statuses 0-7 are results
// (differences, rebuilding, unreadable entries), not failures. When ctx
// ends the child gets SIGTERM, then SIGKILL after jobGrace.
func (d *daemon) runJob(ctx context.Context, name string, args []string) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, d.exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = jobGrace
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.setResult(name, "error: "+err.Error())
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" {
			d.log.Info(name+": "+line, "job", name)
		}
	}
	result := fmt.Sprintf("exit %d", code)
	d.setResult(name, result)
	d.log.Info("job finished", "job", name, "result", result, "took", time.Since(start).Round(time.Millisecond))
	sev := report.SeverityInfo
	if code != 0 {
		sev = report.SeverityNotice
	}
	d.syslog(sev, fmt.Sprintf("job %s: %s", name, result))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if code > 7 {
		return fmt.Errorf("%s exited %d", name, code)
	}
	return nil
}

func (d *daemon) setResult(name, r string) {
	d.mu.Lock()
	d.results[name] = r
	d.mu.Unlock()
}

func (d *daemon) syslog(sev report.Severity, msg string) {
	_ = report.Syslog(report.FacilityDaemon, sev, report.DefaultSyslogTag, "daemon: "+msg)
}

// startAOE supervises the exports of aoe_config, when that file exists,
// until ctx ends. The returned channel closes when the supervisor is done.
func (d *daemon) startAOE(ctx context.Context, pol *rules.Policy) <-chan struct{} {
	done := make(chan struct{})
	o := pol.Options
	path := o.AOEConfig
	if path == "" {
		path = rules.DefaultAOEConfig
	}
	if _, err := os.Stat(path); err != nil {
		close(done)
		return done
	}
	runDir := o.RunDir
	if runDir == "" {
		runDir = rules.DefaultRunDir
	}
	sup := &aoe.Supervisor{
		Vblade: o.Vblade, RunDir: runDir, ConfigPath: path, Logger: d.log,
		Notify: func(line string) {
			d.log.Info(line)
			_ = report.Syslog(report.FacilityDaemon, report.SeverityNotice, report.DefaultSyslogTag, line)
		},
	}
	obs := newAOEObserver(o, runDir, path, func(f string, a ...any) { d.log.Warn(fmt.Sprintf(f, a...)) })
	obsDone := make(chan struct{})
	go func() { defer close(obsDone); obs.run(ctx, aoeObservePoll) }()
	go func() {
		defer close(done)
		defer func() { <-obsDone }()
		if err := sup.Run(ctx); err != nil {
			d.log.Error("AoE supervisor stopped", "err", err)
			d.syslog(report.SeverityErr, "AoE supervisor: "+err.Error())
		}
	}()
	return done
}

// daemonStatus is state_dir/daemon.json.
type daemonStatus struct {
	Format  int         `json:"format"`
	PID     int         `json:"pid"`
	Started time.Time   `json:"started"`
	Updated time.Time   `json:"updated"`
	Config  string      `json:"config"`
	Jobs    []jobStatus `json:"jobs"`
}

type jobStatus struct {
	Name       string    `json:"name"`
	Schedule   string    `json:"schedule"`
	Next       time.Time `json:"next"`
	LastStart  time.Time `json:"last_start"`
	LastEnd    time.Time `json:"last_end"`
	LastResult string    `json:"last_result"`
	LastError  string    `json:"last_error,omitempty"`
	Running    bool      `json:"running"`
	Runs       int       `json:"runs"`
	Skipped    int       `json:"skipped"`
}

// writeStatus saves daemon.json atomically (0600).
func (d *daemon) writeStatus() {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	d.mu.Lock()
	st := daemonStatus{Format: 1, PID: os.Getpid(), Started: d.started, Updated: time.Now(), Config: d.c.String("config")}
	for _, s := range d.sched.Status() {
		st.Jobs = append(st.Jobs, jobStatus{
			Name: s.Name, Schedule: s.Schedule, Next: s.Next, LastStart: s.LastStart, LastEnd: s.LastEnd,
			LastResult: d.results[s.Name], LastError: s.LastErr, Running: s.Running, Runs: s.Runs, Skipped: s.Skipped,
		})
	}
	d.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	path := filepath.Join(d.stateDir, daemonStatusName)
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		d.log.Warn("cannot write the status file", "err", err)
	}
}
