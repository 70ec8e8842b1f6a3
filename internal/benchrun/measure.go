package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sampleEvery is how often /proc/PID/status is read while a command runs.
const sampleEvery = 20 * time.Millisecond

// sample is one measured run of a command.
type sample struct {
	Wall time.Duration
	// MaxRSS is ru_maxrss from wait4 in bytes: the peak resident set of the
	// process, or of its largest descendant for a shell pipeline (the kernel
	// reports the maximum over the waited-for tree, not a sum).
	MaxRSS int64
	// RssAnon is the peak anonymous resident memory in bytes (RssAnon in
	// /proc/PID/status, so bbolt's file-backed mmap is excluded), sampled
	// every sampleEvery; -1 when the command was not sampled.
	RssAnon int64
	Exit    int // exit status; -1 when killed by a signal
}

// command is one program to time.
type command struct {
	Argv []string
	// Stdout and Stderr name files that receive the output (truncated per
	// run); "" discards it.
	Stdout, Stderr string
	// Sample turns on /proc sampling of RssAnon; only meaningful when Argv
	// is the measured program itself, not a shell.
	Sample bool
}

// measure runs c once at the caller's priority and returns its wall time and
// memory peaks. A non-zero exit status is not an error (the caller decides);
// an error means the command could not be run or ctx was cancelled.
func measure(ctx context.Context, c command) (sample, error) {
	s := sample{RssAnon: -1}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	// Own process group, so cancelling kills a whole pipeline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	open := func(name string) (*os.File, error) {
		if name == "" {
			name = os.DevNull
		}
		f, err := os.Create(name)
		if err == nil {
			closers = append(closers, f)
		}
		return f, err
	}
	var err error
	if cmd.Stdout, err = open(c.Stdout); err != nil {
		return s, err
	}
	if cmd.Stderr, err = open(c.Stderr); err != nil {
		return s, err
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	pid := cmd.Process.Pid
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	if c.Sample {
		go func() { peak <- sampleAnon(pid, stop) }()
	}
	// Wait for the exit without reaping (WNOWAIT): until cmd.Wait reaps it
	// the pid stays a zombie, so the sampler can never read a recycled pid.
	var info unix.Siginfo
	for {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	s.Wall = time.Since(start)
	close(stop)
	if c.Sample {
		s.RssAnon = <-peak
	}
	werr := cmd.Wait()
	if err != nil {
		return s, fmt.Errorf("waitid %s: %w", c.Argv[0], err)
	}
	if ctx.Err() != nil {
		return s, ctx.Err()
	}
	st := cmd.ProcessState
	if st == nil {
		return s, werr
	}
	s.Exit = st.ExitCode()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		return s, werr
	}
	return s, nil
}

// sampleAnon reads RssAnon of pid every sampleEvery until stop is closed
// and returns the peak in bytes.
func sampleAnon(pid int, stop <-chan struct{}) int64 {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	var peak int64
	for {
		if b, err := os.ReadFile(path); err == nil {
			if v := statusField(b, "RssAnon:"); v > peak {
				peak = v
			}
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// statusField returns a "kB" field of /proc/PID/status in bytes, 0 when
// absent. Sample line: "RssAnon:	    1234 kB".
func statusField(status []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		f := bytes.Fields(line[len(name):])
		if len(f) == 0 {
			return 0
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0
		}
		return v * 1024
	}
	return 0
}
