package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/urfave/cli/v2"

	"opsagent/aoe"
	"opsagent/db"
	"opsagent/notify"
	"opsagent/raidcheck"
	"opsagent/report"
	"opsagent/rules"
	"opsagent/scanner"
	"opsagent/sshval"
)

// raidSeenName keeps every RAID controller, array and disk seen, under
// state_dir, so one that vanishes shows as a probe error.
const raidSeenName = "raid-seen.json"

// aoeObservePoll is how often the AoE observer reads the exports' state:
// the supervisor's own poll interval.
const aoeObservePoll = time.Second

// runObs is what an integrity run records for its metrics and events.
type runObs struct {
	stats scanner.Stats
	rep   *report.Report
	kind  string
}

func metricsOf(o rules.Options) notify.Metrics { return notify.Metrics{Dir: o.MetricsDir} }

// openEvents opens the events sink of the config; a sink that cannot be
// opened is a warning and no events.
func openEvents(o rules.Options, warn func(string, ...any)) *notify.Events {
	host, _ := os.Hostname()
	ev, err := notify.OpenEvents(o.Events, o.EventsMax, host)
	if err != nil {
		warn("events: %v", err)
		return nil
	}
	return ev
}

// observe writes the metrics file and the events of a finished init,
// check, update or accept (compare reads arbitrary files: it has none).
// Problems are warnings: monitoring never changes a run's exit status.
func (r *integrityRun) observe(runErr error) {
	kind := r.c.Command.Name
	if kind == "compare" {
		return
	}
	o := r.pol.Options
	rep := r.obs.rep
	run := notify.IntegrityRun{Kind: kind, Start: r.start, End: time.Now(), ExitCode: exitCode(runErr),
		Report: rep, HashedBytes: r.obs.stats.BytesHashed}
	if rep != nil && !rep.End.IsZero() {
		run.End = rep.End
	}
	if m := metricsOf(o); m.Enabled() {
		if b, err := db.Open(r.path(baselineName)); err == nil {
			run.Baseline = b.Meta().Created
			b.Close()
		}
	}
	if err := metricsOf(o).Update(notify.JobIntegrity, func(prev map[string]*dto.MetricFamily) *notify.Set {
		return notify.IntegritySet(run, prev)
	}); err != nil {
		r.alert("metrics: %v", err)
	}
	if rep == nil || len(rep.Changes) == 0 || kind == "init" {
		return
	}
	emitChangeEvents(o, rep, kind, r.alert)
}

// emitChangeEvents sends one integrity.change event per change of rep
// (kind: the run that found it, check, update or watch), within the flood
// limit.
func emitChangeEvents(o rules.Options, rep *report.Report, kind string, alert func(string, ...any)) {
	if o.Events == "" || o.Events == "none" {
		return
	}
	ev := openEvents(o, alert)
	defer func() {
		if err := ev.Close(); err != nil {
			alert("events: %v", err)
		}
	}()
	for _, ch := range rep.Changes {
		class := report.ClassUnexplained
		f := map[string]string{"change": ch.Kind.String(), "run": kind}
		if rep.Provenance != nil {
			if v, ok := rep.Provenance.ByPath[ch.Path]; ok {
				class = v.Class
				if v.Package != "" {
					f["package"] = v.Package
				}
			}
		}
		f["class"] = class
		sev := report.SeverityWarning
		if class == report.ClassPackage || class == report.ClassScript {
			sev = report.SeverityNotice
		}
		if err := ev.Emit(notify.Event{Kind: notify.EventIntegrityChange, Severity: sev, Path: ch.Path, Fields: f,
			Message: fmt.Sprintf("%s %s (%s)", ch.Kind, report.EscapePath(ch.Path), class)}); err != nil {
			alert("events: %v", err)
			return
		}
	}
}

// observeRAID writes the RAID metrics and sends an event for every
// verdict change since the last probe.
func observeRAID(c *cli.Context, o rules.Options, rep *raidcheck.Report, dur time.Duration) {
	warn := func(format string, args ...any) {
		fmt.Fprintf(c.App.ErrWriter, "agent: warning: "+format+"\n", args...)
	}
	if !metricsOf(o).Enabled() && (o.Events == "" || o.Events == "none") {
		return
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		warn("metrics: %v", err)
		return
	}
	path := filepath.Join(o.StateDir, raidSeenName)
	seen, err := notify.LoadRAIDSeen(path)
	if err != nil {
		warn("metrics: %v", err)
		return
	}
	var changes []notify.VerdictChange
	err = metricsOf(o).Update(notify.JobRAID, func(map[string]*dto.MetricFamily) *notify.Set {
		var s *notify.Set
		s, changes = notify.RAIDSet(rep, dur, seen)
		return s
	})
	if !metricsOf(o).Enabled() {
		_, changes = notify.RAIDSet(rep, dur, seen)
	}
	if err != nil {
		warn("metrics: %v", err)
	}
	if err := seen.Save(path); err != nil {
		warn("metrics: %v", err)
	}
	ev := openEvents(o, warn)
	defer ev.Close()
	for _, ch := range changes {
		if !ch.Known && ch.New == raidcheck.OK {
			continue // a healthy first sighting is no finding
		}
		what := ch.Tool + " " + ch.Controller
		if ch.Item != "" {
			what += " " + ch.Item
		}
		sev := report.SeverityWarning
		if ch.New == raidcheck.OK {
			sev = report.SeverityNotice
		}
		msg := fmt.Sprintf("RAID %s: %s", what, ch.New)
		if ch.Known {
			msg = fmt.Sprintf("RAID %s: %s (was %s)", what, ch.New, ch.Old)
		}
		_ = ev.Emit(notify.Event{Kind: notify.EventRAIDVerdict, Severity: sev, Message: msg,
			Fields: map[string]string{"tool": ch.Tool, "controller": ch.Controller, "item": ch.Item,
				"verdict": ch.New.String(), "old_verdict": ch.Old.String()}})
	}
}

// observeMail writes the mail metrics after a spool flush and an event for
// every mail given up on. flushErr is Spool.Flush's error.
func observeMail(o rules.Options, spool *report.Spool, sent int, flushErr error, warn func(string, ...any)) {
	failures, gaveUp := 0, 0
	var given []string
	for _, e := range flatten(flushErr) {
		var pe *fs.PathError
		switch {
		case errors.Is(e, report.ErrGaveUp):
			gaveUp++
			given = append(given, e.Error())
		case errors.As(e, &pe) && pe.Op == "send":
			failures++
		}
	}
	items, err := spool.List()
	if err != nil {
		warn("metrics: %v", err)
		return
	}
	if err := metricsOf(o).Update(notify.JobMail, func(prev map[string]*dto.MetricFamily) *notify.Set {
		return notify.MailSet(notify.MailFlush{Time: time.Now(), Items: items, Sent: sent, Failures: failures, GivenUp: gaveUp}, prev)
	}); err != nil {
		warn("metrics: %v", err)
	}
	if len(given) > 0 {
		ev := openEvents(o, warn)
		for _, g := range given {
			_ = ev.Emit(notify.Event{Kind: notify.EventMailGiveUp, Severity: report.SeverityErr, Message: g})
		}
		ev.Close()
	}
}

// flatten unwraps errors.Join trees into their leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// aoeObserver writes the AoE metrics whenever the exports' status changes
// and sends an event for every restart and every export that starts
// flapping. It polls the run directory (the supervisor's state files), so
// it needs no hook inside the supervisor and survives its restarts: the
// last restart times come back from the previous file.
type aoeObserver struct {
	o          rules.Options
	runDir     string
	cfgPath    string
	warn       func(string, ...any)
	last       []byte
	restarts   map[string]int
	flapping   map[string]bool
	lastStart  map[string]time.Time
	loadedPrev bool
}

func newAOEObserver(o rules.Options, runDir, cfgPath string, warn func(string, ...any)) *aoeObserver {
	return &aoeObserver{o: o, runDir: runDir, cfgPath: cfgPath, warn: warn,
		restarts: map[string]int{}, flapping: map[string]bool{}, lastStart: map[string]time.Time{}}
}

// run polls every interval until ctx ends, then writes a last time.
func (a *aoeObserver) run(ctx context.Context, interval time.Duration) {
	if !metricsOf(a.o).Enabled() && (a.o.Events == "" || a.o.Events == "none") {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		a.poll()
		select {
		case <-ctx.Done():
			time.Sleep(interval) // let the supervisor record its shutdown
			a.poll()
			return
		case <-t.C:
		}
	}
}

func (a *aoeObserver) poll() {
	cfg, err := aoe.Load(a.cfgPath)
	if err != nil {
		return // the supervisor reports a bad config
	}
	st, err := aoe.Status(a.runDir, cfg)
	if err != nil {
		a.warn("metrics: aoe: %v", err)
		return
	}
	up, _ := aoe.SupervisorRunning(a.runDir)
	m := metricsOf(a.o)
	if !a.loadedPrev {
		a.loadedPrev = true
		prev, _ := notify.ReadFile(m.Path(notify.JobAOE))
		for _, e := range st {
			if v, ok := notify.Value(prev, "agent_aoe_export_last_restart_timestamp_seconds",
				"alias", e.Alias, "shelf", fmt.Sprint(e.Shelf), "slot", fmt.Sprint(e.Slot)); ok && v > 0 {
				a.lastStart[e.Alias] = time.Unix(0, int64(v*1e9))
			}
			a.restarts[e.Alias] = e.Restarts
			a.flapping[e.Alias] = e.Flapping()
		}
	}
	ev := openEvents(a.o, a.warn)
	defer ev.Close()
	for _, e := range st {
		if e.Restarts > a.restarts[e.Alias] {
			if (e.State == aoe.StateRunning || e.State == aoe.StateStarting) && !e.Since.IsZero() {
				a.lastStart[e.Alias] = e.Since
			} else {
				a.lastStart[e.Alias] = time.Now()
			}
			_ = ev.Emit(notify.Event{Kind: notify.EventAOERestart, Severity: report.SeverityWarning,
				Message: fmt.Sprintf("AoE export %s restarted (%d restarts)", e.Alias, e.Restarts),
				Fields:  map[string]string{"alias": e.Alias, "restarts": fmt.Sprint(e.Restarts), "state": e.State, "last_error": e.LastError}})
		}
		if e.Flapping() && !a.flapping[e.Alias] {
			_ = ev.Emit(notify.Event{Kind: notify.EventAOERestart, Severity: report.SeverityErr,
				Message: fmt.Sprintf("AoE export %s is flapping: %s", e.Alias, e.LastError),
				Fields:  map[string]string{"alias": e.Alias, "flapping": "1", "state": e.State, "last_error": e.LastError}})
		}
		a.restarts[e.Alias] = e.Restarts
		a.flapping[e.Alias] = e.Flapping()
	}
	if !m.Enabled() {
		return
	}
	s := notify.AOESet(st, up, a.lastStart)
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil || bytes.Equal(b.Bytes(), a.last) {
		return
	}
	if err := m.Update(notify.JobAOE, func(map[string]*dto.MetricFamily) *notify.Set { return s }); err != nil {
		a.warn("metrics: %v", err)
		return
	}
	a.last = b.Bytes()
}

func metricsCommand() *cli.Command {
	return &cli.Command{
		Name:  "metrics",
		Usage: "print the Prometheus metrics the agent wrote to metrics_dir (all job files merged; as root, first collects the sshval counters into agent_sshval.prom); --check validates them (exit 0 valid, 1 invalid, 2 none)",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "parse every agent_*.prom file as node_exporter would and report problems"},
			&cli.StringFlag{Name: "dir", Usage: "metrics `DIR` (default: the metrics_dir option)"},
		},
		Action: func(c *cli.Context) error {
			pol, err := loadPolicy(c)
			if err != nil {
				return err
			}
			dir := pol.Options.MetricsDir
			if d := c.String("dir"); d != "" {
				dir = d
			}
			if dir == "" {
				return fmt.Errorf("%w: metrics_dir is not set in the config (or give --dir)", errConfig)
			}
			m := notify.Metrics{Dir: dir}
			if !c.Bool("check") && os.Geteuid() == 0 {
				collectSSHVal(m, pol.Options.SSHValCounters, func(format string, args ...any) {
					fmt.Fprintf(c.App.ErrWriter, "agent: warning: "+format+"\n", args...)
				})
			}
			mfs, rerr := m.ReadAll()
			if c.Bool("check") {
				for _, e := range flatten(rerr) {
					fmt.Fprintf(c.App.ErrWriter, "agent: metrics: %v\n", e)
				}
				switch {
				case rerr != nil:
					return &exitError{code: 1}
				case len(mfs) == 0:
					fmt.Fprintf(c.App.ErrWriter, "agent: metrics: no agent_*.prom file in %s\n", dir)
					return &exitError{code: 2}
				}
				if !c.Bool("quiet") {
					fmt.Fprintf(c.App.Writer, "%s: %d families valid\n", dir, len(mfs))
				}
				return nil
			}
			if err := notify.WriteText(c.App.Writer, mfs); err != nil {
				return wrapWrite(err)
			}
			if rerr != nil {
				return &exitError{code: 1, err: rerr}
			}
			return nil
		},
	}
}

// observeDelivery counts one direct delivery of a report's mail (sent, or
// failed and spooled) in the mail metrics.
func observeDelivery(o rules.Options, spool *report.Spool, deliverErr error, warn func(string, ...any)) {
	m := metricsOf(o)
	if !m.Enabled() {
		return
	}
	items, err := spool.List()
	if err != nil {
		warn("metrics: %v", err)
		return
	}
	f := notify.MailFlush{Time: time.Now(), Items: items, Direct: true}
	if deliverErr == nil {
		f.Sent = 1
	} else {
		f.Failures = 1
	}
	if err := m.Update(notify.JobMail, func(prev map[string]*dto.MetricFamily) *notify.Set { return notify.MailSet(f, prev) }); err != nil {
		warn("metrics: %v", err)
	}
}

// collectSSHVal reads the counter files agent sshval keeps in dir (the
// sshval_counters option; "none" is off) and writes agent_sshval.prom.
// It runs as root: the directory is created 1733 when missing, one with
// another owner or mode is counted as an error and left alone. Every
// ignored file is a warning and an error in the metrics; the series of an
// account whose file cannot be read this time are kept from the last file.
func collectSSHVal(m notify.Metrics, dir string, warn func(string, ...any)) {
	if !m.Enabled() || dir == "none" || dir == "" {
		return
	}
	c := notify.SSHValCollect{Time: time.Now()}
	err := sshval.EnsureCountersDir(dir)
	var counts []sshval.UserCounts
	var probs []sshval.CounterProblem
	if err == nil {
		counts, probs, err = sshval.ReadCounters(dir)
	}
	allPrev := err != nil
	if err != nil {
		warn("sshval counters: %v", err)
		c.Errors++
	}
	name := func(uid int) string {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			return u.Username
		}
		return strconv.Itoa(uid)
	}
	for _, u := range counts {
		c.Users = append(c.Users, notify.SSHValUser{User: name(u.UID), Allowed: u.Allowed, Refused: u.Refused, Last: u.Last})
	}
	for _, p := range probs {
		warn("sshval counters: %v", p.Err)
		c.Errors++
		if p.UID >= 0 {
			c.Keep = append(c.Keep, name(p.UID))
		}
	}
	if err := m.Update(notify.JobSSHVal, func(prev map[string]*dto.MetricFamily) *notify.Set {
		if allPrev {
			// The directory cannot be read: keep every account's
			// series rather than make them vanish.
			for _, mt := range prev["agent_sshval_decisions_total"].GetMetric() {
				for _, lp := range mt.GetLabel() {
					if lp.GetName() == "user" {
						c.Keep = append(c.Keep, lp.GetValue())
					}
				}
			}
		}
		return notify.SSHValSet(c, prev)
	}); err != nil {
		warn("metrics: %v", err)
	}
}
