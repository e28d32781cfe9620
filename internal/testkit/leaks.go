package testkit

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckNoLeaks makes the test fail if any goroutine it started is still
// running once it is over. Call it first: cleanups run last-in first-out,
// so the check runs after the servers the test started were stopped.
func CheckNoLeaks(t testing.TB) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}
