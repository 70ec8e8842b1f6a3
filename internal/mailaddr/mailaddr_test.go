package mailaddr

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for an error
	}{
		{"root", "root"},
		{"ops.team+agent", "ops.team+agent"},
		{"root@localhost", "root@localhost"},
		{"Ops <ops@example.org>", "ops@example.org"},
		{`"Ops, Team" <ops@example.org>`, "ops@example.org"},
		{"", ""},
		{"not an address", ""},
		{".root", ""},
		{"ro..ot", ""},
		{"root.", ""},
		{"root\r\nBcc: victim@example.org", ""},
		{"a@b\r\nBcc: c@d", ""},
		{"<ops@example.org", ""},
		{"ops@", ""},
		{"rööt", ""},
		{"0@0(\r)", ""}, // found by FuzzParse: a comment is the name
	} {
		a, err := Parse(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("Parse(%q) = %q, want an error", tc.in, a.Address)
		case tc.want != "" && err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case tc.want != "" && a.Address != tc.want:
			t.Errorf("Parse(%q) = %q, want %q", tc.in, a.Address, tc.want)
		}
	}
}

// FuzzParse: a parsed address never carries a control character, and a
// bare one is a local part.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"root", "a@b", "Ops <ops@example.org>", "x\r\ny", `"q" <a@b>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(a.Address, "\r\n\x00") || strings.IndexFunc(a.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			t.Fatalf("Parse(%q) = %q %q", s, a.Name, a.Address)
		}
		if !strings.Contains(a.Address, "@") && !IsLocalPart(a.Address) {
			t.Fatalf("Parse(%q) = %q: bare and no local part", s, a.Address)
		}
	})
}
