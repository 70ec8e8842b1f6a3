package db

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"opsagent/scanner"
)

// corruptFixture writes a real baseline of a few thousand entries once per
// test and returns its bytes and entries.
func corruptFixture(t *testing.T) ([]byte, []*scanner.Entry) {
	t.Helper()
	entries := testEntries(3000)
	path := writeBaseline(t, t.TempDir(), "baseline.db", entries)
	return mustRead(t, path), entries
}

// checkDamaged opens and reads the file at path and requires either an
// error wrapping ErrCorrupt or ErrVersion, or (for damage in bytes no
// reader looks at) exactly the original content. It reports which.
func checkDamaged(t *testing.T, path string, want []*scanner.Entry, withVerify bool) (failed bool) {
	t.Helper()
	done := make(chan struct{})
	var meta Meta
	var got []*scanner.Entry
	var err, verr error
	go func() {
		defer close(done)
		meta, got, err = readAll(path)
		if withVerify {
			verr = Verify(path)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("reading %s hangs", path)
	}
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Errorf("read error %v, want ErrCorrupt or ErrVersion", err)
		}
		if withVerify && verr == nil {
			t.Errorf("Verify = nil on a file that does not read")
		}
		return true
	}
	if meta.Entries != uint64(len(want)) || meta.Host != testMeta().Host {
		t.Errorf("damaged file read without error but meta = %+v", meta)
	}
	if e := sameEntries(got, want); e != nil {
		t.Errorf("damaged file read without error but content differs: %v", e)
	}
	if withVerify && verr != nil && !errors.Is(verr, ErrCorrupt) {
		t.Errorf("Verify = %v, want nil or ErrCorrupt", verr)
	}
	return false
}

func TestOpenCorrupt(t *testing.T) {
	good, _ := corruptFixture(t)
	pageSize := 4096
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"zero-bytes", nil},
		{"one-byte", []byte{0}},
		{"zeros", make([]byte, 64<<10)},
		{"random", random},
		{"text", []byte("database_out=file:/var/lib/aide/aide.db\n")},
		{"meta-pages-only", good[:2*pageSize]},
		{"half-page", good[:pageSize/2]},
		{"truncated-one-page", good[:len(good)-pageSize]},
		{"truncated-one-byte", good[:len(good)-1]},
		{"truncated-half", good[:len(good)/2]},
		{"truncated-odd", good[:3*pageSize+123]},
		{"first-meta-zeroed", append(make([]byte, pageSize), good[pageSize:]...)},
		{"both-metas-zeroed", append(make([]byte, 2*pageSize), good[2*pageSize:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "baseline.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := Open(path)
			if err == nil {
				// Some damage only shows when entries are read.
				err = b.Each(func(*scanner.Entry) error { return nil })
				b.Close()
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Open+Each = %v, want ErrCorrupt", err)
			}
			if err := Verify(path); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Verify = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestTruncate cuts a real baseline at many offsets.
func TestTruncate(t *testing.T) {
	good, want := corruptFixture(t)
	path := filepath.Join(t.TempDir(), "baseline.db")
	for off := 0; off < len(good); off += 1 + len(good)/97 {
		if err := os.WriteFile(path, good[:off], 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			if !checkDamaged(t, path, want, false) {
				t.Errorf("file cut to %d of %d bytes read without error", off, len(good))
			}
		})
	}
}

// TestBitFlip flips single bits of a real baseline: every bit of the meta
// page headers and metas, and random bits elsewhere. Each file must fail
// with ErrCorrupt/ErrVersion or read back exactly (a flip in slack space,
// a free page, or the older meta page changes nothing).
func TestBitFlip(t *testing.T) {
	good, want := corruptFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "baseline.db")
	var offsets []int
	for _, page := range []int{0, 4096} {
		for i := page; i < page+80; i++ {
			offsets = append(offsets, i)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1500 {
		offsets = append(offsets, rng.IntN(len(good)))
	}
	var failed, intact int
	for n, off := range offsets {
		bit := byte(1) << (n % 8)
		data := bytes.Clone(good)
		data[off] ^= bit
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%d-bit%d", off, n%8), func(t *testing.T) {
			if checkDamaged(t, path, want, n%10 == 0) {
				failed++
			} else {
				intact++
			}
		})
	}
	t.Logf("%d flips: %d detected, %d in bytes that do not matter", len(offsets), failed, intact)
	if failed == 0 {
		t.Error("no flip was detected")
	}
}

// entriesRoot returns the entries bucket's root page and the page size of
// the baseline at path.
func entriesRoot(t *testing.T, path string) (root uint64, pageSize int) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketEntries).Root())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root, bdb.Info().PageSize
}

// TestBranchLoop makes a branch page point at itself, which sends bbolt's
// cursor (and tx.Check) into unbounded recursion: a fatal stack overflow
// unless Open refuses the file first.
func TestBranchLoop(t *testing.T) {
	good, want := corruptFixture(t)
	path := filepath.Join(t.TempDir(), "baseline.db")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	root, pageSize := entriesRoot(t, path)
	off := int(root) * pageSize
	if flags := binary.NativeEndian.Uint16(good[off+8:]); flags != branchPageFlag {
		t.Fatalf("entries root page %d has flags %#x, want a branch (fixture too small?)", root, flags)
	}
	tests := []struct {
		name  string
		child int    // element whose pointer is changed
		to    uint64 // new child page
	}{
		{"self-first", 0, root},
		{"self-last", int(binary.NativeEndian.Uint16(good[off+10:])) - 1, root},
		{"meta-page", 1, 0},
		{"past-end", 1, uint64(len(good) / pageSize)},
		{"twice", 1, binary.NativeEndian.Uint64(good[off+16+8:])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Clone(good)
			binary.NativeEndian.PutUint64(data[off+16+tc.child*16+8:], tc.to)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if !checkDamaged(t, path, want, true) {
				t.Error("damaged branch page not detected")
			}
		})
	}
}

// TestNotBaseline covers valid bbolt files that are not baselines, and a
// baseline from a future agent.
func TestNotBaseline(t *testing.T) {
	good, _ := corruptFixture(t)
	tests := []struct {
		name   string
		mutate func(tx *bolt.Tx) error
		want   error
	}{
		{"no-buckets", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			return tx.DeleteBucket(bucketEntries)
		}, ErrCorrupt},
		{"other-buckets", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("raft"))
			return err
		}, ErrCorrupt},
		{"no-meta-bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) }, ErrCorrupt},
		{"no-meta-keys", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			_, err := tx.CreateBucket(bucketMeta)
			return err
		}, ErrCorrupt},
		{"future-format", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaKeyFormat, binary.AppendUvarint(nil, FormatVersion+1))
		}, ErrVersion},
		{"format-zero", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaKeyFormat, binary.AppendUvarint(nil, 0))
		}, ErrVersion},
		{"meta-edited", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaKeyHost, []byte("otherhost"))
		}, ErrCorrupt},
		{"count-edited", func(tx *bolt.Tx) error {
			m := testMeta()
			m.Format, m.Entries = FormatVersion, 2999
			pairs := metaPairs(m)
			for _, kv := range pairs {
				if err := tx.Bucket(bucketMeta).Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(metaKeyChecksum, metaChecksum(pairs))
		}, ErrCorrupt},
		{"entry-deleted", func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bucketEntries).Cursor().First()
			return tx.Bucket(bucketEntries).Delete(k)
		}, ErrCorrupt},
		{"entry-is-bucket", func(tx *bolt.Tx) error {
			_, err := tx.Bucket(bucketEntries).CreateBucket([]byte("\x00zzz"))
			return err
		}, ErrCorrupt},
		{"value-edited", func(tx *bolt.Tx) error {
			k, v := tx.Bucket(bucketEntries).Cursor().Last()
			v = bytes.Clone(v)
			v[len(v)/2]++
			return tx.Bucket(bucketEntries).Put(bytes.Clone(k), v)
		}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "baseline.db")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(tc.mutate); err != nil {
				t.Fatal(err)
			}
			if err := bdb.Close(); err != nil {
				t.Fatal(err)
			}
			_, _, err = readAll(path)
			if !errors.Is(err, tc.want) {
				t.Errorf("readAll = %v, want %v", err, tc.want)
			}
			if err := Verify(path); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	if _, err := Open(dir); err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("Open(directory) = %v, want a non-corruption error", err)
	}
	t.Run("locked", func(t *testing.T) {
		path := writeBaseline(t, dir, "baseline.db", testEntries(10))
		holder, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Close()
		if b, err := Open(path); !errors.Is(err, ErrLocked) {
			if err == nil {
				b.Close()
			}
			t.Errorf("Open(exclusively locked) = %v, want ErrLocked", err)
		}
	})
}

func TestEachStops(t *testing.T) {
	path := writeBaseline(t, t.TempDir(), "baseline.db", testEntries(3000))
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop := errors.New("stop")
	n := 0
	err = b.Each(func(*scanner.Entry) error {
		if n++; n == 1500 {
			return stop
		}
		return nil
	})
	if err != stop || n != 1500 {
		t.Errorf("Each = %v after %d calls, want stop after 1500", err, n)
	}
}

func TestJoin(t *testing.T) {
	dir := t.TempDir()
	all := testEntries(5000)
	var oldEntries, curEntries []*scanner.Entry
	want := map[string]string{} // path: "both", "old", "cur"
	for i, e := range all {
		switch {
		case i%7 == 1:
			oldEntries = append(oldEntries, e)
			want[e.Path] = "old"
		case i%11 == 2:
			curEntries = append(curEntries, e)
			want[e.Path] = "cur"
		default:
			oldEntries = append(oldEntries, e)
			changed := *e
			changed.Size++
			curEntries = append(curEntries, &changed)
			want[e.Path] = "both"
		}
	}
	old, err := Open(writeBaseline(t, dir, "baseline.db", oldEntries))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	cur, err := Open(writeBaseline(t, dir, "last-check.db", curEntries))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	var prev string
	seen := 0
	err = Join(old, cur, func(o, c *scanner.Entry) error {
		var path, got string
		switch {
		case o != nil && c != nil:
			path, got = o.Path, "both"
			if c.Path != o.Path || c.Size != o.Size+1 {
				t.Errorf("Join paired %q (size %d) with %q (size %d)", o.Path, o.Size, c.Path, c.Size)
			}
		case o != nil:
			path, got = o.Path, "old"
		case c != nil:
			path, got = c.Path, "cur"
		default:
			t.Fatal("Join called fn(nil, nil)")
		}
		if seen > 0 && !keyLess(prev, path) {
			t.Errorf("Join visited %q after %q", path, prev)
		}
		prev = path
		seen++
		if want[path] != got {
			t.Errorf("Join(%q) side = %q, want %q", path, got, want[path])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(all) {
		t.Errorf("Join visited %d paths, want %d", seen, len(all))
	}
	t.Run("one-side-empty", func(t *testing.T) {
		empty, err := Open(writeBaseline(t, dir, "empty.db", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer empty.Close()
		for _, tc := range []struct {
			name     string
			old, cur *Baseline
		}{{"removed-all", old, empty}, {"added-all", empty, cur}, {"both-empty", empty, empty}} {
			n := 0
			err := Join(tc.old, tc.cur, func(o, c *scanner.Entry) error {
				if (o == nil) == (tc.old != empty) || (c == nil) == (tc.cur != empty) {
					t.Errorf("%s: fn(%v, %v)", tc.name, o, c)
				}
				n++
				return nil
			})
			wantN := len(oldEntries)
			if tc.old == empty {
				wantN = len(curEntries)
				if tc.cur == empty {
					wantN = 0
				}
			}
			if err != nil || n != wantN {
				t.Errorf("%s: Join = %v after %d calls, want nil after %d", tc.name, err, n, wantN)
			}
		}
	})
	t.Run("corrupt-side", func(t *testing.T) {
		data := mustRead(t, cur.Path())
		_, pageSize := entriesRoot(t, cur.Path())
		// Damage the last page holding entry data.
		data[len(data)-pageSize-pageSize/2] ^= 0x10
		bad := filepath.Join(dir, "bad.db")
		if err := os.WriteFile(bad, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := Open(bad)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open(bad) = %v", err)
			}
			return
		}
		defer b.Close()
		err = Join(old, b, func(o, c *scanner.Entry) error { return nil })
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("Join(corrupt) = %v, want ErrCorrupt or nil", err)
		}
	})
}

func BenchmarkEach(b *testing.B) {
	path := writeBaseline(b, b.TempDir(), "baseline.db", testEntries(100_000))
	bl, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer bl.Close()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := bl.Each(func(*scanner.Entry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkOpen(b *testing.B) {
	path := writeBaseline(b, b.TempDir(), "baseline.db", testEntries(100_000))
	for b.Loop() {
		bl, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		bl.Close()
	}
}
