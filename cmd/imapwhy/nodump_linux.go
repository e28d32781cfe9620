//go:build linux

package main

import "golang.org/x/sys/unix"

// disableCoreDumps keeps passwords in flight out of core files: no core
// dump (RLIMIT_CORE 0, soft and hard, so the process cannot raise it
// again), and not dumpable (PR_SET_DUMPABLE 0), which also keeps other
// processes of the same user from attaching a debugger or reading
// /proc/<pid>/mem.
func disableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
