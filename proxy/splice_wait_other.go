//go:build !unix

package proxy

import "net"

// waitReadable cannot wait without reading on this system: the copy loop
// reads at once, holding its buffer while it waits.
func waitReadable(*net.TCPConn) error { return nil }
