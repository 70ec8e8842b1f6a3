package main

import "syscall"

// syscallNoFollow keeps report files from being redirected through a symlink.
const syscallNoFollow = syscall.O_NOFOLLOW
