//go:build unix

package testkit

import (
	"syscall"
	"testing"
)

// RaiseFileLimit makes sure the process may open n files (ulimit -n): for
// tests that hold thousands of sockets.
func RaiseFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur, lim.Max = max(lim.Cur, n), max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("this test needs %d open files (ulimit -n), and the limit cannot be raised: %v", n, err)
	}
}
