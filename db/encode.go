package db

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"

	"opsagent/rules"
	"opsagent/scanner"
)

// dbKey returns the bbolt key of path: scanner.Key, the path with every '/'
// replaced by a 0x00 byte, so that the byte order of keys is the scanner's
// depth-first emit order ("/a/b" < "/a-b" although '/' > '-'). Writer.Put
// relies on it to reject unsorted input, and Join on both generations
// sharing it.
func dbKey(path string) []byte { return scanner.Key(path) }

// appendKey appends dbKey(path) to dst.
func appendKey(dst []byte, path string) []byte { return scanner.AppendKey(dst, path) }

// keyPath inverts dbKey.
func keyPath(key []byte) string { return scanner.PathOfKey(key) }

// keyLess reports whether path a sorts before path b in key order.
func keyLess(a, b string) bool { return scanner.KeyLess(a, b) }

// checkKeyable reports why path cannot be stored: a NUL byte would make its
// key ambiguous, and bbolt rejects empty keys.
func checkKeyable(path string) error {
	if path == "" {
		return errors.New("empty path")
	}
	if strings.IndexByte(path, 0) >= 0 {
		return errors.New("path contains a NUL byte")
	}
	return nil
}

// Entry encoding, version 1. Integers are varints (zig-zag for signed
// fields), byte strings are a uvarint length and the bytes, and the value
// ends with a CRC-32C (big-endian) over key||value-without-crc. The path is
// the key and is not repeated.
//
//	byte    entryVersion (1)
//	uvarint Attrs
//	byte    Type
//	uvarint presence flags (flag* below); a flag is set iff the field is non-empty
//	uvarint Mode, UID, GID
//	varint  Size, Blocks
//	uvarint Nlink, Inode, Dev, Rdev
//	varint  Atime, Mtime, Ctime
//	uvarint E2fsattrs
//	        the digests Attrs asks for, fixed width, in the order md5, sha1, sha256, sha512, blake3
//	        if flagLink: LinkTarget
//	        if flagXattrs: uvarint count (>0), then count × (Name, Value)
//	        if flagACLAccess: ACLAccess; flagACLDefault: ACLDefault; flagSELinux: SELinux;
//	        flagCaps: Caps; flagErr: Err
//	        if flagPrefix: varint Prefix.Size, then the digests Attrs asks for
//	        of the first Prefix.Size bytes (growing files in a check scan)
//	        if flagUncompressed: the digests Attrs asks for of the
//	        decompressed content (compressed files in a check scan)
//	uint32  CRC-32C
//
// The encoding is canonical (minimal varints, flags exactly matching the
// present fields), so decode followed by encode reproduces the input.
const entryVersion = 1

const (
	flagLink = 1 << iota
	flagXattrs
	flagACLAccess
	flagACLDefault
	flagSELinux
	flagCaps
	flagErr
	flagPrefix
	flagUncompressed
	flagAll = 1<<iota - 1
)

// crcSize is the length of the checksum trailer.
const crcSize = 4

// digestField ties a hash attribute to its slot in scanner.Digests.
type digestField struct {
	attr rules.Attr
	get  func(d *scanner.Digests) []byte
}

var digestFields = [...]digestField{
	{rules.AttrMD5, func(d *scanner.Digests) []byte { return d.MD5[:] }},
	{rules.AttrSHA1, func(d *scanner.Digests) []byte { return d.SHA1[:] }},
	{rules.AttrSHA256, func(d *scanner.Digests) []byte { return d.SHA256[:] }},
	{rules.AttrSHA512, func(d *scanner.Digests) []byte { return d.SHA512[:] }},
	{rules.AttrBLAKE3, func(d *scanner.Digests) []byte { return d.BLAKE3[:] }},
}

// appendEntry appends the encoding of e (stored under key) to dst.
func appendEntry(dst, key []byte, e *scanner.Entry) []byte {
	start := len(dst)
	dst = append(dst, entryVersion)
	dst = binary.AppendUvarint(dst, uint64(e.Attrs))
	dst = append(dst, byte(e.Type))
	var flags uint64
	if e.LinkTarget != "" {
		flags |= flagLink
	}
	if len(e.Xattrs) > 0 {
		flags |= flagXattrs
	}
	if len(e.ACLAccess) > 0 {
		flags |= flagACLAccess
	}
	if len(e.ACLDefault) > 0 {
		flags |= flagACLDefault
	}
	if e.SELinux != "" {
		flags |= flagSELinux
	}
	if len(e.Caps) > 0 {
		flags |= flagCaps
	}
	if e.Err != "" {
		flags |= flagErr
	}
	if e.Prefix != nil {
		flags |= flagPrefix
	}
	if e.Uncompressed != nil {
		flags |= flagUncompressed
	}
	dst = binary.AppendUvarint(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(e.Mode))
	dst = binary.AppendUvarint(dst, uint64(e.UID))
	dst = binary.AppendUvarint(dst, uint64(e.GID))
	dst = binary.AppendVarint(dst, e.Size)
	dst = binary.AppendVarint(dst, e.Blocks)
	dst = binary.AppendUvarint(dst, e.Nlink)
	dst = binary.AppendUvarint(dst, e.Inode)
	dst = binary.AppendUvarint(dst, e.Dev)
	dst = binary.AppendUvarint(dst, e.Rdev)
	dst = binary.AppendVarint(dst, e.Atime)
	dst = binary.AppendVarint(dst, e.Mtime)
	dst = binary.AppendVarint(dst, e.Ctime)
	dst = binary.AppendUvarint(dst, uint64(e.E2fsattrs))
	for _, f := range digestFields {
		if e.Attrs.Has(f.attr) {
			dst = append(dst, f.get(&e.Digests)...)
		}
	}
	appendBytes := func(b []byte) {
		dst = binary.AppendUvarint(dst, uint64(len(b)))
		dst = append(dst, b...)
	}
	appendString := func(s string) {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	if flags&flagLink != 0 {
		appendString(e.LinkTarget)
	}
	if flags&flagXattrs != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.Xattrs)))
		for _, x := range e.Xattrs {
			appendString(x.Name)
			appendBytes(x.Value)
		}
	}
	if flags&flagACLAccess != 0 {
		appendBytes(e.ACLAccess)
	}
	if flags&flagACLDefault != 0 {
		appendBytes(e.ACLDefault)
	}
	if flags&flagSELinux != 0 {
		appendString(e.SELinux)
	}
	if flags&flagCaps != 0 {
		appendBytes(e.Caps)
	}
	if flags&flagErr != 0 {
		appendString(e.Err)
	}
	if flags&flagPrefix != 0 {
		dst = binary.AppendVarint(dst, e.Prefix.Size)
		for _, f := range digestFields {
			if e.Attrs.Has(f.attr) {
				dst = append(dst, f.get(&e.Prefix.Digests)...)
			}
		}
	}
	if flags&flagUncompressed != 0 {
		for _, f := range digestFields {
			if e.Attrs.Has(f.attr) {
				dst = append(dst, f.get(e.Uncompressed)...)
			}
		}
	}
	crc := crc32Sum(key, dst[start:])
	return binary.BigEndian.AppendUint32(dst, crc)
}

// decodeEntry decodes the value val stored under key. It never panics, never
// allocates more than len(key)+len(val) bytes of payload, and rejects
// anything appendEntry would not have produced; errors are plain (callers
// add ErrCorrupt and the path).
func decodeEntry(key, val []byte) (*scanner.Entry, error) {
	body, err := checkedBody(key, val)
	if err != nil {
		return nil, err
	}
	return parseEntry(key, body)
}

// checkedBody checks the version and checksum of the value val stored
// under key and returns the body before the checksum.
func checkedBody(key, val []byte) ([]byte, error) {
	if len(val) < 1+crcSize {
		return nil, fmt.Errorf("value of %d bytes is too short", len(val))
	}
	if val[0] != entryVersion {
		return nil, fmt.Errorf("unknown entry encoding version %d", val[0])
	}
	body := val[:len(val)-crcSize]
	want := binary.BigEndian.Uint32(val[len(val)-crcSize:])
	if got := crc32Sum(key, body); got != want {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return body, nil
}

// errTruncated is the cause of every read past the end of a value.
var errTruncated = errors.New("value truncated")

// reader walks an encoded value. The first error sticks; later reads return
// zero values, so parseEntry checks r.err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		r.fail(errTruncated)
		return 0
	case n < 0:
		r.fail(errors.New("varint overflows 64 bits"))
		return 0
	case n > 1 && r.b[n-1] == 0:
		// A trailing zero group adds nothing: an over-long encoding
		// appendEntry never writes.
		r.fail(errors.New("non-minimal varint"))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint32() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		r.fail(fmt.Errorf("value %d does not fit 32 bits", v))
		return 0
	}
	return uint32(v)
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	// Zig-zag, as binary.AppendVarint writes it.
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (r *reader) fixed(dst []byte) {
	if r.err != nil {
		return
	}
	if len(r.b) < len(dst) {
		r.fail(errTruncated)
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}

// raw returns a length-prefixed byte string, still pointing into the value.
// The length is checked against what remains before anything is allocated.
func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(fmt.Errorf("length %d exceeds the %d bytes left", n, len(r.b)))
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

// nonEmpty is raw for a field whose presence flag is set: empty would not
// be canonical.
func (r *reader) nonEmpty(field string) []byte {
	s := r.raw()
	if r.err == nil && len(s) == 0 {
		r.fail(fmt.Errorf("%s flagged present but empty", field))
	}
	return s
}

// parseEntry decodes the value body (version byte through the last field,
// no checksum) stored under key.
func parseEntry(key, body []byte) (*scanner.Entry, error) {
	if len(key) == 0 {
		return nil, errors.New("empty key")
	}
	if bytes.IndexByte(key, '/') >= 0 {
		return nil, errors.New("key contains '/'")
	}
	r := reader{b: body}
	if v := r.byte(); r.err == nil && v != entryVersion {
		return nil, fmt.Errorf("unknown entry encoding version %d", v)
	}
	e := &scanner.Entry{Path: keyPath(key)}
	e.Attrs = rules.AttrSet(r.uvarint())
	e.Type = rules.FileType(r.byte())
	flags := r.uvarint()
	if r.err == nil && flags&^flagAll != 0 {
		return nil, fmt.Errorf("unknown presence flags %#x", flags&^flagAll)
	}
	e.Mode = r.uint32()
	e.UID = r.uint32()
	e.GID = r.uint32()
	e.Size = r.varint()
	e.Blocks = r.varint()
	e.Nlink = r.uvarint()
	e.Inode = r.uvarint()
	e.Dev = r.uvarint()
	e.Rdev = r.uvarint()
	e.Atime = r.varint()
	e.Mtime = r.varint()
	e.Ctime = r.varint()
	e.E2fsattrs = r.uint32()
	for _, f := range digestFields {
		if e.Attrs.Has(f.attr) {
			r.fixed(f.get(&e.Digests))
		}
	}
	if flags&flagLink != 0 {
		e.LinkTarget = string(r.nonEmpty("link target"))
	}
	if flags&flagXattrs != 0 {
		n := r.uvarint()
		switch {
		case r.err != nil:
		case n == 0:
			r.fail(errors.New("xattrs flagged present but empty"))
		case n > uint64(len(r.b))/2:
			// Each xattr takes at least two length bytes.
			r.fail(fmt.Errorf("xattr count %d exceeds what %d bytes can hold", n, len(r.b)))
		default:
			e.Xattrs = make([]scanner.Xattr, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				name := string(r.raw())
				value := bytes.Clone(r.raw())
				e.Xattrs = append(e.Xattrs, scanner.Xattr{Name: name, Value: value})
			}
		}
	}
	if flags&flagACLAccess != 0 {
		e.ACLAccess = bytes.Clone(r.nonEmpty("access ACL"))
	}
	if flags&flagACLDefault != 0 {
		e.ACLDefault = bytes.Clone(r.nonEmpty("default ACL"))
	}
	if flags&flagSELinux != 0 {
		e.SELinux = string(r.nonEmpty("SELinux label"))
	}
	if flags&flagCaps != 0 {
		e.Caps = bytes.Clone(r.nonEmpty("capabilities"))
	}
	if flags&flagErr != 0 {
		e.Err = string(r.nonEmpty("error"))
	}
	if flags&flagPrefix != 0 {
		e.Prefix = &scanner.Prefix{Size: r.varint()}
		for _, f := range digestFields {
			if e.Attrs.Has(f.attr) {
				r.fixed(f.get(&e.Prefix.Digests))
			}
		}
	}
	if flags&flagUncompressed != 0 {
		e.Uncompressed = &scanner.Digests{}
		for _, f := range digestFields {
			if e.Attrs.Has(f.attr) {
				r.fixed(f.get(e.Uncompressed))
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes of trailing garbage", len(r.b))
	}
	return e, nil
}

// crc32Sum is the entry checksum over key and body.
func crc32Sum(key, body []byte) uint32 {
	t := castagnoli()
	return crc32.Update(crc32.Checksum(key, t), t, body)
}
