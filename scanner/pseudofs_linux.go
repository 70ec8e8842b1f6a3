package scanner

import (
	"golang.org/x/sys/unix"
)

// Magic numbers of statfs(2) that x/sys/unix does not name (linux/magic.h).
const (
	configfsMagic = 0x62656570
	mqueueMagic   = 0x19800202
	fusectlMagic  = 0x65735543
)

// pseudoFS names, by statfs magic, the file systems whose files are kernel
// interfaces rather than stored data: their sizes are made up (0 or 4096
// whatever they deliver: /proc/PID/pagemap reports 0 and delivers 256 GiB),
// their contents change on every read, and opening or reading some of them
// blocks or acts (trace_pipe, efivars). Scan records their metadata only.
var pseudoFS = map[uint32]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	configfsMagic:            "configfs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.DEVPTS_SUPER_MAGIC:  "devpts",
	mqueueMagic:              "mqueue",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	fusectlMagic:             "fusectl",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.SMACK_MAGIC:         "smackfs",
}

// fsOf returns the name of the pseudo file system holding the entry j names,
// whose lstat is st, or "" for a file system of stored data. The answer is
// cached by st_dev, so statfs runs once per file system, not per file: the
// lock is held across the lookup so that workers meeting a new device
// together wait for one answer (only the first file of each device pays).
// It is asked through an O_PATH descriptor, which opens nothing (no driver
// open method runs). When that fails (the entry vanished or was replaced),
// "" is returned uncached and the open that follows reports the problem.
func (s *scan) fsOf(j *job, st *unix.Stat_t) string {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	if name, ok := s.fsKind[st.Dev]; ok {
		return name
	}
	s.hook("statfs", j.path)
	fd, err := openatZ(j.parent.fd, j.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return ""
	}
	var sfs unix.Statfs_t
	var fst unix.Stat_t
	err = unix.Fstatfs(fd, &sfs)
	if err == nil {
		err = unix.Fstat(fd, &fst)
	}
	unix.Close(fd)
	if err != nil || fst.Dev != st.Dev {
		return ""
	}
	name := pseudoFS[uint32(sfs.Type)]
	if s.fsKind == nil {
		s.fsKind = make(map[uint64]string)
	}
	s.fsKind[st.Dev] = name
	if name != "" {
		s.log.Info("not reading files on a pseudo file system: recording their metadata only",
			"fs", name, "path", j.path)
	}
	return name
}
