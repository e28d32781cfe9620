//go:build unix

package proxy

import (
	"net"
	"os"
	"syscall"
)

// waitReadable blocks until c has bytes to read, has reached end of file,
// or has an error pending, without reading anything, so that the caller
// needs no buffer while it waits. It returns the errors a Read would:
// closed, read deadline, and a pending socket error such as a reset,
// which the peek has taken from the socket and so must report itself.
func waitReadable(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	var peekErr error
	err = rc.Read(func(fd uintptr) bool {
		// A peek that would block means nothing has arrived yet: the
		// netpoller then waits for the socket to become readable and
		// calls again.
		_, _, peekErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return peekErr != syscall.EAGAIN && peekErr != syscall.EWOULDBLOCK
	})
	if err != nil {
		return err
	}
	if peekErr != nil && peekErr != syscall.EINTR {
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
			Err: os.NewSyscallError("recvfrom", peekErr)}
	}
	return nil
}
