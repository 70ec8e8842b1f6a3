package aoetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Errors of the client.
var (
	// ErrNoAnswer means no matching response arrived before the timeout.
	// The integration tests use it to prove that a target stays silent.
	ErrNoAnswer = errors.New("aoetest: no answer")
	// ErrTarget means the target answered with the AoE error flag set.
	ErrTarget = errors.New("aoetest: target reported an error")
	// ErrATA means the ATA status of a response has ERR or DF set, or the
	// data is not what was asked for.
	ErrATA = errors.New("aoetest: ATA command failed")
	// ErrVersion means a response is not AoE version 1.
	ErrVersion = errors.New("aoetest: unsupported AoE version")
)

// Client is an AoE initiator on one interface. It is not safe for
// concurrent use: responses are matched to the one outstanding request.
type Client struct {
	// Source is the source MAC written into every request; Dial sets it to
	// the interface's own address. vblade applies -m to the source MAC of
	// the frame and answers to it, so setting another Source tests the
	// filter without touching the interface. On a veth the peer delivers
	// every frame, whatever its destination, and a packet socket reads
	// frames for other hosts too, so an answer to a foreign Source would
	// still be seen: ErrNoAnswer then means the target kept silent.
	Source net.HardwareAddr

	fd      int
	ifindex int
	iface   string
	mac     net.HardwareAddr
	tag     uint32
	buf     []byte
}

// htons converts a 16-bit value to network order as the kernel expects it
// in sockaddr_ll and in socket(2)'s protocol argument.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

// Dial opens a raw AF_PACKET socket for ethertype 0x88A2 bound to iface in
// the calling thread's network namespace. Inside Do, that is the
// namespace's; the socket stays bound to it for its whole life.
func Dial(iface string) (*Client, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("aoetest: dial %s: %w", iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("aoetest: dial %s: %w: not an Ethernet interface", iface, ErrField)
	}
	proto := htons(EtherType)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(proto))
	if err != nil {
		return nil, fmt.Errorf("aoetest: dial %s: socket: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("aoetest: dial %s: bind: %w", iface, err)
	}
	mac := append(net.HardwareAddr{}, ifi.HardwareAddr...)
	return &Client{
		Source:  append(net.HardwareAddr{}, mac...),
		fd:      fd,
		ifindex: ifi.Index,
		iface:   iface,
		mac:     mac,
		// Start from the clock so that two clients in one test do not
		// reuse each other's tags; 0 is skipped because it looks unset.
		tag: uint32(time.Now().UnixNano()) | 1,
		buf: make([]byte, 1<<16),
	}, nil
}

// DialNamespace is Dial inside network namespace ns (a name under
// /run/netns, as `ip netns add` creates).
func DialNamespace(ns, iface string) (*Client, error) {
	var c *Client
	err := Do(ns, func() error {
		var err error
		c, err = Dial(iface)
		return err
	})
	return c, err
}

// HardwareAddr is the interface's own MAC address.
func (c *Client) HardwareAddr() net.HardwareAddr { return c.mac }

// Close closes the socket.
func (c *Client) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	if err != nil {
		return fmt.Errorf("aoetest: close %s: %w", c.iface, err)
	}
	return nil
}

// Exchange sends one request and waits up to timeout for its response: a
// frame with FlagResponse, the request's tag and command, and its shelf and
// slot (either may be a wildcard in the request). Other frames are skipped.
// Dst nil means Broadcast; Src nil means c.Source (or, if that is nil,
// the interface's MAC); Version 0 means Version.
// The response's Payload is a copy. A response with FlagError returns the
// frame and an error wrapping ErrTarget.
func (c *Client) Exchange(req Frame, timeout time.Duration) (Frame, error) {
	if req.Dst == nil {
		req.Dst = Broadcast
	}
	if req.Src == nil {
		req.Src = c.Source
	}
	if req.Src == nil {
		req.Src = c.mac
	}
	if req.Version == 0 {
		req.Version = Version
	}
	c.tag++
	if c.tag == 0 {
		c.tag = 1
	}
	req.Tag = c.tag
	req.Flags &^= FlagResponse
	what := fmt.Sprintf("%s %d.%d on %s", commandName(req.Command), req.Shelf, req.Slot, c.iface)
	out, err := req.AppendBinary(nil)
	if err != nil {
		return Frame{}, fmt.Errorf("aoetest: %s: %w", what, err)
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: c.ifindex, Halen: 6}
	copy(to.Addr[:], req.Dst)
	if err := unix.Sendto(c.fd, out, 0, to); err != nil {
		return Frame{}, fmt.Errorf("aoetest: %s: send: %w", what, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Frame{}, fmt.Errorf("aoetest: %s: %w within %v", what, ErrNoAnswer, timeout)
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return Frame{}, fmt.Errorf("aoetest: %s: poll: %w", what, err)
		}
		resp, ok, err := c.receive(req)
		if err != nil {
			return Frame{}, fmt.Errorf("aoetest: %s: %w", what, err)
		}
		if !ok {
			continue
		}
		if resp.Version != Version {
			return resp, fmt.Errorf("aoetest: %s: %w %d", what, ErrVersion, resp.Version)
		}
		if resp.Flags&FlagError != 0 {
			return resp, fmt.Errorf("aoetest: %s: %w: %s", what, ErrTarget, ErrorText(resp.Error))
		}
		return resp, nil
	}
}

// receive reads every queued frame until it finds the response to req. It
// reports ok=false when the queue is drained without one.
func (c *Client) receive(req Frame) (Frame, bool, error) {
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return Frame{}, false, nil
		}
		if err != nil {
			return Frame{}, false, fmt.Errorf("receive: %w", err)
		}
		// A packet socket also sees what this host sends, requests
		// included; only frames that arrived count.
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f, err := ParseFrame(c.buf[:n])
		if err != nil || !matches(req, f) {
			continue
		}
		f.Dst = append(net.HardwareAddr{}, f.Dst...)
		f.Src = append(net.HardwareAddr{}, f.Src...)
		f.Payload = append([]byte{}, f.Payload...)
		return f, true, nil
	}
}

// matches reports whether f answers req.
func matches(req, f Frame) bool {
	return f.Flags&FlagResponse != 0 &&
		f.Tag == req.Tag &&
		f.Command == req.Command &&
		(req.Shelf == ShelfAny || f.Shelf == req.Shelf) &&
		(req.Slot == SlotAny || f.Slot == req.Slot)
}

func commandName(cmd uint8) string {
	switch cmd {
	case CmdATA:
		return "ata"
	case CmdConfig:
		return "query config"
	}
	return fmt.Sprintf("command %d", cmd)
}

// QueryConfig asks shelf.slot for its configuration (ConfigRead) and returns
// the decoded answer and the frame it came in (its Src is the target's MAC).
// Dst nil broadcasts.
func (c *Client) QueryConfig(dst net.HardwareAddr, shelf uint16, slot uint8, timeout time.Duration) (Config, Frame, error) {
	arg, err := Config{CCmd: ConfigRead}.AppendBinary(nil)
	if err != nil {
		return Config{}, Frame{}, err
	}
	resp, err := c.Exchange(Frame{Dst: dst, Header: Header{Shelf: shelf, Slot: slot, Command: CmdConfig}, Payload: arg}, timeout)
	if err != nil {
		return Config{}, resp, err
	}
	cfg, err := ParseConfig(resp.Payload)
	if err != nil {
		return Config{}, resp, fmt.Errorf("aoetest: query config %d.%d from %s: %w", resp.Shelf, resp.Slot, resp.Src, err)
	}
	return cfg, resp, nil
}

// ATA sends one ATA command to shelf.slot and returns the decoded answer.
// A status with ERR or DF set is an error wrapping ErrATA, returned with the
// answer.
func (c *Client) ATA(dst net.HardwareAddr, shelf uint16, slot uint8, req ATA, timeout time.Duration) (ATA, error) {
	arg, err := req.AppendBinary(nil)
	if err != nil {
		return ATA{}, err
	}
	resp, err := c.Exchange(Frame{Dst: dst, Header: Header{Shelf: shelf, Slot: slot, Command: CmdATA}, Payload: arg}, timeout)
	if err != nil {
		return ATA{}, err
	}
	a, err := ParseATA(resp.Payload)
	if err != nil {
		return ATA{}, fmt.Errorf("aoetest: ata %d.%d from %s: %w", resp.Shelf, resp.Slot, resp.Src, err)
	}
	if a.CmdStatus&(ATAStatusERR|ATAStatusDF) != 0 {
		return a, fmt.Errorf("aoetest: ata %#02x %d.%d lba %d: %w: status %#02x error %#02x",
			req.CmdStatus, shelf, slot, req.LBA, ErrATA, a.CmdStatus, a.ErrFeature)
	}
	return a, nil
}

// ReadSector reads the 512-byte sector at lba of shelf.slot: READ SECTORS
// (LBA28) when lba fits in 28 bits and ext is false, READ SECTORS EXT
// (LBA48) otherwise.
func (c *Client) ReadSector(dst net.HardwareAddr, shelf uint16, slot uint8, lba uint64, ext bool, timeout time.Duration) ([]byte, error) {
	req := ATA{SectorCount: 1, CmdStatus: ATAReadSectors, LBA: lba}
	if ext || lba > MaxLBA28 {
		req.AFlags |= ATAExtended
		req.CmdStatus = ATAReadSectorsExt
	}
	a, err := c.ATA(dst, shelf, slot, req, timeout)
	if err != nil {
		return nil, err
	}
	if len(a.Data) < SectorSize {
		return nil, fmt.Errorf("aoetest: read %d.%d lba %d: %w: %d bytes of data", shelf, slot, lba, ErrATA, len(a.Data))
	}
	return a.Data[:SectorSize], nil
}
