package report

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"opsagent/rules"
	"opsagent/scanner"
)

// detailAttr is one line kind of the detailed blocks, in aide's order.
type detailAttr struct {
	attr    rules.Attr
	name    string // plain report name, printed as " %-10s: "
	json    string // JSON report key
	numeric bool   // JSON value is a number
}

// details lists the attributes of the detailed blocks in aide 0.18.3's order
// (measured with aide; BLAKE3 is the agent's own and sits after the SHA
// family, where aide prints its other hashes).
var details = []detailAttr{
	{rules.AttrFtype, "File type", "file_type", false},
	{rules.AttrLinkName, "Lname", "link_name", false},
	{rules.AttrSize, "Size", "size", true},
	{rules.AttrBlocks, "Bcount", "block_count", true},
	{rules.AttrPerm, "Perm", "perm", false},
	{rules.AttrUID, "Uid", "uid", true},
	{rules.AttrGID, "Gid", "gid", true},
	{rules.AttrAtime, "Atime", "access_time", false},
	{rules.AttrMtime, "Mtime", "modify_time", false},
	{rules.AttrCtime, "Ctime", "change_time", false},
	{rules.AttrInode, "Inode", "inode", true},
	{rules.AttrNlink, "Linkcount", "link_count", true},
	{rules.AttrMD5, "MD5", "md5", false},
	{rules.AttrSHA1, "SHA1", "sha1", false},
	{rules.AttrSHA256, "SHA256", "sha256", false},
	{rules.AttrSHA512, "SHA512", "sha512", false},
	{rules.AttrBLAKE3, "BLAKE3", "blake3", false},
	{rules.AttrACL, "ACL", "acl", false},
	{rules.AttrXattrs, "XAttrs", "xattrs", false},
	{rules.AttrSELinux, "SELinux", "selinux", false},
	{rules.AttrE2fsattrs, "E2FSAttrs", "e2fsattrs", false},
	{rules.AttrCaps, "Caps", "caps", false},
}

// summaryCols are the positions 1-17 of the change string
// "YlZbpugamcinHAXSEC" (position 0, Y, is the file type letter). H stands
// for every hash.
var summaryCols = []struct {
	letter byte
	attrs  rules.AttrSet
}{
	{'l', rules.AttrLinkName.Set()},
	{'>', rules.AttrSize.Set()}, // Z: '<', '>' or '=' instead of a letter
	{'b', rules.AttrBlocks.Set()},
	{'p', rules.AttrPerm.Set()},
	{'u', rules.AttrUID.Set()},
	{'g', rules.AttrGID.Set()},
	{'a', rules.AttrAtime.Set()},
	{'m', rules.AttrMtime.Set()},
	{'c', rules.AttrCtime.Set()},
	{'i', rules.AttrInode.Set()},
	{'n', rules.AttrNlink.Set()},
	{'H', rules.HashAttrs},
	{'A', rules.AttrACL.Set()},
	{'X', rules.AttrXattrs.Set()},
	{'S', rules.AttrSELinux.Set()},
	{'E', rules.AttrE2fsattrs.Set()},
	{'C', rules.AttrCaps.Set()},
}

// entryType returns the file type of e, from Type or else from Mode.
func entryType(e *scanner.Entry) rules.FileType {
	if e == nil {
		return rules.TypeUnknown
	}
	if e.Type != rules.TypeUnknown {
		return e.Type
	}
	return rules.TypeFromMode(e.Mode)
}

// ChangeString renders aide's 18-character summary of c, measured against
// aide 0.18.3: the type letter of the entry (the new one when both exist);
// an added entry is all '+', a removed one all '-'. For a changed entry each
// column is ':' when the attribute is ignored (report_ignore_changed_attrs,
// whether or not it differs, as aide does), the letter when it changed ('<'
// or '>' for the size), '.' when both sides have it unchanged ('=' for the
// size), '-' when only the old entry has it, '+' when only the new one has
// it, ' ' when neither has it. agent watch prints it for each finding.
func ChangeString(c scanner.Change, ignore rules.AttrSet) string {
	var s [18]byte
	switch c.Kind {
	case scanner.Added:
		s[0] = entryType(c.New).Letter()
		for i := 1; i < len(s); i++ {
			s[i] = '+'
		}
		return string(s[:])
	case scanner.Removed:
		s[0] = entryType(c.Old).Letter()
		for i := 1; i < len(s); i++ {
			s[i] = '-'
		}
		return string(s[:])
	}
	var oldA, newA rules.AttrSet
	if c.Old != nil {
		oldA = c.Old.Attrs
	}
	if c.New != nil {
		newA = c.New.Attrs
		s[0] = entryType(c.New).Letter()
	} else {
		s[0] = entryType(c.Old).Letter()
	}
	both := oldA & newA
	for i, col := range summaryCols {
		ch := byte(' ')
		switch {
		case (c.Ignored|ignore&both)&col.attrs != 0:
			ch = ':'
		case c.Changed&col.attrs != 0:
			ch = col.letter
			if col.letter == '>' && c.Old != nil && c.New != nil && c.New.Size < c.Old.Size {
				ch = '<'
			}
		case both&col.attrs != 0:
			ch = '.'
			if col.letter == '>' {
				ch = '='
			}
		case oldA&col.attrs != 0:
			ch = '-'
		case newA&col.attrs != 0:
			ch = '+'
		}
		s[i+1] = ch
	}
	return string(s[:])
}

// typeName is aide's name of a file type, used in "File type" values and as
// the head of a detailed block ("File: /etc/passwd").
func typeName(t rules.FileType) string {
	switch t {
	case rules.TypeFile:
		return "File"
	case rules.TypeDir:
		return "Directory"
	case rules.TypeSymlink:
		return "Link"
	case rules.TypeCharDev:
		return "Character device"
	case rules.TypeBlockDev:
		return "Block device"
	case rules.TypeFIFO:
		return "FIFO"
	case rules.TypeSocket:
		return "Socket"
	case rules.TypeDoor:
		return "Door"
	case rules.TypePort:
		return "Port"
	}
	return "Unknown file type"
}

// permString renders st_mode as ls(1) does: "-rw-r--r--", "drwxr-xr-x",
// with s/S, t/T for the set-id and sticky bits.
func permString(mode uint32) string {
	b := []byte("?---------")
	b[0] = rules.TypeFromMode(mode).Letter()
	if b[0] == 'f' {
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(pos int, bit uint32, set, unset byte) {
		if mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = set
		} else {
			b[pos] = unset
		}
	}
	special(3, 0o4000, 's', 'S')
	special(6, 0o2000, 's', 'S')
	special(9, 0o1000, 't', 'T')
	return string(b)
}

// value renders attribute a of e as aide prints it: one string per line
// (ACL and xattrs take several lines). Texts from the file system are not
// escaped here; the plain renderer escapes with EscapePath.
func (r *Report) value(a rules.Attr, e *scanner.Entry) []string {
	switch a {
	case rules.AttrFtype:
		return []string{typeName(entryType(e))}
	case rules.AttrLinkName:
		return []string{e.LinkTarget}
	case rules.AttrSize:
		return []string{strconv.FormatInt(e.Size, 10)}
	case rules.AttrBlocks:
		return []string{strconv.FormatInt(e.Blocks, 10)}
	case rules.AttrPerm:
		return []string{permString(e.Mode)}
	case rules.AttrUID:
		return []string{strconv.FormatUint(uint64(e.UID), 10)}
	case rules.AttrGID:
		return []string{strconv.FormatUint(uint64(e.GID), 10)}
	case rules.AttrAtime:
		return []string{r.stamp(e.Atime)}
	case rules.AttrMtime:
		return []string{r.stamp(e.Mtime)}
	case rules.AttrCtime:
		return []string{r.stamp(e.Ctime)}
	case rules.AttrInode:
		return []string{strconv.FormatUint(e.Inode, 10)}
	case rules.AttrNlink:
		return []string{strconv.FormatUint(e.Nlink, 10)}
	case rules.AttrMD5:
		return []string{r.digest(e.Digests.MD5[:])}
	case rules.AttrSHA1:
		return []string{r.digest(e.Digests.SHA1[:])}
	case rules.AttrSHA256:
		return []string{r.digest(e.Digests.SHA256[:])}
	case rules.AttrSHA512:
		return []string{r.digest(e.Digests.SHA512[:])}
	case rules.AttrBLAKE3:
		return []string{r.digest(e.Digests.BLAKE3[:])}
	case rules.AttrACL:
		return r.aclLines(e)
	case rules.AttrXattrs:
		return xattrLines(e.Xattrs)
	case rules.AttrSELinux:
		return []string{e.SELinux}
	case rules.AttrE2fsattrs:
		return []string{e2fsString(e.E2fsattrs)}
	case rules.AttrCaps:
		return []string{capsText(e.Caps)}
	}
	return []string{""}
}

// digest renders a hash in base64, or lower-case hex with report_base16.
func (r *Report) digest(b []byte) string {
	if r.Base16 {
		return hex.EncodeToString(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// xattrLines renders extended attributes as aide does: "num=N", then
// "[i] name = value" for a value of printable non-blank ASCII, else
// "[i] name <=> base64(value)" (aide base64-encodes "hello world" but not
// "bar").
func xattrLines(xs []scanner.Xattr) []string {
	out := []string{fmt.Sprintf("num=%d", len(xs))}
	for i, x := range xs {
		if printable(x.Value) {
			out = append(out, fmt.Sprintf("[%d] %s = %s", i+1, x.Name, x.Value))
		} else {
			out = append(out, fmt.Sprintf("[%d] %s <=> %s", i+1, x.Name, base64.StdEncoding.EncodeToString(x.Value)))
		}
	}
	return out
}

func printable(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// e2fsFlags are the ext2 inode flags in the order of aide's 22-character
// E2FSAttrs string (as lsattr prints them); a flag that is not set is '-'.
var e2fsFlags = []struct {
	bit    uint32
	letter byte
}{
	{0x00000001, 's'}, // FS_SECRM_FL
	{0x00000002, 'u'}, // FS_UNRM_FL
	{0x00000008, 'S'}, // FS_SYNC_FL
	{0x00010000, 'D'}, // FS_DIRSYNC_FL
	{0x00000010, 'i'}, // FS_IMMUTABLE_FL
	{0x00000020, 'a'}, // FS_APPEND_FL
	{0x00000040, 'd'}, // FS_NODUMP_FL
	{0x00000080, 'A'}, // FS_NOATIME_FL
	{0x00000004, 'c'}, // FS_COMPR_FL
	{0x00000800, 'E'}, // FS_ENCRYPT_FL
	{0x00004000, 'j'}, // FS_JOURNAL_DATA_FL
	{0x00001000, 'I'}, // FS_INDEX_FL
	{0x00008000, 't'}, // FS_NOTAIL_FL
	{0x00020000, 'T'}, // FS_TOPDIR_FL
	{0x00080000, 'e'}, // FS_EXTENT_FL
	{0x00800000, 'C'}, // FS_NOCOW_FL
	{0x02000000, 'x'}, // FS_DAX_FL
	{0x40000000, 'F'}, // FS_CASEFOLD_FL
	{0x10000000, 'N'}, // FS_INLINE_DATA_FL
	{0x20000000, 'P'}, // FS_PROJINHERIT_FL
	{0x00100000, 'V'}, // FS_VERITY_FL
	{0x00000400, 'm'}, // FS_NOCOMP_FL
}

func e2fsString(flags uint32) string {
	b := make([]byte, len(e2fsFlags))
	for i, f := range e2fsFlags {
		b[i] = '-'
		if flags&f.bit != 0 {
			b[i] = f.letter
		}
	}
	return string(b)
}

// ACL entry tags of the Linux xattr encoding (linux/posix_acl.h).
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

// parseACL decodes a system.posix_acl_* value: a 4-byte version (2) and
// 8-byte entries {tag u16, perm u16, id u32}, little-endian.
func parseACL(b []byte) ([]aclEntry, bool) {
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 2 || (len(b)-4)%8 != 0 {
		return nil, false
	}
	var out []aclEntry
	for p := 4; p+8 <= len(b); p += 8 {
		out = append(out, aclEntry{
			tag:  binary.LittleEndian.Uint16(b[p:]),
			perm: binary.LittleEndian.Uint16(b[p+2:]),
			id:   binary.LittleEndian.Uint32(b[p+4:]),
		})
	}
	return out, true
}

func rwx(p uint16) string {
	b := []byte("---")
	if p&4 != 0 {
		b[0] = 'r'
	}
	if p&2 != 0 {
		b[1] = 'w'
	}
	if p&1 != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// aclText renders ACL entries as acl_to_text(3) does (the long form aide
// uses): "user::rw-", "user:NAME:r--", "group::r--", "mask::r--",
// "other::r--", with "\t#effective:r--" after a named user, the owning group
// or a named group when the mask takes permissions away.
func (r *Report) aclText(es []aclEntry) []string {
	mask := uint16(7)
	hasMask := false
	for _, e := range es {
		if e.tag == aclMask {
			mask, hasMask = e.perm, true
		}
	}
	var out []string
	for _, e := range es {
		var s string
		switch e.tag {
		case aclUserObj:
			s = "user::" + rwx(e.perm)
		case aclUser:
			s = "user:" + r.name(r.UserName, e.id) + ":" + rwx(e.perm)
		case aclGroupObj:
			s = "group::" + rwx(e.perm)
		case aclGroup:
			s = "group:" + r.name(r.GroupName, e.id) + ":" + rwx(e.perm)
		case aclMask:
			s = "mask::" + rwx(e.perm)
		case aclOther:
			s = "other::" + rwx(e.perm)
		default:
			s = fmt.Sprintf("tag(%d):%d:%s", e.tag, e.id, rwx(e.perm))
		}
		if hasMask && (e.tag == aclUser || e.tag == aclGroupObj || e.tag == aclGroup) && e.perm&^mask != 0 {
			s += "\t#effective:" + rwx(e.perm&mask)
		}
		out = append(out, s)
	}
	return out
}

func (r *Report) name(f func(uint32) string, id uint32) string {
	if f != nil {
		if n := f(id); n != "" {
			return n
		}
	}
	return strconv.FormatUint(uint64(id), 10)
}

// aclLines renders the access ACL ("A: " lines) and the default ACL ("D: "
// lines). Without a system.posix_acl_access value the access ACL is the one
// the permission bits imply, as acl_get_file(3) returns it to aide.
func (r *Report) aclLines(e *scanner.Entry) []string {
	var out []string
	acc, ok := parseACL(e.ACLAccess)
	if !ok {
		acc = []aclEntry{
			{tag: aclUserObj, perm: uint16(e.Mode>>6) & 7},
			{tag: aclGroupObj, perm: uint16(e.Mode>>3) & 7},
			{tag: aclOther, perm: uint16(e.Mode) & 7},
		}
	}
	for _, s := range r.aclText(acc) {
		out = append(out, "A: "+s)
	}
	if def, ok := parseACL(e.ACLDefault); ok {
		for _, s := range r.aclText(def) {
			out = append(out, "D: "+s)
		}
	}
	return out
}

// capNames are the capability names of libcap, indexed by number.
var capNames = []string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner",
	"cap_fsetid", "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap",
	"cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
	"cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod",
	"cap_lease", "cap_audit_write", "cap_audit_control", "cap_setfcap",
	"cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
}

// capsText renders a security.capability value in cap_to_text(3) style:
// capabilities grouped by their flag set, "cap_net_raw,cap_sys_admin=ep".
// It covers what file capabilities hold in practice; libcap's compaction of
// large sets ("=ep cap_x-e") is not reproduced (see the package README).
func capsText(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	magic := binary.LittleEndian.Uint32(b)
	words := 1
	switch magic & 0xff000000 {
	case 0x01000000:
		words = 1
	case 0x02000000, 0x03000000:
		words = 2
	default:
		return ""
	}
	if len(b) < 4+8*words {
		return ""
	}
	effective := magic&1 != 0
	var perm, inh uint64
	for w := 0; w < words; w++ {
		perm |= uint64(binary.LittleEndian.Uint32(b[4+8*w:])) << (32 * w)
		inh |= uint64(binary.LittleEndian.Uint32(b[8+8*w:])) << (32 * w)
	}
	type group struct {
		flags string
		names []string
	}
	var groups []*group
	byFlags := map[string]*group{}
	for n := 0; n < 64; n++ {
		p, i := perm&(1<<n) != 0, inh&(1<<n) != 0
		if !p && !i {
			continue
		}
		flags := ""
		if effective {
			flags += "e"
		}
		if i {
			flags += "i"
		}
		if p {
			flags += "p"
		}
		name := fmt.Sprintf("%d", n)
		if n < len(capNames) {
			name = capNames[n]
		}
		g := byFlags[flags]
		if g == nil {
			g = &group{flags: flags}
			byFlags[flags] = g
			groups = append(groups, g)
		}
		g.names = append(g.names, name)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g.names, ",") + "=" + g.flags
	}
	return strings.Join(parts, " ")
}
