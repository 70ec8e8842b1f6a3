package integrity

import (
	"os"
	"testing"
	"time"

	"opsagent/pkgdb"
	"opsagent/rules"
	"opsagent/scanner"
)

// BenchmarkClassifyHost classifies, against this host's real dpkg records,
// one change for every regular file of the first packages up to 500 files
// (as after an upgrade of a few dozen packages), hashing each file as a
// scan without md5 would (the Hash path). It reports the open time of the
// records separately (open-ms) and the classification per change.
func BenchmarkClassifyHost(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skip("no dpkg records on this host")
	}
	start := time.Now()
	db, err := pkgdb.OpenDpkg(pkgdb.DpkgOptions{})
	if err != nil {
		b.Fatal(err)
	}
	open := time.Since(start)
	var changes []scanner.Change
	for _, pkg := range db.Packages() {
		for _, f := range db.Files(pkg) {
			fi, err := os.Lstat(f.Path)
			if f.Digest == nil || err != nil || !fi.Mode().IsRegular() {
				continue
			}
			e := &scanner.Entry{Path: f.Path, Type: rules.TypeFile, Attrs: rules.AttrSHA256.Set(), Mode: 0o100644, Ctime: fi.ModTime().UnixNano()}
			changes = append(changes, scanner.Change{Path: f.Path, Kind: scanner.Changed, Old: e, New: e, Changed: rules.AttrSHA256.Set()})
			if len(changes) == 500 {
				break
			}
		}
		if len(changes) == 500 {
			break
		}
	}
	b.ResetTimer()
	for range b.N {
		c := &Classifier{DB: db, Since: time.Now().Add(-24 * time.Hour), Hash: HashFile}
		for _, ch := range changes {
			c.Classify(ch)
		}
	}
	b.ReportMetric(float64(open.Milliseconds()), "open-ms")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(changes)), "µs/change")
}
