package aoetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// Wire constants of AoE (protocol revision 11, "AoEr11").
const (
	// EtherType is the Ethernet type of every AoE frame.
	EtherType = 0x88A2
	// Version is the AoE protocol version this package speaks and writes.
	Version = 1

	// EthernetHeaderLen is destination, source and type.
	EthernetHeaderLen = 14
	// HeaderLen is the AoE common header after the Ethernet header.
	HeaderLen = 10
	// ConfigHeaderLen is the fixed part of a Query Config argument.
	ConfigHeaderLen = 8
	// ATAHeaderLen is the fixed part of an ATA argument before the data.
	ATAHeaderLen = 12
	// MinFrameLen is the shortest Ethernet frame without its FCS; shorter
	// requests are padded with zeros, as a NIC would.
	MinFrameLen = 60
	// SectorSize is the ATA sector size in bytes.
	SectorSize = 512
	// MaxConfigLen is the longest config string AoE allows.
	MaxConfigLen = 1024
)

// Flags of the common header (its low nibble; the high nibble is Version).
const (
	FlagResponse uint8 = 0x8 // R: the frame is a response
	FlagError    uint8 = 0x4 // E: Header.Error holds an error code
)

// Commands of the common header.
const (
	CmdATA    uint8 = 0 // issue an ATA command
	CmdConfig uint8 = 1 // Query Config Information
)

// Wildcard addresses: a request to them is answered by every shelf or slot.
const (
	ShelfAny uint16 = 0xffff
	SlotAny  uint8  = 0xff
)

// Error codes of the common header when FlagError is set.
const (
	ErrCodeBadCommand  uint8 = 1 // unrecognized command code
	ErrCodeBadArgument uint8 = 2 // bad argument parameter
	ErrCodeUnavailable uint8 = 3 // device unavailable
	ErrCodeConfigSet   uint8 = 4 // config string present
	ErrCodeBadVersion  uint8 = 5 // unsupported version
	ErrCodeReserved    uint8 = 6 // target is reserved
)

// Query Config sub-commands (Config.CCmd).
const (
	ConfigRead      uint8 = 0 // read the config string
	ConfigTest      uint8 = 1 // answer only if the string matches exactly
	ConfigTestPref  uint8 = 2 // answer only if the string is a prefix
	ConfigSetIfNone uint8 = 3 // set the string if it is empty
	ConfigForceSet  uint8 = 4 // set the string
)

// ATA argument flags (ATA.AFlags).
const (
	ATAExtended uint8 = 0x40 // E: LBA48 command
	ATADevice   uint8 = 0x10 // D: device/head register flag
	ATAAsync    uint8 = 0x02 // A: asynchronous write
	ATAWrite    uint8 = 0x01 // W: the frame carries data to write
)

// ATA commands and status bits this package uses.
const (
	ATAReadSectors    uint8 = 0x20 // READ SECTORS, LBA28
	ATAReadSectorsExt uint8 = 0x24 // READ SECTORS EXT, LBA48
	ATAIdentify       uint8 = 0xEC // IDENTIFY DEVICE

	ATAStatusERR  uint8 = 0x01
	ATAStatusDRQ  uint8 = 0x08
	ATAStatusDF   uint8 = 0x20
	ATAStatusDRDY uint8 = 0x40
	ATAStatusBSY  uint8 = 0x80
)

// Limits of the two ATA addressing modes.
const (
	MaxLBA28 = 1<<28 - 1
	MaxLBA48 = 1<<48 - 1
)

// Broadcast is the Ethernet broadcast address, the destination of requests
// to a target whose MAC is not known yet.
var Broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Errors of the encoders and decoders.
var (
	// ErrShort means a buffer ends before the structure it should hold.
	ErrShort = errors.New("aoetest: frame too short")
	// ErrEtherType means an Ethernet frame is not AoE.
	ErrEtherType = errors.New("aoetest: not an AoE frame")
	// ErrField means a value does not fit its field on the wire.
	ErrField = errors.New("aoetest: value out of range")
)

// Header is the AoE common header (after the Ethernet header).
//
//	+------+------+-------+-------+-------+---------+-----------+
//	| Ver  | Flags| Error | Major (shelf) | Minor   | Command   | Tag (4)
//	| 4 b  | 4 b  | 1 B   | 2 B BE        | 1 B     | 1 B       | 4 B BE
type Header struct {
	Version uint8  // protocol version, 4 bits; 1
	Flags   uint8  // FlagResponse, FlagError; 4 bits
	Error   uint8  // error code, meaningful with FlagError
	Shelf   uint16 // major address
	Slot    uint8  // minor address
	Command uint8  // CmdATA, CmdConfig
	Tag     uint32 // chosen by the initiator, echoed by the target
}

// AppendBinary appends the 10-byte header to b. Version and Flags must fit
// in four bits.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	if h.Version > 0xf || h.Flags > 0xf {
		return b, fmt.Errorf("%w: version %d flags %#x exceed 4 bits", ErrField, h.Version, h.Flags)
	}
	b = append(b, h.Version<<4|h.Flags, h.Error)
	b = binary.BigEndian.AppendUint16(b, h.Shelf)
	b = append(b, h.Slot, h.Command)
	return binary.BigEndian.AppendUint32(b, h.Tag), nil
}

// ParseHeader decodes the common header at the start of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: header needs %d bytes, have %d", ErrShort, HeaderLen, len(b))
	}
	return Header{
		Version: b[0] >> 4,
		Flags:   b[0] & 0xf,
		Error:   b[1],
		Shelf:   binary.BigEndian.Uint16(b[2:4]),
		Slot:    b[4],
		Command: b[5],
		Tag:     binary.BigEndian.Uint32(b[6:10]),
	}, nil
}

// Frame is one AoE Ethernet frame.
type Frame struct {
	Dst, Src net.HardwareAddr // 6 bytes each
	Header
	// Payload is the command's argument (Config or ATA, encoded). On a
	// parsed frame it aliases the parsed buffer and includes any padding.
	Payload []byte
}

// AppendBinary appends the whole Ethernet frame to b, padded with zeros to
// MinFrameLen.
func (f Frame) AppendBinary(b []byte) ([]byte, error) {
	if len(f.Dst) != 6 || len(f.Src) != 6 {
		return b, fmt.Errorf("%w: MAC addresses must be 6 bytes (dst %d, src %d)", ErrField, len(f.Dst), len(f.Src))
	}
	start := len(b)
	b = append(b, f.Dst...)
	b = append(b, f.Src...)
	b = binary.BigEndian.AppendUint16(b, EtherType)
	b, err := f.Header.AppendBinary(b)
	if err != nil {
		return b[:start], err
	}
	b = append(b, f.Payload...)
	for len(b)-start < MinFrameLen {
		b = append(b, 0)
	}
	return b, nil
}

// ParseFrame decodes an Ethernet frame carrying AoE. Dst, Src and Payload
// alias b.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < EthernetHeaderLen {
		return Frame{}, fmt.Errorf("%w: Ethernet header needs %d bytes, have %d", ErrShort, EthernetHeaderLen, len(b))
	}
	if t := binary.BigEndian.Uint16(b[12:14]); t != EtherType {
		return Frame{}, fmt.Errorf("%w: ethertype %#04x", ErrEtherType, t)
	}
	h, err := ParseHeader(b[EthernetHeaderLen:])
	if err != nil {
		return Frame{}, err
	}
	return Frame{
		Dst:     net.HardwareAddr(b[0:6]),
		Src:     net.HardwareAddr(b[6:12]),
		Header:  h,
		Payload: b[EthernetHeaderLen+HeaderLen:],
	}, nil
}

// Config is the argument of Query Config Information, in a request and in
// its response.
//
//	Buffer Count (2 B BE) | Firmware Version (2 B BE) | Sector Count (1 B)
//	| AoE Ver (4 b) CCmd (4 b) | Config String Length (2 B BE) | Config String
type Config struct {
	BufferCount uint16 // frames the target can queue; 0 in a request
	Firmware    uint16 // target firmware version; 0 in a request
	SectorCount uint8  // most sectors one ATA command may carry; 0 in a request
	Version     uint8  // AoE version the target speaks, 4 bits
	CCmd        uint8  // ConfigRead etc., 4 bits
	String      []byte // config string, at most MaxConfigLen bytes
}

// AppendBinary appends the encoded argument to b.
func (c Config) AppendBinary(b []byte) ([]byte, error) {
	if c.Version > 0xf || c.CCmd > 0xf {
		return b, fmt.Errorf("%w: config version %d ccmd %d exceed 4 bits", ErrField, c.Version, c.CCmd)
	}
	if len(c.String) > MaxConfigLen {
		return b, fmt.Errorf("%w: config string of %d bytes (max %d)", ErrField, len(c.String), MaxConfigLen)
	}
	b = binary.BigEndian.AppendUint16(b, c.BufferCount)
	b = binary.BigEndian.AppendUint16(b, c.Firmware)
	b = append(b, c.SectorCount, c.Version<<4|c.CCmd)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.String)))
	return append(b, c.String...), nil
}

// ParseConfig decodes a Query Config argument. String is a copy, so the
// result outlives the receive buffer.
func ParseConfig(b []byte) (Config, error) {
	if len(b) < ConfigHeaderLen {
		return Config{}, fmt.Errorf("%w: config argument needs %d bytes, have %d", ErrShort, ConfigHeaderLen, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[6:8]))
	if n > MaxConfigLen {
		return Config{}, fmt.Errorf("%w: config string length %d (max %d)", ErrField, n, MaxConfigLen)
	}
	if len(b)-ConfigHeaderLen < n {
		return Config{}, fmt.Errorf("%w: config string of %d bytes, have %d", ErrShort, n, len(b)-ConfigHeaderLen)
	}
	return Config{
		BufferCount: binary.BigEndian.Uint16(b[0:2]),
		Firmware:    binary.BigEndian.Uint16(b[2:4]),
		SectorCount: b[4],
		Version:     b[5] >> 4,
		CCmd:        b[5] & 0xf,
		String:      append([]byte{}, b[8:8+n]...),
	}, nil
}

// ATA is the argument of an ATA command, in a request and in its response.
//
//	AFlags | Err/Feature | Sector Count | Cmd/Status | lba0..lba5 | 2 reserved | data
//
// The LBA is little-endian. Without ATAExtended it is LBA28: lba3 is the
// ATA device register, whose low nibble holds LBA bits 24-27 and whose high
// nibble is 0xE (LBA mode plus the obsolete bits), as the Linux initiator
// writes it; lba4 and lba5 are zero.
type ATA struct {
	AFlags      uint8  // ATAExtended, ATADevice, ATAAsync, ATAWrite
	ErrFeature  uint8  // feature register in a request, error register in a response
	SectorCount uint8  // sectors to transfer
	CmdStatus   uint8  // command in a request, status in a response
	LBA         uint64 // 28 or 48 bits, see the type comment
	Data        []byte // sector data; a multiple of SectorSize when present
}

// AppendBinary appends the encoded argument to b. The LBA must fit the
// addressing mode AFlags selects.
func (a ATA) AppendBinary(b []byte) ([]byte, error) {
	var lba [6]byte
	if a.AFlags&ATAExtended != 0 {
		if a.LBA > MaxLBA48 {
			return b, fmt.Errorf("%w: LBA %d exceeds 48 bits", ErrField, a.LBA)
		}
		for i := range lba {
			lba[i] = byte(a.LBA >> (8 * i))
		}
	} else {
		if a.LBA > MaxLBA28 {
			return b, fmt.Errorf("%w: LBA %d exceeds 28 bits without ATAExtended", ErrField, a.LBA)
		}
		lba[0], lba[1], lba[2] = byte(a.LBA), byte(a.LBA>>8), byte(a.LBA>>16)
		lba[3] = 0xE0 | byte(a.LBA>>24)&0x0f
	}
	b = append(b, a.AFlags, a.ErrFeature, a.SectorCount, a.CmdStatus)
	b = append(b, lba[:]...)
	b = append(b, 0, 0)
	return append(b, a.Data...), nil
}

// ParseATA decodes an ATA argument. Data is a copy of everything after the
// fixed part (padding included when the frame was padded).
func ParseATA(b []byte) (ATA, error) {
	if len(b) < ATAHeaderLen {
		return ATA{}, fmt.Errorf("%w: ATA argument needs %d bytes, have %d", ErrShort, ATAHeaderLen, len(b))
	}
	a := ATA{AFlags: b[0], ErrFeature: b[1], SectorCount: b[2], CmdStatus: b[3]}
	for i := 5; i >= 0; i-- {
		a.LBA = a.LBA<<8 | uint64(b[4+i])
	}
	if a.AFlags&ATAExtended == 0 {
		a.LBA &= MaxLBA28
	}
	if len(b) > ATAHeaderLen {
		a.Data = append([]byte{}, b[ATAHeaderLen:]...)
	}
	return a, nil
}

// ErrorText names an AoE error code for messages.
func ErrorText(code uint8) string {
	switch code {
	case ErrCodeBadCommand:
		return "unrecognized command code"
	case ErrCodeBadArgument:
		return "bad argument parameter"
	case ErrCodeUnavailable:
		return "device unavailable"
	case ErrCodeConfigSet:
		return "config string present"
	case ErrCodeBadVersion:
		return "unsupported version"
	case ErrCodeReserved:
		return "target is reserved"
	}
	return fmt.Sprintf("error code %d", code)
}
