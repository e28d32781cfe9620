package upstream

// A connection made ready before the credentials are known: the proxy
// connects while the mail app is still on its way to LOGIN, and logs in
// on it when the credentials arrive. Login's steps, split in two.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Ready is a connection taken up to the login: connected (with the PROXY
// header), secured (implicit TLS or STARTTLS, the certificate verified),
// greeting and capabilities read, ID sent when configured. It is used by
// one goroutine at a time; Interrupt may be called from any.
type Ready struct {
	s   *Client
	obs diagnose.Observation // what the steps so far saw
}

// errSpoke: the server sent something while nothing was asked.
var errSpoke = errors.New("the server spoke before the login")

// ErrDropped is the error of a Ready.Login whose connection the server
// closed without answering a word of the login: it was closed between
// the last Wait and the login. The caller may log in again on a new
// connection; the Observation holds nothing from this one worth keeping.
var ErrDropped = errors.New("the prepared connection was closed before the login was answered")

// Prepare connects to the server of cfg and takes the connection up to
// the login, as Login does before it sends the credentials; client is
// the address for the PROXY header and ID. Cancelling ctx while it runs
// closes the connection. The error is only for the log: a login that
// cannot use a Ready dials with Login, which diagnoses.
func Prepare(ctx context.Context, cfg Config, client net.Addr) (*Ready, error) {
	r := &Ready{}
	ObserveTarget(cfg, &r.obs)
	if cfg.ProxyHeader && client != nil {
		cfg.Dial = proxyHeaderDial(cfg.Dial, client)
	}
	if err := checkCredentials(cfg, Credentials{}); err != nil {
		return nil, err
	}
	s := NewClient(cfg, &r.obs)
	if err := s.open(ctx, client); err != nil {
		return nil, s.failed(ctx, err)
	}
	r.s = s
	return r, nil
}

// SetWaitDeadline is when Wait gives up waiting, with nil.
func (r *Ready) SetWaitDeadline(t time.Time) { r.s.conn.SetReadDeadline(t) }

// Interrupt ends a Wait under way (or the next one) at once, with nil.
func (r *Ready) Interrupt() { r.s.conn.SetReadDeadline(time.Now()) }

// Wait watches the idle connection until the wait deadline or Interrupt,
// and returns nil: it is still fit for a login. It returns an error as
// soon as the server closes the connection or sends anything (an idle
// timeout's BYE, say): a login on it would not be the login the client
// asked for. Nothing is consumed but TLS's own post-handshake messages.
func (r *Ready) Wait() error {
	_, err := r.s.br.Peek(1)
	switch {
	case err == nil:
		return errSpoke
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	}
	return err
}

// Login logs in on the connection with cred, as Login does, recording
// in obs what the steps so far saw and what the login sees. The login
// timeout runs from now. On an error the connection is closed.
func (r *Ready) Login(ctx context.Context, cred Credentials, obs *diagnose.Observation) (*Session, error) {
	s := r.s
	obs.Host, obs.Port, obs.TLSMode, obs.ServerName = r.obs.Host, r.obs.Port, r.obs.TLSMode, r.obs.ServerName
	obs.Phase, obs.Greeting = r.obs.Phase, r.obs.Greeting
	obs.Capabilities, obs.StartTLSOffered = r.obs.Capabilities, r.obs.StartTLSOffered
	s.obs = obs
	if err := checkCredentials(s.cfg, cred); err != nil {
		s.raw.Close()
		obs.Phase = diagnose.PhaseProxy
		return nil, &Error{Phase: diagnose.PhaseProxy, Err: err}
	}
	s.start = time.Now()
	s.SetDeadline(s.start.Add(s.cfg.LoginTimeout))
	reads := s.reads
	up, err := s.login(ctx, cred)
	if err != nil {
		if s.reads == reads && ctx.Err() == nil && closedByPeer(err) {
			return nil, fmt.Errorf("%w: %w", ErrDropped, err)
		}
		return nil, s.failed(ctx, err)
	}
	return up, nil
}

// closedByPeer reports whether err says the other side closed the
// connection (FIN or RST), as opposed to a timeout or a protocol error.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Logout says LOGOUT, waits for the server's goodbye for at most within,
// and closes the connection: an unused connection leaves politely.
func (r *Ready) Logout(within time.Duration) {
	s := r.s
	s.conn.SetDeadline(time.Now().Add(within))
	if cmd, err := s.command("LOGOUT").Finish(); err == nil {
		// The untagged BYE ends the exchange with an error: that is the
		// goodbye.
		_, _ = s.exchange(cmd, nil)
	}
	s.conn.Close()
}

// Close closes the connection without a word (the server closed it, or
// said something unasked).
func (r *Ready) Close() { r.s.raw.Close() }
