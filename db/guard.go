package db

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime/debug"
)

// guard runs fn, which calls into bbolt on a file being read, and turns a
// panic into an error wrapping ErrCorrupt. bbolt reads pages straight from
// its memory map and panics (or faults, for a page past the end of a short
// file) on some corrupt files; SetPanicOnFault makes such faults panics
// this recover can see instead of a crash of the whole process. This is the
// one recover in the project (STYLE guideline 4); fn must not call back into
// caller code, or caller bugs would be reported as corrupt files.
func guard(op, path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corrupt(op, path, "bbolt: %v", r)
		}
	}()
	return fn()
}

// bbolt page layout (format version 2, stable since boltdb): a 16-byte
// header {id uint64, flags uint16, count uint16, overflow uint32} in the
// machine's byte order, and on branch pages count elements of 16 bytes
// {pos uint32, ksize uint32, pgid uint64}.
const (
	pageHeaderSize    = 16
	branchElementSize = 16
	branchPageFlag    = 0x01
	leafPageFlag      = 0x02
	// maxTreeDepth is far more than any real tree (a depth-6 tree of 4 KiB
	// pages already holds billions of entries); deeper means a loop.
	maxTreeDepth = 32
)

// checkTree walks the page tree rooted at root by reading page headers with
// pread, never through bbolt's memory map, and fails if a page is out of the
// file's page range, does not carry its own id, has a type other than
// branch or leaf, sits deeper than maxTreeDepth, or is reached twice.
//
// It exists because bbolt follows branch pointers recursively without any
// such check: one flipped bit that makes a branch point at itself or an
// ancestor sends its cursor (and tx.Check) into unbounded recursion, a
// fatal stack overflow no recover can catch. The walk reads one header per
// page of the tree but no entry data; leaf contents are checked entry by
// entry when they are read (CRC-32C per entry).
func checkTree(f io.ReaderAt, pageSize int, highWater uint64, root uint64, seen []bool) error {
	if root == 0 {
		return nil // inline bucket: its data lives in the parent's leaf
	}
	type frame struct {
		id    uint64
		depth int
	}
	stack := []frame{{root, 0}}
	page := make([]byte, pageSize)
	for len(stack) > 0 {
		fr := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if fr.id < 2 || fr.id >= highWater {
			return fmt.Errorf("page %d outside the data pages [2, %d)", fr.id, highWater)
		}
		if fr.depth > maxTreeDepth {
			return fmt.Errorf("page %d: tree deeper than %d levels", fr.id, maxTreeDepth)
		}
		if seen[fr.id] {
			return fmt.Errorf("page %d referenced twice", fr.id)
		}
		seen[fr.id] = true
		if _, err := f.ReadAt(page[:pageHeaderSize], int64(fr.id)*int64(pageSize)); err != nil {
			return fmt.Errorf("page %d: %w", fr.id, err)
		}
		id := binary.NativeEndian.Uint64(page[0:])
		flags := binary.NativeEndian.Uint16(page[8:])
		count := int(binary.NativeEndian.Uint16(page[10:]))
		overflow := uint64(binary.NativeEndian.Uint32(page[12:]))
		if id != fr.id {
			return fmt.Errorf("page %d identifies itself as %d", fr.id, id)
		}
		if fr.id+overflow >= highWater {
			return fmt.Errorf("page %d: %d overflow pages run past the data pages", fr.id, overflow)
		}
		for i := uint64(1); i <= overflow; i++ {
			if seen[fr.id+i] {
				return fmt.Errorf("page %d referenced twice", fr.id+i)
			}
			seen[fr.id+i] = true
		}
		switch flags {
		case leafPageFlag:
			continue
		case branchPageFlag:
		default:
			return fmt.Errorf("page %d has flags %#x, want branch or leaf", fr.id, flags)
		}
		if count == 0 {
			return fmt.Errorf("branch page %d is empty", fr.id)
		}
		size := int(1+overflow) * pageSize
		if pageHeaderSize+count*branchElementSize > size {
			return fmt.Errorf("branch page %d: %d elements overflow the page", fr.id, count)
		}
		if len(page) < size {
			page = make([]byte, size)
		}
		if _, err := f.ReadAt(page[pageHeaderSize:size], int64(fr.id)*int64(pageSize)+pageHeaderSize); err != nil {
			return fmt.Errorf("page %d: %w", fr.id, err)
		}
		// Keys are read by cursor seeks and by tx.Check, which runs in a
		// goroutine of its own where a fault cannot be recovered: make
		// sure every key lies inside its page, and that keys increase.
		var prev []byte
		for i := 0; i < count; i++ {
			el := pageHeaderSize + i*branchElementSize
			pos := int(binary.NativeEndian.Uint32(page[el:]))
			ksize := int(binary.NativeEndian.Uint32(page[el+4:]))
			if pos > size-el || ksize > size-el-pos {
				return fmt.Errorf("branch page %d: key %d lies outside the page", fr.id, i)
			}
			key := page[el+pos : el+pos+ksize]
			if i > 0 && bytes.Compare(prev, key) >= 0 {
				return fmt.Errorf("branch page %d: keys out of order at %d", fr.id, i)
			}
			prev = key
		}
		// Push in reverse so children are visited left to right (only
		// the error message depends on it).
		for i := count - 1; i >= 0; i-- {
			child := binary.NativeEndian.Uint64(page[pageHeaderSize+i*branchElementSize+8:])
			stack = append(stack, frame{child, fr.depth + 1})
		}
	}
	return nil
}
