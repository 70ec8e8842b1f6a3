package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// benchPaths is a mix of what a server scan visits: system files, logs
// matched by deep rules, package lists, home and spool files, and paths no
// rule selects.
var benchPaths = []struct {
	path string
	t    FileType
}{
	{"/usr/bin/ls", TypeFile},
	{"/usr/lib/x86_64-linux-gnu/libc.so.6", TypeFile},
	{"/usr/share/doc/bash/copyright", TypeFile},
	{"/usr/share/locale/de/LC_MESSAGES/coreutils.mo", TypeFile},
	{"/usr/share/zoneinfo/Europe", TypeDir},
	{"/etc/passwd", TypeFile},
	{"/etc/ssh/sshd_config", TypeFile},
	{"/etc/systemd/system/multi-user.target.wants/ssh.service", TypeSymlink},
	{"/var/log/syslog", TypeFile},
	{"/var/log/syslog.2.gz", TypeFile},
	{"/var/log/apt/history.log", TypeFile},
	{"/var/log/nginx/access.log.12.gz", TypeFile},
	{"/var/log/svc42.log.3.gz", TypeFile},
	{"/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", TypeFile},
	{"/var/lib/dpkg/info/bash.list", TypeFile},
	{"/var/lib/svc17", TypeDir},
	{"/var/cache/apt/archives/bash_5.2.15-2_amd64.deb", TypeFile},
	{"/var/cache/svc99/blob", TypeFile},
	{"/home/alice/.bashrc", TypeFile},
	{"/root/.ssh/authorized_keys", TypeFile},
	{"/boot/vmlinuz-6.1.0-18-amd64", TypeFile},
	{"/opt/app/lib/app.jar", TypeFile},
	{"/srv/www/index.html", TypeFile},
	{"/var/spool/cron/crontabs/root", TypeFile},
	{"/tmp/x", TypeFile},
}

// generatedPolicy is a Debian-sized policy (about 1,200 rules) in the
// shape of Debian's aide.conf.d: per-service log, state, cache and config
// rules below broad rules for the system directories.
func generatedPolicy() string {
	var b strings.Builder
	b.WriteString(`Checksums = sha256+sha512
OwnerMode = p+u+g+ftype
Size = s+b
InodeData = OwnerMode+n+i+Size+l+X
StaticFile = m+c+Checksums
Full = InodeData+StaticFile
VarDir = OwnerMode+n+i+X
Log = OwnerMode+n+growing+s+X
LoSerMemberLog = Full+I+ANF
/ Full
/usr Full
/etc Full
/boot Full
/var/log$ VarDir
/var/lib$ VarDir
!/tmp
!/proc
!/sys
!/dev
!/run
`)
	for i := range 240 {
		fmt.Fprintf(&b, "/var/log/svc%d\\.log$ f Log\n", i)
		fmt.Fprintf(&b, "/var/log/svc%d\\.log\\.[0-9]+\\.gz$ f LoSerMemberLog\n", i)
		fmt.Fprintf(&b, "=/var/lib/svc%d$ VarDir\n", i)
		fmt.Fprintf(&b, "!/var/cache/svc%d/\n", i)
		fmt.Fprintf(&b, "/etc/svc%d(/|$) Full\n", i)
	}
	return b.String()
}

// BenchmarkMatchPolicy measures Match per path on realistic policies:
// Debian's own /etc/aide/aide.conf with its aide.conf.d snippets when the
// aide package is installed, and a generated policy of the same size.
func BenchmarkMatchPolicy(b *testing.B) {
	for _, bc := range []struct {
		name string
		load func() (*Policy, error)
	}{
		{"debian", func() (*Policy, error) {
			if _, err := os.Stat("/etc/aide/aide.conf"); errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			return Load("/etc/aide/aide.conf", LoadOptions{})
		}},
		{"generated", func() (*Policy, error) {
			return Parse(strings.NewReader(generatedPolicy()), "generated.conf", LoadOptions{NoIncludes: true})
		}},
		{"generated-excluded", func() (*Policy, error) {
			// The generated policy with the agent's usual own paths excluded.
			p, err := Parse(strings.NewReader(generatedPolicy()), "generated.conf", LoadOptions{NoIncludes: true})
			if err != nil {
				return nil, err
			}
			for _, own := range []string{"/var/lib/agent", "/var/lib/agent/reports", "/run/agent", "/var/log/agent-sshval.log"} {
				if err := p.Exclude(own, "own"); err != nil {
					return nil, err
				}
			}
			return p, nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := bc.load()
			if errors.Is(err, fs.ErrNotExist) {
				b.Skip("no /etc/aide/aide.conf (Debian's aide package is not installed)")
			}
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(p.Rules)), "rules")
			// Warm the lazily built index outside the timing.
			p.Match("/", TypeDir)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bp := benchPaths[i%len(benchPaths)]
				p.Match(bp.path, bp.t)
				i++
			}
		})
	}
}
