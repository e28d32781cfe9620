package testkit

import "syscall"

// groupProcAttr puts the process in its own process group and asks the
// kernel to SIGTERM it if the rig dies without stopping it. Pdeathsig
// fires when the forking OS thread exits; goroutines are not locked to
// threads, so the Go runtime keeps that thread alive for the life of the
// process.
func groupProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
