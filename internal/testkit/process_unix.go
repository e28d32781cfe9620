//go:build unix && !linux

package testkit

import "syscall"

// groupProcAttr puts the process in its own process group.
func groupProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
