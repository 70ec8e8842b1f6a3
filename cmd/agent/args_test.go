package main

import (
	"io"
	"strings"
	"testing"
)

func TestInterspersed(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"agent aoe stop apollo --run-dir D --exports E", "agent aoe stop --run-dir D --exports E apollo"},
		{"agent aoe stop --run-dir D apollo", "agent aoe stop --run-dir D apollo"},
		{"agent --config check init --mail", "agent --config check init --mail"},
		{"agent compare a.db b.db --format json", "agent compare --format json a.db b.db"},
		{"agent compare a.db --format=json b.db", "agent compare --format=json a.db b.db"},
		{"agent raid parse --tool mdstat f1 --json f2", "agent raid parse --tool mdstat --json f1 f2"},
		{"agent db show /x -- --format y", "agent db show /x -- --format y"},
		{"agent report show latest --json", "agent report show --json latest"},
		{"agent unknowncmd x --y", "agent unknowncmd x --y"},
		{"agent", "agent"},
		{"agent check --mail --quiet", "agent --quiet check --mail"},
		{"agent --state-dir S check --config C", "agent --config C --state-dir S check"},
		{"agent raid check --mail --quiet", "agent raid check --mail --quiet"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
