package rules

import (
	"strings"
)

// Attr is one attribute an AIDE rule can ask for: a file attribute, a
// special attribute (growing, ANF, ...) or a hash. An AttrSet is a bitmask of
// them.
type Attr uint8

// The attributes, in AIDE's order where AIDE has them. The values are stored
// in baselines (db encodes AttrSet as a uint64), so never renumber: only append.
const (
	AttrFtype       Attr = iota // ftype: file type
	AttrPerm                    // p: permissions (includes the file type bits, as in AIDE)
	AttrInode                   // i: inode number
	AttrLinkName                // l: symlink target
	AttrNlink                   // n: link count
	AttrUID                     // u: owner uid
	AttrGID                     // g: group gid
	AttrSize                    // s: size in bytes
	AttrBlocks                  // b: block count
	AttrMtime                   // m: modification time
	AttrAtime                   // a: access time
	AttrCtime                   // c: status change time
	AttrSizeGrowing             // S: growing size (deprecated in AIDE 0.18: growing+s)
	AttrIgnoreName              // I: ignore changed file name (moved files)
	AttrANF                     // ANF: allow new files
	AttrARF                     // ARF: allow removed files
	AttrGrowing                 // growing: ignore growing file
	AttrCompressed              // compressed: match a gzip file to its uncompressed source (see README)
	AttrACL                     // acl: POSIX ACL
	AttrXattrs                  // xattrs: extended attributes (all namespaces but system.posix_acl_* and security.selinux/capability)
	AttrSELinux                 // selinux: security.selinux label
	AttrE2fsattrs               // e2fsattrs: ext2 file attributes (chattr flags)
	AttrCaps                    // caps: file capabilities (security.capability)
	AttrMD5                     // md5
	AttrSHA1                    // sha1
	AttrSHA256                  // sha256
	AttrSHA512                  // sha512
	AttrBLAKE3                  // blake3 (agent extension, not known to aide)
	numAttrs
)

// AttrSet is a set of attributes.
type AttrSet uint64

// Set returns the set holding only a.
func (a Attr) Set() AttrSet { return AttrSet(1) << a }

// Has reports whether s holds a.
func (s AttrSet) Has(a Attr) bool { return s&a.Set() != 0 }

// attrNames are the config-language names of the attributes, indexed by Attr.
var attrNames = [numAttrs]string{
	AttrFtype: "ftype", AttrPerm: "p", AttrInode: "i", AttrLinkName: "l",
	AttrNlink: "n", AttrUID: "u", AttrGID: "g", AttrSize: "s", AttrBlocks: "b",
	AttrMtime: "m", AttrAtime: "a", AttrCtime: "c", AttrSizeGrowing: "S",
	AttrIgnoreName: "I", AttrANF: "ANF", AttrARF: "ARF", AttrGrowing: "growing",
	AttrCompressed: "compressed", AttrACL: "acl", AttrXattrs: "xattrs",
	AttrSELinux: "selinux", AttrE2fsattrs: "e2fsattrs", AttrCaps: "caps",
	AttrMD5: "md5", AttrSHA1: "sha1", AttrSHA256: "sha256", AttrSHA512: "sha512",
	AttrBLAKE3: "blake3",
}

// String returns the config-language name of a.
func (a Attr) String() string {
	if a < numAttrs {
		return attrNames[a]
	}
	return "attr(" + string(rune('0'+a)) + ")"
}

// HashAttrs is every hash the agent computes (AIDE's H, as far as the agent goes).
const HashAttrs = AttrSet(1)<<AttrMD5 | AttrSet(1)<<AttrSHA1 | AttrSet(1)<<AttrSHA256 |
	AttrSet(1)<<AttrSHA512 | AttrSet(1)<<AttrBLAKE3

// ExtraAttrs is AIDE's X group: acl+selinux+xattrs+e2fsattrs+caps.
const ExtraAttrs = AttrSet(1)<<AttrACL | AttrSet(1)<<AttrSELinux | AttrSet(1)<<AttrXattrs |
	AttrSet(1)<<AttrE2fsattrs | AttrSet(1)<<AttrCaps

// Attrs returns the attributes of s in ascending order.
func (s AttrSet) Attrs() []Attr {
	var out []Attr
	for a := Attr(0); a < numAttrs; a++ {
		if s.Has(a) {
			out = append(out, a)
		}
	}
	return out
}

// String renders s as an attribute expression such as "p+u+g+s+md5", or "E"
// for the empty set.
func (s AttrSet) String() string {
	if s == 0 {
		return "E"
	}
	var b strings.Builder
	for _, a := range s.Attrs() {
		if b.Len() > 0 {
			b.WriteByte('+')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// FileType is the type of a file system entry.
type FileType uint8

// The file types AIDE knows. TypeUnknown is "?" in reports.
const (
	TypeUnknown  FileType = iota
	TypeFile              // f
	TypeDir               // d
	TypeSymlink           // l
	TypeCharDev           // c
	TypeBlockDev          // b
	TypeFIFO              // p
	TypeSocket            // s
	TypeDoor              // D (Solaris; never produced on Linux)
	TypePort              // P (Solaris; never produced on Linux)
)

var typeLetters = [...]byte{'?', 'f', 'd', 'l', 'c', 'b', 'p', 's', 'D', 'P'}

// Letter returns the one-letter code of t used in restrictions and reports.
func (t FileType) Letter() byte {
	if int(t) < len(typeLetters) {
		return typeLetters[t]
	}
	return '?'
}

// String returns the one-letter code of t.
func (t FileType) String() string { return string(t.Letter()) }

// TypeFromMode returns the FileType of a Unix st_mode value.
func TypeFromMode(mode uint32) FileType {
	switch mode & 0o170000 {
	case 0o100000:
		return TypeFile
	case 0o040000:
		return TypeDir
	case 0o120000:
		return TypeSymlink
	case 0o020000:
		return TypeCharDev
	case 0o060000:
		return TypeBlockDev
	case 0o010000:
		return TypeFIFO
	case 0o140000:
		return TypeSocket
	}
	return TypeUnknown
}

// TypeSet is a set of file types, used by restricted rules. The zero value
// means "unrestricted".
type TypeSet uint16

// Has reports whether the restriction s allows t. An empty set allows every type.
func (s TypeSet) Has(t FileType) bool { return s == 0 || s&(1<<t) != 0 }
