//go:build !linux

package proxy

import (
	"errors"
	"net"
)

// parker is Linux's (park_linux.go); elsewhere quiet copy loops wait in
// their goroutines.
type parker struct{}

func idleParker() *parker { return nil }

func (p *parker) park(c *net.TCPConn, wake func()) (uint64, error) {
	return 0, errors.ErrUnsupported
}

func (p *parker) unpark(ticket uint64) bool { return false }
