package posture

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zeebo/blake3"
)

func TestScanExecutables(t *testing.T) {
	dir := t.TempDir()
	elfBytes, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true to copy:", err)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("sub/deep/bot", elfBytes, 0o644) // ELF without exec bit: still listed
	write("run.sh", []byte("#!/bin/sh -e\necho hi\n"), 0o600)
	write("tool", []byte("just text"), 0o755)
	write("data.txt", []byte("hello"), 0o644)
	write("empty", nil, 0o644)
	write("big", append(append([]byte{}, elfBytes...), make([]byte, 4096)...), 0o755)
	os.Symlink(filepath.Join(dir, "sub/deep/bot"), filepath.Join(dir, "link"))
	os.Symlink("/bin", filepath.Join(dir, "bindir"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o777)

	got, st, err := ScanExecutables(context.Background(), []string{dir, dir + "/sub"}, ExecOptions{HashLimit: int64(len(elfBytes))})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Executable{}
	for _, e := range got {
		byPath[e.Path] = e
	}
	if len(got) != 4 {
		t.Errorf("got %d executables, want 4: %+v", len(got), got)
	}
	bot := byPath[dir+"/sub/deep/bot"]
	sum := blake3.Sum256(elfBytes)
	if bot.Kind != "elf" || bot.ELFClass != "ELFCLASS64" && bot.ELFClass != "ELFCLASS32" || bot.ELFMachine == "" ||
		bot.BLAKE3 != fmt.Sprintf("%x", sum) || bot.Size != int64(len(elfBytes)) || bot.Mode != "-rw-r--r--" {
		t.Errorf("bot: %+v", bot)
	}
	if s := byPath[dir+"/run.sh"]; s.Kind != "script" || s.Script != "/bin/sh -e" {
		t.Errorf("run.sh: %+v", s)
	}
	if s := byPath[dir+"/tool"]; s.Kind != "exec-bit" || s.BLAKE3 == "" {
		t.Errorf("tool: %+v", s)
	}
	if b := byPath[dir+"/big"]; b.BLAKE3 != "" || b.Note == "" || b.Kind != "elf" {
		t.Errorf("big file over the hash limit: %+v", b)
	}
	// The second root is inside the first but is a distinct directory:
	// its files are found once per walk, never through a symlink.
	if st.Files < 6 {
		t.Errorf("stats %+v", st)
	}
}

func TestScanExecutablesUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "locked"), 0o000)
	defer os.Chmod(filepath.Join(dir, "locked"), 0o700)
	_, st, err := ScanExecutables(context.Background(), []string{dir}, ExecOptions{})
	if err != nil || st.Unreadable != 1 {
		t.Errorf("got %+v, %v; want 1 unreadable", st, err)
	}
}

func TestScanExecutablesCancel(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		os.MkdirAll(filepath.Join(dir, fmt.Sprint(i), "x"), 0o755)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := ScanExecutables(ctx, []string{dir}, ExecOptions{}); err != context.Canceled {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// BenchmarkScanExecutables walks a temp dir of 100,000 small files (100
// directories of 1,000; one in 1,000 is an executable script).
func BenchmarkScanExecutables(b *testing.B) {
	dir := b.TempDir()
	for d := 0; d < 100; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 1000; f++ {
			data, mode := []byte("session data\n"), os.FileMode(0o600)
			if f == 0 {
				data, mode = []byte("#!/bin/sh\nexit 0\n"), 0o755
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("sess_%04d", f)), data, mode); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, st, err := ScanExecutables(context.Background(), []string{dir}, ExecOptions{})
		if err != nil || len(got) != 100 || st.Files != 100000 {
			b.Fatalf("got %d executables, %+v, %v", len(got), st, err)
		}
	}
	b.ReportMetric(float64(100000*b.N)/b.Elapsed().Seconds(), "files/s")
}
