//go:build unix

package testkit

import "syscall"

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// SignalGroup signals every process in the process group pgid.
func SignalGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}
