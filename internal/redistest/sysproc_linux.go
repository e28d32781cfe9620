package redistest

import "syscall"

// sysProcAttr puts redis-server in its own process group and asks the kernel
// to stop it if the test binary dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
