package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// spliceWait bounds every wait in these tests.
const spliceWait = 10 * time.Second

// spliceRig is a session about to be forwarded: the proxy's ends of a
// client connection and of an upstream connection over loopback TCP (TLS
// on either side if asked), and the far ends the test plays mail app and
// server with.
type spliceRig struct {
	app, server          net.Conn // far ends
	proxyClient, proxyUp net.Conn // the proxy's ends, given to splice
}

// spliceKinds are the connection pairs the proxy forwards between.
var spliceKinds = []struct {
	name             string
	clientTLS, upTLS bool
}{
	{"tcp-tcp", false, false}, // tls: none listener, plaintext upstream: splice(2)
	{"tls-tcp", true, false},  // TLS listener, plaintext upstream
	{"tcp-tls", false, true},  // tls: none listener, TLS upstream
	{"tls-tls", true, true},   // TLS listener, TLS upstream
}

// newSpliceRig connects the two pairs; with TLS the proxy's end is the
// TLS server towards the app and the TLS client towards the server, as in
// the proxy.
func newSpliceRig(tb testing.TB, pki *testkit.PKI, clientTLS, upTLS bool) *spliceRig {
	tb.Helper()
	r := &spliceRig{}
	r.proxyClient, r.app = tcpPair(tb)
	r.proxyUp, r.server = tcpPair(tb)
	serverConf := &tls.Config{Certificates: []tls.Certificate{pki.Good}}
	clientConf := &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"}
	if clientTLS {
		r.proxyClient, r.app = handshakePair(tb, tls.Server(r.proxyClient, serverConf), tls.Client(r.app, clientConf))
	}
	if upTLS {
		r.server, r.proxyUp = handshakePair(tb, tls.Server(r.server, serverConf), tls.Client(r.proxyUp, clientConf))
	}
	tb.Cleanup(func() {
		for _, c := range []net.Conn{r.app, r.server, r.proxyClient, r.proxyUp} {
			c.Close()
		}
	})
	return r
}

// tcpPair returns both ends of a loopback TCP connection: accepted, dialled.
func tcpPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	dialled, err := net.DialTimeout("tcp", ln.Addr().String(), spliceWait)
	if err != nil {
		tb.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(spliceWait))
	accepted, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	return accepted, dialled
}

// handshakePair completes a TLS handshake between s and c.
func handshakePair(tb testing.TB, s, c *tls.Conn) (*tls.Conn, *tls.Conn) {
	tb.Helper()
	for _, conn := range []*tls.Conn{s, c} {
		conn.SetDeadline(time.Now().Add(spliceWait))
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Handshake() }()
	if err := c.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	for _, conn := range []*tls.Conn{s, c} {
		conn.SetDeadline(time.Time{})
	}
	return s, c
}

// splice forwards as the proxy does (startForwarding) and returns once
// both directions have ended.
func splice(client net.Conn, cr *bufio.Reader, up net.Conn, ur *bufio.Reader) (toUp, toClient int64) {
	ended := make(chan [2]int64, 1)
	startForwarding(client, cr, up, ur, func(u, c int64) { ended <- [2]int64{u, c} }, nil)
	n := <-ended
	return n[0], n[1]
}

// spliceResult is what splice returned.
type spliceResult struct{ toUp, toClient int64 }

// start runs splice in the background, the readers holding pipelined
// bytes as the front end and the upstream login would leave them.
func (r *spliceRig) start(fromApp, fromServer string) <-chan spliceResult {
	cr := bufio.NewReader(io.MultiReader(strings.NewReader(fromApp), r.proxyClient))
	ur := bufio.NewReader(io.MultiReader(strings.NewReader(fromServer), r.proxyUp))
	// Fill the buffers with exactly the pipelined bytes, as after a login.
	if fromApp != "" {
		cr.Peek(len(fromApp))
	}
	if fromServer != "" {
		ur.Peek(len(fromServer))
	}
	done := make(chan spliceResult, 1)
	go func() {
		toUp, toClient := splice(r.proxyClient, cr, r.proxyUp, ur)
		done <- spliceResult{toUp, toClient}
	}()
	return done
}

// waitSplice waits (bounded) for splice to return.
func waitSplice(t *testing.T, done <-chan spliceResult) spliceResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(spliceWait):
		t.Fatal("splice did not return")
		return spliceResult{}
	}
}

// readN reads exactly n bytes from c, bounded in time.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(spliceWait))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// expectEOF checks that c reaches the end of its input.
func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(spliceWait))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read = %d, %v; want EOF", n, err)
	}
}

// closeWrite half-closes the far end c.
func closeWrite(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(closeWriter).CloseWrite(); err != nil {
		t.Fatal(err)
	}
}

// TestSpliceHandOff: bytes the readers hold go first, both ways; then the
// app's LOGOUT and half-close reach the server, whose answer and close
// reach the app; splice counts every byte.
func TestSpliceHandOff(t *testing.T) {
	pki := testkit.NewPKI(t)
	for _, k := range spliceKinds {
		t.Run(k.name, func(t *testing.T) {
			r := newSpliceRig(t, pki, k.clientTLS, k.upTLS)
			pipelined := "a2 SELECT INBOX\r\n"
			untagged := "* 3 EXISTS\r\n"
			done := r.start(pipelined, untagged)

			if got := string(readN(t, r.app, len(untagged))); got != untagged {
				t.Fatalf("app got %q first, want the upstream's buffered %q", got, untagged)
			}
			if got := string(readN(t, r.server, len(pipelined))); got != pipelined {
				t.Fatalf("server got %q first, want the app's pipelined %q", got, pipelined)
			}
			logout := "a3 LOGOUT\r\n"
			io.WriteString(r.app, logout)
			closeWrite(t, r.app)
			if got := string(readN(t, r.server, len(logout))); got != logout {
				t.Fatalf("server got %q", got)
			}
			expectEOF(t, r.server)
			bye := "* BYE logging out\r\na3 OK done\r\n"
			io.WriteString(r.server, bye)
			r.server.Close()
			if got := string(readN(t, r.app, len(bye))); got != bye {
				t.Fatalf("app got %q after the half-close", got)
			}
			expectEOF(t, r.app)

			res := waitSplice(t, done)
			want := spliceResult{toUp: int64(len(pipelined + logout)), toClient: int64(len(untagged + bye))}
			if res != want {
				t.Fatalf("splice returned %+v, want %+v", res, want)
			}
		})
	}
}

// TestSpliceBulk sends data of awkward sizes both ways at once, around
// the copy loops' buffer sizes, and checks it arrives intact; each piece
// must arrive before the next is sent (nothing waits for more data).
func TestSpliceBulk(t *testing.T) {
	pki := testkit.NewPKI(t)
	sizes := []int{1, smallBufferSize - 1, smallBufferSize, smallBufferSize + 1,
		bigBufferSize - 1, bigBufferSize, bigBufferSize + 1, 16384, 300_000, 2 << 20}
	for _, k := range spliceKinds {
		t.Run(k.name, func(t *testing.T) {
			r := newSpliceRig(t, pki, k.clientTLS, k.upTLS)
			done := r.start("", "")
			var wg sync.WaitGroup
			var upSent, downSent int64
			errs := make(chan error, 2)
			for _, dir := range []struct {
				from, to net.Conn
				sent     *int64
			}{{r.app, r.server, &upSent}, {r.server, r.app, &downSent}} {
				wg.Go(func() {
					for _, n := range sizes {
						if err := pingPiece(dir.from, dir.to, n); err != nil {
							errs <- fmt.Errorf("piece of %d bytes: %w", n, err)
							return
						}
						*dir.sent += int64(n)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			r.app.Close()
			r.server.Close()
			res := waitSplice(t, done)
			if res.toUp != upSent || res.toClient != downSent {
				t.Fatalf("splice returned %+v, want toUp %d, toClient %d", res, upSent, downSent)
			}
		})
	}
}

// pingPiece writes n random bytes to from and reads them back from to.
func pingPiece(from, to net.Conn, n int) error {
	want := make([]byte, n)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		from.SetWriteDeadline(time.Now().Add(spliceWait))
		_, err := from.Write(want)
		errc <- err
	}()
	to.SetReadDeadline(time.Now().Add(spliceWait))
	got := make([]byte, n)
	if _, err := io.ReadFull(to, got); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("data changed on the way")
	}
	return nil
}

// TestSpliceReset: when the upstream connection breaks, both sides are
// closed and splice returns, even though the app is still connected.
func TestSpliceReset(t *testing.T) {
	pki := testkit.NewPKI(t)
	for _, k := range spliceKinds {
		t.Run(k.name, func(t *testing.T) {
			r := newSpliceRig(t, pki, k.clientTLS, k.upTLS)
			done := r.start("", "")
			io.WriteString(r.server, "* OK still there\r\n")
			readN(t, r.app, len("* OK still there\r\n"))
			raw := r.server
			if tc, ok := raw.(*tls.Conn); ok {
				raw = tc.NetConn()
			}
			raw.(*net.TCPConn).SetLinger(0) // close with RST
			raw.Close()
			waitSplice(t, done)
			r.app.SetReadDeadline(time.Now().Add(spliceWait))
			if _, err := io.ReadAll(r.app); err != nil && !isReset(err) {
				t.Fatalf("app: %v, want EOF or a reset", err)
			}
		})
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
