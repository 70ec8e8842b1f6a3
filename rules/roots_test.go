package rules

import (
	"slices"
	"strings"
	"testing"
)

func TestSelectionRoots(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want []string
	}{
		{"/etc p\n/usr/lib.* p\n!/usr/lib/x\n", []string{"/etc", "/usr"}},
		{"/srv/www/ p\n/srv p\n", []string{"/srv"}},
		{"=/boot$ p\n/var/log/.* p\n/etc/ld\\.so\\.cache$ p\n", []string{"/boot", "/etc/ld.so.cache", "/var/log"}},
		{"/.* p\n/etc p\n", []string{"/"}},
		{"!/proc\n", nil},
	} {
		pol, err := Parse(strings.NewReader(tc.conf), "t.conf", LoadOptions{})
		if err != nil {
			t.Fatalf("%q: %v", tc.conf, err)
		}
		if got := pol.SelectionRoots(); !slices.Equal(got, tc.want) {
			t.Errorf("%q: SelectionRoots() = %q, want %q", tc.conf, got, tc.want)
		}
	}
}
