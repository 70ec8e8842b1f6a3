package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"opsagent/internal/atomicfile"
)

// The jobs that write a metrics file each: metrics_dir/agent_<job>.prom.
const (
	JobIntegrity = "integrity"
	JobRAID      = "raid"
	JobAOE       = "aoe"
	JobMail      = "mail"
	JobPosture   = "posture"
	JobSSHVal    = "sshval"
)

// Jobs lists every job, in the order agent metrics prints them.
var Jobs = []string{JobIntegrity, JobRAID, JobAOE, JobMail, JobPosture, JobSSHVal}

// FileMode is the mode of a metrics file: node_exporter runs as its own
// user and must read it; nothing in it is secret.
const FileMode fs.FileMode = 0o644

// FileName returns the metrics file name of job, "agent_<job>.prom".
func FileName(job string) string { return "agent_" + job + ".prom" }

// Family declares one metric family the agent writes.
type Family struct {
	Name    string
	Help    string
	Counter bool     // a counter (name ends in _total); else a gauge
	Labels  []string // label names, in order
}

// Job returns the job whose file holds f ("agent_raid_..." is raid).
func (f Family) Job() string {
	rest := strings.TrimPrefix(f.Name, "agent_")
	job, _, _ := strings.Cut(rest, "_")
	return job
}

// Families is every family the agent writes, the one list the registries,
// the example alert rules and the dashboard tests use.
var Families = []Family{
	// integrity (agent check, update, init, accept)
	{Name: "agent_integrity_run_start_timestamp_seconds", Help: "Start of the last integrity run (Unix time)."},
	{Name: "agent_integrity_run_end_timestamp_seconds", Help: "End of the last integrity run (Unix time)."},
	{Name: "agent_integrity_run_duration_seconds", Help: "Wall time of the last integrity run."},
	{Name: "agent_integrity_run_info", Help: "Kind of the last integrity run (init, check, update, accept); always 1.", Labels: []string{"kind"}},
	{Name: "agent_integrity_exit_code", Help: "Exit code of the last integrity run (bits 1 added, 2 removed, 4 changed; 3 unreadable entries; 14 and up errors)."},
	{Name: "agent_integrity_entries_scanned", Help: "Entries the last integrity run scanned."},
	{Name: "agent_integrity_hashed_bytes", Help: "Bytes the last integrity run read while hashing."},
	{Name: "agent_integrity_unreadable_entries", Help: "Entries the last integrity run could not read."},
	{Name: "agent_integrity_changes", Help: "Entries the last integrity run reported, by kind.", Labels: []string{"kind"}},
	{Name: "agent_integrity_changes_by_class", Help: "Reported entries of the last integrity run by provenance class.", Labels: []string{"class"}},
	{Name: "agent_integrity_baseline_timestamp_seconds", Help: "Creation time of the baseline the last run compared with or installed (Unix time)."},
	{Name: "agent_integrity_baseline_age_seconds", Help: "Age of that baseline when the last run started."},
	{Name: "agent_integrity_last_success_timestamp_seconds", Help: "End of the last integrity run that completed (exit code below 14), kept across runs (Unix time)."},

	// RAID (agent raid check)
	{Name: "agent_raid_probe_timestamp_seconds", Help: "Time of the last RAID probe (Unix time)."},
	{Name: "agent_raid_probe_duration_seconds", Help: "Wall time of the last RAID probe, all vendor CLIs together."},
	{Name: "agent_raid_verdict", Help: "Overall RAID verdict of the host: 1 for the current verdict, 0 for the others.", Labels: []string{"verdict"}},
	{Name: "agent_raid_tool_probe_error", Help: "1 when a RAID tool could not be judged (CLI missing, failed, unparseable).", Labels: []string{"tool"}},
	{Name: "agent_raid_controller_verdict", Help: "Verdict of a controller: 1 for the current verdict, 0 for the others.", Labels: []string{"tool", "controller", "verdict"}},
	{Name: "agent_raid_controller_probe_error", Help: "1 when a controller seen before is missing from the probe, or its tool failed.", Labels: []string{"tool", "controller"}},
	{Name: "agent_raid_controller_warnings", Help: "Component warnings of a controller (battery, cache, enclosure...).", Labels: []string{"tool", "controller"}},
	{Name: "agent_raid_array_verdict", Help: "Verdict of a logical array: 1 for the current verdict, 0 for the others.", Labels: []string{"tool", "controller", "array", "verdict"}},
	{Name: "agent_raid_array_rebuild_ratio", Help: "Progress of a rebuilding array's activity, 0 to 1.", Labels: []string{"tool", "controller", "array"}},
	{Name: "agent_raid_disk_verdict", Help: "Verdict of a physical disk: 1 for the current verdict, 0 for the others.", Labels: []string{"tool", "controller", "disk", "verdict"}},

	// AoE (agent aoe supervise, agent daemon)
	{Name: "agent_aoe_export_up", Help: "1 when the export's vblade runs.", Labels: []string{"alias", "shelf", "slot"}},
	{Name: "agent_aoe_export_restarts_total", Help: "Restarts of the export's vblade by the current supervisor.", Counter: true, Labels: []string{"alias", "shelf", "slot"}},
	{Name: "agent_aoe_export_last_restart_timestamp_seconds", Help: "Last restart of the export's vblade (Unix time); 0 when never restarted.", Labels: []string{"alias", "shelf", "slot"}},
	{Name: "agent_aoe_export_flapping", Help: "1 when the export's vblade exited several times in a row without a stable run.", Labels: []string{"alias", "shelf", "slot"}},
	{Name: "agent_aoe_supervisor_up", Help: "1 when an AoE supervisor runs."},

	// mail (every spool flush)
	{Name: "agent_mail_spool_messages", Help: "Mails waiting in the spool."},
	{Name: "agent_mail_spool_failed_messages", Help: "Mails given up on, kept in the spool's failed directory."},
	{Name: "agent_mail_spool_oldest_timestamp_seconds", Help: "When the oldest waiting mail was queued (Unix time); 0 when the spool is empty."},
	{Name: "agent_mail_deliveries_total", Help: "Spooled mails delivered.", Counter: true},
	{Name: "agent_mail_failures_total", Help: "Failed delivery attempts of spooled mails.", Counter: true},
	{Name: "agent_mail_giveups_total", Help: "Spooled mails given up on.", Counter: true},
	{Name: "agent_mail_flush_timestamp_seconds", Help: "Time of the last spool flush (Unix time)."},

	{Name: "agent_posture_run_timestamp_seconds", Help: "Time of the last agent posture run (Unix time)."},
	{Name: "agent_posture_findings", Help: "Findings of the last agent posture run that are not waived, by kind (mount, executable, process).", Labels: []string{"kind"}},
	{Name: "agent_posture_waived", Help: "Waived findings of the last agent posture run."},
	{Name: "agent_posture_incomplete", Help: "1 when the last agent posture run could not check everything."},

	// sshval (collected from the counters directory by agent metrics and the daemon)
	{Name: "agent_sshval_decisions_total", Help: "Decisions of the agent sshval forced command by login account and verdict (allowed, refused), from its counter file.", Counter: true, Labels: []string{"user", "verdict"}},
	{Name: "agent_sshval_last_decision_timestamp_seconds", Help: "Last decision of agent sshval for the login account (Unix time).", Labels: []string{"user"}},
	{Name: "agent_sshval_counter_files", Help: "Counter files read from the sshval counters directory (0: sshval has not run, or counting is off)."},
	{Name: "agent_sshval_counter_errors", Help: "Counter files ignored (pre-created for another uid, malformed, busy), plus 1 when the counters directory itself is unusable."},
	{Name: "agent_sshval_collect_timestamp_seconds", Help: "Time the sshval counters were last collected (Unix time)."},
}

// FamilyNames returns the name of every family, sorted.
func FamilyNames() []string {
	var out []string
	for _, f := range Families {
		out = append(out, f.Name)
	}
	sort.Strings(out)
	return out
}

// Set is the metrics of one job being built: a registry holding every
// family of the job. Set and Add take the label values in the family's
// label order; an unknown name or a wrong label count is an error from
// Write, never a panic.
type Set struct {
	job    string
	reg    *prometheus.Registry
	gauges map[string]*prometheus.GaugeVec
	counts map[string]*prometheus.CounterVec
	err    error
}

// NewSet returns an empty set for job.
func NewSet(job string) *Set {
	s := &Set{job: job, reg: prometheus.NewRegistry(),
		gauges: map[string]*prometheus.GaugeVec{}, counts: map[string]*prometheus.CounterVec{}}
	for _, f := range Families {
		if f.Job() != job {
			continue
		}
		if f.Counter {
			v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: f.Name, Help: f.Help}, f.Labels)
			s.reg.MustRegister(v) // names are unique and valid (TestFamilies)
			s.counts[f.Name] = v
		} else {
			v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.Name, Help: f.Help}, f.Labels)
			s.reg.MustRegister(v)
			s.gauges[f.Name] = v
		}
	}
	return s
}

func (s *Set) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Set sets gauge name with the label values to v.
func (s *Set) Set(name string, v float64, labels ...string) {
	g, ok := s.gauges[name]
	if !ok {
		s.fail(fmt.Errorf("notify: no gauge %s in job %s", name, s.job))
		return
	}
	m, err := g.GetMetricWithLabelValues(labels...)
	if err != nil {
		s.fail(fmt.Errorf("notify: %s: %w", name, err))
		return
	}
	m.Set(v)
}

// Add adds v (not negative) to counter name with the label values.
func (s *Set) Add(name string, v float64, labels ...string) {
	c, ok := s.counts[name]
	if !ok {
		s.fail(fmt.Errorf("notify: no counter %s in job %s", name, s.job))
		return
	}
	m, err := c.GetMetricWithLabelValues(labels...)
	if err != nil {
		s.fail(fmt.Errorf("notify: %s: %w", name, err))
		return
	}
	if v < 0 {
		v = 0
	}
	m.Add(v)
}

// Encode writes the set in the text exposition format.
func (s *Set) Encode(w io.Writer) error {
	if s.err != nil {
		return s.err
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		return fmt.Errorf("notify: gather %s: %w", s.job, err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("notify: encode %s: %w", s.job, err)
		}
	}
	return nil
}

// Metrics writes and reads the metrics files in Dir (metrics_dir). The
// zero Dir means off: Write does nothing.
type Metrics struct {
	Dir string
}

// Enabled reports whether a metrics_dir is set.
func (m Metrics) Enabled() bool { return m.Dir != "" }

// Path returns the file of job.
func (m Metrics) Path(job string) string { return filepath.Join(m.Dir, FileName(job)) }

// Update writes the file of job under an exclusive lock on Dir, so that
// several agent processes updating counters of the same job never lose an
// update: build gets the families of the file as it is (nil when there is
// none or it cannot be parsed) and returns the new set. The file is
// written to a temporary name in Dir (which node_exporter skips: it reads
// *.prom only) and renamed, so a reader sees the old or the new file,
// never a part.
func (m Metrics) Update(job string, build func(prev map[string]*dto.MetricFamily) *Set) error {
	if !m.Enabled() {
		return nil
	}
	unlock, err := lockDir(m.Dir)
	if err != nil {
		return fmt.Errorf("notify: metrics_dir: %w", err)
	}
	defer unlock()
	prev, _ := ReadFile(m.Path(job))
	s := build(prev)
	var b bytes.Buffer
	if err := s.Encode(&b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.Path(job), b.Bytes(), FileMode); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// lockDir takes an exclusive flock on the directory itself (no lock file
// lands where node_exporter looks).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// ReadFile parses one metrics file.
func ReadFile(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse parses the text exposition format as node_exporter does.
func Parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	return mfs, nil
}

// Value returns the value of the sample of family name whose labels are
// the given name/value pairs (all of them, no others), from families read
// with ReadFile; ok is false when there is none.
func Value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !labelsEqual(m.GetLabel(), labels) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func labelsEqual(have []*dto.LabelPair, want []string) bool {
	if len(have)*2 != len(want) {
		return false
	}
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, lp := range have {
			if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// FileError is a metrics file that is missing, unreadable or malformed.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// ErrUnknownFamily: a file holds a family the agent does not write.
var ErrUnknownFamily = errors.New("family not written by the agent")

// ReadAll parses the file of every job in Dir and merges them. Jobs whose
// file does not exist are left out (that job never ran here); every other
// problem is a *FileError in the joined error, and the families of the
// good files are returned all the same.
func (m Metrics) ReadAll() ([]*dto.MetricFamily, error) {
	known := map[string]Family{}
	for _, f := range Families {
		known[f.Name] = f
	}
	var out []*dto.MetricFamily
	var errs []error
	for _, job := range Jobs {
		path := m.Path(job)
		mfs, err := ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, &FileError{Path: path, Err: err})
			continue
		}
		names := make([]string, 0, len(mfs))
		for n := range mfs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f, ok := known[n]
			if !ok || f.Job() != job {
				errs = append(errs, &FileError{Path: path, Err: fmt.Errorf("%w: %s", ErrUnknownFamily, n)})
				continue
			}
			out = append(out, mfs[n])
		}
	}
	return out, errors.Join(errs...)
}

// WriteText writes families in the text exposition format.
func WriteText(w io.Writer, mfs []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
