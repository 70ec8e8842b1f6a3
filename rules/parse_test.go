package rules

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseString(t *testing.T, text string) (*Policy, error) {
	t.Helper()
	return Parse(strings.NewReader(text), "test.conf", LoadOptions{AgentVersion: "1.0", Hostname: "host1"})
}

func TestLoadExample(t *testing.T) {
	p, err := Load("testdata/example-aide.conf", LoadOptions{AgentVersion: "1.0"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := len(p.Rules), 6; got != want {
		t.Errorf("len(Rules) = %d, want %d", got, want)
	}
	if got, want := len(p.Warnings), 3; got != want {
		t.Errorf("Warnings = %q, want %d database notices", p.Warnings, want)
	}
	if got, want := p.Options.ReportURLs, []string{"stdout", "file:/tmp/aidetest/report.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReportURLs = %q, want %q", got, want)
	}
	r := p.Rules[1]
	if r.Regex != "/tmp/aidetest/tree/bin" || r.Types != 1<<TypeFile || r.Line != 14 {
		t.Errorf("rule 2 = %+v", r)
	}
	if got, want := r.Attrs.AIDEString(), "p+u+g+s+c+m+i+n+md5+sha256"; got != want {
		t.Errorf("BIN attrs = %q, want %q", got, want)
	}
}

func TestLoadDebian(t *testing.T) {
	const conf = "/etc/aide/aide.conf"
	if _, err := os.Stat(conf); err != nil {
		t.Skip("Debian's /etc/aide/aide.conf is not installed (apt install aide)")
	}
	p, err := Load(conf, LoadOptions{AgentVersion: "1.0"})
	if err != nil {
		t.Fatalf("Load(%s): %v", conf, err)
	}
	if len(p.Rules) < 100 {
		t.Errorf("len(Rules) = %d, want the whole aide.conf.d", len(p.Rules))
	}
	if p.Options.ReportIgnoreE2fsattrs != "VNIE" {
		t.Errorf("ReportIgnoreE2fsattrs = %q, want VNIE", p.Options.ReportIgnoreE2fsattrs)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want error
		line int
	}{
		{"unknown option", "foo=bar\n", ErrUnknownOption, 1},
		{"unknown option without =", "a p\n", ErrUnknownOption, 1},
		{"removed option", "verbose=5\n", ErrUnknownOption, 1},
		{"bad bool", "gzip_dbout=maybe\n", ErrBadValue, 1},
		{"bad workers", "num_workers=abc\n", ErrBadValue, 1},
		{"bad report level", "report_level=bogus\n", ErrBadValue, 1},
		{"bad duration", "report_maxage=soon\n", ErrBadValue, 1},
		{"bad check_mode", "check_mode=later\n", ErrBadValue, 1},
		{"value with blank", "database_out=file:/x y\n", ErrSyntax, 1},
		{"unknown attribute", "\n/a md6\n", ErrUnknownAttr, 2},
		{"unknown group", "/a Nope\n", ErrUnknownGroup, 1},
		{"bad group name", "Foo-Bar = p\n", ErrBadGroupName, 1},
		{"bad regex", "/a/d)/e p\n", ErrBadRegex, 1},
		{"pcre lookahead", "/a(?=b) p\n", ErrBadRegex, 1},
		{"double slash", "/a//b/c p\n", ErrBadRegex, 1},
		{"bad restriction", "/a x p\n", ErrBadRestriction, 1},
		{"solaris restriction", "/a D p\n", ErrBadRestriction, 1},
		{"missing expression", "/a\n", ErrSyntax, 1},
		{"restriction without expression", "/a f,d\n", ErrSyntax, 1},
		{"negative with expression", "!/a f p+u\n", ErrSyntax, 1},
		{"trailing operator", "/a p+\n", ErrSyntax, 1},
		{"inline comment on rule", "/a p # no\n", ErrSyntax, 1},
		{"endif without if", "@@endif\n", ErrUnbalancedIf, 1},
		{"else without if", "@@else\n", ErrUnbalancedIf, 1},
		{"if without endif", "@@ifdef X\n/a p\n", ErrUnbalancedIf, 1},
		{"empty if block", "@@ifdef X\n@@endif\n", ErrSyntax, 2},
		{"bad if", "@@if sometimes X\n/a p\n@@endif\n", ErrSyntax, 1},
		{"unknown directive", "@@frobnicate\n", ErrSyntax, 1},
		{"missing include", "@@include /nonexistent/agent/x.conf\n", ErrInclude, 1},
		{"missing x_include", "@@x_include /nonexistent/agent/x.conf\n", ErrXInclude, 1},
		{"bad setenv name", "@@x_include_setenv 1A b\n", ErrBadVariable, 1},
		{"bad define", "@@define\n", ErrSyntax, 1},
		{"bad smtp_tls", "smtp_tls=required\n", ErrBadValue, 1},
		{"bad mail_to", "num_workers=2\nmail_to=root, ops team@example.org\n", ErrBadValue, 2},
		{"mail_to with a bad local part", "mail_to=root.\n", ErrBadValue, 1},
		{"bad mail_from", "mail_from=Agent <agent@\n", ErrBadValue, 1},
		{"smtp_tls none with smtp_user", "smtp_url=smtp://127.0.0.1\nsmtp_tls=none\nsmtp_user=u\n", ErrBadValue, 2},
		{"smtp_tls none with smtps", "smtp_tls=none\nsmtp_url=smtps://127.0.0.1\n", ErrBadValue, 1},
		{"empty smtp_ca_file", "smtp_ca_file=\n", ErrBadValue, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseString(t, tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.text, err, tc.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.File != "test.conf" || pe.Line != tc.line {
				t.Errorf("error at %s:%d, want test.conf:%d", pe.File, pe.Line, tc.line)
			}
		})
	}
}

// TestMailTLSOptions: smtp_tls and smtp_ca_file are kept, and an
// smtp_tls = none that would send a password in clear is refused with a
// reason, whichever comes first in the file.
func TestMailTLSOptions(t *testing.T) {
	p, err := parseString(t, "smtp_url=smtp://127.0.0.1:25\nsmtp_tls=verify\nsmtp_ca_file=/etc/agent/ca.pem\nsmtp_user=u\n/a p\n")
	if err != nil {
		t.Fatal(err)
	}
	if o := p.Options; o.SMTPTLS != "verify" || o.SMTPCAFile != "/etc/agent/ca.pem" {
		t.Errorf("smtp_tls %q, smtp_ca_file %q", o.SMTPTLS, o.SMTPCAFile)
	}
	if f := p.Format(); !strings.Contains(f, "smtp_tls") || !strings.Contains(f, "smtp_ca_file") {
		t.Errorf("Format does not keep the options:\n%s", f)
	}
	for _, text := range []string{
		"smtp_tls=none\nsmtp_user=u\n/a p\n",
		"smtp_user=u\nsmtp_tls=none\n/a p\n",
	} {
		_, err := parseString(t, text)
		if err == nil || !strings.Contains(err.Error(), "password in clear text") {
			t.Errorf("Parse(%q) error = %v, want a refusal naming the clear-text password", text, err)
		}
	}
	if _, err := parseString(t, "smtp_url=smtp://127.0.0.1\nsmtp_tls=none\n/a p\n"); err != nil {
		t.Errorf("smtp_tls=none without smtp_user: %v", err)
	}
}

func TestParseErrorsAllReported(t *testing.T) {
	text := "foo=1\n/a p\n/b md6\n!/c x\nbar=2\n/d(? p\n"
	_, err := parseString(t, text)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T %v, want ErrorList", err, err)
	}
	wantLines := []int{1, 3, 4, 5, 6}
	if len(list) != len(wantLines) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(wantLines), err)
	}
	for i, e := range list {
		if e.Line != wantLines[i] {
			t.Errorf("error %d at line %d, want %d", i, e.Line, wantLines[i])
		}
	}
	if got := strings.Count(err.Error(), "\n"); got != len(wantLines)-1 {
		t.Errorf("Error() has %d newlines, want one error per line:\n%s", got, err)
	}
	if !strings.HasPrefix(err.Error(), "test.conf:1: ") {
		t.Errorf("Error() = %q, want file:line: prefix", err)
	}
	if list[4].Col == 0 || !strings.HasPrefix(list[4].Error(), "test.conf:6:") {
		t.Errorf("regex error %q has no column", list[4].Error())
	}
}

func TestParseErrorCap(t *testing.T) {
	_, err := parseString(t, strings.Repeat("foo=1\n", 300))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != maxErrors {
		t.Fatalf("got %d errors, want %d", len(list), maxErrors)
	}
	if !errors.Is(list[maxErrors-1], ErrTooManyErrors) {
		t.Errorf("last error = %v, want ErrTooManyErrors", list[maxErrors-1])
	}
}

func TestOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		p, err := parseString(t, "/a p\n")
		if err != nil {
			t.Fatal(err)
		}
		o := p.Options
		if o.StateDir != "/var/lib/agent" || o.ReportDir != "/var/lib/agent/reports" || o.ReportMaxAge != 2160*time.Hour ||
			o.ScheduleCheck != "@weekly" || o.CheckMode != "check" || o.FullCheckEvery != 7*24*time.Hour || o.ScheduleRAID != "@daily" ||
			o.RAIDAlertRepeat != 24*time.Hour || o.AOEConfig != "/etc/vbladed.conf" || o.Nice != 19 ||
			o.IONice != "idle" || o.RunDir != "/run/agent" || o.MailClean || o.DatabaseAttrs != HashAttrs ||
			!o.ReportGrouped || !o.ReportSummarizeChanges || o.ReportLevel != "changed_attributes" {
			t.Errorf("defaults = %+v", o)
		}
	})
	t.Run("set", func(t *testing.T) {
		text := `@@ifdef AGENT
state_dir=/srv/agent
report_maxage=30d
mail_to=a@example.org, b@example.org, root
mail_from=agent@example.org
smtp_url=smtps://mail.example.org:465
smtp_user=u
smtp_password_file=/etc/agent/pw
sendmail=/usr/sbin/sendmail
schedule_check=0 3 * * *   # nightly
check_mode=update
full_check_every=3d
schedule_raid=@hourly
raid_alert_repeat=12h
aoe_config=/etc/vb.conf
vblade=/usr/sbin/vblade
nice=10
ionice=best-effort:7
mail_clean=yes
run_dir=/run/x
@@endif
num_workers=60%
num_workers=4
report_url=stdout
report_url=file:/var/log/agent.log
report_format=json
report_level=list_entries
report_base16=true
report_ignore_changed_attrs=p+u-u
report_force_attrs=R
root_prefix=/mnt
root_prefix=/ignored
config_version=v\ 1
database_in=file:/var/lib/aide/aide.db
/a p
`
		p, err := parseString(t, text)
		if err != nil {
			t.Fatal(err)
		}
		o := p.Options
		if o.StateDir != "/srv/agent" || o.ReportDir != "/srv/agent/reports" || o.ReportMaxAge != 30*24*time.Hour ||
			!reflect.DeepEqual(o.MailTo, []string{"a@example.org", "b@example.org", "root"}) || o.MailFrom != "agent@example.org" ||
			o.SMTPURL != "smtps://mail.example.org:465" || o.SMTPUser != "u" || o.SMTPPasswordFile != "/etc/agent/pw" ||
			o.Sendmail != "/usr/sbin/sendmail" || o.ScheduleCheck != "0 3 * * *" || o.CheckMode != "update" || o.FullCheckEvery != 72*time.Hour ||
			o.ScheduleRAID != "@hourly" || o.RAIDAlertRepeat != 12*time.Hour || o.AOEConfig != "/etc/vb.conf" ||
			o.Vblade != "/usr/sbin/vblade" || o.Nice != 10 || o.IONice != "best-effort:7" || !o.MailClean || o.RunDir != "/run/x" {
			t.Errorf("agent options = %+v", o)
		}
		if o.NumWorkersPercent != 60 || o.NumWorkers != 0 {
			t.Errorf("num_workers: first wins, got %d / %d%%", o.NumWorkers, o.NumWorkersPercent)
		}
		if !reflect.DeepEqual(o.ReportURLs, []string{"stdout", "file:/var/log/agent.log"}) || o.ReportFormat != "json" ||
			o.ReportLevel != "list_entries" || !o.ReportBase16 || o.ReportIgnoreChangedAttrs != AttrPerm.Set() ||
			o.ReportForceAttrs != groupR || o.RootPrefix != "/mnt" || o.ConfigVersion != "v 1" {
			t.Errorf("aide options = %+v", o)
		}
		if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "test.conf:34: database_in") {
			t.Errorf("Warnings = %q, want one database_in notice", p.Warnings)
		}
	})
}

func TestMacros(t *testing.T) {
	text := `@@define D etc
@@define E2 @@{D}/x
/@@{D} p
/@@{E2} u
/lit\@@{D} g
/@@{UNDEFINED}y s
@@ifdef AGENT
/agent p
@@endif
@@ifndef AGENT
/noagent p
@@endif
@@if hostname host1
/host p
@@else
/nothost p
@@endif
@@ifhost other
/other p
@@endif
@@ifnhost other
/nother p
@@endif
@@if not not defined EXTRA
/extra@@{EXTRA} p
@@endif
@@if exists /
@@if not exists /nonexistent/x
/exists p
@@endif
@@endif
/h/@@{HOSTNAME} p
@@undef D
/@@{D}z p
`
	p, err := Parse(strings.NewReader(text), "m.conf", LoadOptions{
		AgentVersion: "1.0", Hostname: "host1", Defines: map[string]string{"EXTRA": "1"},
		Before: []string{"/before p"}, After: []string{"/after p"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Rules {
		got = append(got, r.Regex)
	}
	want := []string{"/before", "/etc", "/etc/x", "/lit@@{D}", "/y", "/agent", "/host", "/nother", "/extra1",
		"/exists", "/h/host1", "/z", "/after"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q\nwant    %q", got, want)
	}
}

func TestEscapesAndRestrictions(t *testing.T) {
	tests := []struct {
		line, rx string
		types    TypeSet
		attrs    string
		kind     RuleKind
	}{
		{`/a\\.b p`, `/a\.b`, 0, "p", Selective},
		{`/a\.b p`, `/a\.b`, 0, "p", Selective},
		{`/a\ b p`, `/a b`, 0, "p", Selective},
		{`/a\\\\b p`, `/a\\b`, 0, "p", Selective},
		{`/a%20b p`, `/a%20b`, 0, "p", Selective},
		{`/a b p`, `/a`, 1 << TypeBlockDev, "p", Selective},
		{`/a  f  ,  d  p+u`, `/a`, 1<<TypeFile | 1<<TypeDir, "p+u", Selective},
		{`/a 0 p`, `/a`, 0, "p", Selective},
		{`/a p -u`, `/a`, 0, "p", Selective},
		{`/a R-md5-X`, `/a`, 0, "l+p+u+g+s+c+m+i+n+ftype", Selective},
		{`/a > `, `/a`, 0, "l+p+u+g+s+i+n+acl+selinux+xattrs+ftype+e2fsattrs+caps+growing", Selective},
		{`/a p+rmd160+tiger`, `/a`, 0, "p", Selective},
		{`=/a/ f p`, `/a/`, 1 << TypeFile, "p", Equal},
		{`!/a p`, `/a`, 1 << TypeFIFO, "", Negative},
		{`!/a`, `/a`, 0, "", Negative},
		{`-/a d`, `/a`, 1 << TypeDir, "", Prune},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			p, err := parseString(t, tc.line+"\n")
			if err != nil {
				t.Fatal(err)
			}
			r := p.Rules[0]
			if r.Regex != tc.rx || r.Types != tc.types || r.Attrs.AIDEString() != tc.attrs || r.Kind != tc.kind {
				t.Errorf("rule = %q %v %q kind %d, want %q %v %q kind %d", r.Regex, r.Types, r.Attrs.AIDEString(), r.Kind,
					tc.rx, tc.types, tc.attrs, tc.kind)
			}
		})
	}
}

func TestSkippedHashWarnsOnce(t *testing.T) {
	p, err := parseString(t, "/a p+rmd160\n/b rmd160+tiger\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 2 || !strings.HasPrefix(p.Warnings[0], "test.conf:1: ") || !strings.HasPrefix(p.Warnings[1], "test.conf:2: ") {
		t.Errorf("Warnings = %q, want one per hash name", p.Warnings)
	}
}

func TestGroups(t *testing.T) {
	p, err := parseString(t, "A = p\nB = A+u\nA = g\nR = p\n/a B\n/b R\n/c E\n/d H\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []AttrSet{set(AttrPerm, AttrUID), AttrPerm.Set(), 0, HashAttrs}
	for i, w := range want {
		if got := p.Rules[i].Attrs; got != w {
			t.Errorf("rule %d attrs = %q, want %q", i, got.AIDEString(), w.AIDEString())
		}
	}
	if len(p.Warnings) != 2 {
		t.Errorf("Warnings = %q, want the two redefinitions", p.Warnings)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "conf.d")
	writeFile(t, filepath.Join(d, "10_b"), "/b p\n", 0o644)
	writeFile(t, filepath.Join(d, "05_a"), "/a p\n@@include "+filepath.Join(dir, "nested")+" ^n$ /n2\n", 0o644)
	writeFile(t, filepath.Join(d, "skip.bak"), "/never p\n", 0o644)
	writeFile(t, filepath.Join(dir, "nested", "n"), "/deep p\n", 0o644)
	writeFile(t, filepath.Join(d, "20_x"), "#!/bin/sh\necho \"/x/$MYVAR p\"\n", 0o755)
	if err := os.Mkdir(filepath.Join(d, "30_dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main.conf")
	writeFile(t, main, "@@x_include_setenv MYVAR fromenv\n@@x_include "+d+" ^[0-9]+_[a-z]+$ /pre\n/last p\n", 0o644)
	p, err := Load(main, LoadOptions{AgentVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range p.Rules {
		got = append(got, r.Regex+"@"+filepath.Base(r.File)+":"+r.Prefix)
	}
	want := []string{"/pre/a@05_a:/pre", "/pre/n2/deep@n:/pre/n2", "/pre/b@10_b:/pre", "/pre/x/fromenv@20_x (stdout):/pre", "/last@main.conf:"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q\nwant    %q", got, want)
	}

	t.Run("plain include does not execute", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "p.conf"), "@@include "+d+" ^20_x$\n", 0o644)
		_, err := Load(filepath.Join(dir, "p.conf"), LoadOptions{})
		if !errors.Is(err, ErrUnknownOption) && !errors.Is(err, ErrSyntax) {
			t.Errorf("including a script as text: error %v, want a syntax error", err)
		}
	})
	t.Run("depth", func(t *testing.T) {
		self := filepath.Join(dir, "self.conf")
		writeFile(t, self, "@@include "+self+"\n", 0o644)
		_, err := Load(self, LoadOptions{})
		if !errors.Is(err, ErrInclude) {
			t.Errorf("self include: error %v, want ErrInclude", err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		_, err := Parse(strings.NewReader("@@include "+main+"\n"), "x", LoadOptions{NoIncludes: true})
		if !errors.Is(err, ErrInclude) {
			t.Errorf("error %v, want ErrInclude", err)
		}
	})
}

func TestXIncludeFailures(t *testing.T) {
	tests := []struct {
		name   string
		script string
		mode   os.FileMode
		chown  int
	}{
		{"exit status", "#!/bin/sh\necho /a p\nexit 3\n", 0o755, -1},
		{"stderr", "#!/bin/sh\necho /a p\necho oops >&2\n", 0o755, -1},
		{"group writable", "#!/bin/sh\necho /a p\n", 0o775, -1},
		{"foreign owner", "#!/bin/sh\necho /a p\n", 0o755, 65534},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			script := filepath.Join(dir, "snippet")
			writeFile(t, script, tc.script, tc.mode)
			if tc.chown >= 0 {
				if os.Geteuid() != 0 {
					t.Skip("chown to another user needs root")
				}
				if err := os.Chown(script, tc.chown, tc.chown); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Parse(strings.NewReader("@@x_include "+script+"\n"), "x.conf", LoadOptions{})
			if !errors.Is(err, ErrXInclude) {
				t.Errorf("error %v, want ErrXInclude", err)
			}
		})
	}
}

func TestNodePath(t *testing.T) {
	tests := map[string]string{
		"/":            "/",
		"/a":           "/",
		"/a/b":         "/a",
		"/a/b.c/d":     "/a/b.c",
		"/a/b?c/d":     "/a",
		"/a/b\\.x/d":   "/a/b.x",
		"/a/b\\/x/y":   "/a/b/x",
		"/a/c/":        "/a/c",
		"/a/b(c)/d":    "/a",
		"/a/b{2}/d":    "/a/b{2}",
		"/a/e\\x41/f":  "/a/ex41",
		"/a/b\\\\x/y":  "/a/b\\x",
		"/var/log/.*":  "/var/log",
		"/etc/[a-z]+/": "/etc",
	}
	for rx, want := range tests {
		if got := nodePath(rx); got != want {
			t.Errorf("nodePath(%q) = %q, want %q", rx, got, want)
		}
	}
}

func TestAIDEString(t *testing.T) {
	all := AttrSet(1)<<numAttrs - 1
	want := "l+p+u+g+s+a+c+m+i+b+n+md5+sha1+acl+S+I+ANF+ARF+sha256+sha512+selinux+xattrs+ftype+e2fsattrs+caps+growing+compressed+blake3"
	if got := all.AIDEString(); got != want {
		t.Errorf("AIDEString() = %q\nwant            %q", got, want)
	}
	if got := AttrSet(0).AIDEString(); got != "" {
		t.Errorf("empty AIDEString() = %q, want \"\"", got)
	}
	if got := TypeSet(1<<TypeSocket | 1<<TypeFile | 1<<TypeFIFO | 1<<TypeDir).AIDEString(); got != "f,d,p,s" {
		t.Errorf("TypeSet.AIDEString() = %q, want f,d,p,s", got)
	}
}

func TestDigestAndFormat(t *testing.T) {
	p1, err := parseString(t, "N = p+u\n/a N\n")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := parseString(t, "# same\n/a p+u\nN=u+p\n")
	if err != nil {
		t.Fatal(err)
	}
	if p1.Digest != p2.Digest {
		t.Errorf("equal policies have different digests:\n%s\n%s", p1.Format(), p2.Format())
	}
	p3, err := parseString(t, "/a p+g\n")
	if err != nil {
		t.Fatal(err)
	}
	if p1.Digest == p3.Digest {
		t.Error("different rules, same digest")
	}
}
