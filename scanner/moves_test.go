package scanner

import (
	"testing"

	"opsagent/rules"
)

// TestIssue12Changes: moves under I and compressed, one case per rule of
// aide 0.18.3's search (see Changes).
func TestIssue12Changes(t *testing.T) {
	I, C := rules.AttrIgnoreName.Set(), rules.AttrCompressed.Set()
	file := func(p string, attrs rules.AttrSet, inode uint64, d byte) *Entry {
		e := base()
		// S (a shrink) is not among the changes a compressed copy may have.
		e.Path, e.Attrs, e.Inode = p, (e.Attrs|attrs)&^rules.AttrSizeGrowing.Set(), inode
		e.Digests = Digests{MD5: [16]byte{d}, SHA1: [20]byte{d}, SHA256: [32]byte{d}, SHA512: [64]byte{d}, BLAKE3: [32]byte{d}}
		return e
	}
	gz := func(e *Entry, d byte) *Entry {
		e.Uncompressed = &Digests{MD5: [16]byte{d}, SHA1: [20]byte{d}, SHA256: [32]byte{d}, SHA512: [64]byte{d}, BLAKE3: [32]byte{d}}
		e.Digests = Digests{MD5: [16]byte{99}}
		e.Size, e.Blocks, e.Inode = 10, 1, 1000
		return e
	}
	with := func(e *Entry, f func(*Entry)) *Entry { f(e); return e }
	for _, tc := range []struct {
		name  string
		pairs []Pair
		want  []string // "kind path"
	}{
		{name: "I rename", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: with(file("/d/b", I, 5, 1), func(e *Entry) { e.Ctime += 1e9 })},
		}},
		{name: "no I: added and removed", pairs: []Pair{
			{Old: file("/d/a", 0, 5, 1)},
			{New: file("/d/b", 0, 5, 1)},
		}, want: []string{"removed /d/a", "added /d/b"}},
		{name: "I on the target only does not count", pairs: []Pair{
			{Old: file("/d/a", 0, 5, 1)},
			{New: file("/d/b", I, 5, 1)},
		}, want: []string{"removed /d/a", "added /d/b"}},
		{name: "I other directory", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: file("/e/a", I, 5, 1)},
		}, want: []string{"removed /d/a", "added /e/a"}},
		{name: "I other inode", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: file("/d/b", I, 6, 1)},
		}, want: []string{"removed /d/a", "added /d/b"}},
		{name: "I moved and changed", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: file("/d/b", I, 5, 2)},
		}, want: []string{"removed /d/a", "added /d/b"}},
		{name: "I other attributes", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: with(file("/d/b", I, 5, 1), func(e *Entry) { e.Attrs &^= rules.AttrMD5.Set() })},
		}, want: []string{"removed /d/a", "added /d/b"}},
		{name: "I target differs only in ANF and growing", pairs: []Pair{
			{Old: file("/d/a", I|rules.AttrANF.Set()|rules.AttrGrowing.Set(), 5, 1)},
			{New: file("/d/a.1", 0, 5, 1)},
		}},
		{name: "logrotate: neither end changed", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1), New: file("/d/a", I, 6, 3)},
			{New: file("/d/a.1", I, 5, 1)},
		}},
		{name: "I one source for two targets", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{New: file("/d/b", I, 5, 1)},
			{New: file("/d/c", I, 5, 1)},
		}, want: []string{"added /d/c"}},
		{name: "compressed", pairs: []Pair{
			{Old: file("/d/a", I|C, 5, 1)},
			{New: gz(file("/d/a.gz", I|C, 0, 0), 1)},
		}},
		{name: "compressed other content", pairs: []Pair{
			{Old: file("/d/a", C, 5, 1)},
			{New: gz(file("/d/a.gz", C, 0, 0), 2)},
		}, want: []string{"removed /d/a", "added /d/a.gz"}},
		{name: "compressed needs compressed on the new rule", pairs: []Pair{
			{Old: file("/d/a", C, 5, 1)},
			{New: gz(file("/d/a.gz", 0, 0, 0), 1)},
		}, want: []string{"removed /d/a", "added /d/a.gz"}},
		{name: "compressed with S: a shrink is a change", pairs: []Pair{
			{Old: with(file("/d/a", C, 5, 1), func(e *Entry) { e.Attrs |= rules.AttrSizeGrowing.Set() })},
			{New: with(gz(file("/d/a.gz", C, 0, 0), 1), func(e *Entry) { e.Attrs |= rules.AttrSizeGrowing.Set() })},
		}, want: []string{"removed /d/a", "added /d/a.gz"}},
		{name: "compressed other mtime", pairs: []Pair{
			{Old: file("/d/a", C, 5, 1)},
			{New: with(gz(file("/d/a.gz", C, 0, 0), 1), func(e *Entry) { e.Mtime += 1e9 })},
		}, want: []string{"removed /d/a", "added /d/a.gz"}},
		{name: "compressed not gzip falls back to I", pairs: []Pair{
			{Old: file("/d/a", I|C, 5, 1)},
			{New: file("/d/a.1", I|C, 5, 1)},
		}},
		{name: "unrelated change stays", pairs: []Pair{
			{Old: file("/d/a", I, 5, 1)},
			{Old: file("/d/x", I, 7, 1), New: file("/d/x", I, 7, 2)},
			{New: file("/d/b", I, 5, 1)},
		}, want: []string{"changed /d/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range Changes(tc.pairs, 0) {
				got = append(got, c.Kind.String()+" "+c.Path)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}
