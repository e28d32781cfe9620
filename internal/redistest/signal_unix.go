//go:build unix

package redistest

import (
	"os"
	"syscall"
)

// Pause and Resume stop and continue the process.
var sigStop, sigCont os.Signal = syscall.SIGSTOP, syscall.SIGCONT
