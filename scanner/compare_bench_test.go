package scanner

import (
	"testing"

	"opsagent/rules"
)

// benchEntry returns a regular file entry as a scan records it for attrs.
func benchEntry(attrs rules.AttrSet) *Entry {
	e := &Entry{
		Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Type: rules.TypeFile, Attrs: attrs,
		Mode: 0o100644, UID: 0, GID: 0, Size: 1922136, Blocks: 3760, Nlink: 1,
		Inode: 131090, Dev: 0xfd01,
		Atime: 1700000000_123456789, Mtime: 1690000000_987654321, Ctime: 1690000001_000000001,
		Xattrs:  []Xattr{{Name: "user.origin", Value: []byte("debian")}},
		SELinux: "system_u:object_r:lib_t:s0", E2fsattrs: 0x80000,
	}
	for i := range e.Digests.MD5 {
		e.Digests.MD5[i] = byte(i)
	}
	for i := range e.Digests.SHA256 {
		e.Digests.SHA256[i] = byte(3 * i)
	}
	for i := range e.Digests.BLAKE3 {
		e.Digests.BLAKE3[i] = byte(5 * i)
	}
	return e
}

// BenchmarkCompare measures Compare on the cases a check meets: almost every
// entry unchanged (NORMAL-like and a rule with every attribute), and the
// rarer changed, added and removed entries. Compare must not allocate.
func BenchmarkCompare(b *testing.B) {
	set := func(attrs ...rules.Attr) rules.AttrSet {
		var s rules.AttrSet
		for _, a := range attrs {
			s |= a.Set()
		}
		return s
	}
	normal := set(rules.AttrPerm, rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrMD5)
	full := set(rules.AttrFtype, rules.AttrPerm, rules.AttrInode, rules.AttrLinkName, rules.AttrNlink,
		rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrBlocks, rules.AttrMtime, rules.AttrCtime,
		rules.AttrACL, rules.AttrXattrs, rules.AttrSELinux, rules.AttrE2fsattrs, rules.AttrCaps,
		rules.AttrMD5, rules.AttrSHA256, rules.AttrBLAKE3)

	changed := benchEntry(normal)
	changed.Digests.MD5[7] ^= 1
	changed.Size++
	for _, bc := range []struct {
		name      string
		old, cur  *Entry
		wantFound bool
	}{
		{"unchanged/normal", benchEntry(normal), benchEntry(normal), false},
		{"unchanged/full", benchEntry(full), benchEntry(full), false},
		{"changed/normal", benchEntry(normal), changed, true},
		{"added", nil, benchEntry(normal), true},
		{"removed", benchEntry(normal), nil, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, found := Compare(bc.old, bc.cur, 0); found != bc.wantFound {
				b.Fatalf("Compare found = %v, want %v", found, bc.wantFound)
			}
			b.ReportAllocs()
			for b.Loop() {
				Compare(bc.old, bc.cur, 0)
			}
		})
	}
}
