//go:build !unix

package testkit

import "testing"

// RaiseFileLimit does nothing where there is no ulimit -n (Windows): the
// system's own handle limit is far above what the tests hold.
func RaiseFileLimit(t testing.TB, n uint64) {}
