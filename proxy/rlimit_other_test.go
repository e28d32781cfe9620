//go:build !unix

package proxy

import "testing"

// raiseFileLimit does nothing where there is no open-file limit to raise
// (Windows handles are limited only by memory).
func raiseFileLimit(t *testing.T, n uint64) { t.Helper() }
