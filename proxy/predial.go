package proxy

// Pre-dialling: on a listener with a fixed upstream (upstream.predial, on
// by default), the connection to the upstream is made while the mail app
// is still on its way to LOGIN, so that the login does not wait for the
// TCP connect, (TLS,) greeting and capabilities.
//
//	admitted (trusted PROXY header, per-address limit) -> dial starts,
//	        in parallel with the client's TLS handshake and greeting
//	ready   -> the connection waits, watched: the upstream closing it or
//	        saying anything makes it stale (closed, the login dials anew)
//	login   -> the first login to that upstream takes it (waiting at most
//	        predialClaimWait for a dial under way), past the shield, the
//	        rate limits and routing; should the upstream close it at the
//	        login without a word, the login dials anew (it had closed it
//	        between its last check and the login). Any other outcome of
//	        the first login attempt, the client leaving, Shutdown, or
//	        predialIdle without a login closes it with LOGOUT. A retry
//	        after a failed login dials.
//
// It starts at admission, not after the client's TLS handshake nor at its
// first command: the benchmark's client (like a mail app that knows the
// server) sends LOGIN right after the greeting, so only a dial started at
// accept is done by then, and on an implicit-TLS listener it overlaps the
// handshake (scripts/bench measured both). Load balancer health checks
// cost no upstream connection when they say PROXY LOCAL or v1 UNKNOWN
// (HAProxy's check-send-proxy) or check another port (the admin
// listener's /readyz, as configs/cluster does); a connection that closes
// at once ends its dial, or says LOGOUT on what was already made. A
// pre-dial's failure is only logged (debug) and counted: the login then
// dials as without it, and is diagnosed from that.

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// predialIdle bounds how long a ready connection waits for the login: a
// client that idles before login does not pin an upstream connection; its
// login, later, dials. Atomic: a test shortens it.
var predialIdle atomic.Int64

func init() { predialIdle.Store(int64(10 * time.Second)) }

const (
	// predialClaimWait bounds how long a login waits for a dial under way
	// before it dials on its own (a silent upstream costs it this much
	// more than without pre-dialling).
	predialClaimWait = time.Second
	// predialLogout bounds the goodbye of an unused connection.
	predialLogout = time.Second
)

// predial is one upstream connection made before the client's login.
type predial struct {
	cancel context.CancelFunc // ends a dial under way
	done   chan struct{}      // closed when the connection was handed over or let go

	mu       sync.Mutex
	ready    *upstream.Ready // the connection while it waits, watched
	claimed  bool            // a login wants it
	released bool            // nobody will take it
	handed   *upstream.Ready // the connection for the login that claimed it
}

// startPredial begins the pre-dial of an admitted connection, when its
// listener's upstream is fixed and predial is on; the session drops it
// at its end (dropPredial).
func (ss *session) startPredial(log *zerolog.Logger) {
	st := ss.st
	if st.upstream == nil || !st.cfg.Upstream.PredialOn() || ss.balancerCheck {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &predial{cancel: cancel, done: make(chan struct{})}
	ss.pre = p
	s := ss.srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run(ctx, s.timedUpstream(*st.upstream), ss.remoteAddr(), s.opts.Metrics, log)
	}()
}

// run makes the connection, then watches it until a login claims it, the
// session lets it go, or predialIdle passes.
func (p *predial) run(ctx context.Context, uc upstream.Config, client net.Addr, m *metrics.Metrics, log *zerolog.Logger) {
	start := time.Now()
	r, err := upstream.Prepare(ctx, uc, client)
	if err == nil {
		log.Debug().Str("event", "predial_ready").Dur("took", time.Since(start)).Msg("upstream connection ready for the login")
	}
	p.mu.Lock()
	switch {
	case err != nil:
		p.mu.Unlock()
		close(p.done)
		if ctx.Err() != nil {
			m.Predial(metrics.PredialUnused) // let go while it was being made
			return
		}
		m.Predial(metrics.PredialFailed)
		log.Debug().Str("event", "predial_failed").Err(err).Msg("upstream connection before login failed; the login will dial")
		return
	case p.released:
		p.mu.Unlock()
		close(p.done)
		p.letGo(r, nil, m, log)
		return
	case p.claimed:
		p.handed = r
		p.mu.Unlock()
		close(p.done)
		return
	}
	r.SetWaitDeadline(time.Now().Add(time.Duration(predialIdle.Load())))
	p.ready = r
	p.mu.Unlock()

	werr := r.Wait()

	p.mu.Lock()
	p.ready = nil
	take := werr == nil && p.claimed && !p.released
	if take {
		p.handed = r
	}
	p.mu.Unlock()
	close(p.done)
	if !take {
		p.letGo(r, werr, m, log)
	}
}

// letGo closes a connection no login takes: politely, unless the upstream
// closed it or spoke first (werr).
func (p *predial) letGo(r *upstream.Ready, werr error, m *metrics.Metrics, log *zerolog.Logger) {
	if werr != nil {
		r.Close()
		m.Predial(metrics.PredialStale)
		log.Debug().Str("event", "predial_stale").Err(werr).Msg("upstream connection before login closed by the upstream or not idle; the login will dial")
		return
	}
	r.Logout(predialLogout)
	m.Predial(metrics.PredialUnused)
}

// upstreamLogin logs in to uc with cred: on the connection made before the
// login when uc is the listener's upstream and that connection is fit for
// it, else, or when the upstream closed that one before answering the
// login, on a new one.
func (g *guard) upstreamLogin(ctx context.Context, uc *upstream.Config, cred upstream.Credentials, obs *diagnose.Observation) (*upstream.Session, error) {
	var r *upstream.Ready
	if uc == g.ss.st.upstream {
		r = g.ss.claimPredial(ctx)
	}
	if r != nil {
		before := *obs
		up, err := r.Login(ctx, cred, obs)
		m := g.ss.srv.opts.Metrics
		if !errors.Is(err, upstream.ErrDropped) {
			m.Predial(metrics.PredialUsed)
			return up, err
		}
		// Closed between its last check and the login: as if it had been
		// found closed.
		*obs = before
		m.Predial(metrics.PredialStale)
	}
	return upstream.Login(ctx, g.ss.srv.timedUpstream(*uc), cred, g.ss.remoteAddr(), obs)
}

// claimPredial is the pre-dialled connection for the session's login, nil
// if there is none fit for it (the login then dials). It waits at most
// predialClaimWait for a dial under way. Whatever it returns, the
// pre-dial is over: a later login dials.
func (ss *session) claimPredial(ctx context.Context) *upstream.Ready {
	p := ss.pre
	if p == nil {
		return nil
	}
	ss.pre = nil
	p.interrupt(&p.claimed)
	t := time.NewTimer(predialClaimWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	p.mu.Lock()
	r := p.handed
	p.handed = nil
	p.released = true
	p.mu.Unlock()
	if r == nil {
		p.cancel()
	}
	return r
}

// dropPredial lets the session's pre-dialled connection go, if it still
// has one: it is closed with LOGOUT (in its own goroutine), or its dial
// ends.
func (ss *session) dropPredial() {
	p := ss.pre
	if p == nil {
		return
	}
	ss.pre = nil
	p.interrupt(&p.released)
	p.cancel()
}

// interrupt sets flag (claimed or released) and ends the watch of a ready
// connection, which then sees it.
func (p *predial) interrupt(flag *bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*flag = true
	if p.ready != nil {
		p.ready.Interrupt()
	}
}
