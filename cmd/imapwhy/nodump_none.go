//go:build !unix

package main

// disableCoreDumps does nothing where there are no core dumps to limit.
func disableCoreDumps() error { return nil }
