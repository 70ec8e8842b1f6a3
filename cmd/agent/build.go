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

// packageFiles are the paths the deb and the rpm install (packaging/nfpm.yaml;
// the packaging tests check that the two lists agree). A binary built for a
// package prunes them from every scan like its state_dir, with the reason
// "agent package (FORMAT)": they are the package's own files, vouched for by
// the package manager's records and changed by every upgrade of the agent.
// A directory stands for everything below it.
var packageFiles = map[string][]string{
	"deb": append([]string{
		"/etc/apt/apt.conf.d/99agent",
		"/lib/systemd/system/agent.service",
		"/usr/share/lintian/overrides/agent",
	}, commonPackageFiles...),
	"rpm": append([]string{
		"/etc/dnf/plugins/post-transaction-actions.d/agent.action",
		"/usr/lib/systemd/system/agent.service",
	}, commonPackageFiles...),
}

var commonPackageFiles = []string{
	"/usr/sbin/agent",
	"/usr/share/man/man8/agent.8.gz",
	"/usr/share/bash-completion/completions/agent",
	"/usr/share/agent",
	"/usr/share/doc/agent",
	"/etc/agent",
	"/etc/logrotate.d/agent",
	"/var/log/agent",
}

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
