package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// byeWriteTimeout bounds the last words to a client that is going away.
const byeWriteTimeout = 2 * time.Second

// session is one client connection, from accept to close.
type session struct {
	srv  *Server
	id   string
	raw  net.Conn   // the accepted TCP connection
	addr netip.Addr // the client's IP, for the per-address limits
	st   *listenerSettings
	born time.Time
	stop chan struct{} // closed when Shutdown interrupts the session before login

	// remote and local are a trusted PROXY header's addresses, nil
	// without one (proxyproto.go: remoteAddr, localAddr).
	remote, local *net.TCPAddr
	// balancerCheck: a trusted PROXY header said LOCAL or v1 UNKNOWN (a
	// load balancer's health check), which gets no upstream connection
	// before login.
	balancerCheck bool
	pre           *predial // the upstream connection made before login (predial.go)

	admitted bool // counted in the per-address connection limit

	mu        sync.Mutex
	handedOff bool               // the connection went to an Answer.Handoff
	stopping  bool               // Shutdown asked a pre-auth session to end
	cancel    context.CancelFunc // cancels an upstream login in progress
	fw        *forwarding        // logged in: bytes are forwarded, no more IMAP
}

// interruptPreAuth makes a session that has not logged in yet stop waiting:
// its next read fails at once and it says BYE. Forwarded sessions are left
// alone so that they can drain.
func (ss *session) interruptPreAuth() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.fw != nil {
		return
	}
	if ss.handedOff {
		// A handed-off session holds nothing worth draining.
		ss.raw.Close()
		return
	}
	if !ss.stopping {
		close(ss.stop)
	}
	ss.stopping = true
	if ss.cancel != nil {
		ss.cancel()
	}
	ss.raw.SetReadDeadline(time.Now())
}

// closeAll closes both sides of the session. A forwarding closes its own
// first: it takes its sockets back from the parker before they close.
func (ss *session) closeAll() {
	ss.mu.Lock()
	fw := ss.fw
	ss.mu.Unlock()
	if fw != nil {
		fw.closeBoth()
	}
	ss.raw.Close()
}

func (ss *session) isStopping() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.stopping
}

// end is the last of a session: it runs when serve returns, or when
// forwarding ends if serve handed the session over to it.
func (ss *session) end() {
	if ss.admitted {
		ss.releaseConnection()
	}
	ss.raw.Close()
	ss.srv.sessions.Remove(ss)
	ss.srv.wg.Done()
}

// logger is the session's logger: the server's, with the connection's ID
// and the client. A forwarded session makes it again for its last words
// rather than keep it (its fields take half a kilobyte) while it idles.
func (ss *session) logger() zerolog.Logger {
	return ss.logProxySource(ss.srv.log.With().Str("conn", ss.id).Str("client", ss.remoteAddr().String())).Logger()
}

// logPanic logs a recovered panic with the stack of the goroutine that
// recovered it.
func (ss *session) logPanic(r any, msg string) {
	log := ss.logger()
	log.Error().Str("event", "panic").Interface("panic", r).Bytes("stack", debug.Stack()).Msg(msg)
}

// serve runs the session until it ends, or until it is logged in: the
// forwarding (splice.go) then carries it on without this goroutine.
func (ss *session) serve() {
	handedOver := false
	defer func() {
		if !handedOver {
			ss.end()
		}
	}()
	if !ss.acceptProxyHeader() {
		return
	}
	log := ss.logger()
	defer func() {
		if r := recover(); r != nil {
			ss.logPanic(r, "session panicked")
		}
	}()

	ss.admitted = ss.admitConnection(&log)
	if ss.admitted {
		ss.raw.SetDeadline(ss.born.Add(ss.st.timeouts.PreAuth.D()))
		ss.startPredial(&log)
		defer ss.dropPredial()
	} else {
		ss.raw.SetDeadline(time.Now().Add(byeWriteTimeout))
	}
	f := ss.newFront(&log)
	if f == nil {
		return
	}
	if !ss.admitted {
		// Past the per-address limit: BYE at once (after the TLS handshake
		// on an implicit-TLS listener: a mail app reads nothing else there).
		f.bye(diagnose.Message(diagnose.Of(diagnose.CauseClientTooManyConnections), f.language()))
		return
	}

	// One login per turn, top-down: the front end reads it (preauth.go);
	// the guard tries it under the protections, upstream, and diagnoses a
	// failure (protect.go, route.go, internal/upstream); a refusal goes to
	// Options.OnRefusal and is answered (refuse, reply.go). allowReply lets
	// either answer out past the pre-auth deadline.
	for {
		req, err := f.next()
		if err != nil {
			switch {
			case errors.Is(err, errLogout) || errors.Is(err, errFrontHandshake):
				// Answered already, or no TLS to say anything over.
			case ss.isStopping():
				ss.sayBye(f, "imapwhy is shutting down; try again in a moment")
			case errors.Is(err, os.ErrDeadlineExceeded):
				// The pre-auth deadline ends with a readable BYE.
				ss.sayBye(f, "No login in time; closing the connection")
			}
			// TLS 1.3: a client's alert about our certificate may come
			// after the server's side of the handshake, on the first read.
			ss.untrusted(err, &log)
			log.Debug().Str("event", "preauth_end").Err(err).Msg("connection ended before login")
			return
		}
		g := ss.beginLogin(req)
		up, d, obs, err := ss.attempt(g)
		ss.allowReply(f)
		if err == nil {
			handedOver = ss.forward(f, req, up, g.succeeded, log)
			return
		}
		// The front end counts failed logins and says BYE at the limit.
		handedOff := ss.refuse(f, g, d, obs, err, &log)
		req.wipe()
		if handedOff {
			return // handed off: the session is over
		}
		if ss.isStopping() {
			ss.sayBye(f, "imapwhy is shutting down; try again in a moment")
			return
		}
	}
}

// newFront is the pre-auth front end of the connection, after the TLS
// handshake on an implicit-TLS listener; nil if that handshake failed.
func (ss *session) newFront(log *zerolog.Logger) *front {
	st := ss.st
	conn := ss.raw
	fc := frontConfig{Limits: st.limits, Language: st.cfg.Language, OAuth: st.offersOAuth()}
	switch st.cfg.TLS {
	case config.TLSImplicit:
		tc := tls.Server(ss.raw, ss.srv.opts.TLS)
		if err := tc.Handshake(); err != nil {
			if !ss.untrusted(err, log) {
				log.Debug().Str("event", "tls_handshake_failed").Err(err).Msg("client TLS handshake failed")
			}
			return nil
		}
		conn, fc.Secure = tc, true
	case config.TLSStartTLS:
		fc.TLSConfig = ss.srv.opts.TLS
	case config.TLSNone:
		fc.Secure = true
	}
	return newFront(conn, fc)
}

// allowReply lets the answer to a login go out even when the pre-auth
// deadline passed while the upstream was asked or the failure delay ran:
// the login came in time. Reads keep the deadline, so a client past it is
// told BYE right after the answer.
func (ss *session) allowReply(f *front) {
	deadline := ss.born.Add(ss.st.timeouts.PreAuth.D())
	if d := time.Now().Add(byeWriteTimeout); d.After(deadline) {
		deadline = d
	}
	f.conn().SetWriteDeadline(deadline)
}

// sayBye sends a last BYE, bounded in time.
func (ss *session) sayBye(f *front, text string) {
	f.conn().SetWriteDeadline(time.Now().Add(byeWriteTimeout))
	f.bye(text)
}

// attempt tries one login under the protections (guard.login, protect.go)
// with a context that Shutdown cancels.
func (ss *session) attempt(g *guard) (*upstream.Session, diagnose.Diagnosis, *diagnose.Observation, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ss.mu.Lock()
	stopping := ss.stopping
	ss.cancel = cancel
	ss.mu.Unlock()
	defer func() {
		ss.mu.Lock()
		ss.cancel = nil
		ss.mu.Unlock()
		cancel()
	}()
	return g.login(ctx, stopping)
}

// forward answers the client's login with the upstream's capabilities and
// starts forwarding between the two connections, which ends the session
// (end) once both sides are done; it reports whether it did.
// succeeded runs once the client has its OK: recording a success costs a
// password hash, which the login answer should not wait for.
func (ss *session) forward(f *front, req *loginRequest, up *upstream.Session, succeeded func(), log zerolog.Logger) bool {
	err := f.loggedIn(req.Tag, clientCaps(up.Caps))
	succeeded()
	if hook := ss.srv.opts.OnLogin; hook != nil && err == nil {
		hook(Login{User: req.Username, Client: ss.addr, Time: time.Now()})
	}
	// What a token says may be logged (audience, scopes, expiry, tenant);
	// the token itself is not kept.
	var token *diagnose.OAuth
	if req.isOAuth() {
		token = oauthFacts(req, time.Now())
	}
	// The session may last for days: the password's bytes are overwritten.
	req.wipe()
	if err != nil {
		up.Conn.Close()
		log.Debug().Err(err).Msg("client went away at login")
		return false
	}
	client := f.conn()
	// No deadlines from here: IDLE may sit quiet for 30 minutes.
	client.SetDeadline(time.Time{})
	up.Conn.SetDeadline(time.Time{})

	user, upAddr := req.Username, up.Conn.RemoteAddr().String()
	logClientApp(logOAuth(log.Info().Str("event", "auth_success").Str("user", user).Str("mechanism", req.Mechanism).
		Str("upstream", upAddr), token), f).Msg("logged in")
	start := time.Now()
	ss.srv.opts.Metrics.SessionStarted()
	ended := func(toUp, toClient int64) {
		ss.srv.opts.Metrics.SessionEnded(toUp, toClient)
		log := ss.logger()
		log.Info().Str("event", "session_end").Str("user", user).Str("upstream", upAddr).
			Int64("bytes_in", toUp).Int64("bytes_out", toClient).
			Int64("duration_ms", time.Since(start).Milliseconds()).Msg("session ended")
		ss.end()
	}
	panicked := func(r any) { ss.logPanic(r, "forwarding panicked") }
	// Under ss.mu, so that closeAll finds the forwarding from the start.
	ss.mu.Lock()
	ss.fw = startForwarding(client, wipeBuffered(f.reader()), up.Conn, up.Reader, ended, panicked)
	ss.mu.Unlock()
	return true
}

// clientCaps is the upstream's post-login capability list without what
// only made sense before login on the upstream connection.
func clientCaps(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		u := strings.ToUpper(c)
		if u == "STARTTLS" || u == "LOGINDISABLED" || strings.HasPrefix(u, "AUTH=") {
			continue
		}
		out = append(out, c)
	}
	return out
}

// untrusted reports whether err is the client's TLS alert that it does not
// trust our certificate; if so it logs that (at info: the person has a
// device to set up) and tells Options.OnUntrusted.
func (ss *session) untrusted(err error, log *zerolog.Logger) bool {
	alert, ok := certs.RefusedByClient(err)
	if !ok {
		return false
	}
	log.Info().Str("event", "tls_untrusted").Str("client", ss.addr.String()).Str("alert", alert).
		Msgf("the device at %s does not trust imapwhy's certificate yet: open /setup on it", ss.addr)
	if hook := ss.srv.opts.OnUntrusted; hook != nil {
		hook(ss.addr, alert)
	}
	return true
}
