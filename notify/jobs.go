package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"opsagent/aoe"
	"opsagent/internal/atomicfile"
	"opsagent/raidcheck"
	"opsagent/report"
)

// unix is t as Unix seconds with sub-second precision; 0 for the zero time.
func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// ExitWrite is the first exit code that means a run did not complete
// (DESIGN.md §3: 14 write error and up); below it a check completed.
const ExitWrite = 14

// IntegrityRun is what one integrity run tells the metrics.
type IntegrityRun struct {
	Kind       string // init, check, update, accept
	Start, End time.Time
	ExitCode   int
	// Report is the run's report; nil when the run failed before it had one.
	Report      *report.Report
	HashedBytes int64     // scanner.Stats.BytesHashed; 0 when nothing was scanned
	Baseline    time.Time // creation time of the baseline compared with or installed; zero if none
}

// Completed reports whether the run got to its report (exit code below
// ExitWrite).
func (r IntegrityRun) Completed() bool { return r.ExitCode < ExitWrite && r.Report != nil }

// IntegritySet builds the integrity file. The last success timestamp is
// this run's end when it completed, else the one of prev (the file as it
// was), so a failing run never hides when the host was last checked.
func IntegritySet(r IntegrityRun, prev map[string]*dto.MetricFamily) *Set {
	s := NewSet(JobIntegrity)
	s.Set("agent_integrity_run_start_timestamp_seconds", unix(r.Start))
	s.Set("agent_integrity_run_end_timestamp_seconds", unix(r.End))
	s.Set("agent_integrity_run_duration_seconds", max(0, r.End.Sub(r.Start).Seconds()))
	s.Set("agent_integrity_run_info", 1, r.Kind)
	s.Set("agent_integrity_exit_code", float64(r.ExitCode))
	s.Set("agent_integrity_hashed_bytes", float64(r.HashedBytes))
	var added, removed, changed, unreadable, total int
	classes := map[string]int{report.ClassPackage: 0, report.ClassScript: 0, report.ClassUnexplained: 0, report.ClassMismatch: 0}
	if rep := r.Report; rep != nil {
		added, removed, changed, total = rep.Added, rep.Removed, rep.Changed, rep.Total
		unreadable = len(rep.Problems)
		if rep.Provenance != nil {
			for _, v := range rep.Provenance.ByPath {
				classes[v.Class]++
			}
		} else {
			// Not classified (package_check = no, or no package
			// manager): nothing is explained.
			classes[report.ClassUnexplained] = added + removed + changed
		}
	}
	s.Set("agent_integrity_entries_scanned", float64(total))
	s.Set("agent_integrity_unreadable_entries", float64(unreadable))
	s.Set("agent_integrity_changes", float64(added), "added")
	s.Set("agent_integrity_changes", float64(removed), "removed")
	s.Set("agent_integrity_changes", float64(changed), "changed")
	for c, n := range classes {
		s.Set("agent_integrity_changes_by_class", float64(n), c)
	}
	if !r.Baseline.IsZero() {
		s.Set("agent_integrity_baseline_timestamp_seconds", unix(r.Baseline))
		s.Set("agent_integrity_baseline_age_seconds", max(0, r.Start.Sub(r.Baseline).Seconds()))
	}
	last := 0.0
	if v, ok := Value(prev, "agent_integrity_last_success_timestamp_seconds"); ok {
		last = v
	}
	if r.Completed() && r.Kind != "init" && r.Kind != "accept" {
		last = unix(r.End)
	}
	s.Set("agent_integrity_last_success_timestamp_seconds", last)
	return s
}

var verdicts = []raidcheck.Verdict{raidcheck.OK, raidcheck.Rebuilding, raidcheck.Unknown, raidcheck.Degraded, raidcheck.Failed}

// setVerdict writes a state set: 1 for v, 0 for every other verdict.
func (s *Set) setVerdict(name string, v raidcheck.Verdict, labels ...string) {
	for _, x := range verdicts {
		val := 0.0
		if x == v {
			val = 1
		}
		s.Set(name, val, append(append([]string(nil), labels...), x.String())...)
	}
}

// RAIDSeen is every controller, array and disk a RAID probe has shown on
// this host, with its last verdict, kept in state_dir (raid-seen.json) so
// that one that disappears is reported as a probe error instead of being
// dropped, and verdict changes become events. Entries are never forgotten
// by the agent: an admin who removes a controller removes the file.
type RAIDSeen struct {
	Format      int                  `json:"format"`
	Controllers map[string]*SeenCtrl `json:"controllers"` // key tool + "/" + controller id
}

func toolRan(rep *raidcheck.Report, tool string) bool {
	for _, r := range rep.Results {
		if r.Tool == tool {
			return true
		}
	}
	return false
}

// SeenCtrl is a controller a probe showed.
type SeenCtrl struct {
	Tool    string                 `json:"tool"`
	ID      string                 `json:"id"`
	Verdict raidcheck.Verdict      `json:"verdict"`
	Arrays  map[string]SeenVerdict `json:"arrays,omitempty"` // array id → verdict
	Disks   map[string]SeenVerdict `json:"disks,omitempty"`  // disk id → verdict
}

// SeenVerdict is the last verdict of an array or disk.
type SeenVerdict struct {
	Verdict raidcheck.Verdict `json:"verdict"`
}

// LoadRAIDSeen reads the seen set; a missing file is an empty set, a
// corrupt one an error (never silently reset: that would drop arrays).
func LoadRAIDSeen(path string) (*RAIDSeen, error) {
	s := &RAIDSeen{Format: 1, Controllers: map[string]*SeenCtrl{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("notify: %s: %w (move it away to start over)", path, err)
	}
	if s.Controllers == nil {
		s.Controllers = map[string]*SeenCtrl{}
	}
	return s, nil
}

// Save writes the seen set atomically, mode 0600.
func (s *RAIDSeen) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// VerdictChange is a RAID item whose verdict differs from the last probe.
type VerdictChange struct {
	Tool, Controller, Item string // Item: "" for the controller, "array X" or "disk X"
	Old, New               raidcheck.Verdict
	Known                  bool // false for an item seen for the first time
}

// RAIDSet builds the RAID file from a probe report and its duration, adds
// what the probe showed to seen, writes every seen controller that the
// probe lacks as a probe error with verdict unknown (and its arrays and
// disks unknown), and returns the verdict changes since the last probe.
func RAIDSet(rep *raidcheck.Report, dur time.Duration, seen *RAIDSeen) (*Set, []VerdictChange) {
	s := NewSet(JobRAID)
	s.Set("agent_raid_probe_timestamp_seconds", unix(rep.Time))
	s.Set("agent_raid_probe_duration_seconds", dur.Seconds())
	overall := rep.Verdict
	var changes []VerdictChange
	note := func(tool, ctrl, item string, old SeenVerdict, had bool, v raidcheck.Verdict) {
		if !had || old.Verdict != v {
			changes = append(changes, VerdictChange{Tool: tool, Controller: ctrl, Item: item, Old: old.Verdict, New: v, Known: had})
		}
	}
	present := map[string]bool{}
	for _, res := range rep.Results {
		toolErr := 0.0
		if res.Err != "" {
			toolErr = 1
		}
		s.Set("agent_raid_tool_probe_error", toolErr, res.Tool)
		for _, c := range res.Controllers {
			key := res.Tool + "/" + c.ID
			present[key] = true
			prev := seen.Controllers[key]
			cur := &SeenCtrl{Tool: res.Tool, ID: c.ID, Verdict: c.Verdict, Arrays: map[string]SeenVerdict{}, Disks: map[string]SeenVerdict{}}
			if prev != nil {
				note(res.Tool, c.ID, "", SeenVerdict{prev.Verdict}, true, c.Verdict)
			} else {
				note(res.Tool, c.ID, "", SeenVerdict{}, false, c.Verdict)
			}
			s.setVerdict("agent_raid_controller_verdict", c.Verdict, res.Tool, c.ID)
			s.Set("agent_raid_controller_probe_error", toolErr, res.Tool, c.ID)
			s.Set("agent_raid_controller_warnings", float64(len(c.Warnings)), res.Tool, c.ID)
			disk := func(d *raidcheck.Disk) {
				s.setVerdict("agent_raid_disk_verdict", d.Verdict, res.Tool, c.ID, d.ID)
				cur.Disks[d.ID] = SeenVerdict{d.Verdict}
			}
			for _, a := range c.Arrays {
				s.setVerdict("agent_raid_array_verdict", a.Verdict, res.Tool, c.ID, a.ID)
				if a.Verdict == raidcheck.Rebuilding {
					s.Set("agent_raid_array_rebuild_ratio", min(1, max(0, a.Progress/100)), res.Tool, c.ID, a.ID)
				}
				var old SeenVerdict
				had := false
				if prev != nil {
					old, had = prev.Arrays[a.ID]
				}
				note(res.Tool, c.ID, "array "+a.ID, old, had, a.Verdict)
				cur.Arrays[a.ID] = SeenVerdict{a.Verdict}
				for _, d := range a.Disks {
					disk(d)
				}
			}
			for _, d := range c.Disks {
				disk(d)
			}
			// Arrays and disks seen before but not now: unknown.
			if prev != nil {
				for id := range prev.Arrays {
					if _, ok := cur.Arrays[id]; !ok {
						s.setVerdict("agent_raid_array_verdict", raidcheck.Unknown, res.Tool, c.ID, id)
						note(res.Tool, c.ID, "array "+id, prev.Arrays[id], true, raidcheck.Unknown)
						cur.Arrays[id] = SeenVerdict{raidcheck.Unknown}
						overall = raidcheck.Worst(overall, raidcheck.Unknown)
					}
				}
				for id := range prev.Disks {
					if _, ok := cur.Disks[id]; !ok {
						s.setVerdict("agent_raid_disk_verdict", raidcheck.Unknown, res.Tool, c.ID, id)
						cur.Disks[id] = SeenVerdict{raidcheck.Unknown}
					}
				}
			}
			seen.Controllers[key] = cur
		}
	}
	keys := make([]string, 0, len(seen.Controllers))
	for k := range seen.Controllers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if present[key] {
			continue
		}
		c := seen.Controllers[key]
		s.Set("agent_raid_controller_probe_error", 1, c.Tool, c.ID)
		s.setVerdict("agent_raid_controller_verdict", raidcheck.Unknown, c.Tool, c.ID)
		s.Set("agent_raid_controller_warnings", 0, c.Tool, c.ID)
		if !toolRan(rep, c.Tool) {
			s.Set("agent_raid_tool_probe_error", 1, c.Tool)
		}
		note(c.Tool, c.ID, "", SeenVerdict{c.Verdict}, true, raidcheck.Unknown)
		c.Verdict = raidcheck.Unknown
		for id := range c.Arrays {
			s.setVerdict("agent_raid_array_verdict", raidcheck.Unknown, c.Tool, c.ID, id)
			c.Arrays[id] = SeenVerdict{raidcheck.Unknown}
		}
		for id := range c.Disks {
			s.setVerdict("agent_raid_disk_verdict", raidcheck.Unknown, c.Tool, c.ID, id)
			c.Disks[id] = SeenVerdict{raidcheck.Unknown}
		}
		overall = raidcheck.Worst(overall, raidcheck.Unknown)
	}
	s.setVerdict("agent_raid_verdict", overall)
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if a.Tool+a.Controller != b.Tool+b.Controller {
			return a.Tool+"/"+a.Controller < b.Tool+"/"+b.Controller
		}
		return a.Item < b.Item
	})
	return s, changes
}

// AOESet builds the AoE file from the exports' status. lastRestart gives
// each alias's last restart time (kept by the caller across status
// changes); an export whose Restarts is above 0 and that runs since Since
// was restarted then.
func AOESet(st []aoe.ExportStatus, supervised bool, lastRestart map[string]time.Time) *Set {
	s := NewSet(JobAOE)
	up := 0.0
	if supervised {
		up = 1
	}
	s.Set("agent_aoe_supervisor_up", up)
	for _, e := range st {
		l := []string{e.Alias, strconv.Itoa(e.Shelf), strconv.Itoa(e.Slot)}
		run := 0.0
		if e.State == aoe.StateRunning || e.State == aoe.StateStarting {
			run = 1
		}
		s.Set("agent_aoe_export_up", run, l...)
		s.Add("agent_aoe_export_restarts_total", float64(e.Restarts), l...)
		flap := 0.0
		if e.Flapping() {
			flap = 1
		}
		s.Set("agent_aoe_export_flapping", flap, l...)
		s.Set("agent_aoe_export_last_restart_timestamp_seconds", unix(lastRestart[e.Alias]), l...)
	}
	return s
}

// MailFlush is the outcome of one spool flush.
type MailFlush struct {
	Time                    time.Time
	Items                   []report.SpoolItem // the spool after the flush (report.Spool.List)
	Sent, Failures, GivenUp int                // this flush's counts
	// Direct is a delivery of a report's mail (not a spool flush): the
	// counters move, the flush time stays that of the last flush.
	Direct bool
}

// MailSet builds the mail file: the spool as it is now, and the counters
// of prev plus this flush's.
func MailSet(f MailFlush, prev map[string]*dto.MetricFamily) *Set {
	s := NewSet(JobMail)
	var waiting, failed int
	var oldest time.Time
	for _, it := range f.Items {
		if it.Failed {
			failed++
			continue
		}
		waiting++
		if oldest.IsZero() || it.Queued.Before(oldest) {
			oldest = it.Queued
		}
	}
	s.Set("agent_mail_spool_messages", float64(waiting))
	s.Set("agent_mail_spool_failed_messages", float64(failed))
	s.Set("agent_mail_spool_oldest_timestamp_seconds", unix(oldest))
	flushed := unix(f.Time)
	if f.Direct {
		flushed, _ = Value(prev, "agent_mail_flush_timestamp_seconds")
	}
	s.Set("agent_mail_flush_timestamp_seconds", flushed)
	for _, c := range []struct {
		name string
		n    int
	}{{"agent_mail_deliveries_total", f.Sent}, {"agent_mail_failures_total", f.Failures}, {"agent_mail_giveups_total", f.GivenUp}} {
		old, _ := Value(prev, c.name)
		s.Add(c.name, old+float64(c.n))
	}
	return s
}

// PostureRun is the outcome of one agent posture run.
type PostureRun struct {
	Time       time.Time
	Findings   map[string]int // not waived, by kind: mount, executable, process
	Waived     int
	Incomplete bool
}

// PostureSet is the posture job's metrics; every kind is written, zero
// included, so that a host without findings reads 0, not absent.
func PostureSet(r PostureRun) *Set {
	s := NewSet(JobPosture)
	s.Set("agent_posture_run_timestamp_seconds", unix(r.Time))
	for _, k := range []string{"mount", "executable", "process"} {
		s.Set("agent_posture_findings", float64(r.Findings[k]), k)
	}
	s.Set("agent_posture_waived", float64(r.Waived))
	inc := 0.0
	if r.Incomplete {
		inc = 1
	}
	s.Set("agent_posture_incomplete", inc)
	return s
}

// SSHValUser is the counter file of one login account of agent sshval.
type SSHValUser struct {
	User             string // the account's name, or its uid when it has none
	Allowed, Refused uint64
	Last             time.Time // zero when none
}

// SSHValCollect is one collection of the sshval counters directory.
type SSHValCollect struct {
	Time  time.Time
	Users []SSHValUser
	// Errors counts the files ignored and a directory that is unusable.
	Errors int
	// Keep names accounts whose file could not be read this time (busy,
	// malformed): their series of prev are written again, so a transient
	// problem does not drop them.
	Keep []string
}

// SSHValSet is the sshval job's metrics. agent_sshval_counter_files,
// agent_sshval_counter_errors and the collection time are always written,
// so that a host where sshval never ran reads 0 files, not absent.
func SSHValSet(c SSHValCollect, prev map[string]*dto.MetricFamily) *Set {
	s := NewSet(JobSSHVal)
	s.Set("agent_sshval_collect_timestamp_seconds", unix(c.Time))
	s.Set("agent_sshval_counter_files", float64(len(c.Users)))
	s.Set("agent_sshval_counter_errors", float64(c.Errors))
	have := map[string]bool{}
	for _, u := range c.Users {
		have[u.User] = true
		s.Add("agent_sshval_decisions_total", float64(u.Allowed), u.User, "allowed")
		s.Add("agent_sshval_decisions_total", float64(u.Refused), u.User, "refused")
		if !u.Last.IsZero() {
			s.Set("agent_sshval_last_decision_timestamp_seconds", unix(u.Last), u.User)
		}
	}
	for _, user := range c.Keep {
		if have[user] {
			continue
		}
		have[user] = true
		for _, verdict := range []string{"allowed", "refused"} {
			if v, ok := Value(prev, "agent_sshval_decisions_total", "user", user, "verdict", verdict); ok {
				s.Add("agent_sshval_decisions_total", v, user, verdict)
			}
		}
		if v, ok := Value(prev, "agent_sshval_last_decision_timestamp_seconds", "user", user); ok {
			s.Set("agent_sshval_last_decision_timestamp_seconds", v, user)
		}
	}
	return s
}
