package rules

import (
	"strings"
	"testing"
)

// TestIssue17Options: metrics_dir, events and events_max parse, print
// back, and bad values are errors.
func TestIssue17Options(t *testing.T) {
	pol, err := Parse(strings.NewReader("metrics_dir=/var/lib/prometheus/node-exporter\nevents=file:/var/log/agent.jsonl\nevents_max=5\n/x R\n"), "t.conf", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := pol.Options
	if o.MetricsDir != "/var/lib/prometheus/node-exporter" || o.Events != "file:/var/log/agent.jsonl" || o.EventsMax != 5 {
		t.Errorf("got %q %q %d", o.MetricsDir, o.Events, o.EventsMax)
	}
	for _, bad := range []string{"metrics_dir=relative", "events=stdout", "events=file:rel", "events_max=0", "events_max=x"} {
		if _, err := Parse(strings.NewReader(bad+"\n/x R\n"), "t.conf", LoadOptions{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for _, good := range []string{"events=none", "events=syslog", "events=journal"} {
		if _, err := Parse(strings.NewReader(good+"\n/x R\n"), "t.conf", LoadOptions{}); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
}

// TestSSHValCountersOption: sshval_counters defaults to the sshval
// default, takes an absolute clean path or none, and prints back.
func TestSSHValCountersOption(t *testing.T) {
	pol, err := Parse(strings.NewReader("/x R\n"), "t.conf", LoadOptions{})
	if err != nil || pol.Options.SSHValCounters != DefaultSSHValCounters {
		t.Fatalf("default %q %v", pol.Options.SSHValCounters, err)
	}
	for _, good := range []string{"none", "/srv/counters"} {
		pol, err := Parse(strings.NewReader("sshval_counters="+good+"\n/x R\n"), "t.conf", LoadOptions{})
		if err != nil || pol.Options.SSHValCounters != good || !strings.Contains(pol.Format(), "sshval_counters="+good) {
			t.Errorf("%s: %q %v", good, pol.Options.SSHValCounters, err)
		}
	}
	for _, bad := range []string{"rel", "/a/../b", "/", ""} {
		if _, err := Parse(strings.NewReader("sshval_counters="+bad+"\n/x R\n"), "t.conf", LoadOptions{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
