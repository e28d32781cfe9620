package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
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

// splice forwards bytes both ways between the client and the upstream until
// both directions are done, then closes both. The readers may hold bytes
// that arrived before forwarding began; they are sent first. It returns the
// bytes sent to the upstream and to the client.
func splice(client net.Conn, cr *bufio.Reader, up net.Conn, ur *bufio.Reader) (toUp, toClient int64) {
	var wg sync.WaitGroup
	var once sync.Once
	linger := func(c net.Conn, d time.Duration) {
		once.Do(func() { c.SetReadDeadline(time.Now().Add(d)) })
	}
	wg.Add(2)
	go proxyCopy(&wg, &toUp, up, client, cr, func() { linger(up, upstreamLinger) })
	// The caller's goroutine copies the other way itself: one goroutine
	// stack fewer per session.
	proxyCopy(&wg, &toClient, client, up, ur, func() { linger(client, clientLinger) })
	wg.Wait()
	client.Close()
	up.Close()
	return toUp, toClient
}

// proxyCopy copies src to dst, starting with what buf already holds, then
// half-closes dst and calls done. It is a named function so that stack dumps
// show what the goroutine is.
func proxyCopy(wg *sync.WaitGroup, n *int64, dst, src net.Conn, buf *bufio.Reader, done func()) {
	defer wg.Done()
	defer done()
	if k := buf.Buffered(); k > 0 {
		b, _ := buf.Peek(k)
		w, err := dst.Write(b)
		*n += int64(w)
		buf.Discard(k)
		if err != nil {
			src.Close()
			return
		}
	}
	// From here on the bufio.Reader is empty and unused: src is read
	// directly, which is what lets TCP to TCP splice.
	w, err := copyConn(dst, src)
	*n += w
	if err != nil && !errors.Is(err, net.ErrClosed) {
		// A reset or a failed write: the other direction cannot go on.
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// copyConn copies src to dst until EOF (nil error) or an error, choosing
// the cheapest way for the pair of connections.
func copyConn(dst, src net.Conn) (int64, error) {
	if tc, ok := src.(*net.TCPConn); ok {
		if _, ok := dst.(*net.TCPConn); ok && runtime.GOOS == "linux" {
			return io.Copy(dst, src) // splice(2), no buffer at all
		}
		return copyWhenReadable(dst, tc)
	}
	return copySmallFirst(dst, src)
}

// copyWhenReadable copies a TCP source: it waits until src has something
// to read, then borrows a big buffer for the read and the write, and gives
// it back before waiting again. While data streams in (a read filled the
// whole buffer), it keeps the buffer and skips the wait.
func copyWhenReadable(dst io.Writer, src *net.TCPConn) (written int64, err error) {
	var buf *[]byte
	defer func() {
		if buf != nil {
			bigBuffers.Put(buf)
		}
	}()
	for {
		if buf == nil {
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
func copySmallFirst(dst io.Writer, src io.Reader) (written int64, err error) {
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
