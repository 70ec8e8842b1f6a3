package aoe

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// wantErr is one expected entry of an ErrorList.
type wantErr struct {
	line int
	err  error
}

// checkErrors compares err, which must be an ErrorList, with want entry by
// entry: same length, same lines, and errors.Is on each cause.
func checkErrors(t *testing.T, err error, file string, want []wantErr) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("error = %v, want nil", err)
		}
		return
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error = %v (%T), want an ErrorList", err, err)
	}
	if len(list) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i := range min(len(list), len(want)) {
		got := list[i]
		if got.File != file || got.Line != want[i].line || !errors.Is(got, want[i].err) {
			t.Errorf("error %d = %q (file %q line %d), want file %q line %d wrapping %v",
				i, got, got.File, got.Line, file, want[i].line, want[i].err)
		}
	}
	for _, w := range want {
		if !errors.Is(err, w.err) {
			t.Errorf("errors.Is(list, %v) = false", w.err)
		}
	}
}

func TestParseValid(t *testing.T) {
	f, err := os.Open("testdata/valid.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Parse(f, "testdata/valid.conf")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		File:      "testdata/valid.conf",
		Shelf:     7,
		shelfLine: 4,
		Exports: []Export{
			{Slot: 1, File: "/home/apollo.img", MACs: []string{"00:16:e6:d3:ed:e5"}, Iface: "eth1", Alias: "apollo", Line: 6},
			{Slot: 2, File: "/home/zeus.img", MACs: []string{"00:16:e6:d3:ed:e6", "00:16:e6:d3:ed:e7", "00:16:e6:d3:ed:e8"}, Iface: "eth1", Alias: "zeus", Line: 7},
			{Slot: 3, File: "/dev/vg0/hera", Iface: "eth2", Alias: "hera.backup", Line: 8},
			{Slot: 10, File: "/srv/a#1.img", MACs: []string{"02:00:00:00:00:01"}, Iface: "br-aoe_0", Alias: "a-1_b.c", Line: 10},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%#v\nwant\n%#v", got, want)
	}
	for _, alias := range []string{"apollo", "hera.backup", "a-1_b.c"} {
		e, ok := got.Export(alias)
		if !ok || e.Alias != alias {
			t.Errorf("Export(%q) = %+v, %v; want the export named so", alias, e, ok)
		}
	}
	if e, ok := got.Export("nosuch"); ok {
		t.Errorf("Export(nosuch) = %+v, true; want false", e)
	}
}

// TestFormatGolden parses every valid testdata config and compares Format
// with its golden; -update rewrites the goldens.
func TestFormatGolden(t *testing.T) {
	for _, name := range []string{"valid", "crlf", "edge"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name+".conf"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(strings.NewReader(string(data)), name+".conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := c.Format()
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("Format() =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "00:16:e6:d3:ed:e5"
	exp := func(slot, file, macs, iface, alias string) string {
		return "SHELF=1\n" + strings.Join([]string{slot, file, macs, iface, alias}, " ") + "\n"
	}
	mac := func(macs string) string { return exp("1", "/srv/a.img", macs, "eth0", "a") }
	many := make([]string, 33)
	for i := range many {
		many[i] = fmt.Sprintf("00:16:e6:d3:ed:%02x", i)
	}
	tests := []struct {
		name string
		in   string
		want []wantErr
	}{
		{"empty file", "", []wantErr{{1, ErrShelf}}},
		{"only comments", "# nothing\n\n   # here\n", []wantErr{{1, ErrShelf}}},
		{"shelf only is valid", "SHELF=3\n", nil},
		{"shelf 0 is valid", "SHELF=\"0\"\n", nil},
		{"shelf leading zeros are decimal", "SHELF=0010\n", nil},
		{"shelf trailing comment", "SHELF=\"3\" # the rack\n", nil},
		{"shelf truncated by vblade", "SHELF=\"70000\"\n", []wantErr{{1, ErrShelf}}},
		{"shelf broadcast", "SHELF=65535\n", []wantErr{{1, ErrShelf}}},
		{"shelf reserved", "SHELF=4095\n", []wantErr{{1, ErrShelf}}},
		{"shelf overflow", "SHELF=99999999999999999999999\n", []wantErr{{1, ErrShelf}}},
		{"shelf non-numeric", "SHELF=\"abc\"\n", []wantErr{{1, ErrShelf}}},
		{"shelf negative", "SHELF=-1\n", []wantErr{{1, ErrShelf}}},
		{"shelf plus sign", "SHELF=+1\n", []wantErr{{1, ErrShelf}}},
		{"shelf hex", "SHELF=0x10\n", []wantErr{{1, ErrShelf}}},
		{"shelf empty quoted", "SHELF=\"\"\n", []wantErr{{1, ErrShelf}}},
		{"shelf empty", "SHELF=\n", []wantErr{{1, ErrShelf}}},
		{"shelf decimal point", "SHELF=1.0\n", []wantErr{{1, ErrShelf}}},
		{"shelf unbalanced quote", "SHELF=\"1\n", []wantErr{{1, ErrSyntax}}},
		{"shelf mismatched quotes", "SHELF=\"1'\n", []wantErr{{1, ErrSyntax}}},
		{"shelf lone quote", "SHELF=\"\n", []wantErr{{1, ErrSyntax}}},
		{"shelf with space inside quotes", "SHELF=\" 1\"\n", []wantErr{{1, ErrSyntax}}},
		{"shelf trailing text", "SHELF=1 2\n", []wantErr{{1, ErrSyntax}}},
		{"shelf spaces around =", "SHELF = 1\n", []wantErr{{1, ErrSyntax}, {1, ErrShelf}}},
		{"shelf twice", "SHELF=1\nSHELF=2\n", []wantErr{{2, ErrShelf}}},
		{"shelf after exports", "1 /srv/a.img " + ok + " eth0 a\nSHELF=1\n", []wantErr{{1, ErrShelf}, {2, ErrShelf}}},
		{"no shelf before exports", "\n1 /srv/a.img " + ok + " eth0 a\n2 /srv/b.img " + ok + " eth0 b\n", []wantErr{{2, ErrShelf}}},
		{"lower-case shelf key", "shelf=1\n", []wantErr{{1, ErrSyntax}, {1, ErrShelf}}},
		{"unknown setting", "SHELF=1\nVBLADE_OPTS=-r\n", []wantErr{{2, ErrSyntax}}},
		{"empty key", "SHELF=1\n=1\n", []wantErr{{2, ErrSyntax}}},
		{"control character", "SHELF=1\n1 /srv/a\x00.img " + ok + " eth0 a\n", []wantErr{{2, ErrSyntax}}},
		{"form feed", "SHELF=1\f\n", []wantErr{{1, ErrSyntax}, {1, ErrShelf}}},
		{"four fields", "SHELF=1\n1 /srv/a.img " + ok + " eth0\n", []wantErr{{2, ErrSyntax}}},
		{"six fields", "SHELF=1\n1 /srv/a.img " + ok + " eth0 a b\n", []wantErr{{2, ErrSyntax}}},
		{"comment hides a field", "SHELF=1\n1 /srv/a.img " + ok + " eth0 #a\n", []wantErr{{2, ErrSyntax}}},
		{"slot broadcast", exp("255", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"slot too big", exp("1000", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"slot negative", exp("-1", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"slot plus sign", exp("+1", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"slot hex", exp("0x1", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"slot word", exp("one", "/srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrSlot}}},
		{"file relative", exp("1", "srv/a.img", ok, "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"file dash", exp("1", "-r", ok, "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"mac classic typo", mac("00:16:E6:D3:ED:E51"), []wantErr{{2, ErrMAC}}},
		{"mac five groups", mac("00:16:e6:d3:ed"), []wantErr{{2, ErrMAC}}},
		{"mac seven groups", mac("00:16:e6:d3:ed:e5:01"), []wantErr{{2, ErrMAC}}},
		{"mac one-digit group", mac("0:16:e6:d3:ed:e5"), []wantErr{{2, ErrMAC}}},
		{"mac non-hex", mac("00:16:e6:d3:ed:zz"), []wantErr{{2, ErrMAC}}},
		{"mac mixed separators", mac("00:16-e6:d3:ed:e5"), []wantErr{{2, ErrMAC}}},
		{"mac eleven digits", mac("0016e6d3ede"), []wantErr{{2, ErrMAC}}},
		{"mac thirteen digits", mac("0016e6d3ede51"), []wantErr{{2, ErrMAC}}},
		{"mac dotted", mac("0016.e6d3.ede5"), []wantErr{{2, ErrMAC}}},
		{"mac double comma", mac(ok + ",,00:16:e6:d3:ed:e6"), []wantErr{{2, ErrMAC}}},
		{"mac trailing comma", mac(ok + ","), []wantErr{{2, ErrMAC}}},
		{"mac leading comma", mac("," + ok), []wantErr{{2, ErrMAC}}},
		{"mac only comma", mac(","), []wantErr{{2, ErrMAC}, {2, ErrMAC}}},
		{"mac broadcast", mac("ff:ff:ff:ff:ff:ff"), []wantErr{{2, ErrMAC}}},
		{"mac multicast", mac("01:00:5e:00:00:01"), []wantErr{{2, ErrMAC}}},
		{"mac multicast bit only", mac("03:00:00:00:00:00"), []wantErr{{2, ErrMAC}}},
		{"mac all zero", mac("00:00:00:00:00:00"), []wantErr{{2, ErrMAC}}},
		{"mac listed twice", mac(ok + ",00-16-E6-D3-ED-E5"), []wantErr{{2, ErrMAC}}},
		{"mac any upper-case", mac("ANY"), []wantErr{{2, ErrMAC}}},
		{"mac any in a list", mac("any," + ok), []wantErr{{2, ErrMAC}}},
		{"mac too many for vblade", mac(strings.Join(many, ",")), []wantErr{{2, ErrMAC}}},
		{"mac thirty-two is the limit", mac(strings.Join(many[:32], ",")), nil},
		{"mac every bad entry reported", mac("zz,00:16:e6:d3:ed:e5,01:00:00:00:00:00"), []wantErr{{2, ErrMAC}, {2, ErrMAC}}},
		{"iface too long", exp("1", "/srv/a.img", ok, "abcdefghijklmnop", "a"), []wantErr{{2, ErrIface}}},
		{"iface fifteen bytes", exp("1", "/srv/a.img", ok, "abcdefghijklmno", "a"), nil},
		{"iface slash", exp("1", "/srv/a.img", ok, "eth/0", "a"), []wantErr{{2, ErrIface}}},
		{"iface colon label", exp("1", "/srv/a.img", ok, "eth0:1", "a"), []wantErr{{2, ErrIface}}},
		{"iface dot", exp("1", "/srv/a.img", ok, ".", "a"), []wantErr{{2, ErrIface}}},
		{"iface dotdot", exp("1", "/srv/a.img", ok, "..", "a"), []wantErr{{2, ErrIface}}},
		{"iface option-like", exp("1", "/srv/a.img", ok, "-r", "a"), []wantErr{{2, ErrIface}}},
		{"alias slash", exp("1", "/srv/a.img", ok, "eth0", "a/b"), []wantErr{{2, ErrSyntax}}},
		{"alias dotdot", exp("1", "/srv/a.img", ok, "eth0", ".."), []wantErr{{2, ErrSyntax}}},
		{"alias option-like", exp("1", "/srv/a.img", ok, "eth0", "-a"), []wantErr{{2, ErrSyntax}}},
		{"alias non-ascii", exp("1", "/srv/a.img", ok, "eth0", "zeus\u00e9"), []wantErr{{2, ErrSyntax}}},
		{"alias too long", exp("1", "/srv/a.img", ok, "eth0", strings.Repeat("a", 65)), []wantErr{{2, ErrSyntax}}},
		{"every bad field of a line", exp("256", "a.img", "00:16", "eth/0", "a/b"),
			[]wantErr{{2, ErrSlot}, {2, ErrFile}, {2, ErrMAC}, {2, ErrIface}, {2, ErrSyntax}}},
		// Parse leaves cross-line checks to Validate.
		{"duplicates are not Parse's business", "SHELF=1\n1 /srv/a.img " + ok + " eth0 a\n1 /srv/a.img " + ok + " eth0 a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.in), "test.conf")
			checkErrors(t, err, "test.conf", tt.want)
			if (c == nil) != (err != nil) {
				t.Errorf("Parse = %v, %v; want exactly one of config and error", c, err)
			}
		})
	}
}

// TestParseAllErrors checks that one pass reports every error of a file,
// each at its own line, in line order.
func TestParseAllErrors(t *testing.T) {
	f, err := os.Open("testdata/errors.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Parse(f, "errors.conf")
	checkErrors(t, err, "errors.conf", []wantErr{
		{2, ErrShelf},
		{3, ErrMAC},
		{4, ErrSlot},
		{5, ErrFile},
		{6, ErrMAC},
		{7, ErrIface},
		{8, ErrSyntax},
		{9, ErrSyntax},
		{10, ErrSyntax},
	})
}

func TestParseErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("SHELF=1\n")
	for i := range 150 {
		fmt.Fprintf(&b, "%d /srv/a.img zz eth0 a%d\n", i, i)
	}
	_, err := Parse(strings.NewReader(b.String()), "many.conf")
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse error = %v, want an ErrorList", err)
	}
	if len(list) != maxErrors+1 {
		t.Fatalf("len(list) = %d, want %d", len(list), maxErrors+1)
	}
	for i, e := range list[:maxErrors] {
		if e.Line != i+2 || !errors.Is(e, ErrMAC) {
			t.Errorf("list[%d] = %v (line %d), want ErrMAC at line %d", i, e, e.Line, i+2)
		}
	}
	if last := list[maxErrors]; !errors.Is(last, errTooMany) {
		t.Errorf("last entry = %v, want the too-many-errors marker", last)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	c, err := Parse(iotest.ErrReader(boom), "r.conf")
	if c != nil || !errors.Is(err, boom) {
		t.Errorf("Parse = %v, %v; want nil and an error wrapping %v", c, err, boom)
	}
	var list ErrorList
	if errors.As(err, &list) {
		t.Errorf("read error is an ErrorList: %v", err)
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := Parse(strings.NewReader("SHELF=1\n1 /srv/a.img 00:16:E6:D3:ED:E51 eth0 a\n"), "/etc/vbladed.conf")
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("Parse error = %v, want one error", err)
	}
	// The rendering is a user-visible contract: file:line: cause.
	if got, prefix := list[0].Error(), "/etc/vbladed.conf:2: aoe: invalid MAC address"; !strings.HasPrefix(got, prefix) {
		t.Errorf("Error() = %q, want prefix %q", got, prefix)
	}
	if got := (&ParseError{File: "x.conf", Err: ErrShelf}).Error(); got != "x.conf: "+ErrShelf.Error() {
		t.Errorf("Error() without line = %q", got)
	}
	if ErrorList(nil).Err() != nil {
		t.Error("empty ErrorList.Err() != nil")
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"00:16:e6:d3:ed:e5", "00:16:e6:d3:ed:e5"},
		{"00:16:E6:D3:ED:E5", "00:16:e6:d3:ed:e5"},
		{"00-16-E6-d3-ed-e5", "00:16:e6:d3:ed:e5"},
		{"0016E6D3EDE5", "00:16:e6:d3:ed:e5"},
		{"02:00:00:00:00:00", "02:00:00:00:00:00"}, // locally administered unicast is fine
		{"fe:ff:ff:ff:ff:ff", "fe:ff:ff:ff:ff:ff"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMAC(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseMAC(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name string
		e    Export
		want []string
	}{
		{"one mac", Export{Slot: 1, File: "/home/apollo.img", MACs: []string{"00:16:e6:d3:ed:e5"}, Iface: "eth1", Alias: "apollo"},
			[]string{"/usr/sbin/vblade", "-m", "00:16:e6:d3:ed:e5", "7", "1", "eth1", "/home/apollo.img"}},
		{"two macs", Export{Slot: 0, File: "/dev/sdb", MACs: []string{"00:16:e6:d3:ed:e5", "02:00:00:00:00:01"}, Iface: "eth0", Alias: "b"},
			[]string{"/usr/sbin/vblade", "-m", "00:16:e6:d3:ed:e5,02:00:00:00:00:01", "7", "0", "eth0", "/dev/sdb"}},
		{"any host", Export{Slot: 254, File: "/srv/x y.img", Iface: "eth0", Alias: "x"},
			[]string{"/usr/sbin/vblade", "7", "254", "eth0", "/srv/x y.img"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Argv("/usr/sbin/vblade", 7); !slices.Equal(got, tt.want) {
				t.Errorf("Argv = %q, want %q", got, tt.want)
			}
		})
	}
}

// fakeInfo is an fs.FileInfo for a fake Env.
type fakeInfo struct {
	mode fs.FileMode
	size int64
	sys  any
}

func (f fakeInfo) Name() string       { return "fake" }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return f.sys }

// fakeEnv serves Stat from files and knows the interfaces eth0 and eth1.
func fakeEnv(files map[string]fakeInfo) Env {
	return Env{
		Stat: func(p string) (fs.FileInfo, error) {
			if fi, ok := files[p]; ok {
				return fi, nil
			}
			return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
		},
		InterfaceExists: func(name string) bool { return name == "eth0" || name == "eth1" },
	}
}

func TestValidate(t *testing.T) {
	const ok = "00:16:e6:d3:ed:e5"
	files := map[string]fakeInfo{
		"/srv/a.img":     {size: 1 << 20},
		"/srv/b.img":     {size: 1 << 20},
		"/srv/a-ln.img":  {size: 1 << 20, sys: &syscall.Stat_t{Dev: 8, Ino: 42}},
		"/srv/a-ln2.img": {size: 1 << 20, sys: &syscall.Stat_t{Dev: 8, Ino: 42}},
		"/srv/other.img": {size: 1 << 20, sys: &syscall.Stat_t{Dev: 9, Ino: 42}},
		"/srv/tiny.img":  {size: 511},
		"/srv/sector":    {size: 512},
		"/srv/dir":       {mode: fs.ModeDir | 0o755},
		"/srv/fifo":      {mode: fs.ModeNamedPipe},
		"/dev/null":      {mode: fs.ModeDevice | fs.ModeCharDevice},
		"/dev/sdb":       {mode: fs.ModeDevice, sys: &syscall.Stat_t{Dev: 5, Ino: 100, Rdev: 0x810}},
		"/dev/disk/b":    {mode: fs.ModeDevice, sys: &syscall.Stat_t{Dev: 5, Ino: 200, Rdev: 0x810}},
		"/dev/sdc":       {mode: fs.ModeDevice, sys: &syscall.Stat_t{Dev: 5, Ino: 300, Rdev: 0x820}},
	}
	line := func(slot, file, iface, alias string) string {
		return strings.Join([]string{slot, file, ok, iface, alias}, " ") + "\n"
	}
	tests := []struct {
		name string
		in   string
		want []wantErr
	}{
		{"valid", line("1", "/srv/a.img", "eth0", "a") + line("2", "/dev/sdb", "eth1", "b") + line("3", "/srv/sector", "eth0", "c") + line("4", "/dev/sdc", "eth0", "d"), nil},
		{"missing file", line("1", "/srv/nosuch.img", "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"directory", line("1", "/srv/dir", "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"fifo", line("1", "/srv/fifo", "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"character device", line("1", "/dev/null", "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"less than a sector", line("1", "/srv/tiny.img", "eth0", "a"), []wantErr{{2, ErrFile}}},
		{"missing interface", line("1", "/srv/a.img", "eth9", "a"), []wantErr{{2, ErrIface}}},
		{"duplicate alias", line("1", "/srv/a.img", "eth0", "a") + line("2", "/srv/b.img", "eth0", "a"), []wantErr{{3, ErrDupAlias}}},
		{"duplicate slot", line("1", "/srv/a.img", "eth0", "a") + line("1", "/srv/b.img", "eth1", "b"), []wantErr{{3, ErrDupTarget}}},
		{"duplicate slot with leading zero", line("1", "/srv/a.img", "eth0", "a") + line("01", "/srv/b.img", "eth1", "b"), []wantErr{{3, ErrDupTarget}}},
		{"same path", line("1", "/srv/a.img", "eth0", "a") + line("2", "/srv/a.img", "eth0", "b"), []wantErr{{3, ErrDupFile}}},
		{"same cleaned path", line("1", "/srv/a.img", "eth0", "a") + line("2", "/srv/./x/../a.img", "eth0", "b"), []wantErr{{3, ErrDupFile}, {3, ErrFile}}},
		{"same inode", line("1", "/srv/a-ln.img", "eth0", "a") + line("2", "/srv/a-ln2.img", "eth0", "b"), []wantErr{{3, ErrDupFile}}},
		{"same inode other device", line("1", "/srv/a-ln.img", "eth0", "a") + line("2", "/srv/other.img", "eth0", "b"), nil},
		{"same block device", line("1", "/dev/sdb", "eth0", "a") + line("2", "/dev/disk/b", "eth0", "b"), []wantErr{{3, ErrDupFile}}},
		{"every duplicate at once", line("1", "/srv/a.img", "eth0", "a") + line("1", "/srv/a.img", "eth0", "a"),
			[]wantErr{{3, ErrDupAlias}, {3, ErrDupTarget}, {3, ErrDupFile}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader("SHELF=\"1\"\n"+tt.in), "v.conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkErrors(t, c.Validate(fakeEnv(files)), "v.conf", tt.want)
		})
	}
}

// TestValidateBuilt checks that Validate re-checks values of a Config that
// did not come from Parse.
func TestValidateBuilt(t *testing.T) {
	env := fakeEnv(map[string]fakeInfo{"/srv/a.img": {size: 4096}})
	good := Export{Slot: 1, File: "/srv/a.img", MACs: []string{"00:16:e6:d3:ed:e5"}, Iface: "eth0", Alias: "a", Line: 3}
	with := func(f func(*Export)) []Export {
		e := good
		e.MACs = slices.Clone(good.MACs)
		f(&e)
		return []Export{e}
	}
	tests := []struct {
		name string
		c    Config
		want []wantErr
	}{
		{"valid", Config{File: "b.conf", Shelf: 1, Exports: []Export{good}}, nil},
		{"reserved shelf", Config{File: "b.conf", Shelf: 4095}, []wantErr{{0, ErrShelf}}},
		{"negative shelf", Config{File: "b.conf", Shelf: -1}, []wantErr{{0, ErrShelf}}},
		{"slot", Config{File: "b.conf", Exports: with(func(e *Export) { e.Slot = 255 })}, []wantErr{{3, ErrSlot}}},
		{"upper-case MAC", Config{File: "b.conf", Exports: with(func(e *Export) { e.MACs = []string{"00:16:E6:D3:ED:E5"} })}, []wantErr{{3, ErrMAC}}},
		{"bad MAC", Config{File: "b.conf", Exports: with(func(e *Export) { e.MACs = []string{"00:16:e6:d3:ed:e51"} })}, []wantErr{{3, ErrMAC}}},
		{"MAC twice", Config{File: "b.conf", Exports: with(func(e *Export) { e.MACs = append(e.MACs, e.MACs[0]) })}, []wantErr{{3, ErrMAC}}},
		{"too many MACs", Config{File: "b.conf", Exports: with(func(e *Export) {
			e.MACs = nil
			for i := range 33 {
				e.MACs = append(e.MACs, fmt.Sprintf("02:00:00:00:00:%02x", i))
			}
		})}, []wantErr{{3, ErrMAC}}},
		{"relative file", Config{File: "b.conf", Exports: with(func(e *Export) { e.File = "a.img" })}, []wantErr{{3, ErrFile}, {3, ErrFile}}},
		{"file with space", Config{File: "b.conf", Exports: with(func(e *Export) { e.File = "/srv/a b.img" })}, []wantErr{{3, ErrFile}, {3, ErrFile}}},
		{"bad iface", Config{File: "b.conf", Exports: with(func(e *Export) { e.Iface = "" })}, []wantErr{{3, ErrIface}, {3, ErrIface}}},
		{"bad alias", Config{File: "b.conf", Exports: with(func(e *Export) { e.Alias = "" })}, []wantErr{{3, ErrSyntax}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, tt.c.Validate(env), "b.conf", tt.want)
		})
	}
}

// writeFile writes a file of size bytes under dir and returns its path.
func writeFile(t *testing.T, dir, name string, size int) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoad runs the real Env: os.Stat and interface lookup. The loopback
// interface "lo" exists in every network namespace.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.img", 4096)
	b := writeFile(t, dir, "b.img", 4096)
	tiny := writeFile(t, dir, "tiny.img", 100)
	sym := filepath.Join(dir, "a-sym.img")
	if err := os.Symlink(a, sym); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "a-hard.img")
	if err := os.Link(a, hard); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.img")
	if err := os.Symlink(filepath.Join(dir, "gone"), dangling); err != nil {
		t.Fatal(err)
	}
	const ok = "00:16:e6:d3:ed:e5"
	line := func(slot int, file, iface, alias string) string {
		return fmt.Sprintf("%d %s %s %s %s\n", slot, file, ok, iface, alias)
	}
	tests := []struct {
		name string
		in   string
		want []wantErr
	}{
		{"valid", line(1, a, "lo", "a") + line(2, b, "lo", "b"), nil},
		{"symlink to an exported file", line(1, a, "lo", "a") + line(2, sym, "lo", "b"), []wantErr{{3, ErrDupFile}}},
		{"hard link to an exported file", line(1, a, "lo", "a") + line(2, hard, "lo", "b"), []wantErr{{3, ErrDupFile}}},
		{"dangling symlink", line(1, dangling, "lo", "a"), []wantErr{{2, ErrFile}}},
		{"missing", line(1, filepath.Join(dir, "nosuch"), "lo", "a"), []wantErr{{2, ErrFile}}},
		{"directory", line(1, dir, "lo", "a"), []wantErr{{2, ErrFile}}},
		{"character device", line(1, "/dev/null", "lo", "a"), []wantErr{{2, ErrFile}}},
		{"too small", line(1, tiny, "lo", "a"), []wantErr{{2, ErrFile}}},
		{"no such interface", line(1, a, "nosuchif0", "a"), []wantErr{{2, ErrIface}}},
		{"parse and validate errors at once", line(1, a, "lo", "a") + line(300, b, "lo", "b") + line(1, b, "nosuchif0", "a") + "SHELF=2\n",
			[]wantErr{{3, ErrSlot}, {4, ErrDupAlias}, {4, ErrDupTarget}, {4, ErrIface}, {5, ErrShelf}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "vbladed.conf")
			if err := os.WriteFile(p, []byte("SHELF=1\n"+tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			checkErrors(t, err, p, tt.want)
			if (c == nil) != (err != nil) {
				t.Errorf("Load = %v, %v; want exactly one of config and error", c, err)
			}
		})
	}
	t.Run("missing config", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nosuch.conf"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
		}
	})
}

// TestLoadBlockDevice exports a real block device, and finds a second device
// node for the same disk through its device number. Needs root for mknod.
func TestLoadBlockDevice(t *testing.T) {
	const dev = "/dev/loop0"
	fi, err := os.Stat(dev)
	if err != nil || fi.Mode()&fs.ModeDevice == 0 || fi.Mode()&fs.ModeCharDevice != 0 {
		t.Skipf("no block device %s to test with", dev)
	}
	write := func(t *testing.T, text string) string {
		p := filepath.Join(t.TempDir(), "vbladed.conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("block device", func(t *testing.T) {
		if _, err := Load(write(t, "SHELF=1\n1 "+dev+" any lo loop\n")); err != nil {
			t.Errorf("Load: %v", err)
		}
	})
	t.Run("second node of one device", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("mknod needs root")
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Skip("no Stat_t")
		}
		node := filepath.Join(t.TempDir(), "loop-copy")
		if err := syscall.Mknod(node, syscall.S_IFBLK|0o600, int(st.Rdev)); err != nil {
			t.Skipf("mknod: %v", err)
		}
		_, err := Load(write(t, "SHELF=1\n1 "+dev+" any lo a\n2 "+node+" any lo b\n"))
		var list ErrorList
		if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 3 || !errors.Is(list[0], ErrDupFile) {
			t.Errorf("Load error = %v, want ErrDupFile at line 3", err)
		}
	})
}

// sameConfig compares shelf and exports, ignoring lines and file names.
func sameConfig(a, b *Config) bool {
	if a.Shelf != b.Shelf || len(a.Exports) != len(b.Exports) {
		return false
	}
	for i := range a.Exports {
		x, y := a.Exports[i], b.Exports[i]
		x.Line, y.Line = 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// Format writes back in a form Parse reads to the same config, and that
// Format is a fixed point.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.conf")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(string(data))
		}
	}
	f.Add("SHELF=1\n1 /a 0016e6d3ede5 e a\n")
	f.Add("SHELF='2' # x\n\t0 /a#b 00-16-e6-d3-ed-e5,02:00:00:00:00:01 e0 a.b\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(strings.NewReader(text), "fuzz.conf")
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 || len(list) > maxErrors+1 {
				t.Fatalf("Parse error %v is not a non-empty capped ErrorList", err)
			}
			return
		}
		out := c.Format()
		c2, err := Parse(strings.NewReader(out), "fuzz.conf")
		if err != nil {
			t.Fatalf("Parse(Format()) failed: %v\ninput:\n%q\nformatted:\n%s", err, text, out)
		}
		if !sameConfig(c, c2) {
			t.Fatalf("Parse(Format()) = %+v, want %+v", c2, c)
		}
		if out2 := c2.Format(); out2 != out {
			t.Fatalf("Format is not stable:\n%s\nthen\n%s", out, out2)
		}
	})
}

// TestValidateErrorCap checks that Validate caps its list like Parse does.
func TestValidateErrorCap(t *testing.T) {
	c := &Config{File: "cap.conf", Shelf: 1}
	for i := range 150 {
		c.Exports = append(c.Exports, Export{Slot: 1, File: "/srv/a.img", Iface: "eth0", Alias: "a", Line: i + 2})
	}
	err := c.Validate(fakeEnv(map[string]fakeInfo{"/srv/a.img": {size: 4096}}))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Validate error = %v, want an ErrorList", err)
	}
	if len(list) != maxErrors+1 || !errors.Is(list[maxErrors], errTooMany) {
		t.Fatalf("len(list) = %d, last %v; want %d entries ending with the too-many marker", len(list), list[len(list)-1], maxErrors+1)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Line < list[i-1].Line {
			t.Errorf("list[%d] line %d before line %d: not sorted", i, list[i].Line, list[i-1].Line)
		}
	}
}
