package imitate

import (
	"bytes"
	"io"
	"net"
	"sync"
)

// handoffListener is a net.Listener for imapserver.Serve whose connections
// are the ones our login layer has accepted: imapserver has no other way to
// take over a connection.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once

	// serving is closed on the first Accept: imapserver.Serve has then
	// registered itself, and imapserver.Close may run (see Start).
	serving     chan struct{}
	servingOnce sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{
		addr:    addr,
		ch:      make(chan net.Conn),
		done:    make(chan struct{}),
		serving: make(chan struct{}),
	}
}

// give passes c to imapserver; false if the listener is closed.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	l.servingOnce.Do(func() { close(l.serving) })
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// handoffConn is a logged-in connection as imapserver sees it. Reads first
// return the bytes the client pipelined after its login. imapserver's
// PREAUTH greeting is dropped: the client has already read our tagged OK
// to its login, and a second greeting would break the session.
type handoffConn struct {
	net.Conn
	user string
	r    io.Reader

	mu        sync.Mutex
	greeting  bool // still dropping imapserver's greeting line
	closeOnce sync.Once
	onClose   func(*handoffConn)
}

func newHandoffConn(c net.Conn, pending []byte, user string, onClose func(*handoffConn)) *handoffConn {
	return &handoffConn{
		Conn:     c,
		user:     user,
		r:        io.MultiReader(bytes.NewReader(pending), c),
		greeting: true,
		onClose:  onClose,
	}
}

func (c *handoffConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *handoffConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.greeting {
		return c.Conn.Write(p)
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return len(p), nil
	}
	c.greeting = false
	if i+1 == len(p) {
		return len(p), nil
	}
	n, err := c.Conn.Write(p[i+1:])
	return i + 1 + n, err
}

func (c *handoffConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.onClose(c) })
	return err
}
