package scanner

import (
	"bytes"

	"opsagent/rules"
)

// ChangeKind says how an entry differs between two scans.
type ChangeKind uint8

// The kinds of change.
const (
	Added   ChangeKind = iota + 1 // in the new scan only
	Removed                       // in the old scan only
	Changed                       // in both, with differing attributes
)

// String returns "added", "removed" or "changed".
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return "unknown"
}

// Change is one difference between a baseline entry and a new one.
type Change struct {
	Path     string
	Kind     ChangeKind
	Old, New *Entry        // nil for Added / Removed respectively
	Changed  rules.AttrSet // attributes whose values differ (Changed only), after ignore
	Ignored  rules.AttrSet // differing attributes that were ignored (the report shows ':')
}

// Compare decides, without I/O, what changed from old to cur, the way
// aide 0.18.3's check does:
//
//   - nil old: Added, unless cur's rule has ANF (allow new files);
//     nil cur: Removed, unless old's rule has ARF (allow removed files).
//   - Otherwise only attributes present in both old.Attrs and cur.Attrs are
//     compared. An attribute the rule gained or lost is not a change (aide
//     only warns "has different attributes"; see AttrsDiff).
//   - p is the whole st_mode, so a file replaced by a directory differs in p
//     (and in ftype when asked). Times are compared in whole seconds, as aide
//     stores them.
//   - When old's rule has growing, increases of s, b, a, m and c are not
//     changes (decreases are); S reports only a shrink. Digests that differ
//     are not a change either when the file grew and the digests of its
//     first old-size bytes (cur.Prefix, see Options.BaselineSize) equal the
//     old digests, or when the old file was empty; without cur.Prefix they
//     count, as in aide's database compare mode.
//   - acl compares the access ACL as aide renders it: with no ACL
//     xattr on either side, the minimal ACL derived from the permission bits
//     (so a chmod changes acl as well as p).
//   - Attributes in ignore (report_ignore_changed_attrs) are moved from
//     Changed to Ignored; an entry whose only differences are ignored is not
//     reported.
//
// Err is not compared: the scanner drops the attributes it could not read
// from an entry's Attrs (as aide does), so an unreadable file is compared on
// what it has, and the report lists its Err separately. The bool is false
// when there is nothing to report.
func Compare(old, cur *Entry, ignore rules.AttrSet) (Change, bool) {
	switch {
	case old == nil && cur == nil:
		return Change{}, false
	case old == nil:
		if cur.Attrs.Has(rules.AttrANF) {
			return Change{}, false
		}
		return Change{Path: cur.Path, Kind: Added, New: cur}, true
	case cur == nil:
		if old.Attrs.Has(rules.AttrARF) {
			return Change{}, false
		}
		return Change{Path: old.Path, Kind: Removed, Old: old}, true
	}
	diff := changedAttrs(old, cur)
	c := Change{Path: cur.Path, Kind: Changed, Old: old, New: cur,
		Changed: diff &^ ignore, Ignored: diff & ignore}
	return c, c.Changed != 0
}

// AttrsDiff returns the attributes cur's rule has and old's had not
// (added) and the reverse (removed): aide's warning
// "Entry /x in databases has different attributes: +sha256-u".
func AttrsDiff(old, cur *Entry) (added, removed rules.AttrSet) {
	if old == nil || cur == nil {
		return 0, 0
	}
	return cur.Attrs &^ old.Attrs, old.Attrs &^ cur.Attrs
}

// changedAttrs is aide's get_changed_attributes without the ignore step.
func changedAttrs(old, cur *Entry) rules.AttrSet {
	both := old.Attrs & cur.Attrs
	growing := old.Attrs.Has(rules.AttrGrowing)
	var ret rules.AttrSet
	set := func(a rules.Attr, changed bool) {
		if changed && both.Has(a) {
			ret |= a.Set()
		}
	}
	// grew compares a value that may only grow when the rule says growing.
	grew := func(a rules.Attr, o, n int64) {
		if growing {
			set(a, o > n)
		} else {
			set(a, o != n)
		}
	}

	set(rules.AttrFtype, old.Mode&sIFMT != cur.Mode&sIFMT)
	set(rules.AttrLinkName, old.LinkTarget != cur.LinkTarget)
	set(rules.AttrSizeGrowing, old.Size > cur.Size)
	grew(rules.AttrSize, old.Size, cur.Size)
	grew(rules.AttrBlocks, old.Blocks, cur.Blocks)
	set(rules.AttrPerm, old.Mode != cur.Mode)
	set(rules.AttrUID, old.UID != cur.UID)
	set(rules.AttrGID, old.GID != cur.GID)
	grew(rules.AttrAtime, seconds(old.Atime), seconds(cur.Atime))
	grew(rules.AttrMtime, seconds(old.Mtime), seconds(cur.Mtime))
	grew(rules.AttrCtime, seconds(old.Ctime), seconds(cur.Ctime))
	set(rules.AttrInode, old.Inode != cur.Inode)
	set(rules.AttrNlink, old.Nlink != cur.Nlink)

	if hashes := changedDigests(both, &old.Digests, &cur.Digests); hashes != 0 {
		if growing && grewUnchanged(old, cur, both) {
			hashes = 0
		}
		ret |= hashes
	}

	set(rules.AttrACL, aclChanged(old, cur))
	set(rules.AttrXattrs, xattrsChanged(old.Xattrs, cur.Xattrs))
	set(rules.AttrSELinux, old.SELinux != cur.SELinux)
	set(rules.AttrE2fsattrs, old.E2fsattrs != cur.E2fsattrs)
	set(rules.AttrCaps, !bytes.Equal(old.Caps, cur.Caps))
	return ret
}

const sIFMT = 0o170000

// grewUnchanged reports whether differing digests of a growing file are to
// be ignored: it grew, and it was empty before or its first old-size bytes
// still hash to the old digests. aide knows the old size only when the rule
// records it (s or S); so do we.
func grewUnchanged(old, cur *Entry, both rules.AttrSet) bool {
	sized := rules.AttrSize.Set() | rules.AttrSizeGrowing.Set()
	if old.Attrs&sized == 0 || cur.Attrs&sized == 0 || old.Size >= cur.Size {
		return false
	}
	if old.Size == 0 {
		return true
	}
	if cur.Prefix == nil || cur.Prefix.Size != old.Size {
		return false
	}
	return changedDigests(both, &old.Digests, &cur.Prefix.Digests) == 0
}

// changedDigests returns the hash attributes in both whose digests differ.
func changedDigests(both rules.AttrSet, o, n *Digests) rules.AttrSet {
	var ret rules.AttrSet
	if both.Has(rules.AttrMD5) && o.MD5 != n.MD5 {
		ret |= rules.AttrMD5.Set()
	}
	if both.Has(rules.AttrSHA1) && o.SHA1 != n.SHA1 {
		ret |= rules.AttrSHA1.Set()
	}
	if both.Has(rules.AttrSHA256) && o.SHA256 != n.SHA256 {
		ret |= rules.AttrSHA256.Set()
	}
	if both.Has(rules.AttrSHA512) && o.SHA512 != n.SHA512 {
		ret |= rules.AttrSHA512.Set()
	}
	if both.Has(rules.AttrBLAKE3) && o.BLAKE3 != n.BLAKE3 {
		ret |= rules.AttrBLAKE3.Set()
	}
	return ret
}

// aclChanged compares ACLs as aide renders them (acl_get_file): without an
// access ACL xattr the access ACL is the one the permission bits imply.
func aclChanged(old, cur *Entry) bool {
	if !bytes.Equal(old.ACLAccess, cur.ACLAccess) || !bytes.Equal(old.ACLDefault, cur.ACLDefault) {
		return true
	}
	return len(old.ACLAccess) == 0 && old.Mode&0o777 != cur.Mode&0o777
}

// xattrsChanged compares two name-sorted lists.
func xattrsChanged(a, b []Xattr) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return true
		}
	}
	return false
}

// seconds truncates ns since the epoch to whole seconds (st_mtime), rounding
// towards minus infinity as the kernel's tv_sec does.
func seconds(ns int64) int64 {
	s := ns / 1e9
	if ns%1e9 < 0 {
		s--
	}
	return s
}
