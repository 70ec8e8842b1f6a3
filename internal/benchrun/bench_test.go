package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the harness core on a tiny tree with one timed run
// and a 1000-file synthetic tree: every row is measured, every ratio is a
// finite positive number, and both renderings list every row.
func TestBenchSmoke(t *testing.T) {
	for _, tool := range []string{"aide", "b3sum", "find", "xargs", "md5sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install aide b3sum): the smoke test needs every row", tool)
		}
	}
	dir := t.TempDir()
	// BENCH_AGENT names a prebuilt binary (as for make bench); otherwise
	// the test builds the agent of this tree.
	agent := os.Getenv("BENCH_AGENT")
	if agent == "" {
		agent = filepath.Join(dir, "agent")
		build := exec.Command("go", "build", "-o", agent, "opsagent/cmd/agent")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/agent: %v\n%s", err, out)
		}
	}
	tree := filepath.Join(dir, "tree")
	for d := range 5 {
		sub := filepath.Join(tree, fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 20 {
			data := bytes.Repeat([]byte{byte(d), byte(f)}, 1000*f)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("d0/f1", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	// A sibling whose name extends the tree's must not be selected.
	if err := os.MkdirAll(filepath.Join(dir, "tree-sibling", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var log bytes.Buffer
	res, err := bench(ctx, config{Agent: agent, Tree: tree, Dir: work, Runs: 1, MFiles: 1000, Workers: 2, Log: &log})
	if err != nil {
		t.Fatalf("bench: %v\nlog:\n%s", err, log.String())
	}

	if got, want := res.Entries, int64(1+5+5*20+1); got != want {
		t.Errorf("Entries = %d, want %d", got, want)
	}
	for _, name := range []string{rowAideInit, rowAideCheck, rowAgentInit, rowAgentCheck, rowAgentBLAKE3, rowWalk, rowMD5, rowB3,
		rowSynthAgentInit, rowSynthAgentCheck} {
		r := res.row(name)
		switch {
		case r == nil:
			t.Errorf("row %q missing", name)
		case !r.usable():
			t.Errorf("row %q: skip %q, err %v, %d runs", name, r.Skip, r.Err, len(r.Runs))
		case len(r.Warn) > 0:
			t.Errorf("row %q: warnings %q, want a clean exit", name, r.Warn)
		}
	}
	for _, name := range []string{rowAgentInit, rowAgentCheck, rowAideInit, rowAideCheck} {
		if r := res.row(name); r != nil && r.Entries != res.Entries {
			t.Errorf("row %q reports %d entries, want %d", name, r.Entries, res.Entries)
		}
	}
	if r := res.row(rowSynthAgentInit); r != nil && r.Entries != 1+1+1000 {
		t.Errorf("synthetic init reports %d entries, want %d", r.Entries, 1002)
	}
	for _, name := range []string{rowAgentInit, rowSynthAgentCheck} {
		if r := res.row(name); r != nil {
			if rss, anon := r.peaks(); rss <= 0 || anon <= 0 {
				t.Errorf("row %q peaks: RSS %d, RssAnon %d, want both > 0", name, rss, anon)
			}
		}
	}
	if got, want := len(res.Checks), 7; got != want {
		t.Errorf("%d checks, want %d", got, want)
	}
	if got, want := len(res.SynthChecks), 2; got != want {
		t.Errorf("%d synthetic checks, want %d", got, want)
	}
	for _, c := range append(res.Checks, res.SynthChecks...) {
		if math.IsNaN(c.Value) || math.IsInf(c.Value, 0) || c.Value <= 0 {
			t.Errorf("check %q = %v (%s), want a finite value > 0", c.Name, c.Value, c.Missing)
		}
	}
	// The watch rows change files of the tree, so they skip a BENCH_TREE
	// the harness does not own, as this one; no other note is expected.
	var notes []string
	for _, n := range res.Notes {
		if !strings.HasPrefix(n, "watch rows skipped: BENCH_TREE=") {
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		t.Errorf("notes %q, want none", notes)
	}

	var text, md bytes.Buffer
	if err := res.writeText(&text); err != nil {
		t.Fatal(err)
	}
	if err := res.writeMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	t.Logf("text output:\n%s\nmarkdown:\n%s", text.String(), md.String())
	for _, out := range []struct {
		name, text, escape string
	}{{"text", text.String(), ""}, {"markdown", md.String(), "md"}} {
		for _, r := range append(res.Rows, res.Synth...) {
			name := r.Name
			if out.escape != "" {
				name = mdEscape(name)
			}
			if !strings.Contains(out.text, name) {
				t.Errorf("%s output lacks row %q:\n%s", out.name, name, out.text)
			}
		}
		for _, want := range []string{"aide num_workers=2", "agent init / aide init", "PASS"} {
			if !strings.Contains(out.text, want) && !strings.Contains(out.text, mdEscape(want)) {
				t.Errorf("%s output lacks %q", out.name, want)
			}
		}
	}
}

// TestStatusField reads the kB fields of /proc/PID/status.
func TestStatusField(t *testing.T) {
	status := []byte("Name:\tagent\nVmRSS:\t   20480 kB\nRssAnon:\t    1234 kB\nRssFile:\t 4 kB\n")
	for _, tc := range []struct {
		name, field string
		want        int64
	}{
		{"anon", "RssAnon:", 1234 * 1024},
		{"rss", "VmRSS:", 20480 * 1024},
		{"absent", "RssShmem:", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusField(status, tc.field); got != tc.want {
				t.Errorf("statusField(%q) = %d, want %d", tc.field, got, tc.want)
			}
		})
	}
}

// TestRowStats checks median, span and peaks on odd and even run counts.
func TestRowStats(t *testing.T) {
	s := func(sec float64, rss, anon int64) sample {
		return sample{Wall: time.Duration(sec * float64(time.Second)), MaxRSS: rss, RssAnon: anon}
	}
	for _, tc := range []struct {
		name           string
		r              row
		median, lo, hi time.Duration
		rss, anon      int64
	}{
		{"odd", row{Runs: []sample{s(3, 10, 5), s(1, 30, 2), s(2, 20, 7)}}, 2 * time.Second, time.Second, 3 * time.Second, 30, 7},
		{"even", row{Runs: []sample{s(4, 1, -1), s(1, 1, -1), s(2, 1, -1), s(3, 1, -1)}}, 2500 * time.Millisecond, time.Second, 4 * time.Second, 1, -1},
		{"warm-up peak", row{Warm: &sample{Wall: time.Hour, MaxRSS: 99, RssAnon: 9}, Runs: []sample{s(1, 1, 1)}}, time.Second, time.Second, time.Second, 99, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.median(); got != tc.median {
				t.Errorf("median = %v, want %v", got, tc.median)
			}
			if lo, hi := tc.r.span(); lo != tc.lo || hi != tc.hi {
				t.Errorf("span = %v-%v, want %v-%v", lo, hi, tc.lo, tc.hi)
			}
			if rss, anon := tc.r.peaks(); rss != tc.rss || anon != tc.anon {
				t.Errorf("peaks = %d, %d, want %d, %d", rss, anon, tc.rss, tc.anon)
			}
		})
	}
}

// TestAgentFlagsFallback: a binary that rejects --no-nice (exit 15, "flag
// provided but not defined") is run without it; one that accepts it gets it.
func TestAgentFlagsFallback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   string
	}{
		{"accepts", "exit 0", "--quiet --workers 2 --no-nice"},
		{"rejects", `for a; do [ "$a" = --no-nice ] && { echo "agent: invalid argument: flag provided but not defined: -no-nice" >&2; exit 15; }; done; exit 0`, "--quiet --workers 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			agent := filepath.Join(dir, "agent")
			if err := os.WriteFile(agent, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			args, err := agentFlags(context.Background(), config{Agent: agent, Dir: dir, Workers: 2})
			if err != nil {
				t.Fatalf("agentFlags: %v", err)
			}
			if got := strings.Join(args, " "); got != tc.want {
				t.Errorf("agentFlags = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("other failure", func(t *testing.T) {
		dir := t.TempDir()
		agent := filepath.Join(dir, "agent")
		if err := os.WriteFile(agent, []byte("#!/bin/sh\necho broken >&2; exit 17\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if args, err := agentFlags(context.Background(), config{Agent: agent, Dir: dir, Workers: 2}); err == nil {
			t.Errorf("agentFlags = %q, nil; want an error", args)
		}
	})
}
