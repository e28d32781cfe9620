package certs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, but
// for certmagic's own that never end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// certmagic keeps one rate limiter per CA and account in a package
		// map and never stops it (its own TODO in acmeclient.go).
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		// certmagic refreshes a storage lock file every 5 s in a goroutine
		// that only notices the lock is gone at its next wake-up.
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}
