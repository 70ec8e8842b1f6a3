package posture

import (
	"fmt"
	"strings"
)

// Mount options the temp dirs need, in the order findings list them.
var hardeningOptions = []string{"noexec", "nosuid", "nodev"}

// OptSeparate is the "option" of the finding that a dir is no mount point
// of its own.
const OptSeparate = "separate"

// MountCheck is the verdict on one temp dir (or world-writable mount point).
type MountCheck struct {
	Dir        string   `json:"dir"`                // as configured
	Resolved   string   `json:"resolved,omitempty"` // Dir after symlinks, when it differs
	MountPoint string   `json:"mount_point"`        // of the mount that holds Dir
	Source     string   `json:"source"`
	FSType     string   `json:"fstype"`
	Separate   bool     `json:"separate"`                       // Dir is a mount point itself
	BindOf     string   `json:"bind_of,omitempty"`              // the directory bind-mounted here (another mount's subtree)
	Options    []string `json:"options"`                        // per-mount options
	Missing    []string `json:"missing,omitempty"`              // "separate", "noexec", "nosuid", "nodev": each one a finding
	Fix        string   `json:"fix,omitempty"`                  // fstab or systemd text that would fix it (never applied)
	Waived     bool     `json:"waived,omitempty"`               // a posture_allow regex matches Dir
	Extra      bool     `json:"world_writable_mount,omitempty"` // not configured: a world-writable mount point found
}

// CheckDir is one dir for CheckMounts: the name as configured and its
// path with symlinks resolved (the same when there are none).
type CheckDir struct {
	Dir, Resolved string
	Extra         bool // a world-writable mount point, not a configured temp dir
}

// CheckMounts judges each dir against the mount table: whether the dir is
// a mount point of its own and whether that mount has noexec, nosuid and
// nodev. A dir that is a bind mount of another file system subtree (same
// device, root inside the other's root: /var/tmp bind-mounted from /tmp)
// is a mount of its own whose per-mount options are judged, the options
// the kernel enforces there. It is a pure function.
func CheckMounts(mounts []Mount, dirs []CheckDir) []MountCheck {
	out := make([]MountCheck, 0, len(dirs))
	for _, d := range dirs {
		path := d.Resolved
		if path == "" {
			path = d.Dir
		}
		mc := MountCheck{Dir: d.Dir, Extra: d.Extra}
		if path != d.Dir {
			mc.Resolved = path
		}
		m := mountOf(mounts, path)
		if m == nil {
			// No mount holds it (a truncated table): nothing protects it.
			mc.Missing = append([]string{OptSeparate}, hardeningOptions...)
			mc.Fix = fixNew(path, mounts, dirs)
			out = append(out, mc)
			continue
		}
		mc.MountPoint, mc.Source, mc.FSType = m.MountPoint, m.Source, m.FSType
		mc.Options = append([]string(nil), m.Options...)
		mc.Separate = m.MountPoint == path && path != "/"
		if b := bindOrigin(mounts, m); b != nil {
			mc.BindOf = bindSource(b, m)
		}
		if !mc.Separate {
			mc.Missing = append(mc.Missing, OptSeparate)
		}
		for _, o := range hardeningOptions {
			if !m.HasOption(o) {
				mc.Missing = append(mc.Missing, o)
			}
		}
		switch {
		case !mc.Separate:
			mc.Fix = fixNew(path, mounts, dirs)
		case len(mc.Missing) > 0:
			mc.Fix = fixExisting(m, mc.BindOf)
		}
		out = append(out, mc)
	}
	return out
}

// mountOf returns the mount visible at path: the deepest mount point that
// is path or an ancestor of it, and of several mounts stacked there the
// one on top (no other one there has it as its parent).
func mountOf(mounts []Mount, path string) *Mount {
	var best *Mount
	for i := range mounts {
		m := &mounts[i]
		if !under(path, m.MountPoint) {
			continue
		}
		switch {
		case best == nil || len(m.MountPoint) > len(best.MountPoint):
			best = m
		case m.MountPoint == best.MountPoint && m.Parent == best.ID:
			best = m // stacked on top of best
		case m.MountPoint == best.MountPoint && best.Parent != m.ID && m.ID > best.ID:
			best = m // unrelated duplicates: the later one
		}
	}
	return best
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir) && len(path) > len(dir) && path[len(dir)] == '/'
}

// bindOrigin returns the mount m is a bind mount of: an earlier mount of
// the same device whose root contains m's root, mounted elsewhere; nil
// when there is none.
func bindOrigin(mounts []Mount, m *Mount) *Mount {
	var best *Mount
	for i := range mounts {
		o := &mounts[i]
		if o.ID == m.ID || o.Major != m.Major || o.Minor != m.Minor || o.MountPoint == m.MountPoint {
			continue
		}
		if !under(m.Root, o.Root) || o.ID > m.ID {
			continue
		}
		if best == nil || len(o.Root) > len(best.Root) {
			best = o
		}
	}
	return best
}

// bindSource is the path, in the mount namespace, of the directory of
// origin o that m shows: o's mount point joined with the part of m's root
// below o's root.
func bindSource(o, m *Mount) string {
	rest := strings.TrimPrefix(m.Root, o.Root)
	if o.Root == "/" {
		rest = m.Root
	}
	if rest == "" || rest == "/" {
		return o.MountPoint
	}
	if o.MountPoint == "/" {
		return rest
	}
	return o.MountPoint + "/" + strings.TrimPrefix(rest, "/")
}

// fixNew is the fix for a dir that is no mount point of its own: a tmpfs
// line for /etc/fstab (or, for /tmp, systemd's tmp.mount), and for
// /var/tmp, when /tmp is a separate mount, a bind mount of /tmp.
func fixNew(path string, mounts []Mount, dirs []CheckDir) string {
	opts := "defaults,noexec,nosuid,nodev"
	var b strings.Builder
	if path == "/var/tmp" {
		if t := mountOf(mounts, "/tmp"); t != nil && t.MountPoint == "/tmp" {
			fmt.Fprintf(&b, "/etc/fstab: /tmp /var/tmp none bind,%s 0 0\n", strings.TrimPrefix(opts, "defaults,"))
			fmt.Fprintf(&b, "(or a file system of its own: tmpfs /var/tmp tmpfs %s,mode=1777,size=1G 0 0)\n", opts)
			return b.String()
		}
	}
	fmt.Fprintf(&b, "/etc/fstab: tmpfs %s tmpfs %s,mode=1777,size=1G 0 0\n", escapeOctal(path), opts)
	if path == "/tmp" {
		b.WriteString("or systemd: systemctl enable tmp.mount, with /etc/systemd/system/tmp.mount.d/hardening.conf:\n")
		b.WriteString("[Mount]\nOptions=mode=1777,strictatime,noexec,nosuid,nodev,size=50%\n")
	}
	return b.String()
}

// fixExisting is the fix for a mount point that lacks options: its own
// fstab line with the options added, the systemd drop-in that does the
// same, and the remount that applies it now.
func fixExisting(m *Mount, bindOf string) string {
	opts := fixOptions(m, bindOf == "")
	var b strings.Builder
	if bindOf != "" {
		fmt.Fprintf(&b, "/etc/fstab: %s %s none bind,%s 0 0\n", escapeOctal(bindOf), escapeOctal(m.MountPoint), opts)
	} else {
		fmt.Fprintf(&b, "/etc/fstab: %s %s %s defaults,%s 0 0\n", escapeOctal(m.Source), escapeOctal(m.MountPoint), m.FSType, opts)
	}
	unit := systemdUnit(m.MountPoint)
	sysOpts := opts
	if bindOf != "" {
		sysOpts = "bind," + opts
	}
	fmt.Fprintf(&b, "or systemd: /etc/systemd/system/%s.d/hardening.conf:\n[Mount]\nOptions=%s\n", unit, sysOpts)
	fmt.Fprintf(&b, "now: mount -o remount,%s %s\n", strings.Join(hardeningOptions, ","), m.MountPoint)
	return b.String()
}

// fixOptions is the option list of the fix: the size, mode and inode
// limits of a tmpfs (unless it is a bind mount, which takes none), the
// per-mount options that are not defaults, then noexec, nosuid and nodev.
func fixOptions(m *Mount, super bool) string {
	var opts []string
	seen := map[string]bool{}
	add := func(o string) {
		if !seen[o] {
			seen[o] = true
			opts = append(opts, o)
		}
	}
	if super && m.FSType == "tmpfs" {
		for _, k := range []string{"size", "nr_inodes", "mode"} {
			if v, ok := m.superOption(k); ok {
				add(k + "=" + v)
			}
		}
	}
	for _, o := range m.Options {
		switch o {
		case "rw", "relatime", "":
		default:
			add(o)
		}
	}
	for _, o := range hardeningOptions {
		add(o)
	}
	return strings.Join(opts, ",")
}

// systemdUnit is the mount unit name of a path, as systemd-escape --path
// --suffix=mount makes it: "/var/tmp" is "var-tmp.mount".
func systemdUnit(path string) string {
	p := strings.Trim(path, "/")
	if p == "" {
		return "-.mount"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == ':', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".mount"
}
