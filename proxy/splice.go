package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
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

// closeWriter is implemented by *net.TCPConn and *tls.Conn.
type closeWriter interface{ CloseWrite() error }

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
	go proxyCopy(&wg, &toClient, client, up, ur, func() { linger(client, clientLinger) })
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
	w, err := io.Copy(dst, src)
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
