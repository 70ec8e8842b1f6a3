package posture

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestCheckMounts(t *testing.T) {
	f, err := os.Open("testdata/mountinfo.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseMountinfo(f, "mountinfo.txt")
	if err != nil {
		t.Fatal(err)
	}
	dirs := []CheckDir{{Dir: "/tmp"}, {Dir: "/var/tmp"}, {Dir: "/dev/shm"}, {Dir: "/srv/tmp"}, {Dir: "/run/tmp", Resolved: "/tmp"}}
	got := CheckMounts(ms, dirs)
	type want struct {
		mountPoint, bindOf string
		separate           bool
		missing            []string
		fix                []string // lines the fix must contain
	}
	wants := map[string]want{
		"/tmp": {mountPoint: "/tmp", separate: true},
		"/var/tmp": {mountPoint: "/var/tmp", bindOf: "/tmp/vt", separate: true, missing: []string{"noexec", "nodev"},
			fix: []string{"/etc/fstab: /tmp/vt /var/tmp none bind,nosuid,noexec,nodev 0 0",
				"or systemd: /etc/systemd/system/var-tmp.mount.d/hardening.conf:", "[Mount]", "Options=bind,nosuid,noexec,nodev",
				"now: mount -o remount,noexec,nosuid,nodev /var/tmp"}},
		// The top of the two stacked /dev/shm mounts counts.
		"/dev/shm": {mountPoint: "/dev/shm", separate: true},
		"/srv/tmp": {mountPoint: "/", missing: []string{"separate", "noexec", "nosuid", "nodev"},
			fix: []string{"/etc/fstab: tmpfs /srv/tmp tmpfs defaults,noexec,nosuid,nodev,mode=1777,size=1G 0 0"}},
		"/run/tmp": {mountPoint: "/tmp", separate: true},
	}
	for _, mc := range got {
		w, ok := wants[mc.Dir]
		if !ok {
			t.Errorf("unexpected %+v", mc)
			continue
		}
		if mc.MountPoint != w.mountPoint || mc.BindOf != w.bindOf || mc.Separate != w.separate || !reflect.DeepEqual(mc.Missing, w.missing) {
			t.Errorf("%s: got mount %q bind %q separate %v missing %v, want %q %q %v %v", mc.Dir,
				mc.MountPoint, mc.BindOf, mc.Separate, mc.Missing, w.mountPoint, w.bindOf, w.separate, w.missing)
		}
		lines := strings.Split(mc.Fix, "\n")
		for _, l := range w.fix {
			if !contains(lines, l) {
				t.Errorf("%s: fix lacks %q:\n%s", mc.Dir, l, mc.Fix)
			}
		}
		if len(w.missing) == 0 && mc.Fix != "" {
			t.Errorf("%s: fix without findings:\n%s", mc.Dir, mc.Fix)
		}
	}
}

func TestFixNewTmp(t *testing.T) {
	ms := []Mount{{ID: 1, Parent: 1, MountPoint: "/", Options: []string{"rw"}, FSType: "ext4", Source: "/dev/sda1"}}
	got := CheckMounts(ms, []CheckDir{{Dir: "/tmp"}, {Dir: "/var/tmp"}})
	for _, l := range []string{"/etc/fstab: tmpfs /tmp tmpfs defaults,noexec,nosuid,nodev,mode=1777,size=1G 0 0",
		"or systemd: systemctl enable tmp.mount, with /etc/systemd/system/tmp.mount.d/hardening.conf:",
		"Options=mode=1777,strictatime,noexec,nosuid,nodev,size=50%"} {
		if !contains(strings.Split(got[0].Fix, "\n"), l) {
			t.Errorf("/tmp fix lacks %q:\n%s", l, got[0].Fix)
		}
	}
	// /var/tmp is offered a bind of /tmp only when /tmp is a mount.
	if strings.Contains(got[1].Fix, "bind") {
		t.Errorf("/var/tmp fix binds a /tmp that is no mount:\n%s", got[1].Fix)
	}
	ms = append(ms, Mount{ID: 2, Parent: 1, Major: 0, Minor: 30, Root: "/", MountPoint: "/tmp", Options: []string{"rw", "noexec", "nosuid", "nodev"}, FSType: "tmpfs", Source: "tmpfs"})
	got = CheckMounts(ms, []CheckDir{{Dir: "/var/tmp"}})
	if !contains(strings.Split(got[0].Fix, "\n"), "/etc/fstab: /tmp /var/tmp none bind,noexec,nosuid,nodev 0 0") {
		t.Errorf("/var/tmp fix:\n%s", got[0].Fix)
	}
}

func TestSystemdUnit(t *testing.T) {
	for in, want := range map[string]string{"/tmp": "tmp.mount", "/var/tmp": "var-tmp.mount", "/": "-.mount",
		"/srv/my site": `srv-my\x20site.mount`, "/a-b/.c": `a\x2db-.c.mount`, "/.x": `\x2ex.mount`} {
		if got := systemdUnit(in); got != want {
			t.Errorf("systemdUnit(%q) = %q, want %q", in, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
