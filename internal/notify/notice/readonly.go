package notice

import (
	"bytes"
	"net"
)

// readOnlyConn says READ-ONLY where go-imap's imapserver says READ-WRITE:
// it answers every SELECT with [READ-WRITE] (RFC 9051 §6.3.2 lets a server
// say READ-ONLY for a mailbox that cannot be changed), and nothing in the
// notice mailbox can be. A mail app that sees READ-ONLY offers no delete,
// flag or move.
type readOnlyConn struct{ net.Conn }

var (
	selectReadWrite = []byte(" OK [READ-WRITE] SELECT completed\r\n")
	selectReadOnly  = []byte(" OK [READ-ONLY] SELECT completed\r\n")
)

// Write rewrites the tagged SELECT answer. imapserver writes each
// response through a flushed buffer, so the line is never split between
// writes.
func (c readOnlyConn) Write(p []byte) (int, error) {
	if !bytes.Contains(p, selectReadWrite) {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(bytes.ReplaceAll(p, selectReadWrite, selectReadOnly)); err != nil {
		return 0, err
	}
	return len(p), nil
}
