// Package packaging holds the nfpm configuration and maintainer scripts of
// the agent's .deb and .rpm (`make deb`, `make rpm`) and their tests: two
// builds give identical bytes, and the .deb installs, upgrades, removes and
// purges as Debian policy asks, in a throwaway root. It has no Go code.
package packaging
