package scanner

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"sync"

	"github.com/zeebo/blake3"

	"opsagent/rules"
)

// readBufSize is the chunk read from a file and fed to every digest in turn:
// 128 KiB stays in L2 cache while up to five digests walk over it, and makes
// the read system calls negligible (BenchmarkHash).
const readBufSize = 128 << 10

// bufPool recycles byte buffers of one size.
type bufPool struct {
	size int
	p    sync.Pool
}

func (b *bufPool) get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, b.size)
}

func (b *bufPool) put(buf []byte) { b.p.Put(&buf) }

var (
	readBufPool   = &bufPool{size: readBufSize}
	direntBufPool = &bufPool{size: direntBufSize}
)

// digester holds one reusable state per digest; states are created on first
// use and Reset, never reallocated, between files.
type digester struct {
	md5, sha1, sha256, sha512 hash.Hash
	b3                        *blake3.Hasher
	active                    []hash.Hash // the states of the current file, reused
}

// start resets and activates the states attrs asks for.
func (d *digester) start(attrs rules.AttrSet) {
	d.active = d.active[:0]
	if attrs.Has(rules.AttrMD5) {
		if d.md5 == nil {
			d.md5 = md5.New()
		}
		d.md5.Reset()
		d.active = append(d.active, d.md5)
	}
	if attrs.Has(rules.AttrSHA1) {
		if d.sha1 == nil {
			d.sha1 = sha1.New()
		}
		d.sha1.Reset()
		d.active = append(d.active, d.sha1)
	}
	if attrs.Has(rules.AttrSHA256) {
		if d.sha256 == nil {
			d.sha256 = sha256.New()
		}
		d.sha256.Reset()
		d.active = append(d.active, d.sha256)
	}
	if attrs.Has(rules.AttrSHA512) {
		if d.sha512 == nil {
			d.sha512 = sha512.New()
		}
		d.sha512.Reset()
		d.active = append(d.active, d.sha512)
	}
	if attrs.Has(rules.AttrBLAKE3) {
		if d.b3 == nil {
			d.b3 = blake3.New()
		}
		d.b3.Reset()
		d.active = append(d.active, d.b3)
	}
}

func (d *digester) write(p []byte) {
	for _, h := range d.active {
		h.Write(p)
	}
}

// sum stores the current digests of the active states in out. Sum does not
// change a state, so hashing may continue afterwards (growing prefixes).
func (d *digester) sum(attrs rules.AttrSet, out *Digests) {
	if attrs.Has(rules.AttrMD5) {
		d.md5.Sum(out.MD5[:0])
	}
	if attrs.Has(rules.AttrSHA1) {
		d.sha1.Sum(out.SHA1[:0])
	}
	if attrs.Has(rules.AttrSHA256) {
		d.sha256.Sum(out.SHA256[:0])
	}
	if attrs.Has(rules.AttrSHA512) {
		d.sha512.Sum(out.SHA512[:0])
	}
	if attrs.Has(rules.AttrBLAKE3) {
		d.b3.Sum(out.BLAKE3[:0])
	}
}
