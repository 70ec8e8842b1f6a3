package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"
)

// Set at build time with -ldflags "-X main.commit=... -X main.packaging=...":
// `make deb` and `make rpm` set both (and version).
var (
	// commit is the VCS commit the binary was built from.
	commit = "unknown"
	// packaging is the package format the binary was built for, "deb" or
	// "rpm"; empty for a build from source (make build, make install).
	packaging = ""
)

// printVersion is `agent --version`: the version on the first line (as
// before), then the commit, the Go toolchain and how the binary was built.
func printVersion(w io.Writer) {
	how := "from source"
	if packaging != "" {
		how = packaging + " package"
	}
	fmt.Fprintf(w, "agent version %s\ncommit: %s\ngo: %s %s/%s\nbuilt: %s\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, how)
}

func init() {
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
}
