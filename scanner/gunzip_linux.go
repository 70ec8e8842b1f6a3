package scanner

import (
	"compress/gzip"
	"errors"
	"io"

	"golang.org/x/sys/unix"

	"opsagent/rules"
)

// gzipMagic starts every gzip member (RFC 1952); aide 0.18.3 recognises a
// compressed file by it and notes any other file as having "no supported
// compression algorithm".
var gzipMagic = [2]byte{0x1f, 0x8b}

// preader reads fd from an offset with pread, leaving the file offset alone.
type preader struct {
	fd   int
	off  int64
	done <-chan struct{}
}

func (r *preader) Read(p []byte) (int, error) {
	select {
	case <-r.done:
		return 0, errStopped
	default:
	}
	for {
		n, err := unix.Pread(r.fd, p, r.off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		r.off += int64(n)
		return n, nil
	}
}

// errStopped ends a read when the scan is cancelled.
var errStopped = errors.New("scanner: scan stopped")

// gunzipDigests returns the digests attrs asks for of the decompressed
// content of the gzip file open at fd (all members, as zlib's gzread reads
// them), or nil when it is not gzip, does not decompress, or the scan stops.
// The file's own digests are already summed, so w.d is free for reuse.
func (w *worker) gunzipDigests(done <-chan struct{}, fd int, attrs rules.AttrSet) *Digests {
	var head [2]byte
	if n, err := unix.Pread(fd, head[:], 0); err != nil || n != 2 || head != gzipMagic {
		return nil
	}
	zr, err := gzip.NewReader(&preader{fd: fd, done: done})
	if err != nil {
		return nil
	}
	if w.buf == nil {
		w.buf = readBufPool.get()
	}
	w.d.start(attrs)
	for {
		k, err := zr.Read(w.buf)
		w.d.write(w.buf[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil
		}
	}
	var out Digests
	w.d.sum(attrs, &out)
	return &out
}
