// Package watch follows changes to the scanned file systems between scans
// with fanotify (FAN_MARK_FILESYSTEM, FAN_REPORT_DFID_NAME): one mark per
// file system, events resolved to paths through the directory's file
// handle. The records are parsed by pure functions (ParseEvents); the
// Watcher is the thin I/O around them.
package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Event masks (linux/fanotify.h), the ones the watcher asks for and reads.
const (
	MaskModify     uint64 = 0x00000002
	MaskAttrib     uint64 = 0x00000004
	MaskCloseWrite uint64 = 0x00000008
	MaskMovedFrom  uint64 = 0x00000040
	MaskMovedTo    uint64 = 0x00000080
	MaskCreate     uint64 = 0x00000100
	MaskDelete     uint64 = 0x00000200
	MaskDeleteSelf uint64 = 0x00000400
	MaskOverflow   uint64 = 0x00004000
	MaskOnDir      uint64 = 0x40000000

	// Mask is what the watcher marks every file system with.
	Mask = MaskCreate | MaskModify | MaskAttrib | MaskMovedFrom | MaskMovedTo |
		MaskDelete | MaskDeleteSelf | MaskCloseWrite | MaskOnDir
)

// Info record types (FAN_EVENT_INFO_TYPE_*).
const (
	infoFID      = 1
	infoDFIDName = 2
	infoDFID     = 3
)

const (
	metadataVersion = 3  // FANOTIFY_METADATA_VERSION
	metadataLen     = 24 // sizeof(struct fanotify_event_metadata)
	infoHeaderLen   = 4  // sizeof(struct fanotify_event_info_header)
	fsidLen         = 8  // __kernel_fsid_t
	handleHeaderLen = 8  // struct file_handle without f_handle
	maxHandleBytes  = 128
)

// Record is one event as the kernel wrote it: the mask, the pid that caused
// it, and the directory (file system id and handle) plus the name of the
// entry inside it. Name is "" for an event on the directory itself
// (FAN_DELETE_SELF, or an FID-only record), or "." as the kernel reports
// some self events.
type Record struct {
	Mask       uint64
	PID        int32
	FSID       [2]int32
	HandleType int32
	Handle     []byte // the f_handle bytes (copied)
	Name       string
	// Self is true when the record names the object itself (FID info),
	// not a directory and an entry in it.
	Self bool
}

// Overflow reports whether the record says the kernel's queue overflowed
// and events were lost.
func (r Record) Overflow() bool { return r.Mask&MaskOverflow != 0 }

// ErrRecord is wrapped by every error of ParseEvents.
var ErrRecord = errors.New("watch: malformed fanotify record")

// ParseEvents parses what one read(2) of a fanotify descriptor returned
// (initialised with FAN_REPORT_DFID_NAME) and calls fn for every event.
// An event with several info records gives the directory-and-name one.
// A malformed buffer gives an error wrapping ErrRecord with the offset,
// never a panic; the records before it have been passed to fn.
func ParseEvents(buf []byte, fn func(Record)) error {
	ne := binary.NativeEndian
	for off := 0; off < len(buf); {
		rest := buf[off:]
		if len(rest) < metadataLen {
			return fmt.Errorf("%w at byte %d: %d bytes left, a header needs %d", ErrRecord, off, len(rest), metadataLen)
		}
		evLen := int(ne.Uint32(rest[0:]))
		vers := rest[4]
		metaLen := int(ne.Uint16(rest[6:]))
		if vers != metadataVersion {
			return fmt.Errorf("%w at byte %d: metadata version %d, want %d", ErrRecord, off, vers, metadataVersion)
		}
		if metaLen < metadataLen || evLen < metaLen || evLen > len(rest) {
			return fmt.Errorf("%w at byte %d: event length %d, metadata length %d, %d bytes left", ErrRecord, off, evLen, metaLen, len(rest))
		}
		rec := Record{Mask: ne.Uint64(rest[8:]), PID: int32(ne.Uint32(rest[20:]))}
		if err := parseInfos(rest[metaLen:evLen], &rec); err != nil {
			return fmt.Errorf("%w at byte %d: %w", ErrRecord, off, err)
		}
		fn(rec)
		off += evLen
	}
	return nil
}

// parseInfos reads the info records of one event into rec, preferring
// the directory-and-name record.
func parseInfos(b []byte, rec *Record) error {
	ne := binary.NativeEndian
	haveName := false
	for len(b) > 0 {
		if len(b) < infoHeaderLen {
			return fmt.Errorf("%d bytes left, an info header needs %d", len(b), infoHeaderLen)
		}
		typ := b[0]
		n := int(ne.Uint16(b[2:]))
		if n < infoHeaderLen || n > len(b) {
			return fmt.Errorf("info record of length %d with %d bytes left", n, len(b))
		}
		body := b[infoHeaderLen:n]
		b = b[n:]
		switch typ {
		case infoFID, infoDFID, infoDFIDName:
		default:
			continue // a record type this watcher did not ask for (pidfd, error, range)
		}
		if haveName {
			continue
		}
		if len(body) < fsidLen+handleHeaderLen {
			return fmt.Errorf("info record type %d: %d bytes, too short for a file handle", typ, len(body))
		}
		fsid := [2]int32{int32(ne.Uint32(body[0:])), int32(ne.Uint32(body[4:]))}
		hb := int(ne.Uint32(body[fsidLen:]))
		ht := int32(ne.Uint32(body[fsidLen+4:]))
		h := body[fsidLen+handleHeaderLen:]
		if hb <= 0 || hb > maxHandleBytes || hb > len(h) {
			return fmt.Errorf("info record type %d: handle of %d bytes in %d", typ, hb, len(h))
		}
		name := ""
		if typ == infoDFIDName {
			tail := h[hb:]
			end := -1
			for i, c := range tail {
				if c == 0 {
					end = i
					break
				}
			}
			if end < 0 {
				return fmt.Errorf("info record type %d: name without its NUL", typ)
			}
			name = string(tail[:end])
			haveName = true
		}
		rec.FSID = fsid
		rec.HandleType = ht
		rec.Handle = append([]byte(nil), h[:hb]...)
		rec.Name = name
		rec.Self = typ == infoFID
	}
	return nil
}
