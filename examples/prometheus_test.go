package examples

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"opsagent/notify"
)

// promtool runs promtool (Debian package prometheus) in prometheus/.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestPrometheusRules: the alert rules load, and the unit tests prove each
// alert fires for the bad case and stays silent for the good one.
func TestPrometheusRules(t *testing.T) {
	promtool(t, "check", "rules", "agent-rules.yml")
	promtool(t, "test", "rules", "agent-rules.test.yml")
}

// metricName finds the names in a PromQL expression that look like the
// agent's (agent_...) or node_exporter's (node_...) metrics.
var metricName = regexp.MustCompile(`\b(agent|node)_[a-zA-Z0-9_]+`)

// queriedNames returns every agent_* name in the expressions.
func queriedNames(exprs []string) []string {
	var out []string
	for _, e := range exprs {
		for _, ix := range metricName.FindAllStringIndex(e, -1) {
			m := e[ix[0]:ix[1]]
			if strings.HasPrefix(e[ix[1]:], "[.]prom") {
				continue // a file name in a label matcher
			}
			if strings.HasPrefix(m, "agent_") && !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestGrafanaDashboard: the dashboard is valid JSON, and every metric its
// queries name is one the agent writes (notify.Families).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("prometheus/agent-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("agent-dashboard.json: %v", err)
	}
	known := notify.FamilyNames()
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	names := queriedNames(exprs)
	if len(names) == 0 {
		t.Fatal("the dashboard queries no agent metric")
	}
	for _, n := range names {
		if !slices.Contains(known, n) {
			t.Errorf("dashboard queries %s, which the agent does not write", n)
		}
	}
}

// TestRulesNameAgentMetrics: the alert rules name only metrics the agent
// writes (and node_exporter's textfile mtime).
func TestRulesNameAgentMetrics(t *testing.T) {
	b, err := os.ReadFile("prometheus/agent-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	// The expressions: an "expr:" line and the lines indented below it.
	var exprs []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "expr:"):
			in = true
			exprs = append(exprs, strings.TrimPrefix(trim, "expr:"))
		case in && (strings.HasPrefix(trim, "labels:") || strings.HasPrefix(trim, "annotations:") || strings.HasPrefix(trim, "for:") || strings.HasPrefix(trim, "- alert:")):
			in = false
		case in:
			exprs = append(exprs, trim)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("no expr in agent-rules.yml")
	}
	known := notify.FamilyNames()
	for _, n := range queriedNames(exprs) {
		if !slices.Contains(known, n) {
			t.Errorf("agent-rules.yml names %s, which the agent does not write", n)
		}
	}
	for _, m := range metricName.FindAllString(strings.Join(exprs, "\n"), -1) {
		if strings.HasPrefix(m, "node_") && m != "node_textfile_mtime_seconds" {
			t.Errorf("agent-rules.yml names %s", m)
		}
	}
}
