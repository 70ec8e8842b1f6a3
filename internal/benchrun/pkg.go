package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"opsagent/pkgdb"
)

// The package rows of issue 15: on a host-like root whose /usr is the
// benchmark tree and whose dpkg records are the host's, 15 packages are
// reinstalled as dpkg would before every run, then the agent checks and
// updates.
const (
	rowPkgCheckNo    = "agent check, package_check=no"
	rowPkgCheckYes   = "agent check, package_check=yes"
	rowPkgUpdate     = "agent update (full)"
	rowPkgUpdatePkgs = "agent update --packages"

	// pkgRule adds inode, links, mtime and ctime to NORMAL, as aide's
	// default rules do: a reinstall keeps content and mtime but not the
	// inode and ctime, so with p+u+g+s+md5 there would be nothing to
	// classify.
	pkgRule = "p+i+n+u+g+s+m+c+md5"

	maxClassifyVsCheck = 1.10
	maxUpdatePkgsVsAll = 0.05

	defaultPkgCount    = 15
	defaultPkgMinFiles = 20
)

// pkgCandidate is an installed package and its regular files under /usr
// in the root (host paths, sorted).
type pkgCandidate struct {
	Key     string // info file name: "name" or "name:arch"
	Name    string
	Arch    string
	Version string
	Files   []string
}

// logName is how dpkg.log names the package: always with its arch.
func (p pkgCandidate) logName() string {
	if p.Arch == "" {
		return p.Name
	}
	return p.Name + ":" + p.Arch
}

// choosePackages returns the first n candidates by info-file name that
// have at least minFiles regular files: a choice that depends only on
// what is installed.
func choosePackages(cands []pkgCandidate, n, minFiles int) []pkgCandidate {
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, func(a, b pkgCandidate) int { return strings.Compare(a.Key, b.Key) })
	var out []pkgCandidate
	for _, c := range sorted {
		if len(out) == n {
			break
		}
		if len(c.Files) >= minFiles {
			out = append(out, c)
		}
	}
	return out
}

// dpkgLogRun returns the dpkg.log lines of one `apt-get install
// --reinstall` of pkgs: the unpack run at start, the configure run at end,
// in dpkg's own format (local time, as dpkg writes it).
func dpkgLogRun(pkgs []pkgCandidate, start, end time.Time) string {
	var b strings.Builder
	line := func(t time.Time, format string, args ...any) {
		b.WriteString(t.Local().Format(dpkgLogLayout) + " " + fmt.Sprintf(format, args...) + "\n")
	}
	line(start, "startup archives unpack")
	for _, p := range pkgs {
		line(start, "upgrade %s %s %s", p.logName(), p.Version, p.Version)
		line(start, "status half-configured %s %s", p.logName(), p.Version)
		line(start, "status unpacked %s %s", p.logName(), p.Version)
		line(start, "status half-installed %s %s", p.logName(), p.Version)
	}
	for _, p := range pkgs {
		line(end, "status unpacked %s %s", p.logName(), p.Version)
	}
	line(end, "startup packages configure")
	for _, p := range pkgs {
		line(end, "configure %s %s <none>", p.logName(), p.Version)
		line(end, "status unpacked %s %s", p.logName(), p.Version)
		line(end, "status half-configured %s %s", p.logName(), p.Version)
		line(end, "status installed %s %s", p.logName(), p.Version)
	}
	return b.String()
}

// dpkgLogLayout is dpkg.log's timestamp.
const dpkgLogLayout = "2006-01-02 15:04:05"

// pkgRoot is the host-like root of the package rows.
type pkgRoot struct {
	Dir    string // ROOT: ROOT/usr is the tree, ROOT/var/lib/dpkg the records
	Pkgs   []pkgCandidate
	Files  int   // regular files rewritten per upgrade
	Bytes  int64 // their size
	Merged []string
	Copied bool // ROOT/usr is a copy of BENCH_TREE, not the tree itself
}

// setupPkgRoot makes ROOT under cfg.Dir: ROOT/usr is cfg.Tree when the
// tree was copied there (otherwise a copy of it), ROOT/var/lib/dpkg a copy
// of cfg.PkgAdmin, ROOT/var/log/dpkg.log empty, and the merged-/usr links
// the host has.
func setupPkgRoot(ctx context.Context, cfg config) (*pkgRoot, error) {
	pr := &pkgRoot{Dir: filepath.Join(cfg.Dir, "root")}
	usr := filepath.Join(pr.Dir, "usr")
	if err := os.MkdirAll(filepath.Join(pr.Dir, "var", "lib"), 0o755); err != nil {
		return nil, err
	}
	if usr != cfg.Tree {
		if err := copyTree(ctx, cfg.Tree, usr); err != nil {
			return nil, err
		}
		pr.Copied = true
	}
	if err := copyTree(ctx, cfg.PkgAdmin, filepath.Join(pr.Dir, "var", "lib", "dpkg")); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(pr.Dir, "var", "log"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pr.Dir, "var", "log", "dpkg.log"), nil, 0o644); err != nil {
		return nil, err
	}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		t, err := os.Readlink(filepath.Join(cfg.PkgHost, d))
		if err != nil || path.Clean(path.Join("/", t)) != "/usr/"+d {
			continue
		}
		if _, err := os.Lstat(filepath.Join(usr, d)); err != nil {
			continue
		}
		if err := os.Symlink("usr/"+d, filepath.Join(pr.Dir, d)); err != nil {
			return nil, err
		}
		pr.Merged = append(pr.Merged, "/"+d)
	}
	cands, err := pkgCandidates(pr.Dir)
	if err != nil {
		return nil, err
	}
	pr.Pkgs = choosePackages(cands, cfg.PkgCount, cfg.PkgMinFiles)
	for _, p := range pr.Pkgs {
		pr.Files += len(p.Files)
		for _, f := range p.Files {
			if fi, err := os.Lstat(filepath.Join(pr.Dir, f)); err == nil {
				pr.Bytes += fi.Size()
			}
		}
	}
	return pr, nil
}

// pkgCandidates reads ROOT's dpkg records: every installed package with
// its regular, undiverted files under /usr as they are in ROOT.
func pkgCandidates(root string) ([]pkgCandidate, error) {
	admin := filepath.Join(root, "var", "lib", "dpkg")
	f, err := os.Open(filepath.Join(admin, "status"))
	if err != nil {
		return nil, err
	}
	status, err := pkgdb.ParseDpkgStatus(f, f.Name())
	f.Close()
	if err != nil {
		return nil, err
	}
	diverted := map[string]bool{}
	if f, err := os.Open(filepath.Join(admin, "diversions")); err == nil {
		divs, err := pkgdb.ParseDpkgDiversions(f, f.Name())
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, d := range divs {
			diverted[d.From], diverted[d.To] = true, true
		}
	}
	var out []pkgCandidate
	for _, st := range status {
		if st.State() != "installed" {
			continue
		}
		c := pkgCandidate{Key: st.Key(), Name: st.Package, Arch: st.Arch, Version: st.Version}
		f, err := os.Open(filepath.Join(admin, "info", st.Key()+".list"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		list, err := pkgdb.ParseDpkgList(f, f.Name())
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, p := range list {
			if !strings.HasPrefix(p, "/usr/") || diverted[p] {
				continue
			}
			if fi, err := os.Lstat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
				c.Files = append(c.Files, p)
			}
		}
		slices.Sort(c.Files)
		c.Files = slices.Compact(c.Files)
		out = append(out, c)
	}
	return out, nil
}

// reinstall does in ROOT what `apt-get install --reinstall` of the chosen
// packages does to the scanned files: every regular file, the packages'
// info files and the status file are written anew under NAME.dpkg-new and
// renamed over the old one (new inode and ctime, same content, owner, mode
// and mtime, as dpkg unpacks them), and dpkg.log holds exactly one run
// whose times cover the writes. Run before every timed run, so each one
// sees the same changes against the baseline.
func (pr *pkgRoot) reinstall() error {
	start := time.Now().Truncate(time.Second)
	for _, p := range pr.Pkgs {
		for _, f := range p.Files {
			if err := rewriteFile(filepath.Join(pr.Dir, f)); err != nil {
				return err
			}
		}
	}
	admin := filepath.Join(pr.Dir, "var", "lib", "dpkg")
	for _, p := range pr.Pkgs {
		infos, err := filepath.Glob(filepath.Join(admin, "info", globEscape(p.Key)+".*"))
		if err != nil {
			return err
		}
		for _, f := range infos {
			if err := rewriteFile(f); err != nil {
				return err
			}
		}
	}
	if err := rewriteFile(filepath.Join(admin, "status")); err != nil {
		return err
	}
	end := time.Now().Add(time.Second - 1).Truncate(time.Second)
	log := dpkgLogRun(pr.Pkgs, start, end)
	if err := os.WriteFile(filepath.Join(pr.Dir, "var", "log", "dpkg.log"), []byte(log), 0o644); err != nil {
		return err
	}
	unix.Sync()
	return nil
}

var globMeta = regexp.MustCompile(`[*?\[\\]`)

func globEscape(s string) string { return globMeta.ReplaceAllString(s, `\$0`) }

// rewriteFile replaces name by a new file with the same content, owner,
// mode and mtime, written as name.dpkg-new and renamed over it.
func rewriteFile(name string) error {
	fi, err := os.Lstat(name)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return fmt.Errorf("rewrite %s: not a regular file", name)
	}
	src, err := os.Open(name)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := name + ".dpkg-new"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		// After the chown, which clears set-id bits.
		err = dst.Chmod(fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, time.Time{}, fi.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rewrite %s: %w", name, err)
	}
	return nil
}

// writePkgConf writes the agent config of the package rows: ROOT as
// root_prefix, /usr and /var/lib/dpkg selected with pkgRule.
func writePkgConf(path, root, check string, workers int) error {
	text := fmt.Sprintf(`# Written by internal/benchrun: the package rows.
nice=0
ionice=none
num_workers=%d
root_prefix=%s
package_check=%s
PKG = %s
/usr(/|$) PKG
/var/lib/dpkg(/|$) PKG
`, workers, root, check, pkgRule)
	return os.WriteFile(path, []byte(text), 0o644)
}

// pkgVerdict is what a JSON check report says about the classified changes.
type pkgVerdict struct {
	Total, Added, Removed, Changed int
	Classes                        map[string]int
}

// parseVerdict reads number_of_entries and provenance.paths of a JSON
// report.
func parseVerdict(b []byte) (pkgVerdict, error) {
	var doc struct {
		N struct {
			Total   int `json:"total"`
			Added   int `json:"added"`
			Removed int `json:"removed"`
			Changed int `json:"changed"`
		} `json:"number_of_entries"`
		Prov *struct {
			Paths map[string]struct {
				Class string `json:"class"`
			} `json:"paths"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return pkgVerdict{}, fmt.Errorf("json report: %w", err)
	}
	v := pkgVerdict{Total: doc.N.Total, Added: doc.N.Added, Removed: doc.N.Removed, Changed: doc.N.Changed, Classes: map[string]int{}}
	if doc.Prov == nil {
		return v, errors.New("json report: no provenance object")
	}
	for _, p := range doc.Prov.Paths {
		v.Classes[p.Class]++
	}
	return v, nil
}

// String is the verdict as one line of the results.
func (v pkgVerdict) String() string {
	return fmt.Sprintf("%d changes classified (%d added, %d removed, %d changed): %d package, %d package-script, %d package-mismatch, %d unexplained",
		v.Added+v.Removed+v.Changed, v.Added, v.Removed, v.Changed,
		v.Classes["package"], v.Classes["package-script"], v.Classes["package-mismatch"], v.Classes["unexplained"])
}

// packageBench measures the package rows: a baseline of ROOT, then per
// round the four rows, each after a fresh reinstall and with a fresh copy
// of the baseline's state dir.
func packageBench(ctx context.Context, cfg config, res *results, agentArgs []string, logf func(string, ...any)) error {
	if _, err := os.Stat(filepath.Join(cfg.PkgAdmin, "status")); err != nil {
		res.notef("no dpkg status file in %s: the package rows are skipped", cfg.PkgAdmin)
		return nil
	}
	logf("building the host-like root for the package rows")
	pr, err := setupPkgRoot(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bench: package root: %w", err)
	}
	res.Pkg = pr
	if len(pr.Pkgs) == 0 {
		res.notef("no installed package has %d regular files under /usr in the tree: the package rows are skipped", cfg.PkgMinFiles)
		return nil
	}
	if len(pr.Pkgs) < cfg.PkgCount {
		res.notef("only %d installed packages have %d regular files under /usr: the upgrade touches %d, not %d", len(pr.Pkgs), cfg.PkgMinFiles, len(pr.Pkgs), cfg.PkgCount)
	}
	conf := func(name string) string { return filepath.Join(cfg.Dir, "conf", name) }
	if err := writePkgConf(conf("agent-pkg-no.conf"), pr.Dir, "no", cfg.Workers); err != nil {
		return err
	}
	if err := writePkgConf(conf("agent-pkg-yes.conf"), pr.Dir, "yes", cfg.Workers); err != nil {
		return err
	}
	agent := func(confName, state string, verb ...string) []string {
		return append(append(append([]string{cfg.Agent}, agentArgs...),
			"--config", conf(confName), "--state-dir", filepath.Join(cfg.Dir, state)), verb...)
	}
	profile := func(argv []string, name string) []string {
		// BENCH_CPUPROFILE=DIR: each row's last run leaves its CPU
		// profile there, for go tool pprof.
		if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
			return append([]string{argv[0], "--cpuprofile", filepath.Join(dir, name+".prof")}, argv[1:]...)
		}
		return argv
	}
	base := "state-pkg-baseline"
	logf("package rows: baseline of %s", pr.Dir)
	initCmd := command{Argv: agent("agent-pkg-no.conf", base, "init"), Stderr: filepath.Join(cfg.Dir, "logs", "pkg-init.err")}
	if s, err := measure(ctx, initCmd); err != nil || s.Exit != 0 {
		if err == nil {
			err = fmt.Errorf("exit status %d%s", s.Exit, tail(initCmd.Stderr))
		}
		return fmt.Errorf("bench: package baseline: %w", err)
	}
	report := func(code int) bool { return code > 0 && code < 8 }
	var steps []*step
	add := func(name, confName, state, logName string, verb ...string) {
		p := filepath.Join(cfg.Dir, "logs", logName)
		// The upgrade's changes: exit status 4 (changed entries) is the
		// expected outcome.
		st := &step{row: &row{Name: name, Entries: -1}, keep: report, expect: func(code int) bool { return code == 4 },
			cmd: command{Argv: profile(agent(confName, state, verb...), logName), Stdout: p + ".out", Stderr: p + ".err", Sample: true}}
		st.before = func() error {
			if err := restoreState(ctx, filepath.Join(cfg.Dir, base), filepath.Join(cfg.Dir, state)); err != nil {
				return err
			}
			return pr.reinstall()
		}
		steps = append(steps, st)
		res.PkgRows = append(res.PkgRows, st.row)
	}
	add(rowPkgCheckNo, "agent-pkg-no.conf", "state-pkg-check", "pkg-check-no", "check")
	add(rowPkgCheckYes, "agent-pkg-yes.conf", "state-pkg-check", "pkg-check-yes", "check")
	add(rowPkgUpdate, "agent-pkg-no.conf", "state-pkg-update", "pkg-update", "update")
	add(rowPkgUpdatePkgs, "agent-pkg-yes.conf", "state-pkg-update", "pkg-update-packages", "update", "--packages")
	if err := roundRobin(ctx, cfg, steps, logf); err != nil {
		return err
	}
	for _, st := range steps {
		st.row.Entries = entriesOf(st.cmd.Stdout)
	}
	if n := noticeOf(filepath.Join(cfg.Dir, "logs", "pkg-update-packages.out"), "update --packages:"); n != "" {
		res.PkgNotes = append(res.PkgNotes, "last timed run: "+n)
	}

	// One untimed check with the JSON report, so the figures say how much
	// was classified.
	verify := &step{row: &row{Name: "verify"}, keep: report, cmd: command{Argv: agent("agent-pkg-yes.conf", "state-pkg-check", "check", "--format", "json"),
		Stdout: filepath.Join(cfg.Dir, "logs", "pkg-verify.json"), Stderr: filepath.Join(cfg.Dir, "logs", "pkg-verify.err")}}
	verify.before = steps[0].before
	if _, err := runStep(ctx, verify); err != nil {
		res.notef("package rows: the JSON verification check failed: %v", err)
	} else if b, err := os.ReadFile(verify.cmd.Stdout); err != nil {
		return err
	} else if v, err := parseVerdict(b); err != nil {
		res.notef("package rows: %v", err)
	} else {
		res.PkgVerdict = &v
		logf("package rows: %s", v)
	}
	res.PkgChecks = []check{
		res.ratio("check with provenance / check without", rowPkgCheckYes, rowPkgCheckNo, maxClassifyVsCheck),
		res.ratio("update --packages / update", rowPkgUpdatePkgs, rowPkgUpdate, maxUpdatePkgsVsAll),
	}
	return nil
}

// restoreState makes dst a fresh copy of the state dir src.
func restoreState(ctx context.Context, src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return copyTree(ctx, src, dst)
}

// noticeOf returns the first line of a report file starting (after
// blanks) with prefix, "" if none.
func noticeOf(file, prefix string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if i := bytes.Index(l, []byte(prefix)); i >= 0 {
			return string(l[i:])
		}
	}
	return ""
}

// pkgHeader describes the package rows.
func (r *results) pkgHeader() []string {
	pr := r.Pkg
	if pr == nil {
		return nil
	}
	usr := "the tree itself"
	if pr.Copied {
		usr = "a copy of the tree"
	}
	names := make([]string, len(pr.Pkgs))
	for i, p := range pr.Pkgs {
		names[i] = p.logName()
	}
	merged := "not merged-/usr"
	if len(pr.Merged) > 0 {
		merged = "merged-/usr links " + strings.Join(pr.Merged, " ")
	}
	h := []string{
		fmt.Sprintf("package rows: root_prefix %s (usr = %s, var/lib/dpkg = a copy of %s, %s); rules PKG = %s on /usr and /var/lib/dpkg",
			pr.Dir, usr, r.Config.PkgAdmin, merged, pkgRule),
		fmt.Sprintf("upgrade before every run: %d packages reinstalled as dpkg does (new inode and ctime, same content and mtime; their info files and status rewritten; one dpkg.log run): %d files, %.1f MiB: %s",
			len(pr.Pkgs), pr.Files, float64(pr.Bytes)/mib, strings.Join(names, " ")),
	}
	if v := r.PkgVerdict; v != nil {
		h = append(h, "verification check (package_check=yes, --format json): "+v.String())
	}
	return append(h, r.PkgNotes...)
}

// ratio is the check num/den of two rows' medians.
func (r *results) ratio(name, num, den string, limit float64) check {
	c := check{Name: name, Max: limit, Value: math.NaN()}
	n, why := r.med(num)
	d, why2 := r.med(den)
	switch {
	case why != "":
		c.Missing = why
	case why2 != "":
		c.Missing = why2
	case d <= 0:
		c.Missing = den + " took no time"
	default:
		c.Value = n / d
	}
	return c
}

// med is the median of a row in seconds, NaN and why when there is none.
func (r *results) med(name string) (float64, string) {
	x := r.row(name)
	switch {
	case x == nil:
		return math.NaN(), name + " missing"
	case x.Skip != "":
		return math.NaN(), name + " skipped"
	case !x.usable():
		return math.NaN(), name + " failed"
	}
	return x.median().Seconds(), ""
}
