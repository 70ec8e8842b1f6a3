package pkgdb

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestDebNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Package
		want []string
	}{
		{"plain", Package{Name: "tp", Version: "1.0-1", Arch: "amd64"}, []string{"tp_1.0-1_amd64.deb"}},
		{"arch all", Package{Name: "tp-doc", Version: "1.0", Arch: "all"}, []string{"tp-doc_1.0_all.deb"}},
		{"epoch", Package{Name: "tp", Version: "2:1.0-1", Arch: "amd64"}, []string{"tp_2%3a1.0-1_amd64.deb", "tp_1.0-1_amd64.deb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DebNames(tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// controlTar builds a control tar with the given members.
func controlTar(t testing.TB, members map[string]string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(members[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(members[n]))
	}
	w.Close()
	return b.Bytes()
}

func TestParseDebControlTar(t *testing.T) {
	sums := "764efa883dda1e11db47671c4a3bbd9e  usr/bin/tp\n"
	for _, tc := range []struct {
		name    string
		in      []byte
		want    []string // paths
		wantErr error
	}{
		{"md5sums", controlTar(t, map[string]string{"./control": "Package: tp\n", "./md5sums": sums}), []string{"/usr/bin/tp"}, nil},
		{"without ./", controlTar(t, map[string]string{"md5sums": sums}), []string{"/usr/bin/tp"}, nil},
		{"no md5sums", controlTar(t, map[string]string{"./control": "Package: tp\n"}), nil, ErrDebNoMD5Sums},
		{"damaged md5sums", controlTar(t, map[string]string{"./md5sums": "xyz  usr/bin/tp\n"}), nil, ErrDpkgRecord},
		{"not a tar", []byte("junk that is not a tar archive at all, but long enough to be read"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ParseDebControlTar(bytes.NewReader(tc.in), "tp.deb")
			var got []string
			for _, s := range out {
				got = append(got, s.Path)
			}
			switch {
			case tc.want == nil && err == nil:
				t.Errorf("got %q, want an error", got)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("error %v, want %v", err, tc.wantErr)
			case !slices.Equal(got, tc.want):
				t.Errorf("got %q, want %q (error %v)", got, tc.want, err)
			}
		})
	}
}

// TestReadDebMD5Sums builds a .deb with the real dpkg-deb, once with and
// once without an md5sums member (xz-compressed control, so that
// dpkg-deb's decompression is exercised).
func TestReadDebMD5Sums(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skipf("dpkg-deb not installed (Debian package dpkg): %v", err)
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tp")
	for name, content := range map[string]string{
		"DEBIAN/control": "Package: tp\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: t\n",
		"usr/bin/tp":     "hi\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := func(out string) string {
		t.Helper()
		deb := filepath.Join(dir, out)
		if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, deb).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb --build: %v\n%s", err, b)
		}
		return deb
	}
	ctx := context.Background()
	if _, err := ReadDebMD5Sums(ctx, build("nosums.deb"), time.Minute); !errors.Is(err, ErrDebNoMD5Sums) {
		t.Errorf("without md5sums: %v, want ErrDebNoMD5Sums", err)
	}
	if err := os.WriteFile(filepath.Join(tree, "DEBIAN/md5sums"), []byte("764efa883dda1e11db47671c4a3bbd9e  usr/bin/tp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := ReadDebMD5Sums(ctx, build("tp.deb"), time.Minute)
	if err != nil || len(sums) != 1 || sums[0].Path != "/usr/bin/tp" {
		t.Errorf("got %+v, %v", sums, err)
	}
	junk := filepath.Join(dir, "junk.deb")
	os.WriteFile(junk, []byte("junk\n"), 0o644)
	if _, err := ReadDebMD5Sums(ctx, junk, time.Minute); err == nil || errors.Is(err, ErrDebNoMD5Sums) {
		t.Errorf("junk .deb: %v, want an error other than ErrDebNoMD5Sums", err)
	}
}

// FuzzParseDebControlTar: no input panics, and what parses is clean.
func FuzzParseDebControlTar(f *testing.F) {
	f.Add(controlTar(f, map[string]string{"./control": "Package: tp\n", "./md5sums": "764efa883dda1e11db47671c4a3bbd9e  usr/bin/tp\n"}))
	f.Add(controlTar(f, map[string]string{"./control": "Package: tp\n"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := ParseDebControlTar(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, s := range out {
			if !isCleanAbs(s.Path) {
				t.Fatalf("path %q not clean", s.Path)
			}
		}
	})
}

// TestCompareDebSums installs a package with a conffile and a file another
// package's diversion moved, then compares its record with the .deb's
// md5sums as shipped and as a forger would see them.
func TestCompareDebSums(t *testing.T) {
	h := newDpkgHost(t, true)
	tp := deb{Name: "tp", Version: "1.0", MD5Sums: true, Conffiles: []string{"/etc/tp.conf"},
		Files: map[string]string{"/usr/bin/tp": "tp\n", "/usr/bin/tq": "tq\n", "/usr/share/tp/data": "data\n", "/etc/tp.conf": "x=1\n"}}
	h.run("dpkg-divert", "--root="+h.root, "--package", "other", "--divert", "/usr/bin/tq.real", "--add", "/usr/bin/tq")
	h.dpkg("-i", h.build(tp))
	d := h.open()
	sum := func(s string) [16]byte { return md5.Sum([]byte(s)) }
	shipped := []DpkgSum{{"/usr/bin/tp", sum("tp\n")}, {"/usr/bin/tq", sum("tq\n")}, {"/usr/share/tp/data", sum("data\n")}}
	if got := d.CompareDebSums("tp", shipped); len(got) != 0 {
		t.Errorf("as installed: %+v, want no difference", got)
	}
	other := []DpkgSum{
		{"/usr/bin/tp", sum("evil\n")},        // the record was forged
		{"/usr/bin/tq", sum("evil\n")},        // diverted: reported where it lies
		{"/usr/share/tp/new", sum("new\n")},   // the record lacks it
		{"/etc/tp.conf", sum("other\n")},      // conffiles are the status file's
		{"/usr/share/tp/data", sum("data\n")}, // same
	}
	var got []string
	for _, df := range d.CompareDebSums("tp", other) {
		got = append(got, fmt.Sprintf("%s recorded=%v", df.Path, df.Recorded != nil))
	}
	want := []string{"/usr/bin/tp recorded=true", "/usr/bin/tq.real recorded=true", "/usr/share/tp/new recorded=false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
