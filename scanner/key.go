package scanner

import (
	"bytes"
	"strings"
)

// Key returns the database key of path: path with every '/' mapped to 0x00.
// Byte order of keys is the scanner's emit order (depth-first pre-order,
// children sorted bytewise), because a NUL sorts below every byte a file
// name can hold: "/a/b" (key "\x00a\x00b") sorts before "/a!b".
func Key(path string) []byte { return AppendKey(make([]byte, 0, len(path)), path) }

// AppendKey appends Key(path) to dst.
func AppendKey(dst []byte, path string) []byte {
	k0 := len(dst)
	dst = append(dst, path...)
	for i := k0; i < len(dst); i++ {
		if dst[i] == '/' {
			dst[i] = 0
		}
	}
	return dst
}

// PathOfKey is the inverse of Key.
func PathOfKey(key []byte) string {
	// One allocation, of the string itself.
	var b strings.Builder
	b.Grow(len(key))
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			b.Write(key)
			return b.String()
		}
		b.Write(key[:i])
		b.WriteByte('/')
		key = key[i+1:]
	}
}

// KeyLess reports whether path a sorts before path b in key order (see Key)
// without allocating.
func KeyLess(a, b string) bool {
	return keyCompare(a, b) < 0
}

// keyCompare is bytes.Compare(Key(a), Key(b)).
func keyCompare(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == '/' {
			ca = 0
		}
		if cb == '/' {
			cb = 0
		}
		if ca == cb {
			continue
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
