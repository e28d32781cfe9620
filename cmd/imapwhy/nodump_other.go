//go:build unix && !linux

package main

import "syscall"

// disableCoreDumps sets RLIMIT_CORE to 0 (soft and hard): passwords in
// flight never reach a core file.
func disableCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
}
