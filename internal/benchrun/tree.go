package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// filesPerDir is the fan-out of the synthetic tree: directories of about a
// thousand entries, as in a big mail spool or package cache.
const filesPerDir = 1000

// copyTree copies src to dst with `cp -a` (owners, modes, times, links and
// xattrs kept), then syncs so writeback does not run during the timings.
func copyTree(ctx context.Context, src, dst string) error {
	cmd := exec.CommandContext(ctx, "cp", "-a", src, dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, out)
	}
	unix.Sync()
	return nil
}

// treeStats counts the entries under root (root included, as aide and the
// agent count it) and the bytes of its regular files.
func treeStats(root string) (entries, bytes int64, err error) {
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			bytes += fi.Size()
		}
		return nil
	})
	return entries, bytes, err
}

// makeSmallFiles creates n files of a few bytes each under root (which must
// not exist), filesPerDir to a directory, with one goroutine per CPU and
// openat so each create costs one path component lookup.
func makeSmallFiles(ctx context.Context, root string, n int) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	dirs := (n + filesPerDir - 1) / filesPerDir
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				count := min(filesPerDir, n-d*filesPerDir)
				if err := makeDir(filepath.Join(root, fmt.Sprintf("d%04d", d)), d*filesPerDir, count); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	// All workers exit once jobs is closed, so the wait below ends.
	var err error
feed:
	for d := range dirs {
		select {
		case jobs <- d:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err == nil {
		unix.Sync()
	}
	return err
}

// makeDir creates dir holding count files named f<first+i> with their own
// name and a newline as content.
func makeDir(dir string, first, count int) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	buf := make([]byte, 0, 16)
	for i := range count {
		buf = strconv.AppendInt(append(buf[:0], 'f'), int64(first+i), 10)
		name := string(buf)
		fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return &fs.PathError{Op: "create", Path: filepath.Join(dir, name), Err: err}
		}
		_, werr := unix.Write(fd, append(buf, '\n'))
		cerr := unix.Close(fd)
		if werr != nil || cerr != nil {
			return &fs.PathError{Op: "write", Path: filepath.Join(dir, name), Err: fmt.Errorf("%v %v", werr, cerr)}
		}
	}
	return nil
}

// removeTree removes dir like os.RemoveAll, its top-level entries in
// parallel: unlinking a million files one by one takes minutes.
func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return os.RemoveAll(dir)
	}
	names := make(chan string)
	errs := make(chan error, len(ents))
	var wg sync.WaitGroup
	for range max(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, e := range ents {
		names <- e.Name()
	}
	close(names)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
