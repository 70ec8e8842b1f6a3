package integrity

import (
	"crypto/md5"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"opsagent/pkgdb"
	"opsagent/rules"
	"opsagent/scanner"
)

// memDB is a pkgdb.DB held in memory, for the classifier's table test.
type memDB struct {
	files     []pkgdb.File
	runs      []pkgdb.Run
	records   map[string]string
	overrides map[string]pkgdb.StatOverride
}

func (m *memDB) Backend() string { return "mem" }
func (m *memDB) Owners(p string) []pkgdb.File {
	var out []pkgdb.File
	for _, f := range m.files {
		if f.Path == p {
			out = append(out, f)
		}
	}
	return out
}
func (m *memDB) Package(name string) (pkgdb.Package, bool) {
	for _, f := range m.files {
		if f.Package == name {
			return pkgdb.Package{Name: name, Version: f.Version}, true
		}
	}
	return pkgdb.Package{}, false
}
func (m *memDB) Packages() []string {
	var out []string
	for _, f := range m.files {
		if !slices.Contains(out, f.Package) {
			out = append(out, f.Package)
		}
	}
	return out
}
func (m *memDB) Files(pkg string) []pkgdb.File {
	var out []pkgdb.File
	for _, f := range m.files {
		if f.Package == pkg {
			out = append(out, f)
		}
	}
	return out
}
func (m *memDB) Runs(since time.Time) []pkgdb.Run {
	var out []pkgdb.Run
	for _, r := range m.runs {
		if !r.End.Before(since) {
			out = append(out, r)
		}
	}
	return out
}
func (m *memDB) StatOverride(p string) (pkgdb.StatOverride, bool) {
	so, ok := m.overrides[p]
	return so, ok
}
func (m *memDB) Records(p string) (string, bool) {
	pkg, ok := m.records[p]
	return pkg, ok
}

func md5Of(s string) []byte {
	d := md5.Sum([]byte(s))
	return d[:]
}

func file(p, content string) *scanner.Entry {
	e := &scanner.Entry{Path: p, Type: rules.TypeFile, Attrs: rules.AttrMD5.Set() | rules.AttrPerm.Set(), Mode: 0o100644}
	e.Digests.MD5 = md5.Sum([]byte(content))
	return e
}

func TestClassify(t *testing.T) {
	since := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	run := pkgdb.Run{
		Start: since.Add(time.Hour), End: since.Add(time.Hour + time.Minute),
		Ops: []pkgdb.Operation{
			{Time: since.Add(time.Hour + 10*time.Second), Action: pkgdb.ActionUpgrade, Package: "hello:amd64", OldVersion: "1.0", NewVersion: "1.1"},
			{Time: since.Add(time.Hour + 20*time.Second), Action: pkgdb.ActionConfigure, Package: "hello:amd64", NewVersion: "1.1"},
		},
	}
	old := pkgdb.Run{Start: since.Add(-time.Hour), End: since.Add(-59 * time.Minute),
		Ops: []pkgdb.Operation{{Time: since.Add(-time.Hour), Action: pkgdb.ActionInstall, Package: "quiet", NewVersion: "2"}}}
	db := &memDB{
		files: []pkgdb.File{
			{Path: "/usr/bin/hello", Package: "hello:amd64", Version: "1.1", Digest: md5Of("hello 1.1"), DigestAlgo: "md5"},
			{Path: "/etc/hello.conf", Package: "hello:amd64", Version: "1.1", Digest: md5Of("conf"), DigestAlgo: "md5", Conffile: true},
			{Path: "/usr/share/hello", Package: "hello:amd64", Version: "1.1"},
			{Path: "/usr/bin/quiet", Package: "quiet", Version: "2", Digest: md5Of("quiet"), DigestAlgo: "md5"},
			{Path: "/usr/lib/quiet", Package: "quiet", Version: "2"},
		},
		runs:      []pkgdb.Run{old, run},
		records:   map[string]string{"/var/lib/dpkg/info/hello:amd64.md5sums": "hello:amd64", "/var/lib/dpkg/info/quiet.md5sums": "quiet", "/var/lib/dpkg/status": ""},
		overrides: map[string]pkgdb.StatOverride{"/usr/bin/quiet": {Path: "/usr/bin/quiet", Owner: "root", Group: "staff", Mode: fs.FileMode(0o2755)}},
	}
	during := run.Start.Add(30 * time.Second).UnixNano()
	after := run.End.Add(time.Hour).UnixNano()
	at := func(e *scanner.Entry, ctime int64) *scanner.Entry { e.Ctime = ctime; return e }
	dir := func(p string) *scanner.Entry {
		return &scanner.Entry{Path: p, Type: rules.TypeDir, Mode: 0o40755, Ctime: after}
	}
	changed := func(e *scanner.Entry, attrs rules.AttrSet) scanner.Change {
		return scanner.Change{Path: e.Path, Kind: scanner.Changed, Old: e, New: e, Changed: attrs}
	}
	added := func(e *scanner.Entry) scanner.Change {
		return scanner.Change{Path: e.Path, Kind: scanner.Added, New: e}
	}
	removed := func(p string) scanner.Change {
		return scanner.Change{Path: p, Kind: scanner.Removed, Old: file(p, "")}
	}
	cases := []struct {
		name   string
		ch     scanner.Change
		class  Class
		pkg    string
		reason string
	}{
		{"upgraded binary matches its record", changed(file("/usr/bin/hello", "hello 1.1"), rules.AttrMD5.Set()), ClassPackage, "hello:amd64", "upgraded 1.0 → 1.1"},
		{"trojaned binary", changed(file("/usr/bin/hello", "evil"), rules.AttrMD5.Set()), ClassMismatch, "hello:amd64", "content differs"},
		{"trojan in a package nobody touched", changed(file("/usr/bin/quiet", "evil"), rules.AttrMD5.Set()), ClassMismatch, "quiet", "differs"},
		{"edited conffile", changed(file("/etc/hello.conf", "admin edit"), rules.AttrMD5.Set()), ClassUnexplained, "hello:amd64", "configuration file"},
		{"package directory of an upgraded package", changed(dir("/usr/share/hello"), rules.AttrMtime.Set()), ClassPackage, "hello:amd64", "upgraded"},
		{"package directory nobody touched", changed(dir("/usr/lib/quiet"), rules.AttrMtime.Set()), ClassUnexplained, "quiet", "no package operation"},
		{"statoverride mode", changed(file("/usr/bin/quiet", "quiet"), rules.AttrPerm.Set()|rules.AttrGID.Set()), ClassPackage, "quiet", "md5 matches"},
		{"statoverride on metadata of a file with other content", changed(file("/usr/bin/quiet", "quiet"), rules.AttrGID.Set()), ClassPackage, "quiet", ""},
		{"script output during the run", added(at(file("/var/lib/hello/state", "x"), during)), ClassScript, "hello", "package run"},
		{"planted file in a script area after the run", added(at(file("/var/lib/hello/evil", "x"), after)), ClassUnexplained, "", "outside every package run"},
		{"planted executable during the run", added(at(file("/usr/local/bin/evil", "x"), during)), ClassUnexplained, "", "not owned"},
		{"planted in /usr/bin during the run", added(at(file("/usr/bin/evil", "x"), during)), ClassUnexplained, "", "not owned"},
		{"md5sums of the upgraded package", changed(file("/var/lib/dpkg/info/hello:amd64.md5sums", "new"), rules.AttrMD5.Set()), ClassPackage, "hello:amd64", "records of"},
		{"md5sums rewritten with no dpkg run", changed(file("/var/lib/dpkg/info/quiet.md5sums", "forged"), rules.AttrMD5.Set()), ClassMismatch, "quiet", "without any package operation"},
		{"dpkg status after runs", changed(file("/var/lib/dpkg/status", "s"), rules.AttrMD5.Set()), ClassPackage, "", "records"},
		{"file removed by the upgrade", removed("/usr/share/hello/old.txt"), ClassPackage, "hello:amd64", "no longer shipped"},
		{"packaged file deleted", removed("/usr/bin/quiet"), ClassUnexplained, "quiet", "missing"},
		{"unowned file removed", removed("/srv/data"), ClassUnexplained, "", "removed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Classifier{DB: db, Since: since}
			got := c.Classify(tc.ch)
			if got.Class != tc.class || baseName(got.Package) != baseName(tc.pkg) || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %+v, want class %s package %q reason containing %q", got, tc.class, tc.pkg, tc.reason)
			}
		})
	}
}

// TestClassifyRecordsWithoutRun: with no package run since the baseline,
// a changed status file is a mismatch, a diversions or statoverride file
// (an admin's dpkg-divert --local) is unexplained.
func TestClassifyRecordsWithoutRun(t *testing.T) {
	db := &memDB{records: map[string]string{"/var/lib/dpkg/status": "", "/var/lib/dpkg/diversions": "",
		"/var/lib/dpkg/diversions-old": "", "/var/lib/dpkg/statoverride": ""}}
	c := &Classifier{DB: db, Since: time.Now()}
	for p, want := range map[string]Class{"/var/lib/dpkg/status": ClassMismatch, "/var/lib/dpkg/diversions": ClassUnexplained,
		"/var/lib/dpkg/diversions-old": ClassUnexplained, "/var/lib/dpkg/statoverride": ClassUnexplained} {
		if got := c.Classify(changedFile(p)); got.Class != want {
			t.Errorf("%s: %+v, want %s", p, got, want)
		}
	}
}

func changedFile(p string) scanner.Change {
	e := file(p, "new")
	return scanner.Change{Path: p, Kind: scanner.Changed, Old: e, New: e, Changed: rules.AttrMD5.Set()}
}

func TestClassifyNoDB(t *testing.T) {
	c := &Classifier{Why: "no dpkg or rpm database on this host"}
	got := c.Classify(scanner.Change{Path: "/usr/bin/x", Kind: scanner.Added, New: file("/usr/bin/x", "x")})
	if got.Class != ClassUnexplained || got.Reason != c.Why {
		t.Errorf("got %+v", got)
	}
}

// Without a recorded md5 the classifier hashes the file; a hashing error
// never explains anything.
func TestClassifyHashes(t *testing.T) {
	db := &memDB{files: []pkgdb.File{{Path: "/usr/bin/x", Package: "x", Version: "1", Digest: md5Of("x"), DigestAlgo: "md5"}}}
	e := file("/usr/bin/x", "x")
	e.Attrs = rules.AttrSHA256.Set()
	ch := scanner.Change{Path: e.Path, Kind: scanner.Changed, Old: e, New: e, Changed: rules.AttrSHA256.Set()}
	calls := 0
	c := &Classifier{DB: db, Hash: func(p, algo string) ([]byte, error) { calls++; return md5Of("x"), nil }}
	if got := c.Classify(ch); got.Class != ClassPackage || calls != 1 {
		t.Errorf("with Hash: %+v after %d calls", got, calls)
	}
	c = &Classifier{DB: db}
	if got := c.Classify(ch); got.Class != ClassUnexplained || !strings.Contains(got.Reason, "no md5") {
		t.Errorf("without Hash: %+v", got)
	}
}

// TestClassifyAllDirs: a directory whose only changes are its entries' is
// explained when an explained entry changed in it, and stays unexplained
// when only unexplained entries did or its mode changed.
func TestClassifyAllDirs(t *testing.T) {
	db := &memDB{files: []pkgdb.File{{Path: "/usr/bin/a", Package: "a", Version: "2", Digest: md5Of("a2"), DigestAlgo: "md5"}}}
	dir := func(p string, attrs rules.AttrSet) scanner.Change {
		e := &scanner.Entry{Path: p, Type: rules.TypeDir, Mode: 0o40755}
		return scanner.Change{Path: p, Kind: scanner.Changed, Old: e, New: e, Changed: attrs}
	}
	add := func(e *scanner.Entry) scanner.Change {
		return scanner.Change{Path: e.Path, Kind: scanner.Added, New: e}
	}
	mtime := rules.AttrMtime.Set() | rules.AttrSize.Set()
	changes := []scanner.Change{
		dir("/usr/bin", mtime),
		{Path: "/usr/bin/a", Kind: scanner.Changed, Old: file("/usr/bin/a", "a1"), New: file("/usr/bin/a", "a2"), Changed: rules.AttrMD5.Set()},
		add(file("/usr/bin/dropper", "x")),
		dir("/usr/sbin", mtime),
		add(file("/usr/sbin/dropper", "x")),
		dir("/usr/lib", mtime|rules.AttrPerm.Set()),
		add(file("/usr/lib/x", "x")),
	}
	got := (&Classifier{DB: db}).ClassifyAll(changes)
	want := []Class{ClassPackage, ClassPackage, ClassUnexplained, ClassUnexplained, ClassUnexplained, ClassUnexplained, ClassUnexplained}
	for i := range want {
		if got[i].Class != want[i] {
			t.Errorf("%s: %s (%s), want %s", changes[i].Path, got[i].Class, got[i].Reason, want[i])
		}
	}
}

// TestClassifyAllLarge: a batch large enough to be classified in lanes
// gets, change for change, what Classify gives alone.
func TestClassifyAllLarge(t *testing.T) {
	db := &memDB{}
	var changes []scanner.Change
	for i := range 3000 {
		p := "/usr/lib/big/f" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + time.Duration(i).String()
		db.files = append(db.files, pkgdb.File{Path: p, Package: "big", Version: "1", Digest: md5Of("v1"), DigestAlgo: "md5"})
		content := "v1"
		if i%3 == 0 {
			content = "tampered"
		}
		changes = append(changes, scanner.Change{Path: p, Kind: scanner.Changed, Old: file(p, "v0"), New: file(p, content), Changed: rules.AttrMD5.Set()})
	}
	got := (&Classifier{DB: db}).ClassifyAll(changes)
	one := &Classifier{DB: db}
	classes := map[Class]int{}
	for i, ch := range changes {
		if want := one.Classify(ch); got[i] != want {
			t.Fatalf("%s: ClassifyAll %+v, Classify %+v", ch.Path, got[i], want)
		}
		classes[got[i].Class]++
	}
	if classes[ClassMismatch] != 1000 || len(classes) != 2 {
		t.Errorf("classes %v, want 1000 mismatches and 2000 package files", classes)
	}
}
