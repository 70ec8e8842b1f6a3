package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// The posture rows of issue 16: agent posture over a temp dir of many
// small files, beside find's scan for executable bits as the floor.
const (
	rowPosture      = "agent posture --json"
	rowPostureFloor = "find -type f -perm /111 (floor)"

	postureFiles       = 100_000
	posturePerDir      = 1_000
	postureEveryExec   = 1_000 // one planted executable in so many files
	maxPostureSeconds  = 10.0  // "seconds, not minutes"
	maxPostureVsFinder = 20.0
)

// makePostureDir fills dir with postureFiles files of a few bytes, one in
// postureEveryExec a #! script with an execute bit (what the scan must
// report), and returns how many of those it planted.
func makePostureDir(dir string) (int, error) {
	planted := 0
	for i := range postureFiles {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/posturePerDir))
		if i%posturePerDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return 0, err
			}
		}
		name, body, mode := filepath.Join(sub, fmt.Sprintf("f%06d", i)), "upload\n", os.FileMode(0o644)
		if i%postureEveryExec == 0 {
			body, mode = "#!/bin/sh\necho bot\n", 0o755
			planted++
		}
		if err := os.WriteFile(name, []byte(body), mode); err != nil {
			return 0, err
		}
		if err := os.Chmod(name, mode); err != nil {
			return 0, err
		}
	}
	return planted, nil
}

// postureBench times agent posture with the temp dir as its only
// posture_tmp_dirs entry (mounts and processes are looked at too, as
// always), and find's walk over the same dir.
func postureBench(ctx context.Context, cfg config, res *results, logf func(string, ...any)) error {
	dir := filepath.Join(cfg.Dir, "posture-tmp")
	logf("posture rows: %d files in %s", postureFiles, dir)
	planted, err := makePostureDir(dir)
	if err != nil {
		return fmt.Errorf("bench: posture dir: %w", err)
	}
	conf := filepath.Join(cfg.Dir, "conf", "agent-posture.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(conf, []byte("# Written by internal/benchrun: the posture rows.\nposture_tmp_dirs="+dir+"\nreport_dir="+filepath.Join(cfg.Dir, "state-posture", "reports")+"\n/etc p\n"), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o755); err != nil {
		return err
	}
	out := filepath.Join(cfg.Dir, "logs", "posture.json")
	findings := func(code int) bool { return code == 1 }
	steps := []*step{
		{row: &row{Name: rowPosture, Entries: -1}, keep: findings, expect: findings,
			cmd: command{Argv: []string{cfg.Agent, "--config", conf, "--state-dir", filepath.Join(cfg.Dir, "state-posture"),
				"--workers", fmt.Sprint(cfg.Workers), "posture", "--json"}, Stdout: out, Stderr: out + ".err", Sample: true}},
		{row: &row{Name: rowPostureFloor, Entries: -1}, keep: func(int) bool { return false },
			cmd: command{Argv: []string{"find", dir, "-type", "f", "-perm", "/111"}}},
	}
	for _, st := range steps {
		res.PostRows = append(res.PostRows, st.row)
	}
	if err := roundRobin(ctx, cfg, steps, logf); err != nil {
		return err
	}
	abs := check{Name: "agent posture on 100,000 files", Max: maxPostureSeconds, Unit: "s"}
	abs.Value, abs.Missing = res.med(rowPosture)
	res.PostChecks = []check{abs, res.ratio("agent posture / find floor", rowPosture, rowPostureFloor, maxPostureVsFinder)}
	res.PostNote = fmt.Sprintf("posture rows: %d files of a few bytes in %d directories, %d of them planted #! scripts with an execute bit; agent posture also reads the mount table and every process, as it always does",
		postureFiles, postureFiles/posturePerDir, planted)
	return nil
}
