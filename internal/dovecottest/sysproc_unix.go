//go:build unix && !linux

package dovecottest

import (
	"strconv"
	"syscall"
)

// processIdentity is the pid while the process exists ("" otherwise); pid
// reuse is not detected without /proc.
func processIdentity(pid int) string {
	if syscall.Kill(pid, 0) != nil {
		return ""
	}
	return strconv.Itoa(pid)
}

// cmdlineMentions cannot check without /proc, so stale instances are never
// signalled here, only their directories removed.
func cmdlineMentions(int, string) bool { return false }
