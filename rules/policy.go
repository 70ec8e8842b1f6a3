package rules

import (
	"sync/atomic"
	"time"
)

// RuleKind is the kind of a selection line.
type RuleKind uint8

const (
	Selective RuleKind = iota // /re ATTRS
	Equal                     // =/re ATTRS
	Negative                  // !/re
	Prune                     // -/re (AIDE 0.19's prune, accepted)
)

// Rule is one selection line after macro expansion.
type Rule struct {
	Kind  RuleKind
	Regex string  // the regular expression as written (after @@{VAR} expansion and prefixes), without the implicit ^
	Types TypeSet // restriction; 0 = unrestricted
	Attrs AttrSet
	Expr  string // the attribute expression as written
	File  string // config file the line came from
	Line  int    // 1-based line number
	Text  string // the line as written
	// Prefix is the RULE_PREFIX of the @@include that brought the rule in
	// (already part of Regex); "" when none.
	Prefix string
}

// Match is the verdict of a Policy for one path.
type Match struct {
	Selected bool    // the entry goes into the database
	Descend  bool    // for a directory: its children may be selected, walk them
	Attrs    AttrSet // attributes to record, when Selected
	Rule     *Rule   // the deciding rule, nil when none matched
	// Outside is set when a limit (SetLimit) excludes the path: it is not
	// selected, and a directory is descended only if the limit could still
	// match below it.
	Outside bool
	// Limit is the limit regex when Outside is set (for DryInitLine).
	Limit string
	// Excluded is the reason of the Exclusion (Policy.Exclude) that holds
	// the path, when the rules would otherwise select it or descend into
	// it: the path is then neither selected nor descended.
	Excluded string
}

// Options are the AIDE and agent options of a config.
type Options struct {
	// agent options (DESIGN.md §2)
	StateDir         string        // default /var/lib/agent
	ReportDir        string        // default StateDir/reports
	ReportMaxAge     time.Duration // default 2160h
	MailTo           []string
	MailFrom         string
	SMTPURL          string
	SMTPUser         string
	SMTPPasswordFile string
	SMTPTLS          string // smtp_tls: may|verify|none; "" = may (verify with SMTPUser)
	SMTPCAFile       string // smtp_ca_file: PEM CAs trusted to verify the SMTP server
	Sendmail         string
	ScheduleCheck    string // default @weekly
	CheckMode        string // check (or full)|update|incremental, default check
	// FullCheckEvery is full_check_every: check --incremental runs a full
	// check instead once the last one is this old (0: never forced).
	FullCheckEvery  time.Duration
	ScheduleRAID    string // default @daily
	RAIDAlertRepeat time.Duration
	AOEConfig       string // default /etc/vbladed.conf
	Vblade          string
	Nice            int    // default 19
	IONice          string // default idle

	// AIDE options honoured by the agent
	ReportURLs               []string
	ReportFormat             string // plain|json
	ReportLevel              string // default changed_attributes
	NumWorkers               int    // 0 = default (GOMAXPROCS)
	RootPrefix               string
	ReportBase16             bool
	ReportQuiet              bool
	ReportDetailedInit       bool
	ReportIgnoreAddedAttrs   AttrSet
	ReportIgnoreRemovedAttrs AttrSet
	ReportIgnoreChangedAttrs AttrSet
	ReportForceAttrs         AttrSet
	ConfigVersion            string

	// more agent options
	MailClean bool // mail_clean: also mail reports without changes
	// Package provenance (README "After package updates").
	PackageCheck    string // package_check: yes|no; "" = yes where a package manager is found
	PackageAdminDir string // package_admindir: dpkg's admin dir; "" = /var/lib/dpkg
	PackageLog      string // package_log: dpkg's log; "" = /var/log/dpkg.log
	ReportExplained string // report_explained: list|summary|none; "" = summary
	MailOn          string // mail_on: changes|unexplained; "" = unexplained
	RunDir          string // run_dir, default /run/agent
	// Fleet monitoring (README "Monitoring a fleet").
	MetricsDir string // metrics_dir: node_exporter textfile directory; "" = no metrics
	Events     string // events: none|syslog|journal|file:PATH; "" = none
	EventsMax  int    // events_max: events one run sends before the summary; 0 = 100
	// SSHValCounters is sshval_counters: the directory agent sshval
	// counts its decisions in (the rules file's counters setting), read
	// into the metrics; "none" = not collected.
	SSHValCounters string
	// agent posture (README "Hardening checks").
	PostureTmpDirs  []string // posture_tmp_dirs; nil = DefaultPostureTmpDirs
	PostureWebRoots []string // posture_web_roots
	PostureAllow    []string // posture_allow: regexes (Go syntax) matching a whole path or exe
	SchedulePosture string   // posture_schedule, default @daily
	// PostureInReport is posture_in_report: where the integrity reports
	// of check and update take agent posture's findings from: "last" (the
	// newest kept posture report; "" means last), "run" (a check now) or
	// "no".
	PostureInReport string
	// Watch is watch: "yes" makes agent daemon run agent watch and
	// restart it when it dies; "" or "no" does not.
	Watch string
	// WatchMail is watch_mail: how agent watch mails its findings
	// (with mail_to set): "immediate" (one mail a burst), "digest" (one
	// mail every WatchMailEvery with what came up since) or "no".
	WatchMail      string
	WatchMailEvery time.Duration

	// more AIDE options, kept so that Format reproduces them
	NumWorkersPercent           int     // num_workers given as "N%"; 0 = not given as a percentage
	DatabaseAttrs               AttrSet // default H
	DatabaseAddMetadata         bool    // default true
	LogLevel                    string  // default warning
	GzipDBOut                   bool
	ACLNoSymlinkFollow          bool
	WarnDeadSymlinks            bool
	ConfigCheckWarnUnrestricted bool
	ReportAppend                bool
	ReportGrouped               bool   // default true
	ReportSummarizeChanges      bool   // default true
	ReportIgnoreE2fsattrs       string // default "0"
}

// Policy is a parsed configuration.
type Policy struct {
	Options  Options
	Groups   map[string]AttrSet
	Rules    []*Rule  // in config order
	Warnings []string // non-fatal notices, each "file:line: text"
	// Ignored lists each use of an aide option the agent accepts but does
	// not act on, "file:line: NAME is ignored: reason" (agent config check).
	Ignored []string
	Digest  [32]byte // SHA-256 of the canonical rule set and options, for the baseline meta

	optSrc   map[string]OptionSource   // where each option was last set
	idx      atomic.Pointer[ruleIndex] // rule tree, built on first Match
	limit    *byteRegex                // SetLimit
	limitSrc string
	excl     []Exclusion // Exclude
}

// OptionSource is where an option was set in the config.
type OptionSource struct {
	File string
	Line int
}

// OptionSource returns where option name was set, so that a command that
// validates a value later (a cron schedule) can still name file and line.
// ok is false for an option left at its default.
func (p *Policy) OptionSource(name string) (src OptionSource, ok bool) {
	src, ok = p.optSrc[name]
	return src, ok
}
