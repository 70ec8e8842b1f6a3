// Package aoetest is the test rig for the AoE export supervisor: a minimal
// ATA over Ethernet client over a raw AF_PACKET socket, and helpers that
// build two network namespaces joined by a veth pair.
//
// It owns the AoE wire format the tests need (the common header, Query
// Config, and ATA READ SECTORS / READ SECTORS EXT of single sectors) and the
// lifetime of the namespaces it creates. It never writes to a disk over AoE,
// never opens a socket or runs a command outside a namespace it was given,
// and never touches an interface or address of the host: the veth pair is
// created inside the first namespace with its peer placed straight into the
// second, so it never exists in the host's namespace.
//
// Namespaces are entered with setns(2) on a goroutine locked to its OS
// thread (see Do), not by re-executing the test binary: a packet socket
// stays bound to the namespace it was created in, so a Client dialled inside
// Do keeps talking on the namespace's veth from whatever thread uses it
// afterwards. Commands (the agent, vblade) run in a namespace through
// `ip netns exec`, which execs the command in place, so the pid the caller
// sees is the command's own.
//
// Everything here needs root except the frame encoding and decoding, which
// the unit tests check against golden bytes.
package aoetest
