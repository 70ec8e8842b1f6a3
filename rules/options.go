package rules

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"opsagent/internal/mailaddr"
)

// Defaults of the agent options (DESIGN.md §2).
const (
	DefaultStateDir        = "/var/lib/agent"
	DefaultReportMaxAge    = 2160 * time.Hour
	DefaultScheduleCheck   = "@weekly"
	DefaultCheckMode       = "check"
	DefaultFullCheckEvery  = 7 * 24 * time.Hour
	DefaultWatchMailEvery  = 15 * time.Minute
	DefaultScheduleRAID    = "@daily"
	DefaultRAIDAlertRepeat = 24 * time.Hour
	DefaultAOEConfig       = "/etc/vbladed.conf"
	DefaultNice            = 19
	DefaultIONice          = "idle"
	DefaultRunDir          = "/run/agent"
	DefaultReportLevel     = "changed_attributes"
	DefaultReportFormat    = "plain"
	DefaultLogLevel        = "warning"
	DefaultSchedulePosture = "@daily"
	// DefaultSSHValCounters is the default of sshval_counters, the same
	// directory as the rules file's counters default (sshval.DefaultCounters).
	DefaultSSHValCounters = "/var/lib/agent-sshval"
)

// DefaultPostureTmpDirs are the temp dirs agent posture checks when
// posture_tmp_dirs is not set.
var DefaultPostureTmpDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// defaultOptions returns Options with every default filled in. ReportDir
// stays empty until the end of parsing, when it defaults to StateDir/reports.
func defaultOptions() Options {
	return Options{
		StateDir:               DefaultStateDir,
		ReportMaxAge:           DefaultReportMaxAge,
		ScheduleCheck:          DefaultScheduleCheck,
		CheckMode:              DefaultCheckMode,
		FullCheckEvery:         DefaultFullCheckEvery,
		WatchMail:              "digest",
		WatchMailEvery:         DefaultWatchMailEvery,
		ScheduleRAID:           DefaultScheduleRAID,
		RAIDAlertRepeat:        DefaultRAIDAlertRepeat,
		AOEConfig:              DefaultAOEConfig,
		Nice:                   DefaultNice,
		IONice:                 DefaultIONice,
		RunDir:                 DefaultRunDir,
		ReportFormat:           DefaultReportFormat,
		ReportLevel:            DefaultReportLevel,
		LogLevel:               DefaultLogLevel,
		SchedulePosture:        DefaultSchedulePosture,
		SSHValCounters:         DefaultSSHValCounters,
		DatabaseAttrs:          HashAttrs,
		DatabaseAddMetadata:    true,
		ReportGrouped:          true,
		ReportSummarizeChanges: true,
		ReportIgnoreE2fsattrs:  "0",
	}
}

// valueKind says how an option's value is lexed.
type valueKind uint8

const (
	valToken valueKind = iota // one token (aide: no unescaped blanks)
	valExpr                   // attribute expression
	valRest                   // agent option: the rest of the line
)

// optionDef describes one option: how to set it and how Format writes it.
type optionDef struct {
	name string
	kind valueKind
	// set applies a value (already unescaped and expanded; for valExpr the
	// evaluated set is in attrs).
	set func(o *Options, v string, attrs AttrSet) error
	// get returns the values Format writes, nil when the option is at its
	// default. Options ignored by the agent have no get.
	get func(o *Options) []string
	// notice, when set, is added to Policy.Warnings each time the option is met.
	notice string
	// firstWins: aide uses the first occurrence.
	firstWins bool
	// ignored, when set, says why the agent accepts the option (for
	// compatibility with aide configs) but does not act on it; each use is
	// listed in Policy.Ignored.
	ignored string
}

// ignoring marks an option whose value is kept (so Format reproduces it)
// but that changes nothing the agent does.
func ignoring(d optionDef, why string) optionDef { d.ignored = why; return d }

func parseBool(v string) (bool, error) {
	switch v {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%w: unrecognized bool value %q (expecting 'true', 'yes', 'false' or 'no')", ErrBadValue, v)
}

func boolOpt(name string, field func(o *Options) *bool, def bool) optionDef {
	return optionDef{
		name: name,
		set: func(o *Options, v string, _ AttrSet) error {
			b, err := parseBool(v)
			*field(o) = b
			return err
		},
		get: func(o *Options) []string {
			if *field(o) == def {
				return nil
			}
			return []string{strconv.FormatBool(*field(o))}
		},
	}
}

func stringOpt(name string, kind valueKind, field func(o *Options) *string, def string, check func(string) error) optionDef {
	return optionDef{
		name: name,
		kind: kind,
		set: func(o *Options, v string, _ AttrSet) error {
			if check != nil {
				if err := check(v); err != nil {
					return err
				}
			}
			*field(o) = v
			return nil
		},
		get: func(o *Options) []string {
			if *field(o) == def {
				return nil
			}
			return []string{*field(o)}
		},
	}
}

func attrOpt(name string, field func(o *Options) *AttrSet, def AttrSet) optionDef {
	return optionDef{
		name: name,
		kind: valExpr,
		set:  func(o *Options, _ string, a AttrSet) error { *field(o) = a; return nil },
		get: func(o *Options) []string {
			if *field(o) == def {
				return nil
			}
			return []string{field(o).String()}
		},
	}
}

func durationOpt(name string, field func(o *Options) *time.Duration, def time.Duration) optionDef {
	return optionDef{
		name: name,
		kind: valRest,
		set: func(o *Options, v string, _ AttrSet) error {
			d, err := parseDuration(v)
			if err != nil {
				return err
			}
			*field(o) = d
			return nil
		},
		get: func(o *Options) []string {
			if *field(o) == def {
				return nil
			}
			return []string{field(o).String()}
		},
	}
}

// parseDuration accepts Go durations ("36h", "90m") and whole days ("90d").
func parseDuration(v string) (time.Duration, error) {
	if strings.HasSuffix(v, "d") {
		n, err := strconv.ParseUint(strings.TrimSuffix(v, "d"), 10, 32)
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("%w: invalid duration %q", ErrBadValue, v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: invalid duration %q", ErrBadValue, v)
	}
	return d, nil
}

func oneOf(what string, allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%w: invalid %s: %q", ErrBadValue, what, v)
	}
}

func notEmpty(what string) func(string) error {
	return func(v string) error {
		if v == "" {
			return fmt.Errorf("%w: empty %s", ErrBadValue, what)
		}
		return nil
	}
}

func checkIONice(v string) error {
	class, level, hasLevel := strings.Cut(v, ":")
	switch class {
	case "idle", "none":
		if !hasLevel {
			return nil
		}
	case "best-effort", "realtime":
		if !hasLevel {
			return nil
		}
		if n, err := strconv.Atoi(level); err == nil && n >= 0 && n <= 7 {
			return nil
		}
	}
	return fmt.Errorf("%w: invalid ionice %q (idle, none, best-effort[:0-7] or realtime[:0-7])", ErrBadValue, v)
}

const dbNotice = "is ignored: the agent keeps its baseline in state_dir"

func ignoredOpt(name, notice string) optionDef {
	return optionDef{name: name, set: func(*Options, string, AttrSet) error { return nil }, notice: notice}
}

// optionDefs is every option the config language knows: all of aide
// 0.18.3's and the agent's own.
var optionDefs = []optionDef{
	// aide: databases (the agent keeps its own)
	ignoredOpt("database_in", dbNotice),
	ignoredOpt("database", dbNotice),
	ignoredOpt("database_out", dbNotice),
	ignoredOpt("database_new", dbNotice),
	ignoring(attrOpt("database_attrs", func(o *Options) *AttrSet { return &o.DatabaseAttrs }, HashAttrs),
		"reports always give the BLAKE3 of the baseline file"),
	ignoring(boolOpt("database_add_metadata", func(o *Options) *bool { return &o.DatabaseAddMetadata }, true),
		"the baseline is a bbolt file whose meta always holds the agent version and creation time"),
	ignoring(withFirst(stringOpt("log_level", valToken, func(o *Options) *string { return &o.LogLevel }, DefaultLogLevel,
		oneOf("log level", "error", "warning", "notice", "info", "rule", "compare", "config", "debug", "thread", "trace"))),
		"the agent logs warnings and errors to stderr (--quiet: errors only)"),
	ignoring(boolOpt("gzip_dbout", func(o *Options) *bool { return &o.GzipDBOut }, false),
		"the baseline is a bbolt file, never compressed"),
	withFirst(stringOpt("root_prefix", valToken, func(o *Options) *string { return &o.RootPrefix }, "", nil)),
	ignoring(boolOpt("acl_no_symlink_follow", func(o *Options) *bool { return &o.ACLNoSymlinkFollow }, false),
		"Linux symlinks have no ACLs, and the agent never follows a symlink"),
	ignoring(boolOpt("warn_dead_symlinks", func(o *Options) *bool { return &o.WarnDeadSymlinks }, false),
		"the agent never follows symlinks and does not warn about dead ones"),
	ignoring(stringOpt("config_version", valToken, func(o *Options) *string { return &o.ConfigVersion }, "", nil),
		"reports identify the config by its path and the baseline by its rules digest"),
	boolOpt("config_check_warn_unrestricted_rules", func(o *Options) *bool { return &o.ConfigCheckWarnUnrestricted }, false),
	{
		name: "num_workers", firstWins: true,
		set: func(o *Options, v string, _ AttrSet) error {
			if p, ok := strings.CutSuffix(v, "%"); ok {
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 100 {
					return fmt.Errorf("%w: invalid number of workers: %q", ErrBadValue, v)
				}
				o.NumWorkersPercent, o.NumWorkers = n, 0
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<16 {
				return fmt.Errorf("%w: invalid number of workers: %q", ErrBadValue, v)
			}
			if n == 0 {
				// aide: 0 disables multi-threading, i.e. one worker.
				n = 1
			}
			o.NumWorkers, o.NumWorkersPercent = n, 0
			return nil
		},
		get: func(o *Options) []string {
			switch {
			case o.NumWorkersPercent > 0:
				return []string{strconv.Itoa(o.NumWorkersPercent) + "%"}
			case o.NumWorkers > 0:
				return []string{strconv.Itoa(o.NumWorkers)}
			}
			return nil
		},
	},
	// aide: reports
	{
		name: "report_url",
		set: func(o *Options, v string, _ AttrSet) error {
			o.ReportURLs = append(o.ReportURLs, v)
			return notEmpty("report_url")(v)
		},
		get: func(o *Options) []string { return o.ReportURLs },
	},
	stringOpt("report_level", valToken, func(o *Options) *string { return &o.ReportLevel }, DefaultReportLevel,
		oneOf("report level", "minimal", "summary", "database_attributes", "list_entries",
			"changed_attributes", "added_removed_attributes", "added_removed_entries")),
	stringOpt("report_format", valToken, func(o *Options) *string { return &o.ReportFormat }, DefaultReportFormat,
		oneOf("report format", "plain", "json")),
	boolOpt("report_base16", func(o *Options) *bool { return &o.ReportBase16 }, false),
	ignoring(boolOpt("report_detailed_init", func(o *Options) *bool { return &o.ReportDetailedInit }, false),
		"an init report gives the number of entries only"),
	boolOpt("report_quiet", func(o *Options) *bool { return &o.ReportQuiet }, false),
	boolOpt("report_append", func(o *Options) *bool { return &o.ReportAppend }, false),
	ignoring(boolOpt("report_grouped", func(o *Options) *bool { return &o.ReportGrouped }, true),
		"reports are always grouped into added, removed and changed entries"),
	withNotice(boolOpt("grouped", func(o *Options) *bool { return &o.ReportGrouped }, true),
		"'grouped' is deprecated, use 'report_grouped'"),
	ignoring(boolOpt("report_summarize_changes", func(o *Options) *bool { return &o.ReportSummarizeChanges }, true),
		"reports always summarize changes in change strings"),
	withNotice(boolOpt("summarize_changes", func(o *Options) *bool { return &o.ReportSummarizeChanges }, true),
		"'summarize_changes' is deprecated, use 'report_summarize_changes'"),
	ignoring(attrOpt("report_ignore_added_attrs", func(o *Options) *AttrSet { return &o.ReportIgnoreAddedAttrs }, 0),
		"reports do not list attributes a rule gained"),
	ignoring(attrOpt("report_ignore_removed_attrs", func(o *Options) *AttrSet { return &o.ReportIgnoreRemovedAttrs }, 0),
		"reports do not list attributes a rule lost"),
	attrOpt("report_ignore_changed_attrs", func(o *Options) *AttrSet { return &o.ReportIgnoreChangedAttrs }, 0),
	attrOpt("report_force_attrs", func(o *Options) *AttrSet { return &o.ReportForceAttrs }, 0),
	ignoring(stringOpt("report_ignore_e2fsattrs", valToken, func(o *Options) *string { return &o.ReportIgnoreE2fsattrs }, "0",
		func(v string) error {
			if v == "0" {
				return nil
			}
			for i := 0; i < len(v); i++ {
				if !(v[i] >= 'a' && v[i] <= 'z' || v[i] >= 'A' && v[i] <= 'Z') {
					return fmt.Errorf("%w: invalid e2fs attributes %q", ErrBadValue, v)
				}
			}
			return notEmpty("report_ignore_e2fsattrs")(v)
		}), "a change of any e2fs attribute flag is reported"),

	// agent options (DESIGN.md §2)
	stringOpt("state_dir", valRest, func(o *Options) *string { return &o.StateDir }, DefaultStateDir, notEmpty("state_dir")),
	stringOpt("report_dir", valRest, func(o *Options) *string { return &o.ReportDir }, "", notEmpty("report_dir")),
	durationOpt("report_maxage", func(o *Options) *time.Duration { return &o.ReportMaxAge }, DefaultReportMaxAge),
	{
		name: "mail_to", kind: valRest,
		set: func(o *Options, v string, _ AttrSet) error {
			o.MailTo = nil
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					if _, err := mailaddr.Parse(a); err != nil {
						return fmt.Errorf("%w: mail_to %q: %v", ErrBadValue, a, err)
					}
					o.MailTo = append(o.MailTo, a)
				}
			}
			return nil
		},
		get: func(o *Options) []string {
			if len(o.MailTo) == 0 {
				return nil
			}
			return []string{strings.Join(o.MailTo, ",")}
		},
	},
	stringOpt("mail_from", valRest, func(o *Options) *string { return &o.MailFrom }, "", func(v string) error {
		if v == "" {
			return nil
		}
		if _, err := mailaddr.Parse(v); err != nil {
			return fmt.Errorf("%w: mail_from %q: %v", ErrBadValue, v, err)
		}
		return nil
	}),
	boolOpt("mail_clean", func(o *Options) *bool { return &o.MailClean }, false),
	stringOpt("smtp_url", valRest, func(o *Options) *string { return &o.SMTPURL }, "", func(v string) error {
		if v == "" || strings.HasPrefix(v, "smtp://") || strings.HasPrefix(v, "smtps://") {
			return nil
		}
		return fmt.Errorf("%w: smtp_url must start with smtp:// or smtps://: %q", ErrBadValue, v)
	}),
	stringOpt("smtp_user", valRest, func(o *Options) *string { return &o.SMTPUser }, "", nil),
	stringOpt("smtp_password_file", valRest, func(o *Options) *string { return &o.SMTPPasswordFile }, "", nil),
	stringOpt("smtp_tls", valRest, func(o *Options) *string { return &o.SMTPTLS }, "",
		oneOf("smtp_tls (may, verify or none)", "may", "verify", "none")),
	stringOpt("smtp_ca_file", valRest, func(o *Options) *string { return &o.SMTPCAFile }, "", notEmpty("smtp_ca_file")),
	stringOpt("sendmail", valRest, func(o *Options) *string { return &o.Sendmail }, "", nil),
	stringOpt("schedule_check", valRest, func(o *Options) *string { return &o.ScheduleCheck }, DefaultScheduleCheck, notEmpty("schedule_check")),
	stringOpt("check_mode", valRest, func(o *Options) *string { return &o.CheckMode }, DefaultCheckMode, oneOf("check_mode", "check", "full", "update", "incremental")),
	durationOpt("full_check_every", func(o *Options) *time.Duration { return &o.FullCheckEvery }, DefaultFullCheckEvery),
	stringOpt("schedule_raid", valRest, func(o *Options) *string { return &o.ScheduleRAID }, DefaultScheduleRAID, notEmpty("schedule_raid")),
	durationOpt("raid_alert_repeat", func(o *Options) *time.Duration { return &o.RAIDAlertRepeat }, DefaultRAIDAlertRepeat),
	stringOpt("aoe_config", valRest, func(o *Options) *string { return &o.AOEConfig }, DefaultAOEConfig, notEmpty("aoe_config")),
	stringOpt("vblade", valRest, func(o *Options) *string { return &o.Vblade }, "", nil),
	{
		name: "nice", kind: valRest,
		set: func(o *Options, v string, _ AttrSet) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < -20 || n > 19 {
				return fmt.Errorf("%w: invalid nice %q (-20..19)", ErrBadValue, v)
			}
			o.Nice = n
			return nil
		},
		get: func(o *Options) []string {
			if o.Nice == DefaultNice {
				return nil
			}
			return []string{strconv.Itoa(o.Nice)}
		},
	},
	stringOpt("ionice", valRest, func(o *Options) *string { return &o.IONice }, DefaultIONice, checkIONice),
	stringOpt("run_dir", valRest, func(o *Options) *string { return &o.RunDir }, DefaultRunDir, notEmpty("run_dir")),
	stringOpt("package_check", valRest, func(o *Options) *string { return &o.PackageCheck }, "",
		oneOf("package_check (yes or no)", "yes", "no")),
	stringOpt("package_admindir", valRest, func(o *Options) *string { return &o.PackageAdminDir }, "", notEmpty("package_admindir")),
	stringOpt("package_log", valRest, func(o *Options) *string { return &o.PackageLog }, "", notEmpty("package_log")),
	stringOpt("report_explained", valRest, func(o *Options) *string { return &o.ReportExplained }, "",
		oneOf("report_explained (list, summary or none)", "list", "summary", "none")),
	stringOpt("mail_on", valRest, func(o *Options) *string { return &o.MailOn }, "",
		oneOf("mail_on (changes or unexplained)", "changes", "unexplained")),
	// fleet monitoring (README "Monitoring a fleet")
	stringOpt("metrics_dir", valRest, func(o *Options) *string { return &o.MetricsDir }, "", func(v string) error {
		if v != "" && !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%w: metrics_dir must be an absolute path: %q", ErrBadValue, v)
		}
		return nil
	}),
	stringOpt("events", valRest, func(o *Options) *string { return &o.Events }, "", func(v string) error {
		switch {
		case v == "", v == "none", v == "syslog", v == "journal", strings.HasPrefix(v, "file:/"):
			return nil
		}
		return fmt.Errorf("%w: events must be none, syslog, journal or file:/ABSOLUTE/PATH: %q", ErrBadValue, v)
	}),
	{
		name: "events_max", kind: valRest,
		set: func(o *Options, v string, _ AttrSet) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: invalid events_max %q (a positive number)", ErrBadValue, v)
			}
			o.EventsMax = n
			return nil
		},
		get: func(o *Options) []string {
			if o.EventsMax == 0 {
				return nil
			}
			return []string{strconv.Itoa(o.EventsMax)}
		},
	},
	stringOpt("sshval_counters", valRest, func(o *Options) *string { return &o.SSHValCounters }, DefaultSSHValCounters, func(v string) error {
		if v != "none" && (!strings.HasPrefix(v, "/") || filepath.Clean(v) != v || v == "/") {
			return fmt.Errorf("%w: sshval_counters must be an absolute, clean directory or none: %q", ErrBadValue, v)
		}
		return nil
	}),
	// agent posture (README "Hardening checks")
	pathsOpt("posture_tmp_dirs", func(o *Options) *[]string { return &o.PostureTmpDirs }),
	pathsOpt("posture_web_roots", func(o *Options) *[]string { return &o.PostureWebRoots }),
	postureAllowOpt,
	stringOpt("posture_schedule", valRest, func(o *Options) *string { return &o.SchedulePosture }, DefaultSchedulePosture, notEmpty("posture_schedule")),
	stringOpt("posture_in_report", valRest, func(o *Options) *string { return &o.PostureInReport }, "",
		oneOf("posture_in_report (last, run or no)", "last", "run", "no")),
	stringOpt("watch", valRest, func(o *Options) *string { return &o.Watch }, "", oneOf("watch (yes or no)", "yes", "no")),
	stringOpt("watch_mail", valRest, func(o *Options) *string { return &o.WatchMail }, "digest",
		oneOf("watch_mail (immediate, digest or no)", "immediate", "digest", "no")),
	durationOpt("watch_mail_every", func(o *Options) *time.Duration { return &o.WatchMailEvery }, DefaultWatchMailEvery),
}

// pathsOpt is an option whose value is a blank-separated list of absolute
// paths; a later line replaces an earlier one.
func pathsOpt(name string, field func(o *Options) *[]string) optionDef {
	return optionDef{
		name: name, kind: valRest,
		set: func(o *Options, v string, _ AttrSet) error {
			f := strings.Fields(v)
			if len(f) == 0 {
				return fmt.Errorf("%w: empty %s", ErrBadValue, name)
			}
			for _, p := range f {
				if !strings.HasPrefix(p, "/") {
					return fmt.Errorf("%w: %s: %q is not an absolute path", ErrBadValue, name, p)
				}
			}
			*field(o) = f
			return nil
		},
		get: func(o *Options) []string {
			if *field(o) == nil {
				return nil
			}
			return []string{strings.Join(*field(o), " ")}
		},
	}
}

// postureAllowOpt is posture_allow = REGEX ...: waivers of agent posture
// findings by path or process exe; each line adds its regexes, which must
// match the whole path.
var postureAllowOpt = optionDef{
	name: "posture_allow", kind: valRest,
	set: func(o *Options, v string, _ AttrSet) error {
		f := strings.Fields(v)
		if len(f) == 0 {
			return fmt.Errorf("%w: empty posture_allow", ErrBadValue)
		}
		for _, re := range f {
			if _, err := regexp.Compile(re); err != nil {
				return fmt.Errorf("%w: posture_allow: %v", ErrBadValue, err)
			}
		}
		o.PostureAllow = append(o.PostureAllow, f...)
		return nil
	},
	get: func(o *Options) []string {
		if len(o.PostureAllow) == 0 {
			return nil
		}
		return []string{strings.Join(o.PostureAllow, " ")}
	},
}

func withNotice(d optionDef, notice string) optionDef { d.notice = notice; d.get = nil; return d }
func withFirst(d optionDef) optionDef                 { d.firstWins = true; return d }

var optionByName = func() map[string]*optionDef {
	m := make(map[string]*optionDef, len(optionDefs))
	for i := range optionDefs {
		m[optionDefs[i].name] = &optionDefs[i]
	}
	return m
}()

// removedOptions are options aide 0.18 refuses with a hint.
var removedOptions = map[string]string{
	"verbose":           "'verbose' option is no longer supported, use 'log_level' and 'report_level'",
	"ignore_list":       "'ignore_list' was removed, use 'report_ignore_changed_attrs'",
	"report_attributes": "'report_attributes' was removed, use 'report_force_attrs'",
}

// checkMail refuses mail options that contradict each other, at the line
// of the smtp_tls that cannot hold: none would send smtp_user's password in
// clear text, and smtps:// is TLS from the first byte.
func (p *parser) checkMail() {
	o := &p.pol.Options
	if o.SMTPTLS != "none" {
		return
	}
	src := p.pol.optSrc["smtp_tls"]
	switch {
	case strings.HasPrefix(o.SMTPURL, "smtps://"):
		p.errAt(src.File, src.Line, 0, fmt.Errorf("%w: smtp_tls = none contradicts smtp_url %s (TLS from the first byte, always verified)", ErrBadValue, o.SMTPURL))
	case o.SMTPUser != "":
		p.errAt(src.File, src.Line, 0, fmt.Errorf("%w: smtp_tls = none with smtp_user would send the password in clear text (use may or verify, or smtps://)", ErrBadValue))
	}
}
