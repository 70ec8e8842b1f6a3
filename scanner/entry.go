package scanner

import "opsagent/rules"

// Digests holds the hashes of a regular file's content. Only those named in
// Entry.Attrs are meaningful.
type Digests struct {
	MD5    [16]byte
	SHA1   [20]byte
	SHA256 [32]byte
	SHA512 [64]byte
	BLAKE3 [32]byte
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is what the scanner records about one file system entry. Path is the
// absolute path as bytes in a string (not necessarily UTF-8). Attrs says which
// attributes the selecting rule asked for; fields outside Attrs are zero or
// informational only (Type, Mode and Dev are always filled when Err is empty).
type Entry struct {
	Path       string
	Type       rules.FileType
	Attrs      rules.AttrSet // attributes the selecting rule asked for
	Mode       uint32        // st_mode: file type and permission bits
	UID, GID   uint32
	Size       int64  // bytes
	Blocks     int64  // st_blocks (512-byte units)
	Nlink      uint64 // link count
	Inode      uint64
	Dev        uint64
	Rdev       uint64 // device number of a device node
	Atime      int64  // ns since the Unix epoch
	Mtime      int64  // ns since the Unix epoch
	Ctime      int64  // ns since the Unix epoch
	LinkTarget string
	Digests    Digests
	Xattrs     []Xattr // sorted by name; user, trusted and security namespaces except those below
	ACLAccess  []byte  // raw system.posix_acl_access
	ACLDefault []byte  // raw system.posix_acl_default
	SELinux    string  // security.selinux label, NUL stripped
	Caps       []byte  // raw security.capability
	E2fsattrs  uint32  // FS_IOC_GETFLAGS flags
	// Prefix, for a growing file (rule with growing and a hash) whose
	// baseline size Options.BaselineSize supplied, holds the digests of its
	// first Prefix.Size bytes, so Compare can tell a file that was only
	// appended to from one that was rewritten (AIDE's check mode). Nil when
	// not recorded.
	Prefix *Prefix
	// Uncompressed, for a gzip file whose rule has compressed and a hash,
	// holds the digests (those Attrs asks for) of its decompressed content,
	// recorded when Options.Uncompress is set. Nil when not recorded or
	// when the file is not gzip or does not decompress.
	Uncompressed *Digests
	// Reused is set when Options.Reuse claimed the entry: only its stat
	// fields are filled, and the caller replaces it by the record it has.
	// Never stored.
	Reused bool
	// Err is the per-entry problem, if any: the file could not be read, it
	// vanished, it changed while it was read. An entry with Err set still
	// carries whatever was learnt before the error.
	Err string
}

// Prefix is the digest of the first Size bytes of a file (see Entry.Prefix).
type Prefix struct {
	Size    int64 // bytes hashed; the baseline size of the file
	Digests Digests
}
