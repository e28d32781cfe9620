package testkit

import (
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Accept accepts connections on ln and runs handle for each, with a
// deadline of Timeout, closing the connection after. When the test ends it
// closes ln and waits for every handler. It returns ln's address.
func Accept(t testing.TB, ln net.Listener, handle func(conn net.Conn)) string {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(Timeout))
				handle(conn)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Listen listens on addr ("" for 127.0.0.1:0), over TLS with tlsConf if
// it is not nil.
func Listen(t testing.TB, addr string, tlsConf *tls.Config) net.Listener {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln
}

// ServeLoopback is Accept on a new plaintext listener at 127.0.0.1.
func ServeLoopback(t testing.TB, handle func(conn net.Conn)) string {
	t.Helper()
	return Accept(t, Listen(t, "", nil), handle)
}

// Counting listens on addr ("" for 127.0.0.1:0), counts the connections
// it gets and closes them at once: where a test must show that nothing
// got through, or how much did. It returns the listener's address.
func Counting(t testing.TB, addr string) (string, *atomic.Int64) {
	t.Helper()
	accepted := new(atomic.Int64)
	return Accept(t, Listen(t, addr, nil), func(net.Conn) { accepted.Add(1) }), accepted
}

// SMTP greets every connection like an SMTP server does, then waits for
// the client to hang up. It returns the address: where an IMAP client
// dials the wrong port.
func SMTP(t testing.TB) string {
	t.Helper()
	return ServeLoopback(t, func(conn net.Conn) {
		io.WriteString(conn, "220 smtp.example ESMTP\r\n")
		io.Copy(io.Discard, conn)
	})
}

// ClosedPort returns a loopback address where nothing listens: a port
// that was just bound and released, so a connection is refused.
func ClosedPort(t testing.TB) string {
	t.Helper()
	return FreeAddr(t)
}

// FreePort returns a port on 127.0.0.1 that was free a moment ago (bound
// and released), for a server the test starts.
func FreePort(t testing.TB) int {
	t.Helper()
	ln := Listen(t, "", nil)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as an address, 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// TCPPair returns the two ends of a loopback TCP connection, each with a
// deadline of Timeout; both are closed when the test ends. Unlike
// net.Pipe it buffers, so both sides may write first.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln := Listen(t, "", nil)
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(Timeout))
	client, err := net.DialTimeout("tcp", ln.Addr().String(), Timeout)
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	deadline := time.Now().Add(Timeout)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}
