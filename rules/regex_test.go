package rules

import "testing"

// TestLiteralForms checks which patterns skip the regex engine and that
// they match exactly what the engine would.
func TestLiteralForms(t *testing.T) {
	cases := []struct {
		pattern string
		form    litForm
		lit     string
	}{
		{"/etc", formPrefix, "/etc"},
		{"/usr(/|$)", formComponent, "/usr"},
		{"/usr($|/)", formComponent, "/usr"},
		{`/a\.b(/|$)`, formComponent, "/a.b"},
		{"/var/lib/dpkg(/|$)", formComponent, "/var/lib/dpkg"},
		{"/caf\xe9(/|$)", formComponent, "/caf\xe9"},
		{"/usr(/|$).*", formRegex, ""},
		{"/usr(/.*|$)", formRegex, ""},
		{"/usr/.*", formRegex, ""},
		{"(?i)/etc", formRegex, ""},
		{"/etc$", formRegex, ""},
		{"/etc|/usr", formRegex, ""},
		{"/e.c", formRegex, ""},
		{`/a\x{141}`, formRegex, ""},
		{`/a\x{100}(/|$)`, formRegex, ""},
		{`/a\xff(/|$)`, formComponent, "/a\xff"},
	}
	subjects := []string{"", "/", "/aA", "/a\x00", "/a\xff", "/a\xff/b", "/etc", "/etc/", "/etc/passwd", "/etcetera", "/usr", "/usr/", "/usr/bin",
		"/usrx", "/a.b", "/a.b/c", "/axb", "/var/lib/dpkg", "/var/lib/dpkg/status", "/var/lib/dpkgx",
		"/caf\xe9", "/caf\xe9/x", "/CAF\xc9", "/ETC"}
	for _, c := range cases {
		re, err := compileByteRegex(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if re.form != c.form || re.lit != c.lit {
			t.Errorf("%q: form %d lit %q, want %d %q", c.pattern, re.form, re.lit, c.form, c.lit)
		}
		for _, s := range subjects {
			if got, want := re.match(s), engineMatch(re, s); got != want {
				t.Errorf("%q on %q: %v, the regex engine says %v", c.pattern, s, got, want)
			}
		}
	}
}

// engineMatch is match without the literal shortcut.
func engineMatch(r *byteRegex, s string) bool {
	plain := *r
	plain.form = formRegex
	return plain.match(s)
}

// FuzzLiteralForm: a pattern matched as a literal matches exactly what
// the regex engine matches.
func FuzzLiteralForm(f *testing.F) {
	f.Add("/usr(/|$)", "/usr/bin")
	f.Add("/etc", "/etcx")
	f.Add("/a\\.b($|/)", "/a.b")
	f.Add(`/a\x{141}`, "/aA")
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		re, err := compileByteRegex(pattern)
		if err != nil || re.form == formRegex {
			return
		}
		if got, want := re.match(subject), engineMatch(re, subject); got != want {
			t.Fatalf("%q on %q: literal %v, regex engine %v", pattern, subject, got, want)
		}
	})
}
