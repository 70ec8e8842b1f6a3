package db

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

// allHashes asks for every digest.
const allHashes = rules.HashAttrs

// normal is the NORMAL group of the default config: p+u+g+s+md5, plus ftype.
var normal = rules.AttrFtype.Set() | rules.AttrPerm.Set() | rules.AttrUID.Set() |
	rules.AttrGID.Set() | rules.AttrSize.Set() | rules.AttrMD5.Set()

// fill returns n bytes derived from seed, so digests differ per entry.
func fill(n int, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + 1)
	}
	return b
}

// testEntries returns n realistic entries (a root, directories of files,
// symlinks, some with xattrs and errors) in key order.
func testEntries(n int) []*scanner.Entry {
	out := []*scanner.Entry{{Path: "/", Type: rules.TypeDir, Attrs: normal, Mode: 0o40755, Nlink: 20, Inode: 2, Dev: 2049}}
	for i := 1; len(out) < n; i++ {
		dir := fmt.Sprintf("/usr/lib/pkg%04d", i/40)
		if i%40 == 0 {
			out = append(out, &scanner.Entry{Path: dir, Type: rules.TypeDir, Attrs: normal, Mode: 0o40755,
				Nlink: 2, Inode: uint64(1000 + i), Dev: 2049, Mtime: 1_700_000_000_123_456_789 + int64(i)})
			continue
		}
		e := &scanner.Entry{
			Path: fmt.Sprintf("%s/file-%05d.so", dir, i), Type: rules.TypeFile, Attrs: normal | rules.AttrSHA256.Set(),
			Mode: 0o100644, Size: int64(i * 1000), Blocks: int64(i*1000/512 + 1), Nlink: 1,
			Inode: uint64(100000 + i), Dev: 2049, Atime: 1_700_000_000_000_000_000 + int64(i),
			Mtime: 1_690_000_000_000_000_000 + int64(i), Ctime: 1_695_000_000_000_000_000 + int64(i),
		}
		copy(e.Digests.MD5[:], fill(16, i))
		copy(e.Digests.SHA256[:], fill(32, i))
		switch i % 17 {
		case 3:
			e.Type, e.Mode, e.LinkTarget = rules.TypeSymlink, 0o120777, fmt.Sprintf("../lib%d.so", i)
		case 5:
			e.Xattrs = []scanner.Xattr{{Name: "user.tag", Value: fill(12, i)}}
			e.SELinux = "system_u:object_r:lib_t:s0"
		case 7:
			e.Err = "open: permission denied"
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *scanner.Entry) int { return bytes.Compare(dbKey(a.Path), dbKey(b.Path)) })
	return out
}

// testMeta is the meta of test generations.
func testMeta() Meta {
	return Meta{AgentVersion: "0.1.0-test", Host: "testhost", Kind: "init",
		Created: time.Date(2026, 5, 4, 11, 36, 15, 123, time.UTC), RulesDigest: [32]byte{1, 2, 3}, Root: ""}
}

// writeBaseline writes entries as dir/name and returns its path.
func writeBaseline(t testing.TB, dir, name string, entries []*scanner.Entry) string {
	t.Helper()
	w, err := Create(dir, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, e := range entries {
		if err := w.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(dir, name)
	if _, err := w.Commit(dst, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	return dst
}

// readAll returns every entry of the baseline at path.
func readAll(path string) (Meta, []*scanner.Entry, error) {
	b, err := Open(path)
	if err != nil {
		return Meta{}, nil, err
	}
	defer b.Close()
	var got []*scanner.Entry
	err = b.Each(func(e *scanner.Entry) error {
		got = append(got, e)
		return nil
	})
	return b.Meta(), got, err
}

// normalized returns a copy of e as decoding returns it: empty byte
// strings are nil (xattr values are non-nil), digests outside Attrs zero.
func normalized(e *scanner.Entry) *scanner.Entry {
	n := *e
	n.Digests = scanner.Digests{}
	for _, f := range digestFields {
		if e.Attrs.Has(f.attr) {
			copy(f.get(&n.Digests), f.get(&e.Digests))
		}
	}
	nilIfEmpty := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	n.ACLAccess, n.ACLDefault, n.Caps = nilIfEmpty(e.ACLAccess), nilIfEmpty(e.ACLDefault), nilIfEmpty(e.Caps)
	n.Xattrs = nil
	for _, x := range e.Xattrs {
		v := x.Value
		if v == nil {
			v = []byte{}
		}
		n.Xattrs = append(n.Xattrs, scanner.Xattr{Name: x.Name, Value: v})
	}
	return &n
}

// sameEntries reports the first difference between two entry lists.
func sameEntries(got, want []*scanner.Entry) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if w := normalized(want[i]); !reflect.DeepEqual(got[i], w) {
			return fmt.Errorf("entry %d = %+v, want %+v", i, got[i], w)
		}
	}
	return nil
}

// mustRead returns the content of path.
func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
