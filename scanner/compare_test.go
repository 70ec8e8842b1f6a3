package scanner

import (
	"testing"

	"opsagent/rules"
)

// base is a regular file as a rule with every comparable attribute records it.
func base() *Entry {
	return &Entry{
		Path: "/etc/f", Type: rules.TypeFile,
		Attrs: attrsOf(rules.AttrFtype, rules.AttrPerm, rules.AttrInode, rules.AttrLinkName, rules.AttrNlink,
			rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrBlocks, rules.AttrMtime, rules.AttrAtime,
			rules.AttrCtime, rules.AttrSizeGrowing, rules.AttrACL, rules.AttrXattrs, rules.AttrSELinux,
			rules.AttrE2fsattrs, rules.AttrCaps) | rules.HashAttrs,
		Mode: 0o100644, UID: 1, GID: 2, Size: 100, Blocks: 8, Nlink: 1, Inode: 42, Dev: 7,
		Atime: 1_000_000_000_000, Mtime: 2_000_000_000_000, Ctime: 3_000_000_000_000,
		Digests:    Digests{MD5: [16]byte{1}, SHA1: [20]byte{2}, SHA256: [32]byte{3}, SHA512: [64]byte{4}, BLAKE3: [32]byte{5}},
		Xattrs:     []Xattr{{"user.a", []byte("1")}},
		ACLAccess:  []byte{2, 0, 0, 0},
		SELinux:    "system_u:object_r:etc_t:s0",
		Caps:       []byte{1},
		E2fsattrs:  0x10,
		LinkTarget: "",
	}
}

func TestCompare(t *testing.T) {
	a := func(as ...rules.Attr) rules.AttrSet { return attrsOf(as...) }
	growing := func(e *Entry) { e.Attrs |= rules.AttrGrowing.Set() }
	for _, tc := range []struct {
		name        string
		old, cur    func(e *Entry)
		ignore      rules.AttrSet
		want        rules.AttrSet
		wantIgnored rules.AttrSet
	}{
		{name: "unchanged"},
		{name: "perm", cur: func(e *Entry) { e.Mode = 0o100600 }, want: a(rules.AttrPerm)},
		{name: "setuid bit is p only", cur: func(e *Entry) { e.Mode = 0o104644 }, want: a(rules.AttrPerm)},
		{name: "file to dir", cur: func(e *Entry) { e.Mode = 0o040644; e.Type = rules.TypeDir },
			want: a(rules.AttrFtype, rules.AttrPerm)},
		{name: "inode", cur: func(e *Entry) { e.Inode = 43 }, want: a(rules.AttrInode)},
		{name: "dev is not compared", cur: func(e *Entry) { e.Dev = 8 }},
		{name: "link target", old: func(e *Entry) { e.LinkTarget = "a" }, cur: func(e *Entry) { e.LinkTarget = "b" }, want: a(rules.AttrLinkName)},
		{name: "nlink", cur: func(e *Entry) { e.Nlink = 2 }, want: a(rules.AttrNlink)},
		{name: "uid", cur: func(e *Entry) { e.UID = 0 }, want: a(rules.AttrUID)},
		{name: "gid", cur: func(e *Entry) { e.GID = 0 }, want: a(rules.AttrGID)},
		{name: "size grows", cur: func(e *Entry) { e.Size = 101 }, want: a(rules.AttrSize)},
		{name: "size shrinks", cur: func(e *Entry) { e.Size = 99 }, want: a(rules.AttrSize, rules.AttrSizeGrowing)},
		{name: "blocks", cur: func(e *Entry) { e.Blocks = 16 }, want: a(rules.AttrBlocks)},
		{name: "atime", cur: func(e *Entry) { e.Atime += 1e9 }, want: a(rules.AttrAtime)},
		{name: "mtime", cur: func(e *Entry) { e.Mtime -= 1e9 }, want: a(rules.AttrMtime)},
		{name: "ctime", cur: func(e *Entry) { e.Ctime += 5e9 }, want: a(rules.AttrCtime)},
		{name: "sub-second mtime is not a change (aide stores seconds)", cur: func(e *Entry) { e.Mtime += 1000 }},
		{name: "md5", cur: func(e *Entry) { e.Digests.MD5[0] = 9 }, want: a(rules.AttrMD5)},
		{name: "sha1", cur: func(e *Entry) { e.Digests.SHA1[0] = 9 }, want: a(rules.AttrSHA1)},
		{name: "sha256", cur: func(e *Entry) { e.Digests.SHA256[0] = 9 }, want: a(rules.AttrSHA256)},
		{name: "sha512", cur: func(e *Entry) { e.Digests.SHA512[0] = 9 }, want: a(rules.AttrSHA512)},
		{name: "blake3", cur: func(e *Entry) { e.Digests.BLAKE3[0] = 9 }, want: a(rules.AttrBLAKE3)},
		{name: "acl", cur: func(e *Entry) { e.ACLAccess = []byte{2, 0, 0, 1} }, want: a(rules.AttrACL)},
		{name: "default acl", cur: func(e *Entry) { e.ACLDefault = []byte{2} }, want: a(rules.AttrACL)},
		{name: "acl with xattr ignores chmod", cur: func(e *Entry) { e.Mode = 0o100600; e.ACLAccess = []byte{2, 0, 0, 0} }, want: a(rules.AttrPerm)},
		{name: "minimal acl follows chmod", old: func(e *Entry) { e.ACLAccess = nil },
			cur: func(e *Entry) { e.ACLAccess = nil; e.Mode = 0o100640 }, want: a(rules.AttrPerm, rules.AttrACL)},
		{name: "xattr value", cur: func(e *Entry) { e.Xattrs = []Xattr{{"user.a", []byte("2")}} }, want: a(rules.AttrXattrs)},
		{name: "xattr added", cur: func(e *Entry) { e.Xattrs = append(e.Xattrs, Xattr{"user.b", nil}) }, want: a(rules.AttrXattrs)},
		{name: "xattrs empty equals nil", old: func(e *Entry) { e.Xattrs = nil }, cur: func(e *Entry) { e.Xattrs = []Xattr{} }},
		{name: "selinux", cur: func(e *Entry) { e.SELinux = "x" }, want: a(rules.AttrSELinux)},
		{name: "e2fsattrs", cur: func(e *Entry) { e.E2fsattrs = 0x30 }, want: a(rules.AttrE2fsattrs)},
		{name: "caps", cur: func(e *Entry) { e.Caps = nil }, want: a(rules.AttrCaps)},
		{name: "not compared unless in both rules", old: func(e *Entry) { e.Attrs &^= a(rules.AttrUID, rules.AttrMD5) },
			cur: func(e *Entry) { e.UID = 9; e.Digests.MD5[0] = 9 }},
		{name: "added attribute is no change", cur: func(e *Entry) { e.Attrs |= rules.AttrIgnoreName.Set() }},
		{name: "err is not compared", cur: func(e *Entry) { e.Err = "open /etc/f: permission denied" }},
		{name: "ignored only", cur: func(e *Entry) { e.UID = 9 }, ignore: a(rules.AttrUID), wantIgnored: a(rules.AttrUID)},
		{name: "ignored with change", cur: func(e *Entry) { e.UID = 9; e.GID = 9 }, ignore: a(rules.AttrUID),
			want: a(rules.AttrGID), wantIgnored: a(rules.AttrUID)},

		// growing: increases are fine, decreases are changes.
		{name: "growing append", old: growing, cur: func(e *Entry) {
			e.Size, e.Blocks, e.Mtime, e.Ctime, e.Atime = 200, 16, e.Mtime+1e9, e.Ctime+1e9, e.Atime+1e9
			e.Digests.MD5[0] = 9
			e.Prefix = &Prefix{Size: 100, Digests: base().Digests}
		}},
		{name: "growing rewritten prefix", old: growing, cur: func(e *Entry) {
			e.Size = 200
			e.Digests.MD5[0] = 9
			p := base().Digests
			p.MD5[1] = 7
			e.Prefix = &Prefix{Size: 100, Digests: p}
		}, want: a(rules.AttrMD5)},
		{name: "growing without prefix (compare mode)", old: growing, cur: func(e *Entry) {
			e.Size = 200
			e.Digests.SHA1[0] = 9
		}, want: a(rules.AttrSHA1)},
		{name: "growing from empty", old: func(e *Entry) { growing(e); e.Size = 0 }, cur: func(e *Entry) {
			e.Size = 200
			e.Digests.SHA1[0] = 9
		}},
		{name: "growing shrink", old: growing, cur: func(e *Entry) {
			e.Size, e.Mtime = 50, e.Mtime+1e9
			e.Digests.MD5[0] = 9
		}, want: a(rules.AttrSize, rules.AttrSizeGrowing, rules.AttrMD5)},
		{name: "growing older times", old: growing, cur: func(e *Entry) { e.Mtime -= 1e9; e.Blocks = 1 }, want: a(rules.AttrMtime, rules.AttrBlocks)},
		{name: "growing needs the size recorded", old: func(e *Entry) { growing(e); e.Attrs &^= a(rules.AttrSize, rules.AttrSizeGrowing) },
			cur: func(e *Entry) {
				e.Attrs &^= a(rules.AttrSize, rules.AttrSizeGrowing)
				e.Size = 200
				e.Digests.MD5[0] = 9
				e.Prefix = &Prefix{Size: 100, Digests: base().Digests}
			}, want: a(rules.AttrMD5)},
		{name: "growing only counts in the old rule", cur: func(e *Entry) { growing(e); e.Size = 200 }, want: a(rules.AttrSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := base(), base()
			if tc.old != nil {
				tc.old(old)
			}
			if tc.cur != nil {
				tc.cur(cur)
			}
			c, ok := Compare(old, cur, tc.ignore)
			if c.Changed != tc.want || c.Ignored != tc.wantIgnored || ok != (tc.want != 0) {
				t.Errorf("Compare = changed %v ignored %v ok %v, want %v, %v, %v", c.Changed, c.Ignored, ok, tc.want, tc.wantIgnored, tc.want != 0)
			}
			if ok && (c.Kind != Changed || c.Old != old || c.New != cur || c.Path != "/etc/f") {
				t.Errorf("Compare = %+v", c)
			}
		})
	}
}

func TestCompareAddedRemoved(t *testing.T) {
	e := base()
	anf := base()
	anf.Attrs |= rules.AttrANF.Set()
	arf := base()
	arf.Attrs |= rules.AttrARF.Set()
	for _, tc := range []struct {
		name     string
		old, cur *Entry
		kind     ChangeKind
		ok       bool
	}{
		{"added", nil, e, Added, true},
		{"removed", e, nil, Removed, true},
		{"added with ANF", nil, anf, 0, false},
		{"removed with ARF", arf, nil, 0, false},
		{"ANF does not hide a removal", anf, nil, Removed, true},
		{"neither", nil, nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := Compare(tc.old, tc.cur, 0)
			if ok != tc.ok || c.Kind != tc.kind || (ok && (c.Old != tc.old || c.New != tc.cur)) {
				t.Errorf("Compare = %+v, %v; want kind %v, %v", c, ok, tc.kind, tc.ok)
			}
			if ok && c.Path != "/etc/f" {
				t.Errorf("Path = %q", c.Path)
			}
		})
	}
}

func TestAttrsDiff(t *testing.T) {
	old, cur := base(), base()
	old.Attrs = attrsOf(rules.AttrPerm, rules.AttrUID, rules.AttrSize)
	cur.Attrs = attrsOf(rules.AttrPerm, rules.AttrGID, rules.AttrMD5, rules.AttrSize)
	added, removed := AttrsDiff(old, cur)
	if added != attrsOf(rules.AttrGID, rules.AttrMD5) || removed != attrsOf(rules.AttrUID) {
		t.Errorf("AttrsDiff = +%v -%v, want +g+md5 -u", added, removed)
	}
	if _, ok := Compare(old, cur, 0); ok {
		t.Error("differing attribute sets alone reported as a change")
	}
}

func TestKey(t *testing.T) {
	paths := []string{"/", "/a", "/a/b", "/a!", "/a b", "/a\x01", "/ab", "/a/b/c", "/\xff", "/a.b"}
	for _, a := range paths {
		if got := PathOfKey(Key(a)); got != a {
			t.Errorf("PathOfKey(Key(%q)) = %q", a, got)
		}
		for _, b := range paths {
			want := string(Key(a)) < string(Key(b))
			if got := KeyLess(a, b); got != want {
				t.Errorf("KeyLess(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
	// Pre-order: a directory's whole subtree sorts before its next sibling.
	if !KeyLess("/a/zzz", "/a!") || !KeyLess("/a", "/a/b") {
		t.Error("key order is not depth-first pre-order")
	}
}

func FuzzKeyLess(f *testing.F) {
	f.Add("/a/b", "/a!")
	f.Add("/", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		want := string(Key(a)) < string(Key(b))
		if KeyLess(a, b) != want {
			t.Errorf("KeyLess(%q, %q) = %v, want %v", a, b, !want, want)
		}
	})
}
