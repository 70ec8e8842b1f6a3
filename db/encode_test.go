package db

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"opsagent/rules"
	"opsagent/scanner"
)

var update = flag.Bool("update", false, "update golden files")

// roundTripCases covers every Entry field at least once.
func roundTripCases() []struct {
	name string
	e    scanner.Entry
} {
	var every scanner.Digests
	copy(every.MD5[:], fill(16, 1))
	copy(every.SHA1[:], fill(20, 2))
	copy(every.SHA256[:], fill(32, 3))
	copy(every.SHA512[:], fill(64, 4))
	copy(every.BLAKE3[:], fill(32, 5))
	huge := fill(1<<20, 6)
	return []struct {
		name string
		e    scanner.Entry
	}{
		{"root-dir", scanner.Entry{Path: "/", Type: rules.TypeDir, Attrs: normal, Mode: 0o40755, Nlink: 19, Inode: 2, Dev: 2049}},
		{"zero", scanner.Entry{Path: "/z"}},
		{"every-digest", scanner.Entry{Path: "/bin/ls", Type: rules.TypeFile, Attrs: normal | allHashes, Digests: every}},
		{"md5-only-ignores-others", scanner.Entry{Path: "/etc/passwd", Type: rules.TypeFile, Attrs: normal, Digests: every}},
		{"sha1", scanner.Entry{Path: "/a", Attrs: rules.AttrSHA1.Set(), Digests: every}},
		{"sha512", scanner.Entry{Path: "/a", Attrs: rules.AttrSHA512.Set(), Digests: every}},
		{"blake3", scanner.Entry{Path: "/a", Attrs: rules.AttrBLAKE3.Set(), Digests: every}},
		{"all-stat-fields-max", scanner.Entry{Path: "/max", Type: rules.TypePort, Attrs: ^rules.AttrSet(0),
			Mode: ^uint32(0), UID: ^uint32(0), GID: ^uint32(0), Size: 1<<63 - 1, Blocks: 1<<63 - 1,
			Nlink: ^uint64(0), Inode: ^uint64(0), Dev: ^uint64(0), Rdev: ^uint64(0),
			Atime: 1<<63 - 1, Mtime: -1 << 63, Ctime: -1, E2fsattrs: ^uint32(0), Digests: every}},
		{"negative-times-and-sizes", scanner.Entry{Path: "/neg", Size: -1, Blocks: -512, Atime: -1_000_000_000, Mtime: -5, Ctime: -1 << 40}},
		{"device", scanner.Entry{Path: "/dev/sda", Type: rules.TypeBlockDev, Mode: 0o60660, GID: 6, Rdev: 8<<8 | 0}},
		{"symlink", scanner.Entry{Path: "/usr/bin/vi", Type: rules.TypeSymlink, Attrs: rules.AttrLinkName.Set(), Mode: 0o120777, LinkTarget: "/etc/alternatives/vi"}},
		{"non-utf8-path-and-target", scanner.Entry{Path: "/tmp/\xff\xfe\x80 name\t\n", Type: rules.TypeSymlink, LinkTarget: "\xc3\x28\x00x"}},
		{"xattrs", scanner.Entry{Path: "/x", Attrs: rules.AttrXattrs.Set(), Xattrs: []scanner.Xattr{
			{Name: "trusted.a", Value: []byte("1")}, {Name: "user.empty", Value: []byte{}}, {Name: "user.nil"}, {Name: "user.\xff", Value: []byte{0, 0xff}}}}},
		{"huge-xattr", scanner.Entry{Path: "/huge", Xattrs: []scanner.Xattr{{Name: "user.big", Value: huge}}}},
		{"acl-selinux-caps-e2fs", scanner.Entry{Path: "/usr/bin/ping", Attrs: rules.ExtraAttrs,
			ACLAccess: []byte{2, 0, 0, 0, 1, 0, 6, 0}, ACLDefault: []byte{2, 0, 0, 0, 4, 0, 5, 0},
			SELinux: "system_u:object_r:ping_exec_t:s0", Caps: []byte{1, 0, 0, 2, 0, 32, 0, 0}, E2fsattrs: 0x80010}},
		{"empty-byte-fields", scanner.Entry{Path: "/e", ACLAccess: []byte{}, ACLDefault: []byte{}, Caps: []byte{}, Xattrs: []scanner.Xattr{}}},
		{"per-entry-error", scanner.Entry{Path: "/root/secret", Type: rules.TypeFile, Attrs: normal, Mode: 0o100600, Err: "open /root/secret: file changed during read"}},
		{"uncompressed", scanner.Entry{Path: "/var/log/app.log.1.gz", Type: rules.TypeFile, Attrs: normal | rules.AttrCompressed.Set() | rules.AttrSHA256.Set(), Mode: 0o100640, Size: 30, Uncompressed: &scanner.Digests{MD5: [16]byte{4, 5}, SHA256: [32]byte{6, 7}}}},
		{"growing-prefix", scanner.Entry{Path: "/var/log/app.log", Type: rules.TypeFile, Attrs: normal | rules.AttrGrowing.Set() | rules.AttrSHA256.Set(), Mode: 0o100640, Size: 300, Prefix: &scanner.Prefix{Size: 120, Digests: scanner.Digests{MD5: [16]byte{1, 2, 3}, SHA256: [32]byte{9, 8, 7}}}}},
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			key := dbKey(tc.e.Path)
			enc := appendEntry(nil, key, &tc.e)
			got, err := decodeEntry(key, enc)
			if err != nil {
				t.Fatalf("decodeEntry(%x) error: %v", enc, err)
			}
			if want := normalized(&tc.e); !reflect.DeepEqual(got, want) {
				t.Errorf("decodeEntry = %+v, want %+v", got, want)
			}
			if again := appendEntry(nil, key, got); !bytes.Equal(again, enc) {
				t.Errorf("re-encoding = %x, want %x", again, enc)
			}
		})
	}
}

// TestEncodeGolden pins the version-1 encoding: a diff here changes the
// baseline format and needs a FormatVersion bump (or a good reason).
func TestEncodeGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, tc := range roundTripCases() {
		if tc.name == "huge-xattr" {
			continue // 2 MiB of hex is no review material
		}
		key := dbKey(tc.e.Path)
		fmt.Fprintf(&buf, "%s %x %x\n", tc.name, key, appendEntry(nil, key, &tc.e))
	}
	golden := filepath.Join("testdata", "entry-v1.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := mustRead(t, golden)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("encodings differ from %s (run with -update if intended):\n got:\n%s\nwant:\n%s", golden, buf.Bytes(), want)
	}
}

// goldenEncodings returns the key/value pairs of testdata/entry-v1.golden.
func goldenEncodings(t testing.TB) [][2][]byte {
	f, err := os.Open(filepath.Join("testdata", "entry-v1.golden"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][2][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("bad golden line %q", sc.Text())
		}
		k, err1 := hex.DecodeString(fields[1])
		v, err2 := hex.DecodeString(fields[2])
		if err1 != nil || err2 != nil {
			t.Fatalf("bad golden line %q", sc.Text())
		}
		out = append(out, [2][]byte{k, v})
	}
	return out
}

// reseal replaces the CRC of val (stored under key) with the right one, so
// a test can reach the checks behind it.
func reseal(key, val []byte) []byte {
	body := val[:len(val)-crcSize]
	return appendCRC(slices.Clone(body), key)
}

func appendCRC(body, key []byte) []byte {
	sum := crc32Sum(key, body)
	return binary.BigEndian.AppendUint32(body, sum)
}

func TestDecodeRejects(t *testing.T) {
	key := dbKey("/usr/bin/ping")
	e := roundTripCases()[14].e // acl-selinux-caps-e2fs
	valid := appendEntry(nil, key, &e)
	body := valid[:len(valid)-crcSize]
	// hdr is a valid value up to the digests: version, attrs, type, flags
	// and 13 zero integers.
	hdr := func(attrs rules.AttrSet, flags uint64) []byte {
		b := binary.AppendUvarint([]byte{entryVersion}, uint64(attrs))
		b = binary.AppendUvarint(append(b, 0), flags)
		return append(b, make([]byte, 13)...)
	}
	if _, err := parseEntry(key, hdr(0, 0)); err != nil {
		t.Fatalf("parseEntry(hdr) error: %v", err)
	}
	tests := []struct {
		name string
		key  []byte
		val  []byte
	}{
		{"empty", key, nil},
		{"short", key, []byte{1, 0, 0, 0}},
		{"version-0", key, reseal(key, append([]byte{0}, valid[1:]...))},
		{"version-2", key, reseal(key, append([]byte{2}, valid[1:]...))},
		{"bad-crc", key, append(slices.Clone(body), 0, 0, 0, 0)},
		{"flipped-body-bit", key, append(append([]byte{1, body[1] ^ 4}, body[2:]...), valid[len(body):]...)},
		{"other-key", dbKey("/usr/bin/pong"), valid},
		{"empty-key", nil, reseal(nil, valid)},
		{"slash-in-key", []byte("/usr"), reseal([]byte("/usr"), valid)},
		{"trailing-garbage", key, appendCRC(append(slices.Clone(body), 0), key)},
		{"truncated-body", key, appendCRC(slices.Clone(body[:len(body)-3]), key)},
		{"unknown-flag", key, appendCRC([]byte{1, 0, 0, 0x80, 0x01}, key)},
		{"non-minimal-varint", key, appendCRC([]byte{1, 0x80, 0x00, 0, 0}, key)},
		{"varint-overflow", key, appendCRC([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, key)},
		{"mode-over-32-bits", key, appendCRC([]byte{1, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10}, key)},
		{"huge-length", key, appendCRC(binary.AppendUvarint(hdr(0, flagLink), 1<<40), key)},
		{"length-past-end", key, appendCRC(append(binary.AppendUvarint(hdr(0, flagLink), 5), "abcd"...), key)},
		{"huge-xattr-count", key, appendCRC(append(binary.AppendUvarint(hdr(0, flagXattrs), 1<<40), 0, 0), key)},
		{"xattr-count-past-end", key, appendCRC(append(binary.AppendUvarint(hdr(0, flagXattrs), 2), 0, 0), key)},
		{"zero-xattrs-flagged", key, appendCRC(append(hdr(0, flagXattrs), 0), key)},
		{"empty-err-flagged", key, appendCRC(append(hdr(0, flagErr), 0), key)},
		{"digest-missing", key, appendCRC(append(hdr(rules.AttrMD5.Set(), 0), make([]byte, 15)...), key)},
		{"sha512-short", key, appendCRC(append(hdr(rules.AttrSHA512.Set(), 0), make([]byte, 63)...), key)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := decodeEntry(tc.key, tc.val)
			if err == nil {
				t.Fatalf("decodeEntry(%x, %x) = %+v, want error", tc.key, tc.val, e)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestKeyOrder checks that key order is the scanner's depth-first order:
// a directory's whole subtree comes before its next sibling.
func TestKeyOrder(t *testing.T) {
	ordered := []string{"/", "/a", "/a/b", "/a/b/c", "/a/z", "/a-b", "/a.b", "/a0", "/b", "/b\xff", "/\xff"}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if !keyLess(a, b) || keyLess(b, a) {
			t.Errorf("keyLess(%q, %q) = %v, want true", a, b, keyLess(a, b))
		}
		// Put checks order on keys, Join compares keys: both must agree
		// with the scanner's KeyLess.
		if bytes.Compare(dbKey(a), dbKey(b)) >= 0 {
			t.Errorf("dbKey(%q) >= dbKey(%q)", a, b)
		}
		if got := keyPath(dbKey(a)); got != a {
			t.Errorf("keyPath(dbKey(%q)) = %q", a, got)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, kv := range goldenEncodings(f) {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, key, val []byte) {
		// The checksum keeps random mutations from reaching the field
		// parser, so fuzz the parser on the body as well.
		check := func(e *scanner.Entry, err error, body []byte) {
			if err != nil {
				return
			}
			k := dbKey(e.Path)
			if !bytes.Equal(k, key) {
				t.Fatalf("decoded path %q has key %x, want %x", e.Path, k, key)
			}
			again := appendEntry(nil, k, e)
			if !bytes.Equal(again[:len(again)-crcSize], body) {
				t.Fatalf("re-encoding = %x, want %x", again, body)
			}
			// The peeks that skip decoding read the same fields.
			if in, ok := peekInode(body); !ok || in != (Inode{Dev: e.Dev, Ino: e.Inode}) {
				t.Fatalf("peekInode = %v %v, decode says %d/%d", in, ok, e.Dev, e.Inode)
			}
			if typ, ok := peekType(body); !ok || typ != e.Type {
				t.Fatalf("peekType = %v %v, decode says %v", typ, ok, e.Type)
			}
			if st, err := peekStat(k, again); err != nil || st != StatOf(e) {
				t.Fatalf("peekStat = %+v %v, decode says %+v", st, err, StatOf(e))
			}
		}
		peekInode(val) // never panics, whatever the bytes
		peekStat(key, val)
		e, err := decodeEntry(key, val)
		if err == nil {
			check(e, err, val[:len(val)-crcSize])
		}
		e, err = parseEntry(key, val)
		check(e, err, val)
	})
}

func BenchmarkEncode(b *testing.B) {
	entries := testEntries(1000)
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := entries[i%len(entries)]
		buf = appendEntry(buf[:0], dbKey(e.Path), e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	entries := testEntries(1000)
	keys := make([][]byte, len(entries))
	vals := make([][]byte, len(entries))
	for i, e := range entries {
		keys[i] = dbKey(e.Path)
		vals[i] = appendEntry(nil, keys[i], e)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := decodeEntry(keys[i%len(keys)], vals[i%len(vals)]); err != nil {
			b.Fatal(err)
		}
	}
}
