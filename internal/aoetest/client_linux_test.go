package aoetest

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startVblade runs vblade in namespace ns until the test ends.
func startVblade(t *testing.T, ns string, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := Command(ns, "vblade", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting vblade: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return out
}

// sectorImage writes a sparse image of size bytes with marks[lba] at the
// start of sector lba.
func sectorImage(t *testing.T, path string, size int64, marks map[uint64]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for lba, m := range marks {
		if _, err := f.WriteAt([]byte(m), int64(lba)*SectorSize); err != nil {
			t.Fatal(err)
		}
	}
}

// waitAnswer polls shelf.slot until it answers a Query Config or limit
// passes.
func waitAnswer(t *testing.T, c *Client, shelf uint16, slot uint8, limit time.Duration, log *syncBuffer) Frame {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, f, err := c.QueryConfig(nil, shelf, slot, 200*time.Millisecond)
		if err == nil {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("vblade %d.%d never answered: %v\nvblade output:\n%s", shelf, slot, err, log)
		}
	}
}

// TestVblade runs the client against a real vblade in a namespace pair:
// vblade in A on veth-a with -m = B's MAC, the client in B.
func TestVblade(t *testing.T) {
	if err := Supported("vblade"); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const size = 8 << 20
	sectorImage(t, img, size, map[uint64]string{0: "AOETEST-SECTOR-0", 5: "AOETEST-SECTOR-5"})
	p := NewPair(t)
	log := startVblade(t, p.A, "-m", p.MACB.String(), "7", "3", p.IfaceA, img)
	// A second export without -m shows that an answer to a foreign source
	// MAC does reach the client: the silence of slot 3 below is vblade's
	// filter, not the network.
	open := startVblade(t, p.A, "7", "4", p.IfaceA, img)

	c, err := DialNamespace(p.B, p.IfaceB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !bytes.Equal(c.HardwareAddr(), p.MACB) {
		t.Fatalf("client MAC %s, want %s", c.HardwareAddr(), p.MACB)
	}
	waitAnswer(t, c, 7, 3, 5*time.Second, log)
	waitAnswer(t, c, 7, 4, 5*time.Second, open)

	t.Run("query config", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			dst   net.HardwareAddr
			shelf uint16
			slot  uint8
		}{
			{"broadcast", nil, 7, 3},
			{"unicast", p.MACA, 7, 3},
			{"any slot", nil, 7, SlotAny},
			{"any shelf", nil, ShelfAny, 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg, f, err := c.QueryConfig(tc.dst, tc.shelf, tc.slot, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(f.Src, p.MACA) || !bytes.Equal(f.Dst, p.MACB) {
					t.Errorf("answer %s -> %s, want %s -> %s", f.Src, f.Dst, p.MACA, p.MACB)
				}
				if f.Shelf != 7 || (tc.slot != SlotAny && f.Slot != 3) {
					t.Errorf("answer from %d.%d, want 7.3", f.Shelf, f.Slot)
				}
				if cfg.Version != Version || cfg.SectorCount == 0 || cfg.BufferCount == 0 {
					t.Errorf("config %+v: want version 1 and non-zero sector and buffer counts", cfg)
				}
				if *update && tc.name == "unicast" {
					writeCapture(t, "vblade-config.bin", f)
				}
			})
		}
	})

	t.Run("read", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			lba  uint64
			ext  bool
			want string
		}{
			{"sector 0 lba28", 0, false, "AOETEST-SECTOR-0"},
			{"sector 0 lba48", 0, true, "AOETEST-SECTOR-0"},
			{"sector 5 lba28", 5, false, "AOETEST-SECTOR-5"},
			{"sector 5 lba48", 5, true, "AOETEST-SECTOR-5"},
			{"last sector", size/SectorSize - 1, true, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				data, err := c.ReadSector(p.MACA, 7, 3, tc.lba, tc.ext, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				want := make([]byte, SectorSize)
				copy(want, tc.want)
				if !bytes.Equal(data, want) {
					t.Errorf("sector %d starts %q, want %q", tc.lba, data[:20], want[:20])
				}
			})
		}
		if *update {
			req, _ := ATA{SectorCount: 1, CmdStatus: ATAReadSectors}.AppendBinary(nil)
			f, err := c.Exchange(Frame{Dst: p.MACA, Header: Header{Shelf: 7, Slot: 3, Command: CmdATA}, Payload: req}, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			writeCapture(t, "vblade-read.bin", f)
		}
	})

	t.Run("past the end", func(t *testing.T) {
		_, err := c.ReadSector(p.MACA, 7, 3, size/SectorSize, true, time.Second)
		if !errors.Is(err, ErrATA) {
			t.Errorf("read past the end: got %v, want ErrATA", err)
		}
	})

	t.Run("no answer", func(t *testing.T) {
		foreign := net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0xee}
		for _, tc := range []struct {
			name  string
			src   net.HardwareAddr
			shelf uint16
			slot  uint8
		}{
			{"wrong slot", nil, 7, 9},
			{"wrong shelf", nil, 8, 3},
			{"source outside -m", foreign, 7, 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c.Source = tc.src
				defer func() { c.Source = c.HardwareAddr() }()
				start := time.Now()
				_, _, err := c.QueryConfig(nil, tc.shelf, tc.slot, 500*time.Millisecond)
				if !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("query config %d.%d: got %v, want ErrNoAnswer", tc.shelf, tc.slot, err)
				}
				if d := time.Since(start); d < 450*time.Millisecond {
					t.Errorf("gave up after %v, before the 500ms timeout", d)
				}
			})
		}
		t.Run("source outside -m is answered without -m", func(t *testing.T) {
			c.Source = foreign
			defer func() { c.Source = c.HardwareAddr() }()
			_, f, err := c.QueryConfig(nil, 7, 4, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Dst, foreign) {
				t.Errorf("answer to %s, want %s", f.Dst, foreign)
			}
			if _, err := c.ReadSector(p.MACA, 7, 4, 0, false, time.Second); err != nil {
				t.Errorf("read from 7.4 with a foreign source: %v", err)
			}
		})
	})
}

// writeCapture stores a frame as vblade sent it, for the offline golden and
// fuzz tests.
func writeCapture(t *testing.T, name string, f Frame) {
	t.Helper()
	b, err := f.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDoIsolation checks that Do enters the namespace only for fn: the
// namespace has no veth-b from outside, and the thread comes back.
func TestDoIsolation(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	p := NewPair(t)
	outside := func() bool { _, err := net.InterfaceByName(p.IfaceB); return err == nil }
	if outside() {
		t.Fatalf("%s is visible outside %s", p.IfaceB, p.B)
	}
	var inside bool
	for i := range 20 { // enough to land on every runtime thread
		err := Do(p.B, func() error {
			_, err := net.InterfaceByName(p.IfaceB)
			inside = err == nil
			return nil
		})
		if err != nil || !inside {
			t.Fatalf("run %d: inside=%v err=%v", i, inside, err)
		}
		if outside() {
			t.Fatalf("run %d: %s visible after Do returned", i, p.IfaceB)
		}
	}
	if err := Do("agt-no-such-namespace", func() error { return nil }); !errors.Is(err, ErrNamespace) {
		t.Errorf("Do in a missing namespace: got %v, want ErrNamespace", err)
	}
}

// TestCleanup checks that Close kills what runs in the namespaces and
// removes them, and that a second Close is harmless.
func TestCleanup(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	p := NewPair(t)
	cmd := Command(p.A, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// ip enters the namespace before it execs sleep: wait for that.
	for deadline := time.Now().Add(5 * time.Second); ; {
		pids, err := Pids(p.A)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 1 && pids[0] == cmd.Process.Pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pids in %s: %v, want [%d]", p.A, pids, cmd.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("sleep still running after Close")
	}
	for _, ns := range []string{p.A, p.B} {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still there: %v", ns, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		if f == p.A || f == p.B {
			t.Errorf("ip netns list still shows %s:\n%s", f, out)
		}
	}
}
