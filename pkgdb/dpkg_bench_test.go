package pkgdb

import (
	"bytes"
	"os"
	"runtime"
	"testing"
)

// BenchmarkOpenDpkg opens this machine's real dpkg database and reports
// the heap the open DB keeps (heap-MB) and its size (paths, pkgs).
func BenchmarkOpenDpkg(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skip("no dpkg database on this host:", err)
	}
	var d *Dpkg
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		var err error
		if d, err = OpenDpkg(DpkgOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	b.ReportMetric(float64(len(d.paths)), "paths")
	b.ReportMetric(float64(len(d.pkgs)), "pkgs")
	runtime.KeepAlive(d)
}

// BenchmarkParseDpkgStatus parses this machine's dpkg status file (read
// once), which every check with package_check reads whole.
func BenchmarkParseDpkgStatus(b *testing.B) {
	data, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		b.Skip("no dpkg status file on this host:", err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDpkgStatus(bytes.NewReader(data), "status"); err != nil {
			b.Fatal(err)
		}
	}
}
