// Package db owns the agent's on-disk state: baseline generations stored as
// bbolt files (written in sorted, chunked transactions and installed
// atomically), the streaming merge-join used to diff two generations, the
// compact versioned encoding of scanner.Entry values, and the state
// directory lock.
//
// db is the only package that imports go.etcd.io/bbolt, and no bbolt type
// appears in its API. It never prints, never exits, and never replaces a
// baseline with a file it cannot read: a new generation is written to a
// temporary file in the same directory, synced, and renamed over the old one,
// so the old baseline is never missing or half-written at any instant.
//
// Reading treats the file as untrusted input. bbolt panics (or faults on its
// memory map) on some corrupt files; every bbolt call on a file being read
// runs behind one recover boundary that turns those into errors wrapping
// ErrCorrupt. Each entry carries a CRC-32C over its key and value, so a
// flipped bit in stored data is reported instead of silently becoming a
// false "changed" line in a report.
package db
