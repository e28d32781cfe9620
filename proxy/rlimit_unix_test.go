//go:build unix

package proxy

import (
	"syscall"
	"testing"
)

// raiseFileLimit makes sure the process may open n files: the tests hold
// thousands of sockets (both ends of each connection are in-process).
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = max(lim.Cur, n)
	lim.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("this test needs %d open files (ulimit -n), and the limit cannot be raised: %v", n, err)
	}
}
