package main

import (
	"bytes"
	"runtime"
	"testing"
)

// TestPrintVersion: `agent --version` gives the version on the first line,
// then the commit, the Go toolchain and how the binary was built (the
// package build's -X main.packaging shows as "deb package").
func TestPrintVersion(t *testing.T) {
	for _, tc := range []struct{ packaging, built string }{
		{"", "from source"},
		{"deb", "deb package"},
	} {
		old := packaging
		packaging = tc.packaging
		var b bytes.Buffer
		printVersion(&b)
		packaging = old
		want := "agent version " + version + "\ncommit: " + commit + "\ngo: " + runtime.Version() + " " +
			runtime.GOOS + "/" + runtime.GOARCH + "\nbuilt: " + tc.built + "\n"
		if b.String() != want {
			t.Errorf("packaging %q:\n%s\nwant:\n%s", tc.packaging, b.String(), want)
		}
	}
}
