package rules

import (
	"strconv"
	"strings"
	"testing"
)

// TestIssue12IgnoredOptions: every aide option the agent keeps but does
// not act on is listed, with its line, in Policy.Ignored; options it acts
// on are not; values still round-trip through Format.
func TestIssue12IgnoredOptions(t *testing.T) {
	conf := `gzip_dbout=yes
report_ignore_e2fsattrs=ai
database_attrs=sha256
database_add_metadata=no
log_level=info
acl_no_symlink_follow=yes
warn_dead_symlinks=yes
config_version=7
report_detailed_init=yes
report_grouped=no
report_summarize_changes=no
report_ignore_added_attrs=p
report_ignore_removed_attrs=p
report_append=yes
report_base16=yes
num_workers=50%
/ p
`
	p, err := Parse(strings.NewReader(conf), "test.conf", LoadOptions{Hostname: "h", AgentVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(conf), "\n")
	want := 13
	if len(p.Ignored) != want {
		t.Fatalf("Ignored = %q, want %d entries", p.Ignored, want)
	}
	for i, s := range p.Ignored {
		name, _, _ := strings.Cut(lines[i], "=")
		if prefix := "test.conf:" + itoa(i+1) + ": " + name + " is ignored: "; !strings.HasPrefix(s, prefix) || len(s) == len(prefix) {
			t.Errorf("Ignored[%d] = %q, want %q and a reason", i, s, prefix)
		}
	}
	q, err := Parse(strings.NewReader(p.Format()), "formatted.conf", LoadOptions{Hostname: "h", AgentVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Options.GzipDBOut != true || q.Options.ReportIgnoreE2fsattrs != "ai" || len(q.Ignored) != want {
		t.Errorf("after Format: gzip_dbout %v, e2fsattrs %q, %d ignored", q.Options.GzipDBOut, q.Options.ReportIgnoreE2fsattrs, len(q.Ignored))
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
