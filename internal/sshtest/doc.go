// Package sshtest is the test rig for sshval's end-to-end test: a throwaway
// local user, ed25519 keys made with ssh-keygen, a private sshd listening on
// 127.0.0.1 with its own host key and configuration, and the ssh and rsync
// client commands that talk to it.
//
// It owns the lifetime of what it creates: Server.Stop kills the sshd it
// started (by its pid) and User.Remove deletes the user, its home, and any
// process still running under the user's uid (every such process was started
// through the rig's sshd). It never edits the system's sshd configuration or
// host keys, never listens on anything but 127.0.0.1, lets only the rig's
// user log in, and never prints: everything it learns is returned, and the
// sshd's own log is kept for the caller (Server.Log).
//
// Creating users and running sshd need root; Supported says whether the
// machine has what the rig needs and why not.
package sshtest
