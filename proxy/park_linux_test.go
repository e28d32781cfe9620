package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// parkTestAfter is parkAfter in these tests: quiet for this long, a
// direction parks.
const parkTestAfter = 30 * time.Millisecond

// startParking forwards r's connections with nothing pipelined, parking
// after parkTestAfter; the channel gets splice's result.
func startParking(t *testing.T, r *spliceRig) (*forwarding, <-chan spliceResult) {
	t.Helper()
	t.Cleanup(ParkQuickly(parkTestAfter))
	done := make(chan spliceResult, 1)
	empty := func() *bufio.Reader { return bufio.NewReader(strings.NewReader("")) }
	f := startForwarding(r.proxyClient, empty(), r.proxyUp, empty(), func(u, c int64) { done <- spliceResult{u, c} }, nil)
	return f, done
}

// forEachParkingKind runs test on a parking forwarding of each kind of
// connection pair.
func forEachParkingKind(t *testing.T, test func(t *testing.T, r *spliceRig, f *forwarding, done <-chan spliceResult)) {
	pki := testkit.NewPKI(t)
	for _, k := range spliceKinds {
		t.Run(k.name, func(t *testing.T) {
			r := newSpliceRig(t, pki, k.clientTLS, k.upTLS)
			f, done := startParking(t, r)
			test(t, r, f, done)
		})
	}
}

// waitParked waits until n of f's directions are parked.
func waitParked(t *testing.T, f *forwarding, n int) {
	t.Helper()
	testkit.WaitFor(t, func() bool { return f.parkedCount() == n })
}

// TestParkedSessionForwards: a quiet session parks both directions; data
// either way wakes them and arrives whole, many times over; a big burst
// after a park arrives whole; closing both ends ends the forwarding with
// every byte counted.
func TestParkedSessionForwards(t *testing.T) {
	forEachParkingKind(t, func(t *testing.T, r *spliceRig, f *forwarding, done <-chan spliceResult) {
		var sent int64
		for i := 0; i < 3; i++ {
			waitParked(t, f, 2)
			exchange(t, r)
			sent += int64(len("a1 NOOP\r\n"))
		}
		waitParked(t, f, 2)
		big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
		go func() { r.server.Write(big) }()
		if got := readN(t, r.app, len(big)); !bytes.Equal(got, big) {
			t.Fatal("the burst after a park arrived changed")
		}
		waitParked(t, f, 2)
		closeWrite(t, r.app)
		expectEOF(t, r.server)
		closeWrite(t, r.server)
		expectEOF(t, r.app)
		res := waitSplice(t, done)
		if res.toUp != sent || res.toClient != sent+int64(len(big)) {
			t.Errorf("counted %d up, %d down; want %d, %d", res.toUp, res.toClient, sent, sent+int64(len(big)))
		}
	})
}

// splitConn writes its next write in two parts, with a pause between them
// until the test lets the rest go: half a TLS record on the wire.
type splitConn struct {
	net.Conn
	split chan chan struct{} // a write takes one, if there is one, and waits on it at half way
}

func (c *splitConn) Write(b []byte) (int, error) {
	select {
	case release := <-c.split:
		n, err := c.Conn.Write(b[:len(b)/2])
		if err != nil {
			return n, err
		}
		<-release
		m, err := c.Conn.Write(b[len(b)/2:])
		return n + m, err
	default:
		return c.Conn.Write(b)
	}
}

// TestParkedHalfRecord: a direction whose source is TLS parks while a
// record is half on the wire (the idle deadline passes inside the
// record); the rest of the record wakes it and the command arrives whole.
func TestParkedHalfRecord(t *testing.T) {
	pki := testkit.NewPKI(t)
	r := &spliceRig{}
	var rawApp net.Conn
	r.proxyClient, rawApp = tcpPair(t)
	r.proxyUp, r.server = tcpPair(t)
	split := &splitConn{Conn: rawApp, split: make(chan chan struct{}, 1)}
	r.proxyClient, r.app = handshakePair(t,
		tls.Server(r.proxyClient, &tls.Config{Certificates: []tls.Certificate{pki.Good}}),
		tls.Client(split, &tls.Config{RootCAs: pki.Roots, ServerName: "localhost"}))
	t.Cleanup(func() {
		for _, c := range []net.Conn{r.app, r.server, r.proxyClient, r.proxyUp} {
			c.Close()
		}
	})
	f, done := startParking(t, r)
	waitParked(t, f, 2)

	release := make(chan struct{})
	split.split <- release
	cmd := "a2 SELECT INBOX\r\n"
	wrote := make(chan error, 1)
	go func() { _, err := io.WriteString(r.app, cmd); wrote <- err }()
	// The first half wakes the direction, which reads part of a record
	// and parks again inside it.
	time.Sleep(10 * parkTestAfter)
	waitParked(t, f, 2)
	close(release)
	if err := testkit.Receive(t, wrote, spliceWait, "the app's write"); err != nil {
		t.Fatal(err)
	}
	if got := string(readN(t, r.server, len(cmd))); got != cmd {
		t.Fatalf("server got %q, want %q", got, cmd)
	}
	r.app.Close()
	r.server.Close()
	waitSplice(t, done)
}

// TestParkedLinger: the upstream closes while the client's direction is
// parked; the client's direction wakes with the client's linger deadline,
// and the client can still read the rest and send its last words.
func TestParkedLinger(t *testing.T) {
	forEachParkingKind(t, func(t *testing.T, r *spliceRig, f *forwarding, done <-chan spliceResult) {
		waitParked(t, f, 2)
		io.WriteString(r.server, "* BYE going away\r\n")
		closeWrite(t, r.server)
		if got := string(readN(t, r.app, len("* BYE going away\r\n"))); got != "* BYE going away\r\n" {
			t.Fatalf("app got %q", got)
		}
		expectEOF(t, r.app)
		// The client's direction now lingers and does not park.
		time.Sleep(5 * parkTestAfter)
		if n := f.parkedCount(); n != 0 {
			t.Fatalf("%d directions parked while lingering", n)
		}
		io.WriteString(r.app, "a3 LOGOUT\r\n")
		if got := string(readN(t, r.server, len("a3 LOGOUT\r\n"))); got != "a3 LOGOUT\r\n" {
			t.Fatalf("server got %q", got)
		}
		closeWrite(t, r.app)
		expectEOF(t, r.server)
		waitSplice(t, done)
	})
}

// TestParkedCloseBoth: closing a forwarding whose directions are parked
// (Shutdown's deadline) ends it: both wake, see their sockets closed and
// done runs.
func TestParkedCloseBoth(t *testing.T) {
	forEachParkingKind(t, func(t *testing.T, r *spliceRig, f *forwarding, done <-chan spliceResult) {
		exchange(t, r)
		waitParked(t, f, 2)
		f.closeBoth()
		res := waitSplice(t, done)
		if res.toUp != int64(len("a1 NOOP\r\n")) || res.toClient != int64(len("a1 NOOP\r\n")) {
			t.Errorf("counted %+v", res)
		}
		if n := parkedDirections.Load(); n != 0 {
			t.Errorf("%d directions still counted as parked", n)
		}
		r.app.SetReadDeadline(time.Now().Add(spliceWait))
		if _, err := r.app.Read(make([]byte, 1)); err == nil {
			t.Error("the app's connection is still open")
		}
	})
}

// TestParkerGivesMemoryBack: once a wave of directions has parked and
// parking has gone quiet, the parker gives memory back to the system.
func TestParkerGivesMemoryBack(t *testing.T) {
	p := idleParker()
	p.mu.Lock()
	before := p.released
	p.mu.Unlock()
	sessions := releaseAfterParks/2 + 1
	pki := testkit.NewPKI(t)
	for range sessions {
		f, done := startParking(t, newSpliceRig(t, pki, false, false))
		t.Cleanup(func() { // before the rig's: sockets close after the parker let them go
			f.closeBoth()
			waitSplice(t, done)
		})
	}
	testkit.WaitFor(t, func() bool { return parkedDirections.Load() >= int64(2*sessions) })
	testkit.WaitFor(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.released.After(before)
	})
}

// TestShutdownClosesParkedSession: at the drain deadline a session whose
// directions are parked is closed like any other, and Shutdown returns.
func TestShutdownClosesParkedSession(t *testing.T) {
	t.Cleanup(ParkQuickly(parkTestAfter))
	s, tc := startWithSession(t, "LOGIN alice alicepass")
	testkit.WaitFor(t, func() bool { return ParkedDirections(s) == 2 })
	done := testkit.ShutdownAsync(s.Shutdown, 300*time.Millisecond)
	if err := testkit.Receive(t, done, spliceWait, "Shutdown to return"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	tc.Conn.SetReadDeadline(time.Now().Add(spliceWait))
	if _, err := tc.Reader.ReadString('\n'); err == nil {
		t.Error("parked session still open after the drain deadline")
	}
	if n := parkedDirections.Load(); n != 0 {
		t.Errorf("%d directions still parked", n)
	}
}
