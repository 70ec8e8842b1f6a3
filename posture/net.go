package posture

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Socket is one line of /proc/net/{tcp,udp}{,6}.
type Socket struct {
	Proto  string `json:"proto"`  // tcp, tcp6, udp, udp6
	Local  string `json:"local"`  // address:port, "[::1]:80" for IPv6
	Remote string `json:"remote"` // "0.0.0.0:0" when unconnected
	State  string `json:"state"`  // LISTEN, ESTABLISHED, ... (UDP: CLOSE unless connected)
	Inode  uint64 `json:"inode"`
}

// tcpStates are the kernel's TCP states by number (include/net/tcp_states.h).
var tcpStates = [...]string{1: "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}

// ParseNetSockets parses the socket table the kernel writes to
// /proc/net/tcp, tcp6, udp and udp6 (proto names the table):
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
//	 0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 21525 1 ...
//
// Addresses are 32-bit words in host byte order, ports in hex. The header
// line is skipped; name labels errors, which give the line number.
func ParseNetSockets(r io.Reader, name, proto string) ([]Socket, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	var out []Socket
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 || line == 1 && f[0] == "sl" {
			continue
		}
		if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
			return nil, fmt.Errorf("%s:%d: malformed socket line %q", name, line, sc.Text())
		}
		local, err := parseSockAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: local address: %w", name, line, err)
		}
		remote, err := parseSockAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: remote address: %w", name, line, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad state %q", name, line, f[3])
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: bad inode %q", name, line, f[9])
		}
		state := "UNKNOWN(" + strconv.Itoa(int(st)) + ")"
		if int(st) < len(tcpStates) && tcpStates[st] != "" {
			state = tcpStates[st]
		}
		out = append(out, Socket{Proto: proto, Local: local.String(), Remote: remote.String(), State: state, Inode: ino})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

// parseSockAddr decodes "0100007F:0CEA" (IPv4) or 32 hex digits and a
// port (IPv6).
func parseSockAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 || len(a) != 8 && len(a) != 32 {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("malformed port in %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("malformed address %q", s)
	}
	// Each 32-bit word was printed as a host-order integer: undo that.
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	var ip netip.Addr
	if len(raw) == 4 {
		ip = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		ip = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// ProcStat is what posture needs of /proc/PID/stat.
type ProcStat struct {
	PID        int
	Comm       string
	State      byte
	PPID       int
	StartTicks uint64 // start time after boot, in clock ticks (USER_HZ)
}

// ParseProcStat parses /proc/PID/stat (proc(5)):
//
//	1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 ... 22:starttime ...
//
// comm may hold blanks and parentheses, so it ends at the last ')'.
func ParseProcStat(b []byte) (ProcStat, error) {
	var ps ProcStat
	s := string(b)
	open := strings.IndexByte(s, '(')
	end := strings.LastIndexByte(s, ')')
	if open < 1 || end < open {
		return ps, fmt.Errorf("malformed stat %q", truncate(s, 80))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil || pid < 0 {
		return ps, fmt.Errorf("malformed pid in stat %q", truncate(s, 80))
	}
	ps.PID, ps.Comm = pid, s[open+1:end]
	f := strings.Fields(s[end+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return ps, fmt.Errorf("stat of %d: too few fields", pid)
	}
	ps.State = f[0][0]
	if ps.PPID, err = strconv.Atoi(f[1]); err != nil {
		return ps, fmt.Errorf("stat of %d: bad ppid %q", pid, f[1])
	}
	if ps.StartTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return ps, fmt.Errorf("stat of %d: bad starttime %q", pid, f[19])
	}
	return ps, nil
}

// parseBootTime returns btime (seconds since the epoch) from /proc/stat.
func parseBootTime(b []byte) (int64, bool) {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// parseStatusUID returns the real UID from /proc/PID/status ("Uid:\t0\t0\t0\t0").
func parseStatusUID(b []byte) (uint32, bool) {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseUint(f[0], 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
