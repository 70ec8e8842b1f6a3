package sshval

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The -update flag rewrites the golden files. Other test files of the
// package may register it too, so it is registered only if still missing
// (package-level flag vars of any file run before init).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files")
	}
}

func auditUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// wire helpers building key blobs in the RFC 4253 §6.6 form.
func sshStr(b []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	return append(out, b...)
}

func mpint(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return sshStr(b)
}

func blobLine(typ string, parts ...[]byte) string {
	blob := sshStr([]byte(typ))
	for _, p := range parts {
		blob = append(blob, p...)
	}
	return typ + " " + base64.StdEncoding.EncodeToString(blob)
}

// testKeys are generated once: RSA key generation is the slow part.
var testKeys = sync.OnceValue(func() map[string]string {
	k := map[string]string{}
	for _, bits := range []int{1024, 2048} {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			panic(err)
		}
		e := big.NewInt(int64(key.E))
		k[fmt.Sprintf("rsa%d", bits)] = blobLine("ssh-rsa", mpint(e), mpint(key.N))
		if bits == 1024 {
			nonce := sshStr([]byte("0123456789abcdef0123456789abcdef"))
			k["rsa1024cert"] = blobLine("ssh-rsa-cert-v01@openssh.com", nonce, mpint(e), mpint(key.N))
		}
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k["ed25519"] = blobLine("ssh-ed25519", sshStr(pub))
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	k["ed25519b"] = blobLine("ssh-ed25519", sshStr(pub2))
	// A DSA public key is p, q, g, y; any positive numbers do for the audit.
	p := new(big.Int).Lsh(big.NewInt(1), 1023)
	k["dsa"] = blobLine("ssh-dss", mpint(p.Add(p, big.NewInt(12345))), mpint(big.NewInt(65537)), mpint(big.NewInt(2)), mpint(big.NewInt(99999)))
	k["shortblob"] = "ssh-rsa " + base64.StdEncoding.EncodeToString(sshStr([]byte("ssh-rsa"))[:6])
	k["badmod"] = blobLine("ssh-rsa", mpint(big.NewInt(3)), sshStr([]byte{0x80, 1}))
	k["shorted"] = blobLine("ssh-ed25519", sshStr(make([]byte, 31)))
	return k
})

func TestParseKeyLineProblems(t *testing.T) {
	k := testKeys()
	good := `from="10.0.0.0/8",command="/usr/sbin/agent sshval",restrict `
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"restricted ed25519", good + k["ed25519"] + " backup@c1", nil},
		{"rsa 2048", good + k["rsa2048"], nil},
		{"rsa 1024", good + k["rsa1024"], []string{ProblemWeakRSA + "1024 bits"}},
		{"rsa 1024 certificate", good + k["rsa1024cert"], []string{ProblemWeakRSA + "1024 bits"}},
		{"dsa", good + k["dsa"], []string{ProblemDSA}},
		{"bare key", k["ed25519"], []string{ProblemNoCommand, ProblemNoFrom}},
		{"restrict without command", `restrict,from="1.2.3.4" ` + k["ed25519"], []string{ProblemNoCommand}},
		{"command only", `command="x",from="1.2.3.4" ` + k["ed25519"], []string{ProblemUnrestricted}},
		{"no-pty and no-port-forwarding", `command="x",no-pty,no-port-forwarding,from="1.2.3.4" ` + k["ed25519"], nil},
		{"no-pty only", `command="x",no-pty,from="1.2.3.4" ` + k["ed25519"], []string{ProblemUnrestricted}},
		{"restrict undone by pty", `command="x",restrict,pty,from="1.2.3.4" ` + k["ed25519"], []string{ProblemUnrestricted}},
		{"restrict undone by port-forwarding", `command="x",restrict,port-forwarding,from="1.2.3.4" ` + k["ed25519"], []string{ProblemUnrestricted}},
		{"restrict then agent-forwarding is fine", `command="x",restrict,agent-forwarding,from="1.2.3.4" ` + k["ed25519"], nil},
		{"no from", `command="x",restrict ` + k["ed25519"], []string{ProblemNoFrom}},
		{"upper-case option names", `COMMAND="x",Restrict,FROM="1.2.3.4" ` + k["ed25519"], nil},
		{"quoted commas and blanks", `command="a, b \"c d\"",restrict,from="10.0.0.0/8,192.168.*" ` + k["ed25519"], nil},
		{"tab separated", "command=\"x\",restrict,from=\"1.2.3.4\"\t" + strings.ReplaceAll(k["ed25519"], " ", "\t") + "\tc", nil},
		{"permitopen and environment", `command="x",restrict,permitopen="h:1",environment="A=b",from="1.2.3.4" ` + k["ed25519"], nil},
		{"dsa and everything missing", k["dsa"], []string{ProblemDSA, ProblemNoCommand, ProblemNoFrom}},
		{"rsa 1024 bare", k["rsa1024"], []string{ProblemWeakRSA + "1024 bits", ProblemNoCommand, ProblemNoFrom}},
		{"unterminated quote", `command="x,restrict ` + k["ed25519"], []string{ProblemUnparseable + `unterminated quote in option "command"`}},
		{"unknown option", `bogus,restrict ` + k["ed25519"], []string{ProblemUnparseable + `unsupported option "bogus"`}},
		{"unknown single option", `bogus ` + k["ed25519"], []string{ProblemUnparseable + `unsupported option "bogus"`}},
		{"unknown word", `bogus AAAA`, []string{ProblemUnparseable + `unknown key type "bogus"`}},
		{"flag with value", `no-pty="x" ` + k["ed25519"], []string{ProblemUnparseable + `option "no-pty" takes no value`}},
		{"unquoted value", `command=x ` + k["ed25519"], []string{ProblemUnparseable + `value of option "command" is not quoted`}},
		{"value missing", `command,restrict ` + k["ed25519"], []string{ProblemUnparseable + `option "command" needs a value`}},
		{"empty option", `restrict,,no-pty ` + k["ed25519"], []string{ProblemUnparseable + "empty option"}},
		{"junk after quote", `command="x"y ` + k["ed25519"], []string{ProblemUnparseable + `unexpected "y" after option "command"`}},
		{"options only", `restrict`, []string{ProblemUnparseable + "no key after options"}},
		{"unknown key type", `ssh-foo AAAA`, []string{ProblemUnparseable + `unknown key type "ssh-foo"`}},
		{"unknown key type after options", `restrict ssh-foo AAAA`, []string{ProblemUnparseable + `unknown key type "ssh-foo"`}},
		{"no blob", `restrict ssh-ed25519`, []string{ProblemUnparseable + "no key after key type"}},
		{"bad base64", `ssh-ed25519 AAAA!!!`, []string{ProblemUnparseable + "key is not valid base64"}},
		{"type mismatch", "ssh-rsa" + strings.TrimPrefix(k["ed25519"], "ssh-ed25519"), []string{ProblemUnparseable + `key blob holds type "ssh-ed25519", line says "ssh-rsa"`}},
		{"truncated blob", k["shortblob"], []string{ProblemUnparseable + "key blob truncated"}},
		{"negative modulus", k["badmod"], []string{ProblemUnparseable + "RSA key blob has a non-positive exponent or modulus"}},
		{"short ed25519", k["shorted"], []string{ProblemUnparseable + "Ed25519 key blob is not 32 bytes"}},
		{"control characters in comment", good + k["ed25519"] + " evil\rcomment", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, _, err := checkKeys(strings.NewReader(tt.line+"\n"), "f", "u", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range found {
				got = append(got, f.Problem)
				if f.Line != 1 || f.File != "f" || f.User != "u" {
					t.Errorf("finding %+v: want f:1 user u", f.Finding)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	k := testKeys()
	found, occs, err := checkKeys(strings.NewReader(k["rsa1024"]+" evil\ncomment\x1b[2J\n"), "f", "u", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(occs) != 1 || len(found) == 0 {
		t.Fatalf("got %d keys, %d findings; want 1 key", len(occs), len(found))
	}
	// The comment is only "evil"; the next line is an unparseable line.
	blob, _ := base64.StdEncoding.DecodeString(strings.Fields(k["rsa1024"])[1])
	want := "ssh-rsa SHA256:" + keyFingerprint(blob) + " evil"
	if found[0].Key != want {
		t.Errorf("Key = %q, want %q", found[0].Key, want)
	}
	last := found[len(found)-1]
	if last.Line != 2 || !strings.HasPrefix(last.Problem, ProblemUnparseable) {
		t.Errorf("line 2: got %+v, want unparseable", last)
	}
	found, _, _ = checkKeys(strings.NewReader(k["ed25519"]+" a\x1b[2Jb\r\n"), "f", "u", 0, false)
	if len(found) == 0 || !strings.HasSuffix(found[0].Key, ` a\033[2Jb`) {
		t.Errorf("escaped comment: got %+v", found)
	}
}

func keyFingerprint(blob []byte) string {
	s := (&keyLine{blob: blob}).id()
	return strings.TrimPrefix(s, " SHA256:")
}

// TestFingerprintMatchesSSHKeygen pins the Key format to what
// ssh-keygen -lf prints for the committed testdata.
func TestFingerprintMatchesSSHKeygen(t *testing.T) {
	_, occs, err := checkKeys(strings.NewReader(readTestdata(t, "mixed.keys")), "f", "u", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{
		3: "ssh-ed25519 SHA256:mm4aJOyuFnIsaDeTFyeb/KAcSjm/PM73sWfDi56XK3U backup@client1",
		5: "ssh-rsa SHA256:Ua4RtWktGWo1BFvEb4VqbzRi+xdC08bzJzEhSB+sGcY old-style@client3",
		9: "ssh-dss SHA256:NlrjmSTuRw/jg3Zif3GxzEtgHL8Nqk3A7NcMr8mfEvs dsa@legacy",
	}
	got := map[int]string{}
	for _, o := range occs {
		got[o.line] = o.key
	}
	for line, key := range want {
		if got[line] != key {
			t.Errorf("line %d: got %q, want %q", line, got[line], key)
		}
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "audit", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func putFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAuditDuplicatesAndUsers(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	ok := `command="x",restrict,from="10.0.0.0/8" `
	alice := filepath.Join(dir, "home", "alice", ".ssh", "authorized_keys")
	alice2 := filepath.Join(dir, "home", "alice", ".ssh", "authorized_keys2")
	bob := filepath.Join(dir, "home", "bob", ".ssh", "authorized_keys")
	other := filepath.Join(dir, "etc", "keys", "carol")
	putFile(t, alice, ok+k["ed25519"]+" shared\n"+ok+k["ed25519b"]+" alice-only\n"+ok+k["ed25519b"]+" twice-same-file\n")
	putFile(t, alice2, "# nothing\n")
	putFile(t, bob, "\n"+ok+k["ed25519"]+" shared-too\n")
	putFile(t, other, ok+k["ed25519"]+" third\n")
	users := []passwdEntry{
		{name: "root", uid: 0, home: "/root"},
		{name: "alice", uid: 1000, home: filepath.Join(dir, "home", "alice")},
		{name: "bob", uid: 1001, home: filepath.Join(dir, "home", "bob") + "/"},
	}
	missing := filepath.Join(dir, "nope")
	got, err := audit([]string{alice, missing, bob, alice, other, alice2}, users)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != missing {
		t.Errorf("err = %v, want *fs.PathError for %s", err, missing)
	}
	// Run as root, carol's file is owned by uid 0, which passwd names root.
	owner := "root"
	if os.Geteuid() != 0 {
		owner = fmt.Sprint(os.Geteuid())
	}
	want := []Finding{
		{alice, 1, "alice", "", ProblemDuplicate + bob + ":2 (user bob), " + other + ":1 (user " + owner + ")"},
		{bob, 2, "bob", "", ProblemDuplicate + alice + ":1 (user alice), " + other + ":1 (user " + owner + ")"},
		{other, 1, owner, "", ProblemDuplicate + alice + ":1 (user alice), " + bob + ":2 (user bob)"},
	}
	for i := range got {
		got[i].Key = "" // checked elsewhere
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings:\n got %+v\nwant %+v", got, want)
	}
}

func TestAuditGolden(t *testing.T) {
	files := []string{"testdata/audit/mixed.keys", "testdata/audit/other.keys"}
	found, err := audit(files, []passwdEntry{{name: "irsync", uid: uint32(os.Geteuid())}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range found {
		fmt.Fprintf(&b, "%s:%d user=%s key=%q\n\t%s\n", f.File, f.Line, f.User, f.Key, f.Problem)
	}
	golden := filepath.Join("testdata", "audit", "mixed.golden")
	if auditUpdate() {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("audit of %v differs from %s (rerun with -update to accept):\n%s", files, golden, b.String())
	}
}

func TestReadLineLimits(t *testing.T) {
	k := testKeys()
	long := strings.Repeat("A", maxKeyLine+10)
	data := k["ed25519"] + "\n" + long + "\n" + k["ed25519"] + "\n" + "no-newline-at-end"
	found, occs, err := checkKeys(strings.NewReader(data), "f", "u", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(occs) != 2 || occs[0].line != 1 || occs[1].line != 3 {
		t.Errorf("keys at %+v, want lines 1 and 3", occs)
	}
	var lines []int
	for _, f := range found {
		if strings.HasPrefix(f.Problem, ProblemUnparseable) {
			lines = append(lines, f.Line)
		}
	}
	if !slices.Equal(lines, []int{2, 4}) {
		t.Errorf("unparseable lines %v, want [2 4]", lines)
	}
	// A line of exactly maxKeyLine bytes is still read.
	exact := strings.Repeat("#", maxKeyLine) + "\n" + k["ed25519"]
	_, occs, _ = checkKeys(strings.NewReader(exact), "f", "u", 0, false)
	if len(occs) != 1 || occs[0].line != 2 {
		t.Errorf("after a %d-byte comment: keys %+v, want one on line 2", maxKeyLine, occs)
	}
}

func TestReadPasswdAndKeyFiles(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	putFile(t, passwd, strings.Join([]string{
		"root:x:0:0:root:" + filepath.Join(dir, "root") + ":/bin/bash",
		"# comment",
		"",
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
		"+nisuser::::::",
		"broken:x:notanumber:1::/x:/bin/sh",
		"short:x:5",
		"irsync:x:1001:1001:backup:" + filepath.Join(dir, "irsync") + ":/bin/sh",
		"alias:x:1002:1002::" + filepath.Join(dir, "irsync") + ":/bin/sh",
		"nohome:x:1003:1003:::/bin/sh",
	}, "\n"))
	putFile(t, filepath.Join(dir, "root", ".ssh", "authorized_keys2"), "")
	putFile(t, filepath.Join(dir, "irsync", ".ssh", "authorized_keys"), "")
	putFile(t, filepath.Join(dir, "irsync", ".ssh", "authorized_keys2"), "")
	users, err := readPasswd(passwd)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.name)
	}
	if want := []string{"root", "daemon", "irsync", "alias", "nohome"}; !slices.Equal(names, want) {
		t.Errorf("users %q, want %q", names, want)
	}
	got := userKeyFiles(users)
	want := []string{
		filepath.Join(dir, "root", ".ssh", "authorized_keys2"),
		filepath.Join(dir, "irsync", ".ssh", "authorized_keys"),
		filepath.Join(dir, "irsync", ".ssh", "authorized_keys2"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("key files:\n got %q\nwant %q", got, want)
	}
	if _, err := readPasswd(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing passwd: err = %v, want fs.ErrNotExist", err)
	}
}

func TestAllUsersKeyFiles(t *testing.T) {
	files, err := AllUsersKeyFiles()
	if err != nil {
		t.Skipf("no usable /etc/passwd: %v", err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, "/.ssh/authorized_keys") && !strings.HasSuffix(f, "/.ssh/authorized_keys2") {
			t.Errorf("unexpected file %s", f)
		}
	}
}

func FuzzAudit(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "audit"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".keys") {
			b, err := os.ReadFile(filepath.Join("testdata", "audit", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
			for line := range strings.SplitSeq(string(b), "\n") {
				f.Add([]byte(line))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		found, occs, err := checkKeys(bytes.NewReader(data), "a", "u", 0, false)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, f := range found {
			if f.Line < 1 || f.Line > lines {
				t.Errorf("finding on line %d of %d", f.Line, lines)
			}
			if f.Problem == "" || strings.ContainsAny(f.Key+f.Problem, "\n\r") {
				t.Errorf("bad finding %+v", f.Finding)
			}
		}
		// The same data in a second file: every key is then a duplicate.
		found2, occs2, _ := checkKeys(bytes.NewReader(data), "b", "v", 1, false)
		dups := duplicates(append(occs, occs2...))
		if len(dups) != 2*len(occs) {
			t.Errorf("%d duplicate findings for %d keys in two copies", len(dups), len(occs))
		}
		if len(found2) != len(found) {
			t.Errorf("second pass found %d, first %d", len(found2), len(found))
		}
	})
}

func TestAuditPublic(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "authorized_keys")
	found, err := Audit([]string{"testdata/audit/other.keys", missing})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist for %s", err, missing)
	}
	if len(found) != 0 {
		t.Errorf("a restricted key with command and from= alone: got %+v, want no findings", found)
	}
	found, err = Audit([]string{"testdata/audit/mixed.keys", "testdata/audit/other.keys"})
	if err != nil || len(found) != 17 {
		t.Errorf("Audit: %d findings, err %v; want the 17 of the golden", len(found), err)
	}
}

// TestIssue14RootPush: a root key forcing agent sshval whose rules let a
// push rule run without run_as is a finding; with run_as, or for another
// account, or for a pull-only rule, it is not.
func TestIssue14RootPush(t *testing.T) {
	k := testKeys()
	dir := t.TempDir()
	rules := filepath.Join(dir, "sshval.conf")
	text := "rsync backups {\n\troot /data/b\n\tpush yes\n}\nrsync safe {\n\troot /data/s\n\tpush yes\n\trun_as backup\n}\nrsync ro {\n\troot /data/r\n\tpull yes\n}\n"
	if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	line := `command="/usr/sbin/agent sshval --rules ` + rules + `",restrict,from="10.0.0.1" ` + k["ed25519"] + "\n"
	want := []string{ProblemRootPush + "rule backups (" + rules + ":1)"}
	for _, tt := range []struct {
		name string
		line string
		root bool
		want []string
	}{
		{"root", line, true, want},
		{"root, --rules=", strings.Replace(line, "--rules ", "--rules=", 1), true, want},
		{"another account", line, false, nil},
		{"root, another forced command", strings.Replace(line, "agent sshval", "agent status", 1), true, nil},
		{"root, rules missing", strings.Replace(line, rules, rules+".missing", 1), true, nil},
		{"root, rules invalid", strings.Replace(line, rules, dir, 1), true, []string{ProblemRules}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			found, _, err := checkKeys(strings.NewReader(tt.line), "f", "root", 0, tt.root)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range found {
				p := f.Problem
				if strings.HasPrefix(p, ProblemRules) {
					p = ProblemRules
				}
				got = append(got, p)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
