// Package handoff lets go-imap's imapserver serve a connection whose login
// has already been answered.
//
// imapwhy answers logins itself: the proxy's pre-auth layer, and imitate's
// scripted provider dialog, read LOGIN or AUTHENTICATE and send the tagged
// OK with texts of their own. Only then does go-imap v2's imapserver take
// the connection over to serve a mailbox (the notice mailbox, an imitated
// provider's INBOX). imapserver (v2.0.0-beta.8) has no API for that: it
// serves only connections it accepts from a net.Listener, it always starts
// with a greeting, and the login layer has usually read some of what the
// client sent after its login already. This package fills those gaps:
//
//   - Listener is a net.Listener whose Accept returns the connections given
//     to it with Give.
//   - Conn is a logged-in connection as imapserver sees it. Its reads first
//     return the bytes the client pipelined after its login (pending), and
//     it drops imapserver's "* PREAUTH" greeting line: the client has
//     already read the tagged OK of its login, and a greeting in the middle
//     of its session would break it.
//   - NewSession adapts a session constructor to imapserver.Options: it
//     starts every session logged in (PREAUTH, the greeting Conn drops) and
//     passes it the value the Conn was made with (a user name, a notice).
//   - Serve starts imapserver.Server.Serve on a Listener and returns only
//     when imapserver.Server.Close may run: in v2.0.0-beta.8, Serve adds to
//     a WaitGroup that Close waits on after it has registered the listener,
//     and a Close in between is a data race.
//
// Usage:
//
//	ln := handoff.NewListener(nil)
//	srv := imapserver.New(&imapserver.Options{
//		NewSession: handoff.NewSession(func(user string) (imapserver.Session, error) { ... }),
//		...
//	})
//	served := handoff.Serve(srv, ln)
//	// the login layer has sent "tag OK ..."; br holds what came after:
//	pending, _ := br.Peek(br.Buffered())
//	ln.Give(handoff.NewConn(conn, pending, user, onClose))
//	// stopping: srv.Close() closes ln and the sessions it has started; a
//	// Conn given but not started yet is the caller's to close.
//	srv.Close()
//	<-served
package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"
)

// Listener is the net.Listener imapserver.Serve accepts from: Accept
// returns the connections passed to Give. It is safe for concurrent use.
type Listener struct {
	addr      net.Addr
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	// serving is closed on the first Accept: imapserver.Serve has then
	// registered the listener and added to its WaitGroup (see Serve).
	serving     chan struct{}
	servingOnce sync.Once
}

// NewListener returns an open Listener whose Addr is addr; nil gives a
// placeholder address (imapserver does not use it).
func NewListener(addr net.Addr) *Listener {
	if addr == nil {
		addr = placeholderAddr{}
	}
	return &Listener{
		addr:    addr,
		conns:   make(chan net.Conn),
		closed:  make(chan struct{}),
		serving: make(chan struct{}),
	}
}

// Give passes c, normally a *Conn, to the Accept of imapserver.Serve. It
// blocks until Accept takes c or the listener is closed, and reports
// whether c was taken; when false, c is still the caller's to close.
func (l *Listener) Give(c net.Conn) bool {
	select {
	case <-l.closed:
		return false // after Close, never race a waiting Accept
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

// Accept waits for a connection passed to Give. After Close it returns
// net.ErrClosed, which ends imapserver.Serve without an error.
func (l *Listener) Accept() (net.Conn, error) {
	l.servingOnce.Do(func() { close(l.serving) })
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Give return false and Accept net.ErrClosed. It may be
// called more than once (imapserver.Close calls it too).
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the address given to NewListener.
func (l *Listener) Addr() net.Addr { return l.addr }

type placeholderAddr struct{}

func (placeholderAddr) Network() string { return "handoff" }
func (placeholderAddr) String() string  { return "handoff" }

// Serve runs srv.Serve(l) in a new goroutine and returns once it is safe to
// call srv.Close: when Serve has called l.Accept, or has returned because
// srv was already closed. (go-imap v2.0.0-beta.8's Serve adds to a
// WaitGroup after registering l, and Close waits on that WaitGroup once it
// has closed l: a Close before the Add is a data race.) The channel
// receives what srv.Serve returned, nil once srv or l was closed, and is
// then closed.
func Serve(srv *imapserver.Server, l *Listener) <-chan error {
	served := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		served <- srv.Serve(l)
		close(served)
	}()
	select {
	case <-l.serving:
	case <-returned:
	}
	return served
}

// errNotGiven is returned by a NewSession function for a connection that
// is not a *Conn of its type.
var errNotGiven = errors.New("handoff: connection was not made by NewConn with this value type")

// NewSession returns an imapserver.Options.NewSession for the Conns given
// to a Listener. It calls newSession with the value the Conn was made
// with, and starts the session logged in: imapserver greets with PREAUTH,
// and the Conn drops that line. If newSession fails, imapserver sends
// "* BYE text" (for an *imap.Error of type BYE) or "* NO [SERVERBUG] ..."
// instead, which the Conn passes on, and closes the connection.
func NewSession[T any](newSession func(v T) (imapserver.Session, error)) func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	return func(ic *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
		c, ok := ic.NetConn().(*Conn[T])
		if !ok {
			return nil, nil, fmt.Errorf("%w: %T", errNotGiven, ic.NetConn())
		}
		sess, err := newSession(c.value)
		if err != nil {
			return nil, nil, err
		}
		c.imapConn.Store(ic)
		return sess, &imapserver.GreetingData{PreAuth: true}, nil
	}
}

// preauth begins imapserver's greeting of a session started by NewSession.
var preauth = []byte("* PREAUTH ")

// Conn is a logged-in connection as imapserver sees it, carrying a value of
// type T for NewSession. Reads return the pending bytes first, then what
// the client sends. The first line written, which is imapserver's greeting,
// is dropped if it is "* PREAUTH ..." and passed on otherwise (see
// NewSession).
type Conn[T any] struct {
	net.Conn
	value   T
	r       io.Reader
	onClose func()

	imapConn atomic.Pointer[imapserver.Conn] // set by NewSession's function

	mu      sync.Mutex // serialises Write
	greeted bool       // the first line is complete (dropped or passed on)
	first   []byte     // the first line so far, while !greeted

	closeOnce sync.Once
}

// NewConn wraps c, a connection whose login has been answered, for
// Listener.Give. pending are bytes the client sent after its login that
// are already read from c (kept, not copied); value is passed to NewSession's function; and
// onClose, if not nil, runs once, on the first Close. NewConn clears c's
// deadlines, which bounded the login: imapserver sets its own.
func NewConn[T any](c net.Conn, pending []byte, value T, onClose func()) *Conn[T] {
	c.SetDeadline(time.Time{})
	return &Conn[T]{
		Conn:    c,
		value:   value,
		r:       io.MultiReader(bytes.NewReader(pending), c),
		onClose: onClose,
	}
}

// Read reads the pending bytes first, then from the connection.
func (c *Conn[T]) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write writes p, except for the first line when it is imapserver's
// PREAUTH greeting. That line may come in pieces; it is held back until it
// is complete. Dropped and held-back bytes count as written.
func (c *Conn[T]) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.greeted {
		return c.Conn.Write(p)
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		c.first = append(c.first, p...)
		return len(p), nil
	}
	line := append(c.first, p[:i+1]...)
	c.first, c.greeted = nil, true
	out := p[i+1:]
	if !bytes.HasPrefix(line, preauth) {
		out = append(line, out...)
	}
	if len(out) == 0 {
		return len(p), nil
	}
	n, err := c.Conn.Write(out)
	// What is missing of out is missing from the end of p.
	return max(0, len(p)-(len(out)-n)), err
}

// Close closes the connection and, the first time, runs onClose.
func (c *Conn[T]) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// Bye ends the connection: with an untagged BYE carrying text (RFC 9051
// §7.1.5) once imapserver has started its session, by closing it before.
func (c *Conn[T]) Bye(text string) {
	if ic := c.imapConn.Load(); ic != nil {
		ic.Bye(text) // closes c too
	}
	c.Close()
}
