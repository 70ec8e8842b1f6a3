package db

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"time"
)

// FormatVersion is the baseline file format this agent writes and the only
// one it reads. It covers the bucket layout, the meta keys and the entry
// encoding (entryVersion). Bump it for any change an older agent would
// misread; Open refuses other versions with ErrVersion.
const FormatVersion = 1

// fileMode is the mode of every file db creates: baselines hold the hashes
// and ownership of every monitored file, which is nobody else's business.
const fileMode = 0o600

// Bucket names. A baseline holds exactly these two top-level buckets.
var (
	// bucketMeta holds one key per Meta field (metaKey* below).
	bucketMeta = []byte("meta")
	// bucketEntries maps dbKey(path) to the encoded scanner.Entry.
	bucketEntries = []byte("entries")
)

// Meta keys, all in bucketMeta. Written in the last transaction of a
// generation only, so a file cut short before Commit has none and reads as
// corrupt.
var (
	metaKeyFormat       = []byte("format")       // uvarint FormatVersion
	metaKeyAgentVersion = []byte("agentVersion") // string
	metaKeyHost         = []byte("host")         // string
	metaKeyKind         = []byte("kind")         // string: init, check, update
	metaKeyCreated      = []byte("created")      // 8 bytes big-endian Unix ns
	metaKeyRulesDigest  = []byte("rulesDigest")  // 32 bytes
	metaKeyEntries      = []byte("entries")      // uvarint entry count
	metaKeyRoot         = []byte("root")         // string: scanned root prefix
	metaKeyChecksum     = []byte("checksum")     // 4 bytes CRC-32C of the keys above
)

// Meta describes one baseline generation.
type Meta struct {
	// Format is the file format version; Create and Commit always write
	// FormatVersion whatever the caller sets.
	Format       int
	AgentVersion string
	Host         string
	// Kind names the run that wrote the generation: "init", "check",
	// "update".
	Kind string
	// Created is the creation time; it is stored in Unix nanoseconds and
	// reads back in UTC.
	Created time.Time
	// RulesDigest identifies the policy the scan used. Zero: the entries
	// were recorded under different policies (agent update --packages
	// after a rules edit keeps the entries it does not rescan); the next
	// full update or init records one again.
	RulesDigest [32]byte
	// Entries is the number of entries; Commit sets it.
	Entries uint64
	// Root is the root prefix the paths were scanned under ("" for /).
	Root string
}

// castagnoli returns the CRC-32C table, made on first use: making it takes
// a fifth of a millisecond, which a process that opens no database (every
// sshval session starts this binary) need not pay at start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// metaPairs returns the meta keys and values of m in storage order (without
// the checksum).
func metaPairs(m Meta) [][2][]byte {
	created := make([]byte, 8)
	binary.BigEndian.PutUint64(created, uint64(m.Created.UnixNano()))
	return [][2][]byte{
		{metaKeyFormat, binary.AppendUvarint(nil, uint64(m.Format))},
		{metaKeyAgentVersion, []byte(m.AgentVersion)},
		{metaKeyHost, []byte(m.Host)},
		{metaKeyKind, []byte(m.Kind)},
		{metaKeyCreated, created},
		{metaKeyRulesDigest, m.RulesDigest[:]},
		{metaKeyEntries, binary.AppendUvarint(nil, m.Entries)},
		{metaKeyRoot, []byte(m.Root)},
	}
}

// metaChecksum is the CRC-32C over every key and value of pairs, each
// length-prefixed so that moving bytes between fields changes the sum.
func metaChecksum(pairs [][2][]byte) []byte {
	var buf []byte
	for _, kv := range pairs {
		buf = binary.AppendUvarint(buf, uint64(len(kv[0])))
		buf = append(buf, kv[0]...)
		buf = binary.AppendUvarint(buf, uint64(len(kv[1])))
		buf = append(buf, kv[1]...)
	}
	return binary.BigEndian.AppendUint32(nil, crc32.Checksum(buf, castagnoli()))
}

// decodeMeta rebuilds a Meta from the getter of the meta bucket. A format
// other than FormatVersion is ErrVersion (checked first: a newer format may
// lay out everything else differently); anything else wrong is a plain
// error the caller wraps into ErrCorrupt.
func decodeMeta(get func([]byte) []byte) (Meta, error) {
	var m Meta
	fv := get(metaKeyFormat)
	if fv == nil {
		return m, fmt.Errorf("meta has no format version (unfinished generation?)")
	}
	format, n := binary.Uvarint(fv)
	if n <= 0 || n != len(fv) {
		return m, fmt.Errorf("meta format version unreadable")
	}
	if format != FormatVersion {
		return m, fmt.Errorf("%w: file has format %d, this agent reads format %d", ErrVersion, format, FormatVersion)
	}
	m.Format = int(format)
	vals := make(map[string][]byte)
	for _, k := range [][]byte{metaKeyAgentVersion, metaKeyHost, metaKeyKind, metaKeyCreated,
		metaKeyRulesDigest, metaKeyEntries, metaKeyRoot, metaKeyChecksum} {
		v := get(k)
		if v == nil {
			return m, fmt.Errorf("meta key %q missing", k)
		}
		vals[string(k)] = bytes.Clone(v)
	}
	m.AgentVersion = string(vals[string(metaKeyAgentVersion)])
	m.Host = string(vals[string(metaKeyHost)])
	m.Kind = string(vals[string(metaKeyKind)])
	m.Root = string(vals[string(metaKeyRoot)])
	created := vals[string(metaKeyCreated)]
	if len(created) != 8 {
		return m, fmt.Errorf("meta created time has %d bytes, want 8", len(created))
	}
	m.Created = time.Unix(0, int64(binary.BigEndian.Uint64(created))).UTC()
	digest := vals[string(metaKeyRulesDigest)]
	if len(digest) != len(m.RulesDigest) {
		return m, fmt.Errorf("meta rules digest has %d bytes, want %d", len(digest), len(m.RulesDigest))
	}
	copy(m.RulesDigest[:], digest)
	ev := vals[string(metaKeyEntries)]
	entries, n := binary.Uvarint(ev)
	if n <= 0 || n != len(ev) {
		return m, fmt.Errorf("meta entry count unreadable")
	}
	m.Entries = entries
	// The re-encoded pairs must match the stored ones byte for byte, so
	// the checksum also proves the decoding was canonical.
	if want := metaChecksum(metaPairs(m)); !bytes.Equal(vals[string(metaKeyChecksum)], want) {
		return m, fmt.Errorf("meta checksum mismatch")
	}
	return m, nil
}
