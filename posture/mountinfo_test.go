package posture

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	f, err := os.Open("testdata/mountinfo.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseMountinfo(f, "mountinfo.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("got %d mounts, want 8", len(ms))
	}
	got := ms[7]
	want := Mount{ID: 52, Parent: 27, Major: 254, Minor: 0, Root: "/srv/web root", MountPoint: "/srv/my site",
		Options: []string{"rw", "relatime"}, FSType: "ext4", Source: "/dev/vda", SuperOptions: []string{"rw", "discard"}, Line: 8}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("escaped line:\ngot  %+v\nwant %+v", got, want)
	}
	if ms[4].MountPoint != "/" || len(ms[4].SuperOptions) != 2 {
		t.Errorf("optional fields: got %+v", ms[4])
	}
}

func TestParseMountinfoErrors(t *testing.T) {
	for name, in := range map[string]string{
		"short":         "22 27 0:21 / /proc rw\n",
		"no separator":  "22 27 0:21 / /proc rw,relatime proc proc rw\n",
		"bad device":    "22 27 021 / /proc rw - proc proc rw\n",
		"bad escape":    "22 27 0:21 / /pr\\09c rw - proc proc rw\n",
		"cut escape":    "22 27 0:21 / /proc\\04 rw - proc proc rw\n",
		"relative":      "22 27 0:21 / proc rw - proc proc rw\n",
		"bad id":        "x 27 0:21 / /proc rw - proc proc rw\n",
		"no source":     "22 27 0:21 / /proc rw - proc\n",
		"escape > 0xff": "22 27 0:21 / /p\\777 rw - proc proc rw\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseMountinfo(strings.NewReader("27 1 254:0 / / rw - ext4 /dev/vda rw\n"+in), "mi")
			if err == nil || !strings.HasPrefix(err.Error(), "mi:2: ") {
				t.Errorf("got %v, want an error at mi:2", err)
			}
		})
	}
}

func FuzzParseMountinfo(f *testing.F) {
	b, err := os.ReadFile("testdata/mountinfo.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n")
	f.Add("1 1 0:0 /a\\134b /\\040 rw - t s\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMountinfo(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, m := range ms {
			if !strings.HasPrefix(m.MountPoint, "/") {
				t.Fatalf("mount point %q not absolute", m.MountPoint)
			}
			// Escaping and parsing again gives the same path.
			if u, err := unescapeOctal(escapeOctal(m.MountPoint)); err != nil || u != m.MountPoint {
				t.Fatalf("escape round trip of %q: %q, %v", m.MountPoint, u, err)
			}
		}
		dirs := []CheckDir{{Dir: "/tmp", Resolved: "/tmp"}, {Dir: "/var/tmp", Resolved: "/var/tmp"}}
		for _, mc := range CheckMounts(ms, dirs) {
			if len(mc.Missing) > 0 && mc.Fix == "" {
				t.Fatalf("finding without a fix: %+v", mc)
			}
		}
	})
}
