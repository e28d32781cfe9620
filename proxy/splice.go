package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// After one side of a forwarded session has finished, the other direction
// may go on for a while, so that nothing in flight is lost, but a peer that
// vanished does not pin the session forever:
const (
	// upstreamLinger: the client closed its side (it may have sent LOGOUT
	// and shut down writing); the upstream gets this long to answer.
	upstreamLinger = 60 * time.Second
	// clientLinger: the upstream closed; the session is over, and the
	// client gets this long to read the rest and close.
	clientLinger = 5 * time.Second
)

// A forwarded session spends nearly all its life waiting (IDLE lasts for
// hours), so the copy loops hold no big buffer while they wait: a direction
// whose source is TLS reads into a small buffer of its own and borrows a
// big one only while data flows; a direction whose source is plain TCP
// waits for data without any buffer (waitReadable) and borrows one only
// for the read itself. Plain TCP to plain TCP never enters user space:
// on Linux io.Copy splices (splice(2)) between the sockets.
const (
	// smallBufferSize holds any ordinary command or response.
	smallBufferSize = 1 << 10
	// bigBufferSize is the unit of bulk data: two full TLS records.
	bigBufferSize = 32 << 10
	// streamingRead is the least a read from TLS into a big buffer
	// returns while data streams: the rest of a full record (16 KiB of
	// plaintext) after the small buffer took its start.
	streamingRead = 16<<10 - smallBufferSize
)

// bigBuffers are lent to copy loops while data flows.
var bigBuffers = sync.Pool{New: func() any {
	b := make([]byte, bigBufferSize)
	return &b
}}

// closeWriter is implemented by *net.TCPConn and *tls.Conn.
type closeWriter interface{ CloseWrite() error }

var (
	_ closeWriter = (*net.TCPConn)(nil)
	_ closeWriter = (*tls.Conn)(nil)
)

// parkAfter is how long a direction of a forwarded session reads nothing
// before it gives up its goroutine (parker): a second, in nanoseconds
// (the tests shorten it).
var parkAfter atomic.Int64

func init() { parkAfter.Store(int64(time.Second)) }

// parkedDirections counts the directions parked now, in the whole process.
var parkedDirections atomic.Int64

// forwarding is a logged-in session's two directions, from the upstream
// login's OK until both have ended. A direction runs in a goroutine while
// bytes flow; after parkAfter of silence it parks (where the system has a
// parker) and a new goroutine takes it up when its source is readable.
type forwarding struct {
	client, up net.Conn
	toUp       direction // client to upstream
	toClient   direction // upstream to client
	parker     *parker
	done       func(toUp, toClient int64) // runs once, after both ended and both connections closed
	onPanic    func(r any)

	mu          sync.Mutex
	running     int       // directions not ended yet
	lingering   bool      // one direction ended: the other has a linger deadline and parks no more
	lingerUntil time.Time // that deadline
	closed      bool      // closeBoth ran
}

// direction is one way of a forwarding.
type direction struct {
	f        *forwarding
	dst, src net.Conn
	srcTCP   *net.TCPConn  // src's socket, for the parker; nil: src cannot park
	pending  *bufio.Reader // bytes that arrived before forwarding began; nil once sent
	linger   time.Duration // the deadline the other direction gets when this one ends
	n        int64         // bytes written to dst
	armedAt  time.Time     // when the idle deadline was last set
	ticket   uint64        // the parker's, while parked
	parked   bool
}

// startForwarding forwards bytes both ways between the client and the
// upstream. The readers may hold bytes that arrived before forwarding
// began; they are sent first. When both directions have ended, both
// connections are closed and done gets the bytes sent to the upstream and
// to the client. onPanic (may be nil) hears of a panic in a copy loop,
// which then ends the session.
func startForwarding(client net.Conn, cr *bufio.Reader, up net.Conn, ur *bufio.Reader, done func(toUp, toClient int64), onPanic func(any)) *forwarding {
	f := &forwarding{client: client, up: up, parker: idleParker(), done: done, onPanic: onPanic, running: 2}
	// When the client has closed its side (it may have sent LOGOUT and
	// shut down writing), the upstream gets upstreamLinger to answer; when
	// the upstream has closed, the client gets clientLinger to read the
	// rest.
	f.toUp = direction{f: f, dst: up, src: client, pending: cr, linger: upstreamLinger}
	f.toClient = direction{f: f, dst: client, src: up, pending: ur, linger: clientLinger}
	for _, d := range []*direction{&f.toUp, &f.toClient} {
		if f.parker != nil {
			d.srcTCP = socketOf(d.src)
		}
		go d.run()
	}
	return f
}

// socketOf is the TCP connection under c, nil if there is none to wait on
// (c is neither TCP nor TLS over TCP).
func socketOf(c net.Conn) *net.TCPConn {
	switch c := c.(type) {
	case *net.TCPConn:
		return c
	case *tls.Conn:
		tc, _ := c.NetConn().(*net.TCPConn)
		return tc
	}
	return nil
}

// run copies until the source ends, fails or parks. It is a named method
// so that stack dumps show what the goroutine is.
func (d *direction) run() {
	defer func() {
		if r := recover(); r != nil {
			if d.f.onPanic != nil {
				d.f.onPanic(r)
			}
			d.f.closeBoth()
			d.f.ended(d)
		}
	}()
	if br := d.pending; br != nil {
		d.pending = nil
		if k := br.Buffered(); k > 0 {
			b, _ := br.Peek(k)
			w, err := d.dst.Write(b)
			d.n += int64(w)
			if err != nil {
				d.f.closeBoth()
				d.f.ended(d)
				return
			}
		}
	}
	for {
		// From here on src is read directly, which is what lets TCP to
		// TCP splice.
		w, err := copyConn(d.dst, d.src, d.arm)
		d.n += w
		if errors.Is(err, os.ErrDeadlineExceeded) && d.f.park(d) {
			return
		}
		if d.resumes(err) {
			continue
		}
		d.end(err)
		return
	}
}

// resumes reports whether a copy that returned err should simply go on:
// its idle deadline passed but it could not park, or the other direction
// ended just then and the linger deadline is still ahead. The linger
// deadline itself ends the direction.
func (d *direction) resumes(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	switch {
	case d.f.closed:
		return false
	case d.f.lingering:
		return time.Now().Before(d.f.lingerUntil)
	}
	d.srcTCP = nil // parking failed: wait in the goroutine from now on
	d.src.SetReadDeadline(time.Time{})
	return true
}

// arm sets the idle deadline on src before the copy waits for data (not
// more than a few times per parkAfter), unless the direction cannot park
// or the other one has ended and set a linger deadline of its own.
func (d *direction) arm() {
	if d.srcTCP == nil {
		return
	}
	now := time.Now()
	after := time.Duration(parkAfter.Load())
	if now.Sub(d.armedAt) < after/4 {
		return
	}
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.lingering || d.f.closed || d.srcTCP == nil {
		return
	}
	d.armedAt = now
	d.src.SetReadDeadline(now.Add(after))
}

// park hands the direction to the parker after its idle deadline passed:
// true if it did, and the goroutine must return. Bytes a tls.Conn holds
// are no obstacle: a read that timed out had used them all, or holds part
// of a record whose rest has yet to arrive on the socket.
func (f *forwarding) park(d *direction) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lingering || f.closed || d.srcTCP == nil {
		return false
	}
	ticket, err := f.parker.park(d.srcTCP, func() { f.wake(d) })
	if err != nil {
		d.srcTCP = nil
		return false
	}
	d.ticket, d.parked = ticket, true
	d.armedAt = time.Time{}
	parkedDirections.Add(1)
	return true
}

// wake starts a parked direction again, in a goroutine of its own.
func (f *forwarding) wake(d *direction) {
	f.mu.Lock()
	d.parked = false
	parkedDirections.Add(-1)
	f.mu.Unlock()
	go d.run()
}

// unparkLocked takes d back from the parker if it is parked there (its
// wake has not begun), and reports whether it did; the caller starts it
// again. f.mu is held.
func (f *forwarding) unparkLocked(d *direction) bool {
	if !d.parked || !f.parker.unpark(d.ticket) {
		return false
	}
	d.parked = false
	parkedDirections.Add(-1)
	return true
}

// end finishes a direction whose copy returned: at the end of the source
// (nil error) dst is half-closed, so that the peer sees it too; after a
// reset or a failed write the other direction cannot go on either.
func (d *direction) end(err error) {
	switch cw, ok := d.dst.(closeWriter); {
	case err != nil && !errors.Is(err, net.ErrClosed), !ok:
		d.f.closeBoth()
	default:
		cw.CloseWrite()
	}
	d.f.ended(d)
}

// ended counts a direction out: the first to end gives the other its
// linger deadline (starting it again if it is parked: a parked direction
// keeps no deadline); the last closes both connections and calls done.
func (f *forwarding) ended(d *direction) {
	other := &f.toClient
	if d == other {
		other = &f.toUp
	}
	f.mu.Lock()
	f.running--
	last := f.running == 0
	if !last && !f.lingering {
		f.lingering = true
		f.lingerUntil = time.Now().Add(d.linger)
		other.src.SetReadDeadline(f.lingerUntil)
		if f.unparkLocked(other) {
			go other.run()
		}
	}
	f.mu.Unlock()
	if last {
		f.client.Close()
		f.up.Close()
		f.done(f.toUp.n, f.toClient.n)
	}
}

// closeBoth ends the session at once (a reset, a failed write, Shutdown's
// deadline): parked directions start again to see their sources closed.
func (f *forwarding) closeBoth() {
	f.mu.Lock()
	f.closed = true
	// Taken back from the parker before their sockets close, so that no
	// registration outlives its socket.
	var resume []*direction
	for _, d := range []*direction{&f.toUp, &f.toClient} {
		if f.unparkLocked(d) {
			resume = append(resume, d)
		}
	}
	f.mu.Unlock()
	// The sockets, not the TLS connections: no close_notify that could
	// wait on a peer that reads nothing.
	for _, c := range []net.Conn{f.client, f.up} {
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		c.Close()
	}
	for _, d := range resume {
		go d.run()
	}
}

// copyConn copies src to dst until EOF (nil error) or an error, choosing
// the cheapest way for the pair of connections. arm runs before each wait
// for data (once, before splicing).
func copyConn(dst, src net.Conn, arm func()) (int64, error) {
	if tc, ok := src.(*net.TCPConn); ok {
		if _, ok := dst.(*net.TCPConn); ok && runtime.GOOS == "linux" {
			arm()
			return io.Copy(dst, src) // splice(2), no buffer at all
		}
		return copyWhenReadable(dst, tc, arm)
	}
	return copySmallFirst(dst, src, arm)
}

// copyWhenReadable copies a TCP source: it waits until src has something
// to read, then borrows a big buffer for the read and the write, and gives
// it back before waiting again. While data streams in (a read filled the
// whole buffer), it keeps the buffer and skips the wait.
func copyWhenReadable(dst io.Writer, src *net.TCPConn, arm func()) (written int64, err error) {
	var buf *[]byte
	defer func() {
		if buf != nil {
			bigBuffers.Put(buf)
		}
	}()
	for {
		if buf == nil {
			arm()
			if err := waitReadable(src); err != nil {
				return written, err
			}
			buf = bigBuffers.Get().(*[]byte)
		}
		n, rerr := src.Read(*buf)
		if n > 0 {
			w, err := writeAll(dst, (*buf)[:n])
			written += int64(w)
			if err != nil {
				return written, err
			}
		}
		if rerr != nil {
			return written, eofIsNil(rerr)
		}
		if n < len(*buf) {
			bigBuffers.Put(buf)
			buf = nil
		}
	}
}

// copySmallFirst copies any other source, a *tls.Conn in practice, whose
// reads cannot be waited for without a buffer (a tls.Conn may hold
// decrypted bytes already). It reads into a small buffer of its own; a
// read that fills it means data is flowing, and the next reads use a
// borrowed big buffer for as long as they return (nearly) whole TLS
// records: a tls.Conn returns at most one record per Read, and a sender
// fills records while it has more to send. (When a burst ends with a full
// record, the big buffer stays over one wait; the next read returns it.)
// The bytes read are written before the next read, so nothing waits for
// more data to arrive.
func copySmallFirst(dst io.Writer, src io.Reader, arm func()) (written int64, err error) {
	small := make([]byte, smallBufferSize)
	var big *[]byte
	defer func() {
		if big != nil {
			bigBuffers.Put(big)
		}
	}()
	for {
		buf := small
		if big != nil {
			buf = *big
		}
		arm()
		n, rerr := src.Read(buf)
		if n > 0 {
			w, err := writeAll(dst, buf[:n])
			written += int64(w)
			if err != nil {
				return written, err
			}
		}
		if rerr != nil {
			return written, eofIsNil(rerr)
		}
		switch {
		case big == nil && n == len(small):
			big = bigBuffers.Get().(*[]byte)
		case big != nil && n < streamingRead:
			bigBuffers.Put(big)
			big = nil
		}
	}
}

// writeAll writes b to w; a short write without an error is an error.
func writeAll(w io.Writer, b []byte) (int, error) {
	n, err := w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return n, err
}

// eofIsNil is err, except nil for io.EOF: the end of a copy, as io.Copy
// reports it.
func eofIsNil(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}
