package aoetest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files (the vblade captures need root and vblade)")

// unhex decodes hex with spaces for readability.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	macA = net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0x0a}
	macB = net.HardwareAddr{0x02, 0xa0, 0xe0, 0x00, 0x00, 0x0b}
)

func TestHeaderGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Header
		hex  string
	}{
		{"query config request", Header{Version: 1, Shelf: 7, Slot: 3, Command: CmdConfig, Tag: 0x01020304},
			"10 00 0007 03 01 01020304"},
		{"ata response", Header{Version: 1, Flags: FlagResponse, Shelf: 7, Slot: 3, Command: CmdATA, Tag: 0xdeadbeef},
			"18 00 0007 03 00 deadbeef"},
		{"error response", Header{Version: 1, Flags: FlagResponse | FlagError, Error: ErrCodeBadArgument, Shelf: 0x1234, Slot: 0xfe, Command: CmdATA, Tag: 1},
			"1c 02 1234 fe 00 00000001"},
		{"wildcards", Header{Version: 1, Shelf: ShelfAny, Slot: SlotAny, Command: CmdConfig},
			"10 00 ffff ff 01 00000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.h.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode: got % x, want % x", got, want)
			}
			h, err := ParseHeader(want)
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.h {
				t.Errorf("decode: got %+v, want %+v", h, tc.h)
			}
		})
	}
}

func TestFrameGolden(t *testing.T) {
	cfg, err := Config{CCmd: ConfigRead}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	read, err := ATA{SectorCount: 1, CmdStatus: ATAReadSectors, LBA: 0x0abcdef1}.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    Frame
		hex  string
	}{
		{"broadcast query config, padded to 60",
			Frame{Dst: Broadcast, Src: macB, Header: Header{Version: 1, Shelf: 7, Slot: 3, Command: CmdConfig, Tag: 5}, Payload: cfg},
			"ffffffffffff 02a0e000000b 88a2 10 00 0007 03 01 00000005" +
				" 0000 0000 00 00 0000" + strings.Repeat("00", 60-32)},
		{"read sectors lba28",
			Frame{Dst: macA, Src: macB, Header: Header{Version: 1, Shelf: 7, Slot: 3, Command: CmdATA, Tag: 6}, Payload: read},
			"02a0e000000a 02a0e000000b 88a2 10 00 0007 03 00 00000006" +
				" 00 00 01 20 f1debc ea 0000 0000" + strings.Repeat("00", 60-36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.f.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode:\n got % x\nwant % x", got, want)
			}
			f, err := ParseFrame(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Dst, tc.f.Dst) || !bytes.Equal(f.Src, tc.f.Src) || f.Header != tc.f.Header {
				t.Errorf("decode: got %s %s %+v, want %s %s %+v", f.Dst, f.Src, f.Header, tc.f.Dst, tc.f.Src, tc.f.Header)
			}
			if !bytes.HasPrefix(f.Payload, tc.f.Payload) {
				t.Errorf("payload % x does not start with % x", f.Payload, tc.f.Payload)
			}
		})
	}
}

func TestConfigGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		hex  string
	}{
		{"read request", Config{CCmd: ConfigRead}, "0000 0000 00 00 0000"},
		{"vblade answer", Config{BufferCount: 16, Firmware: 0x4019, SectorCount: 2, Version: 1}, "0010 4019 02 10 0000"},
		{"with string", Config{BufferCount: 1, Firmware: 2, SectorCount: 3, Version: 1, CCmd: ConfigForceSet, String: []byte("apollo")},
			"0001 0002 03 14 0006 61706f6c6c6f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.c.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode: got % x, want % x", got, want)
			}
			// Trailing padding after the string is ignored.
			c, err := ParseConfig(append(want, 0, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if tc.c.String == nil {
				tc.c.String = []byte{}
			}
			if !reflect.DeepEqual(c, tc.c) {
				t.Errorf("decode: got %+v, want %+v", c, tc.c)
			}
		})
	}
}

func TestATAGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    ATA
		hex  string
	}{
		{"read sectors lba 0", ATA{SectorCount: 1, CmdStatus: ATAReadSectors},
			"00 00 01 20 000000 e0 0000 0000"},
		{"read sectors lba28 max", ATA{SectorCount: 1, CmdStatus: ATAReadSectors, LBA: MaxLBA28},
			"00 00 01 20 ffffff ef 0000 0000"},
		{"read sectors ext", ATA{AFlags: ATAExtended, SectorCount: 2, CmdStatus: ATAReadSectorsExt, LBA: 0x0000_8765_4321_0fed},
			"40 00 02 24 ed0f21436587 0000"},
		{"response with data", ATA{CmdStatus: ATAStatusDRDY, LBA: 5, Data: []byte("sector")},
			"00 00 00 40 050000 e0 0000 0000 736563746f72"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got, err := tc.a.AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encode: got % x, want % x", got, want)
			}
			a, err := ParseATA(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a, tc.a) {
				t.Errorf("decode: got %+v, want %+v", a, tc.a)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  func() ([]byte, error)
	}{
		{"version over 4 bits", func() ([]byte, error) { return Header{Version: 16}.AppendBinary(nil) }},
		{"flags over 4 bits", func() ([]byte, error) { return Header{Flags: 0x10}.AppendBinary(nil) }},
		{"short MAC", func() ([]byte, error) { return Frame{Dst: Broadcast, Src: macA[:5]}.AppendBinary(nil) }},
		{"config ccmd over 4 bits", func() ([]byte, error) { return Config{CCmd: 16}.AppendBinary(nil) }},
		{"config string too long", func() ([]byte, error) { return Config{String: make([]byte, MaxConfigLen+1)}.AppendBinary(nil) }},
		{"lba28 overflow", func() ([]byte, error) { return ATA{LBA: MaxLBA28 + 1}.AppendBinary(nil) }},
		{"lba48 overflow", func() ([]byte, error) { return ATA{AFlags: ATAExtended, LBA: MaxLBA48 + 1}.AppendBinary(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.enc()
			if !errors.Is(err, ErrField) {
				t.Errorf("got % x, %v; want ErrField", b, err)
			}
			if len(b) != 0 {
				t.Errorf("wrote % x on error", b)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func(b []byte) error
		hex   string
		want  error
	}{
		{"header short", func(b []byte) error { _, err := ParseHeader(b); return err }, "10 00 0007 03 01 010203", ErrShort},
		{"frame without Ethernet header", func(b []byte) error { _, err := ParseFrame(b); return err }, "ffffffffffff 02a0e000000b 88", ErrShort},
		{"frame of IPv4", func(b []byte) error { _, err := ParseFrame(b); return err }, "ffffffffffff 02a0e000000b 0800 4500", ErrEtherType},
		{"frame with short header", func(b []byte) error { _, err := ParseFrame(b); return err }, "ffffffffffff 02a0e000000b 88a2 1000", ErrShort},
		{"config short", func(b []byte) error { _, err := ParseConfig(b); return err }, "0010 4019 02 10 00", ErrShort},
		{"config string cut", func(b []byte) error { _, err := ParseConfig(b); return err }, "0010 4019 02 10 0004 6162", ErrShort},
		{"config string too long", func(b []byte) error { _, err := ParseConfig(b); return err }, "0010 4019 02 10 0401" + strings.Repeat("00", 1025), ErrField},
		{"ata short", func(b []byte) error { _, err := ParseATA(b); return err }, "00 00 01 20 000000 e0 0000 00", ErrShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(unhex(t, tc.hex)); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// capture is the decoded form of a frame vblade sent, kept as a golden.
type capture struct {
	Dst, Src string
	Header   Header
	Config   *Config `json:",omitempty"`
	ATA      *ATA    `json:",omitempty"`
}

func decodeCapture(b []byte) (capture, error) {
	f, err := ParseFrame(b)
	if err != nil {
		return capture{}, err
	}
	c := capture{Dst: f.Dst.String(), Src: f.Src.String(), Header: f.Header}
	switch f.Command {
	case CmdConfig:
		cfg, err := ParseConfig(f.Payload)
		if err != nil {
			return c, err
		}
		c.Config = &cfg
	case CmdATA:
		a, err := ParseATA(f.Payload)
		if err != nil {
			return c, err
		}
		c.ATA = &a
	}
	return c, nil
}

// TestVbladeCaptures decodes answers captured from a real vblade (TestVblade
// -update) and compares them with their goldens (-update rewrites them).
func TestVbladeCaptures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := decodeCapture(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.Header.Version != Version || c.Header.Flags&FlagResponse == 0 || c.Header.Shelf != 7 || c.Header.Slot != 3 {
				t.Errorf("header %+v: want a version 1 response from 7.3", c.Header)
			}
			if c.ATA != nil && !bytes.HasPrefix(c.ATA.Data, []byte("AOETEST-SECTOR-0")) {
				t.Errorf("read answer data starts %q, want the sector 0 marker", c.ATA.Data[:16])
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".bin") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoded %s differs from %s:\n got %s\nwant %s", file, golden, got, want)
			}
			// Re-encoding a parsed frame gives back the captured bytes.
			f, _ := ParseFrame(b)
			again, err := f.AppendBinary(nil)
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoded % x, %v; want % x", again, err, b)
			}
		})
	}
}

// FuzzParseFrame checks that no input crashes the decoders, that a parsed
// frame re-encodes to its input (padded to MinFrameLen), and that a parsed
// argument survives encode and decode unchanged.
func FuzzParseFrame(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(unhex(f, "ffffffffffff 02a0e000000b 88a2 10 00 0007 03 01 00000005 0000 0000 00 00 0004 6162"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		if err != nil {
			return
		}
		out, err := fr.AppendBinary(nil)
		if err != nil {
			t.Fatalf("re-encoding a parsed frame: %v", err)
		}
		want := append([]byte{}, b...)
		for len(want) < MinFrameLen {
			want = append(want, 0)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded % x, want % x", out, want)
		}
		if c, err := ParseConfig(fr.Payload); err == nil {
			enc, err := c.AppendBinary(nil)
			if err != nil {
				t.Fatalf("re-encoding config %+v: %v", c, err)
			}
			if c2, err := ParseConfig(enc); err != nil || !reflect.DeepEqual(c, c2) {
				t.Fatalf("config %+v became %+v, %v", c, c2, err)
			}
		}
		if a, err := ParseATA(fr.Payload); err == nil {
			enc, err := a.AppendBinary(nil)
			if err != nil {
				t.Fatalf("re-encoding ATA %+v: %v", a, err)
			}
			if a2, err := ParseATA(enc); err != nil || !reflect.DeepEqual(a, a2) {
				t.Fatalf("ATA %+v became %+v, %v", a, a2, err)
			}
		}
	})
}
