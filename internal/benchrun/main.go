// Command benchrun is `make bench`: it measures the agent against aide
// 0.18.3 and against the floors set by standard tools, on the same tree in
// the same run, and prints the acceptance ratios of issue 3.
//
// Rows, each one warm-up then BENCH_RUNS timed runs, round-robin so that
// load from other users of the machine spreads over all rows:
//
//	aide init, aide check            NORMAL = p+u+g+s+md5, num_workers = workers
//	agent init (md5), agent check    the same rules, --workers = workers, --no-nice
//	agent init (blake3)              NORMAL = p+u+g+s+blake3
//	walk floor                       find TREE -printf '%p %s %m %U %G\n' (stats every entry)
//	md5 floor                        find -type f -print0 | xargs -0 -P workers -n 256 md5sum
//	b3sum floor                      the same with b3sum --num-threads 1
//
// For each row it prints the median and min-max wall time, the peak RSS
// from wait4 and, for aide and the agent, the peak RssAnon sampled from
// /proc/PID/status every 20 ms. Then a synthetic tree of small files is
// scanned once by agent init and check, for peak memory.
//
// Then the package rows of issue 15 (BENCH_PKG=0 skips them; so does a
// host without /var/lib/dpkg/status): a host-like root BENCH_DIR/root whose
// usr is the tree (the copy of /usr is made there; BENCH_TREE is copied
// there) and whose var/lib/dpkg is a copy of the host's, with an empty
// var/log/dpkg.log and the host's merged-/usr links. After a baseline,
// every run starts from a fresh copy of it and a fresh "reinstall" of the
// first 15 installed packages (by name) with at least 20 regular files
// under /usr: each of their files, their info files and status written
// anew and renamed over the old ones as dpkg does, and one dpkg.log run
// around it. Rows: agent check with package_check=no and =yes, agent
// update and agent update --packages; then one untimed JSON check counts
// the changes and their classes. Everything runs
// at the priority benchrun has (no nice, no ionice). The results are also
// written as Markdown to BENCH_DIR/bench.md.
//
// Environment:
//
//	BENCH_TREE=DIR     scan DIR instead of a fresh `cp -a /usr` into the work dir
//	BENCH_DIR=DIR      work dir (default: a new directory under /var/tmp); at the
//	                   end everything benchrun created in it is removed except
//	                   bench.md, unless BENCH_KEEP=1
//	BENCH_KEEP=1       keep the tree copy, synthetic tree, state dirs, logs, configs
//	BENCH_RUNS=N       timed runs per row after the warm-up (default 3)
//	BENCH_MFILES=N     files in the synthetic tree (default 1000000; 0 skips it)
//	BENCH_WORKERS=N    workers for every tool (default: the number of CPUs)
//	BENCH_AIDE_MFILES=1  also run aide init and check on the synthetic tree
//	BENCH_AGENT=FILE   the agent binary (default bin/agent; `make bench` builds it)
//	BENCH_PKG=0        skip the package rows
//	BENCH_ONLY=pkg     run the package rows only (no aide, floors or synthetic tree)
//	BENCH_CPUPROFILE=DIR  the package rows' agent runs write CPU profiles there
//	BENCH_ONLY=posture run the posture rows only (no /usr copy either)
//	BENCH_ONLY=watch   run the watch rows only (agent watch, check --incremental against check)
//
// Missing aide or b3sum skips their rows with a note; find, xargs and
// md5sum are required. The exit status is 0 when the measurements ran, even
// if a criterion fails (the table says PASS/FAIL), and 1 on an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

// envInt reads a non-negative integer knob.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

func run(ctx context.Context) (err error) {
	cfg := config{Log: os.Stderr, AideMFiles: os.Getenv("BENCH_AIDE_MFILES") == "1",
		Pkg: os.Getenv("BENCH_PKG") != "0", Only: os.Getenv("BENCH_ONLY"), PkgAdmin: "/var/lib/dpkg", PkgHost: "/",
		PkgCount: defaultPkgCount, PkgMinFiles: defaultPkgMinFiles}
	if cfg.Runs, err = envInt("BENCH_RUNS", 3); err != nil {
		return err
	}
	if cfg.Runs == 0 {
		return errors.New("BENCH_RUNS=0: want at least one timed run")
	}
	if cfg.MFiles, err = envInt("BENCH_MFILES", 1_000_000); err != nil {
		return err
	}
	if cfg.Workers, err = envInt("BENCH_WORKERS", runtime.NumCPU()); err != nil {
		return err
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	keep := os.Getenv("BENCH_KEEP") == "1"
	agent := os.Getenv("BENCH_AGENT")
	if agent == "" {
		agent = "bin/agent"
	}
	if cfg.Agent, err = filepath.Abs(agent); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Agent); err != nil {
		return fmt.Errorf("agent binary: %w (run make build, or set BENCH_AGENT)", err)
	}

	// created names what benchrun makes in the work dir and removes at the
	// end (everything but bench.md); BENCH_TREE is never among them.
	tree := os.Getenv("BENCH_TREE")
	created := []string{"mfiles", "conf", "logs", "aide", "probe", "state-md5", "state-blake3", "state-mfiles",
		"root", "state-pkg-baseline", "state-pkg-check", "state-pkg-update", "posture-tmp", "state-posture", "state-watch"}
	userDir := os.Getenv("BENCH_DIR")
	if dir := userDir; dir != "" {
		if cfg.Dir, err = filepath.Abs(dir); err == nil {
			err = os.MkdirAll(cfg.Dir, 0o755)
		}
	} else {
		cfg.Dir, err = os.MkdirTemp("/var/tmp", "opsagent-bench-")
	}
	if err != nil {
		return err
	}
	for _, name := range created {
		if _, err := os.Lstat(filepath.Join(cfg.Dir, name)); err == nil {
			return fmt.Errorf("%s already exists: remove it, or choose another BENCH_DIR (BENCH_TREE reuses a tree)", filepath.Join(cfg.Dir, name))
		}
	}
	fmt.Fprintf(os.Stderr, "work dir %s\n", cfg.Dir)
	defer func() {
		if keep {
			fmt.Fprintf(os.Stderr, "BENCH_KEEP=1: kept %s\n", cfg.Dir)
			return
		}
		fmt.Fprintf(os.Stderr, "removing the trees and state under %s\n", cfg.Dir)
		for _, name := range created {
			if rerr := removeTree(filepath.Join(cfg.Dir, name)); rerr != nil && err == nil {
				err = rerr
			}
		}
		if userDir == "" {
			os.Remove(cfg.Dir) // only when empty: bench.md stays
		}
	}()

	switch {
	case cfg.Only != "" && cfg.Only != "pkg" && cfg.Only != "posture" && cfg.Only != "watch":
		return fmt.Errorf("BENCH_ONLY=%s: want pkg, posture or watch", cfg.Only)
	case cfg.Only == "posture":
		// No tree: the posture rows make their own temp dir.
	case tree != "":
		if cfg.Tree, err = filepath.Abs(tree); err != nil {
			return err
		}
		if fi, err := os.Stat(cfg.Tree); err != nil || !fi.IsDir() {
			return fmt.Errorf("BENCH_TREE=%s: not a directory", tree)
		}
	default:
		// At root/usr, so that the package rows' host-like root holds
		// the same tree without a second copy.
		cfg.Tree = filepath.Join(cfg.Dir, "root", "usr")
		fmt.Fprintf(os.Stderr, "copying /usr to %s\n", cfg.Tree)
		start := time.Now()
		if err := os.Mkdir(filepath.Dir(cfg.Tree), 0o755); err != nil {
			return err
		}
		if err := copyTree(ctx, "/usr", cfg.Tree); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "copied in %.1f s\n", time.Since(start).Seconds())
	}

	res, err := bench(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println()
	if err := res.writeText(os.Stdout); err != nil {
		return err
	}
	md := filepath.Join(cfg.Dir, "bench.md")
	f, err := os.Create(md)
	if err != nil {
		return err
	}
	if err := res.writeMarkdown(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("\nMarkdown table: %s\n", md)
	return nil
}
