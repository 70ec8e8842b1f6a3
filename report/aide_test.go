package report

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"opsagent/rules"
	"opsagent/scanner"
)

// set builds an AttrSet.
func set(as ...rules.Attr) rules.AttrSet {
	var s rules.AttrSet
	for _, a := range as {
		s |= a.Set()
	}
	return s
}

const (
	tOld = 1795241303 // 2026-11-21 06:08:23 UTC, the init of testdata/aide/a-*
	tNew = 1795241304
)

// fileAttrs is what aide 0.18.3 records for a regular file under the rule of
// testdata/aide/a-aide.conf (no l, selinux or caps: aide drops them).
var fileAttrs = set(rules.AttrFtype, rules.AttrPerm, rules.AttrInode, rules.AttrNlink,
	rules.AttrUID, rules.AttrGID, rules.AttrSize, rules.AttrBlocks, rules.AttrMtime,
	rules.AttrAtime, rules.AttrCtime, rules.AttrMD5, rules.AttrSHA1, rules.AttrSHA256,
	rules.AttrSHA512, rules.AttrACL, rules.AttrXattrs, rules.AttrE2fsattrs)

func file(path string, mode uint32, size int64, ts int64) *scanner.Entry {
	return &scanner.Entry{Path: path, Type: rules.TypeFile, Attrs: fileAttrs, Mode: 0o100000 | mode,
		Size: size, Blocks: 8, Nlink: 1, Atime: ts * 1e9, Mtime: ts * 1e9, Ctime: ts * 1e9, E2fsattrs: 0x80000}
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// aideCase rebuilds some entries of testdata/aide/a-check.txt (aide --check
// after change.sh) from the values that report shows.
func aideCases(t *testing.T) []scanner.Change {
	const d = "/tmp/aidelab/a/tree/"
	var cs []scanner.Change
	add := func(o, n *scanner.Entry, changed rules.AttrSet) {
		n.Ctime = tNew * 1e9
		cs = append(cs, scanner.Change{Path: o.Path, Kind: scanner.Changed, Old: o, New: n, Changed: changed | rules.AttrCtime.Set()})
	}
	// chmod 600 perm; setcap cap_net_raw+ep perm
	o, n := file(d+"perm", 0o644, 2, tOld), file(d+"perm", 0o600, 2, tOld)
	n.Attrs |= rules.AttrCaps.Set()
	capv := b64(t, "AQAAAgAgAAAAAAAAAAAAAAAAAAA=")
	n.Xattrs = []scanner.Xattr{{Name: "security.capability", Value: capv}}
	n.Caps = capv
	add(o, n, set(rules.AttrPerm, rules.AttrACL, rules.AttrXattrs))
	// chmod 640 on a name with a newline
	add(file(d+"new\nline", 0o644, 2, tOld), file(d+"new\nline", 0o640, 2, tOld), set(rules.AttrPerm, rules.AttrACL))
	// chattr +a
	o, n = file(d+"appendonly", 0o644, 2, tOld), file(d+"appendonly", 0o644, 2, tOld)
	n.E2fsattrs |= 0x20
	add(o, n, set(rules.AttrE2fsattrs))
	// setfattr -n user.foo -v bar
	o, n = file(d+"xattr", 0o644, 2, tOld), file(d+"xattr", 0o644, 2, tOld)
	n.Xattrs = []scanner.Xattr{{Name: "user.foo", Value: []byte("bar")}}
	add(o, n, set(rules.AttrXattrs))
	// setfacl -m u:65534:r acl
	o, n = file(d+"acl", 0o644, 2, tOld), file(d+"acl", 0o644, 2, tOld)
	n.ACLAccess = []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xfe, 0xff, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	add(o, n, set(rules.AttrACL))
	// symlink retargeted
	linkAttrs := set(rules.AttrFtype, rules.AttrPerm, rules.AttrInode, rules.AttrNlink, rules.AttrUID,
		rules.AttrGID, rules.AttrSize, rules.AttrBlocks, rules.AttrMtime, rules.AttrAtime, rules.AttrCtime,
		rules.AttrLinkName, rules.AttrXattrs)
	ol := &scanner.Entry{Path: d + "symlink", Type: rules.TypeSymlink, Attrs: linkAttrs, Mode: 0o120777,
		Size: 7, LinkTarget: "target1", Atime: tOld * 1e9, Mtime: tOld * 1e9, Ctime: tOld * 1e9}
	nl := *ol
	nl.LinkTarget, nl.Size, nl.Atime, nl.Mtime = "target2-longer-name-that-wraps-beyond-thirty-two-chars", 54, tNew*1e9, tNew*1e9
	add(ol, &nl, set(rules.AttrLinkName, rules.AttrSize, rules.AttrAtime, rules.AttrMtime))
	// file replaced by a directory
	o = file(d+"file2dir", 0o644, 2, tOld)
	n = &scanner.Entry{Path: d + "file2dir", Type: rules.TypeDir, Mode: 0o40755, Size: 4096, Blocks: 8, Nlink: 2,
		Attrs: fileAttrs &^ rules.HashAttrs, Atime: tNew * 1e9, Mtime: tNew * 1e9, E2fsattrs: 0x80000}
	add(o, n, set(rules.AttrFtype, rules.AttrSize, rules.AttrPerm, rules.AttrAtime, rules.AttrMtime, rules.AttrNlink, rules.AttrACL))
	// unchanged: the Inode of file2dir differs in reality; keep it equal here
	return cs
}

// blocks splits a plain report into its change lines and detailed blocks,
// keyed by the escaped path.
func blocks(text string) (lines, details map[string]string) {
	lines, details = map[string]string{}, map[string]string{}
	var cur string
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if len(l) > 20 && l[18:20] == ": " {
			lines[strings.TrimSuffix(l[20:], "\n")] = l
			continue
		}
		if i := strings.Index(l, ": /"); i > 0 && !strings.HasPrefix(l, " ") && cur == "" {
			cur = strings.TrimSuffix(l[i+2:], "\n")
			b.Reset()
		}
		if cur != "" {
			b.WriteString(l)
			if l == "\n" {
				details[cur] = b.String()
				cur = ""
			}
		}
	}
	return lines, details
}

func TestMatchesAide(t *testing.T) {
	want, err := os.ReadFile("testdata/aide/a-check.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Kind: KindCheck, Start: time.Unix(tNew, 0), End: time.Unix(tNew, 0), AgentVersion: "0.1.0",
		Changes: aideCases(t), Changed: 8, Total: 8,
		UserName: func(uid uint32) string {
			if uid == 65534 {
				return "nobody"
			}
			return ""
		}}
	var got bytes.Buffer
	if err := WriteText(&got, r); err != nil {
		t.Fatal(err)
	}
	wl, wd := blocks(string(want))
	gl, gd := blocks(got.String())
	for _, c := range r.Changes {
		p := EscapePath(c.Path)
		t.Run(p, func(t *testing.T) {
			if gl[p] != wl[p] {
				t.Errorf("change line:\n got %q\nwant %q", gl[p], wl[p])
			}
			if gd[p] != wd[p] {
				t.Errorf("details:\n got %q\nwant %q", gd[p], wd[p])
			}
		})
	}
}
