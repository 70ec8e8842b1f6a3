package posture

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// DefaultTmpDirs are the temp dirs checked when posture_tmp_dirs is not set.
var DefaultTmpDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// Format is the version of the JSON document (Report).
const Format = 1

// Config is what Check looks at. Zero fields take the defaults named.
type Config struct {
	TmpDirs  []string // default DefaultTmpDirs
	WebRoots []string // scanned for executables like the temp dirs
	// WritableDirs are the world-writable directories under the
	// integrity scan's trees (from the baseline), scanned and watched for
	// processes like the temp dirs; those inside another place are
	// covered by it.
	WritableDirs []string
	Allow        []*regexp.Regexp // waivers: a finding whose path or exe matches is counted as waived
	Mountinfo    string           // default /proc/self/mountinfo
	ProcRoot     string           // default /proc
	Exec         ExecOptions
	// Owned says whether a package owns a path (ProcOptions.Owned); nil
	// without package records.
	Owned func(path string) bool
	Host  string
	Now   func() time.Time // default time.Now
}

// Report is the result of Check, and the JSON document of agent posture
// --json.
type Report struct {
	Format      int          `json:"format"`
	Host        string       `json:"host"`
	Time        time.Time    `json:"time"`
	Mounts      []MountCheck `json:"mounts"`
	Executables []Executable `json:"executables"`
	Processes   []Process    `json:"processes"`
	Exec        ExecStats    `json:"exec_scan"`
	Procs       ProcStats    `json:"process_scan"`
	Findings    int          `json:"findings"` // not waived
	Waived      int          `json:"waived"`
	// Incomplete lists what could not be checked (exit 3 when there are
	// no findings).
	Incomplete []string `json:"incomplete,omitempty"`
}

// Check runs the mount, executable and process checks. It returns an
// error only when ctx is cancelled; what could not be read is in
// Report.Incomplete.
func Check(ctx context.Context, cfg Config) (*Report, error) {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	if len(cfg.TmpDirs) == 0 {
		cfg.TmpDirs = DefaultTmpDirs
	}
	if cfg.Mountinfo == "" {
		cfg.Mountinfo = "/proc/self/mountinfo"
	}
	rep := &Report{Format: Format, Host: cfg.Host, Time: now().UTC(),
		Mounts: []MountCheck{}, Executables: []Executable{}, Processes: []Process{}}

	var dirs []CheckDir
	seen := map[string]bool{}
	for _, d := range cfg.TmpDirs {
		r, err := filepath.EvalSymlinks(d)
		if err != nil {
			if !os.IsNotExist(err) {
				rep.Incomplete = append(rep.Incomplete, fmt.Sprintf("%s: %v", d, errText(err)))
			}
			continue
		}
		seen[r] = true
		dirs = append(dirs, CheckDir{Dir: d, Resolved: r})
	}
	var mounts []Mount
	if f, err := os.Open(cfg.Mountinfo); err != nil {
		rep.Incomplete = append(rep.Incomplete, "mounts: "+err.Error())
	} else {
		mounts, err = ParseMountinfo(f, cfg.Mountinfo)
		f.Close()
		if err != nil {
			rep.Incomplete = append(rep.Incomplete, "mounts: "+err.Error())
		}
	}
	for _, m := range mounts {
		if seen[m.MountPoint] || noFiles[m.FSType] {
			continue
		}
		fi, err := os.Lstat(m.MountPoint)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o002 == 0 {
			continue
		}
		seen[m.MountPoint] = true
		dirs = append(dirs, CheckDir{Dir: m.MountPoint, Resolved: m.MountPoint, Extra: true})
	}
	if mounts != nil {
		rep.Mounts = CheckMounts(mounts, dirs)
	}

	var places []string
	for _, d := range dirs {
		places = append(places, d.Resolved)
	}
	for _, w := range cfg.WebRoots {
		if r, err := filepath.EvalSymlinks(w); err == nil {
			places = append(places, r)
		} else if !os.IsNotExist(err) {
			rep.Incomplete = append(rep.Incomplete, fmt.Sprintf("%s: %v", w, errText(err)))
		}
	}
	for _, w := range cfg.WritableDirs {
		inside := false
		for _, p := range places {
			if under(w, p) {
				inside = true
				break
			}
		}
		if !inside {
			places = append(places, w)
		}
	}
	exes, st, err := ScanExecutables(ctx, places, cfg.Exec)
	if err != nil {
		return nil, err
	}
	rep.Executables, rep.Exec = append(rep.Executables, exes...), st
	if st.Unreadable > 0 {
		rep.Incomplete = append(rep.Incomplete, fmt.Sprintf("%d files or directories in writable places could not be read", st.Unreadable))
	}

	procs, pst, err := ScanProcesses(ProcOptions{ProcRoot: cfg.ProcRoot, Places: places, Owned: cfg.Owned})
	if err != nil {
		rep.Incomplete = append(rep.Incomplete, "processes: "+err.Error())
	}
	rep.Processes, rep.Procs = append(rep.Processes, procs...), pst
	if pst.Denied > 0 {
		rep.Incomplete = append(rep.Incomplete, fmt.Sprintf("%d processes could not be inspected: permission denied", pst.Denied))
	}

	names := userNames{}
	for i := range rep.Executables {
		e := &rep.Executables[i]
		e.Owner = names.name(e.UID)
		e.Waived = allowed(cfg.Allow, e.Path)
		rep.count(e.Waived, 1)
	}
	for i := range rep.Processes {
		p := &rep.Processes[i]
		p.User = names.name(p.UID)
		p.Waived = allowed(cfg.Allow, p.Exe)
		rep.count(p.Waived, 1)
	}
	for i := range rep.Mounts {
		m := &rep.Mounts[i]
		m.Waived = allowed(cfg.Allow, m.Dir)
		rep.count(m.Waived, len(m.Missing))
	}
	sort.Strings(rep.Incomplete)
	return rep, ctx.Err()
}

func (r *Report) count(waived bool, n int) {
	if waived {
		r.Waived += n
	} else {
		r.Findings += n
	}
}

// ExitCode is agent posture's exit status: 1 for findings that are not
// waived, else 3 when something could not be checked, else 0.
func (r *Report) ExitCode() int {
	switch {
	case r.Findings > 0:
		return 1
	case len(r.Incomplete) > 0:
		return 3
	}
	return 0
}

// noFiles are file system types that cannot hold an executable file,
// whatever the mode of their mount point.
var noFiles = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "mqueue": true,
	"bpf": true, "tracefs": true, "debugfs": true, "securityfs": true, "pstore": true,
	"configfs": true, "fusectl": true, "binfmt_misc": true, "autofs": true, "efivarfs": true,
}

// allowed reports whether a posture_allow regex matches the whole path.
func allowed(allow []*regexp.Regexp, path string) bool {
	for _, re := range allow {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// userNames caches uid → user name lookups.
type userNames map[uint32]string

func (u userNames) name(uid uint32) string {
	if n, ok := u[uid]; ok {
		return n
	}
	n := ""
	if usr, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = usr.Username
	}
	u[uid] = n
	return n
}
