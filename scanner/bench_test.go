package scanner

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"opsagent/rules"
)

// BenchmarkHash measures one read feeding the digests of common rules; run
// with -benchmem: the hot path must not allocate.
func BenchmarkHash(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "f")
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name  string
		attrs rules.AttrSet
	}{
		{"md5", attrsOf(rules.AttrMD5)},
		{"sha256", attrsOf(rules.AttrSHA256)},
		{"blake3", attrsOf(rules.AttrBLAKE3)},
		{"md5+sha256", attrsOf(rules.AttrMD5, rules.AttrSHA256)},
		{"all", rules.HashAttrs},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := HashFile(p, bc.attrs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScan scans a generated tree of 2000 small files with p+u+g+s+md5
// (aide's NORMAL-like rule); bytes/s counts the file contents.
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	makeTree(b, root, 20, 100)
	var total int64
	for f := range 100 {
		total += int64(f % 5000)
	}
	total *= 20
	attrs := attrsOf(rules.AttrPerm, rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrMD5)
	for _, workers := range []int{1, 4} {
		b.Run("workers="+itoa(workers), func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				st, err := Scan(context.Background(), nil, Options{Root: root, Workers: workers, match: all(attrs)},
					func(*Entry) error { return nil })
				if err != nil || st.Entries != 2021 {
					b.Fatalf("Scan = %+v, %v", st, err)
				}
			}
		})
	}
}
