package posture

import (
	"reflect"
	"strings"
	"testing"
)

const tcpSample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 21525 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1A0B 01 00000000:00000000 00:00000000 00000000  1000        0 21600 1 0000000000000000 20 4 30 10 -1
`

const tcp6Sample = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
`

func TestParseNetSockets(t *testing.T) {
	got, err := ParseNetSockets(strings.NewReader(tcpSample), "tcp", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{Proto: "tcp", Local: "127.0.0.1:3306", Remote: "0.0.0.0:0", State: "LISTEN", Inode: 21525},
		{Proto: "tcp", Local: "127.0.0.1:54321", Remote: "127.0.0.1:6667", State: "ESTABLISHED", Inode: 21600},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	got, err = ParseNetSockets(strings.NewReader(tcp6Sample), "tcp6", "tcp6")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Local != "[::1]:22" || got[0].Inode != 1234 {
		t.Errorf("tcp6: got %+v", got)
	}
	for name, line := range map[string]string{
		"short":       "   0: 0100007F:0CEA 00000000:0000 0A\n",
		"bad addr":    "   0: 0100007G:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 999 0 21525\n",
		"bad port":    "   0: 0100007F:CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 999 0 21525\n",
		"bad inode":   "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 999 0 x\n",
		"bad state":   "   0: 0100007F:0CEA 00000000:0000 XX 00000000:00000000 00:00000000 00000000 999 0 1\n",
		"no sl colon": "   0 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 999 0 1\n",
	} {
		if _, err := ParseNetSockets(strings.NewReader(tcpSample+line), "tcp", "tcp"); err == nil || !strings.HasPrefix(err.Error(), "tcp:4: ") {
			t.Errorf("%s: got %v, want an error at tcp:4", name, err)
		}
	}
}

func FuzzParseNetSockets(f *testing.F) {
	f.Add(tcpSample)
	f.Add(tcp6Sample)
	f.Fuzz(func(t *testing.T, s string) {
		socks, err := ParseNetSockets(strings.NewReader(s), "fuzz", "tcp")
		if err != nil {
			return
		}
		for _, so := range socks {
			if so.Local == "" || so.Remote == "" || so.State == "" {
				t.Fatalf("incomplete socket %+v", so)
			}
		}
	})
}

func TestParseProcStat(t *testing.T) {
	in := "4242 (evil (x) bot) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n"
	got, err := ParseProcStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{PID: 4242, Comm: "evil (x) bot", State: 'S', PPID: 1, StartTicks: 987654}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "4242 (x S 1", "x (a) S 1 2 3", "1 (a) S 1 2 3 4 5"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("4242 (evil (x) bot) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 1\n")
	f.Add("1 (systemd) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 0")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseProcStat([]byte(s))
		if err == nil && ps.PID < 0 {
			t.Fatalf("negative pid %+v", ps)
		}
	})
}
