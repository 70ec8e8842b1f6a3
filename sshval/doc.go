// Package sshval is the SSH forced command for backup keys: it decides
// whether the command a client sent (SSH_ORIGINAL_COMMAND) may run, and
// runs it without a shell.
//
// It owns the rules file (ParseRules, LoadRules), the tokenizer that splits
// a command the way a POSIX shell splits the simple words rsync sends
// (Tokenize), the pure decision (Decide), execution (Exec) and the decision
// log (Logger), and the authorized_keys audit (Audit).
//
// Decide never allows on doubt. An interactive login, sftp, a command with
// a control character or an unquoted shell operator, a missing or malformed
// client address and anything no rule allows are refused. An rsync rule
// confines every path the client names (transfer paths and path-valued
// options such as --link-dest) to its root: ".." is refused, and each
// existing component is resolved symlink by symlink below the root through
// an os.Root, so a symlink inside the root that points outside is refused.
// The argv it returns runs the rule's own rsync binary with absolute
// paths, --confine-root=ROOT (rsync 3.5.0 and later confines filter merge
// files and --files-from lists with it) and, if the rule asks, --munge-links
// (so a symlink a client uploads can never be followed later). For a
// program that runs as root it refuses the options that create devices or
// choose owners and strips set-uid bits, unless the rule allows them
// ("devices yes", "owners yes"); "delete no" and "overwrite no" refuse what
// would remove or replace existing files (see policy).
//
// Those checks run in user space and cannot close the window between
// Decide's check and rsync's own open against a local user or a second
// connection swapping a symlink in. Prepare and Run therefore confine the
// executed program in the kernel (Landlock beneath the root, or a private
// mount namespace and chroot), drop to the rule's run_as account, and fail
// closed when the confinement cannot be had; "confine paths" keeps the
// user-space checks alone and is logged as a warning (Logger.Warn).
//
// The package never prints, never exits, never runs a shell, and never
// reads the environment itself: the command layer passes SSH_ORIGINAL_COMMAND,
// SSH_CONNECTION, SSH_CLIENT and its effective uid in an Env.
package sshval
