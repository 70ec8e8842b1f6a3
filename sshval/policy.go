package sshval

import (
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// stripSetID is the --chmod sshval appends to a push that runs as root
// without "owners yes": it clears the set-uid and set-gid bits of every
// received file and directory, so that neither -p nor a client's own
// --chmod (which its rsync applies before sending) can plant a set-uid root
// binary. rsync applies a server's --chmod to the
// file list it receives (flist.c, recv_file_entry), after the client's.
const stripSetID = "--chmod=ug-s"

// sent records the options of one rsync server command, by long name, for
// the policy checks: how the client spelled each (e.g. "-D" or
// "--devices") and the values of the value options, in order.
type sent struct {
	how    map[string]string
	values map[string][]string
}

func (s *sent) add(name, spelling string) {
	if s.how == nil {
		s.how = map[string]string{}
	}
	if _, ok := s.how[name]; !ok {
		s.how[name] = spelling
	}
}

func (s *sent) addValue(name, val string) {
	if s.values == nil {
		s.values = map[string][]string{}
	}
	s.add(name, "--"+name)
	s.values[name] = append(s.values[name], val)
}

func (s *sent) has(name string) bool { _, ok := s.how[name]; return ok }

// shortLong names the long options behind the cluster letters the policy
// cares about; -D is --devices plus --specials.
var shortLong = map[byte][]string{
	'D': {"devices", "specials"},
	'o': {"owner"},
	'g': {"group"},
	'b': {"backup"},
	'p': {"perms"},
}

// policy checks the options of a push or pull against the rule's device,
// owner, delete and overwrite settings, and returns the options sshval
// appends. privileged says the program runs as root (see runsAsRoot);
// pushes only: a pull makes rsync read, never create or replace, files
// below the root.
//
// As root, without "devices yes": -D, --devices and --specials (device
// nodes, FIFOs, sockets) are refused unless --fake-super is in effect
// (which stores them as plain 0600 files). --copy-devices and
// --write-devices need "devices yes" whatever the account.
//
// As root, without "owners yes": --super is refused; --fake-super is
// refused unless the rule's options list it; a --usermap or --groupmap (a
// client's --chown=USER:GROUP arrives as both, "*:USER") that maps to uid or gid 0 (or the names root and wheel), or to a
// name this host does not know, is refused; -o and -g are refused unless
// --fake-super is in effect or a map with a "*" entry decides every owner;
// a --chmod that adds set-uid or set-gid bits is refused; and stripSetID is
// appended, since rsync as root would otherwise keep the s bits -p sends.
//
// Under "delete no": --force (which replaces a non-empty directory by a
// file), every --delete option and --remove-source-files are refused (see
// optDelete), as is --backup with an empty --suffix and no --backup-dir.
// Under "overwrite no": --inplace and --append are refused and
// --ignore-existing is appended.
func policy(r *Rule, s *sent, sender, privileged bool) ([]string, error) {
	var add []string
	for _, name := range []string{"copy-devices", "write-devices"} {
		if s.has(name) && !r.Devices {
			return nil, refuse(s.how[name], "it gives access to device contents; it needs devices yes")
		}
	}
	if !r.Delete {
		if s.has("backup") && !s.has("backup-dir") && slices.Contains(s.values["suffix"], "") {
			return nil, refuse("--suffix with an empty value", "a backup would replace the file it saves")
		}
	}
	if sender {
		return nil, nil
	}
	if r.NoOverwrite {
		for _, name := range []string{"inplace", "append"} {
			if s.has(name) {
				return nil, refuse(s.how[name], "it changes existing files, and the rule says overwrite no")
			}
		}
		add = append(add, "--ignore-existing")
	}
	if !privileged {
		return add, nil
	}
	fakeSuper := false
	if s.has("fake-super") {
		if !r.Owners && !slices.Contains(r.Options, "--fake-super") {
			return nil, refuse("--fake-super", "as root it records client-chosen owners and modes; it needs owners yes or --fake-super in the rule's options")
		}
		fakeSuper = !s.has("super")
	}
	if !r.Devices && !fakeSuper {
		for _, name := range []string{"devices", "specials"} {
			if s.has(name) {
				return nil, refuse(s.how[name], "run as root it creates device nodes, FIFOs and sockets; the rule needs devices yes (or the client rsync -a --no-D, or run_as)")
			}
		}
	}
	if r.Owners {
		return add, nil
	}
	if s.has("super") {
		return nil, refuse("--super", "it makes rsync act as root; it needs owners yes")
	}
	for _, m := range []struct {
		opt, flag, kind string
		group           bool
	}{
		{"usermap", "owner", "user", false},
		{"groupmap", "group", "group", true},
	} {
		maps := s.values[m.opt]
		total := false
		for _, v := range maps {
			t, err := checkIDMap(v, m.group)
			if err != nil {
				return nil, refuse(fmt.Sprintf("--%s %q", m.opt, v), "%v", err)
			}
			total = total || t
		}
		if (s.has(m.flag) || len(maps) > 0) && !total && !fakeSuper {
			how := s.how[m.flag]
			if how == "" {
				how = "--" + m.opt
			}
			return nil, refuse(how, "run as root it lets the client choose each file's %s, root included; the rule needs owners yes (or run_as, or the client --chown=USER:GROUP)", m.kind)
		}
	}
	for _, v := range s.values["chmod"] {
		adds, err := chmodAddsSetID(v)
		if err != nil {
			return nil, refuse(fmt.Sprintf("--chmod %q", v), "%v", err)
		}
		if adds {
			return nil, refuse(fmt.Sprintf("--chmod %q", v), "it adds set-uid or set-gid bits, and run as root that needs owners yes")
		}
	}
	if !fakeSuper {
		add = append(add, stripSetID)
	}
	return add, nil
}

// runsAsRoot reports whether rule r runs its program as root: its run_as
// names uid 0 (as "root", "0" or a name that resolves to 0), or it has no
// run_as and euid, sshval's own effective uid, is 0. A run_as account this
// host does not know counts as root: the command fails then anyway, and
// the stricter checks are the safe side.
func runsAsRoot(r *Rule, euid int) bool {
	if r.RunAs == "" {
		return euid == 0
	}
	name, _, _ := strings.Cut(r.RunAs, ":")
	if id, ok := decimal(name); ok {
		return id == 0
	}
	if name == "root" {
		return true
	}
	u, err := user.Lookup(name)
	return err != nil || u.Uid == "0"
}

// checkIDMap checks one --usermap or --groupmap value as rsync parses it
// (uidlist.c, parse_name_map):
//
//	FROM:TO[,FROM:TO]...   e.g. "*:backup" or "1000-1999:staff,root:nobody"
//
// FROM is an id, an id range, a name or a wildcard pattern; TO is a name or
// a number on this host. It refuses a TO that is 0, "root", "wheel" or a
// name resolving to id 0, and a TO name this host does not know (rsync
// skips such an entry, so the ids it was meant to catch pass through
// unchanged). It reports whether the map is total: an entry whose FROM is
// only "*" catches every id, named or not.
func checkIDMap(m string, group bool) (total bool, err error) {
	for entry := range strings.SplitSeq(m, ",") {
		from, to, ok := strings.Cut(entry, ":")
		if !ok || from == "" || to == "" {
			return false, fmt.Errorf("entry %q is not FROM:TO", entry)
		}
		if isRootID(to, group) {
			kind := "user"
			if group {
				kind = "group"
			}
			return false, fmt.Errorf("it maps to %s %s (root, or unknown on this host), and run as root that needs owners yes", kind, to)
		}
		if strings.Trim(from, "*") == "" {
			total = true
		}
	}
	return total, nil
}

// isRootID reports whether the TO of a map names the root user (uid 0) or
// group (gid 0, or wheel), or something this host cannot resolve.
func isRootID(to string, group bool) bool {
	if id, ok := decimal(to); ok {
		return id == 0
	}
	if to == "root" || group && to == "wheel" {
		return true
	}
	if group {
		g, err := user.LookupGroup(to)
		return err != nil || g.Gid == "0"
	}
	u, err := user.Lookup(to)
	return err != nil || u.Uid == "0"
}

// decimal parses an unsigned decimal id; ok is false for anything else.
func decimal(s string) (uint64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// chmodAddsSetID parses a --chmod value as rsync does (chmod.c,
// parse_chmod) and reports whether any of its items can add a set-uid or
// set-gid bit. Items are comma separated:
//
//	[DF][ugoa]*[-+=][rwxXst]*   e.g. "Dg+s,Fo-w" or "u=g"
//	[DF]OCTAL                   e.g. "F4755" or "D2775"
//
// An "s" with "+" or "=" adds a bit (rsync makes "o+s" set-uid, so the
// who-letters do not matter); an octal mode adds one if it has 06000 set.
// Copying bits ("g=u") never copies s bits. A malformed value is an error.
func chmodAddsSetID(v string) (bool, error) {
	adds := false
	for item := range strings.SplitSeq(v, ",") {
		a, err := chmodItem(item)
		if err != nil {
			return false, err
		}
		adds = adds || a
	}
	return adds, nil
}

func chmodItem(item string) (bool, error) {
	bad := fmt.Errorf("item %q is not a chmod mode", item)
	i := 0
	dirs, files, who := false, false, false
	for ; i < len(item); i++ {
		c := item[i]
		switch {
		case c == 'D' && !files:
			dirs = true
			continue
		case c == 'F' && !dirs:
			files = true
			continue
		case strings.IndexByte("ugoa", c) >= 0:
			who = true
			continue
		}
		break
	}
	if i == len(item) {
		return false, bad
	}
	if c := item[i]; c >= '0' && c <= '7' && !who {
		n, err := strconv.ParseUint(item[i:], 8, 32)
		if err != nil || n > 0o7777 {
			return false, bad
		}
		return n&0o6000 != 0, nil
	}
	op := item[i]
	if op != '+' && op != '-' && op != '=' {
		return false, bad
	}
	rest := item[i+1:]
	if len(rest) == 1 && strings.IndexByte("ugo", rest[0]) >= 0 {
		return false, nil // copying bits, never the s bits
	}
	if strings.Trim(rest, "rwxXst") != "" {
		return false, bad
	}
	return op != '-' && strings.IndexByte(rest, 's') >= 0, nil
}
