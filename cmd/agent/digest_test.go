package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"
)

// TestDigestOpenRenamed: digestOpen gives the BLAKE3 of a database file
// that is renamed while it is read, as Commit renames a new baseline
// after its Sealed hook (the rename changes the file's ctime, which a
// hash checked against the file's stat takes for a change).
func TestDigestOpenRenamed(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "baseline.db.tmp")
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r := &integrityRun{log: slog.New(slog.NewTextHandler(&logs, nil))}
	digest := r.digestOpen(tmp, nil)
	if err := os.Rename(tmp, filepath.Join(dir, "baseline.db")); err != nil {
		t.Fatal(err)
	}
	got := digest()
	var want [32]byte
	h := blake3.New()
	io.Copy(h, bytes.NewReader(data))
	h.Sum(want[:0])
	if got != want {
		t.Errorf("digestOpen = %x, want %x; log: %s", got, want, logs.String())
	}
	if logs.Len() > 0 {
		t.Errorf("warnings: %s", logs.String())
	}
}
