// Package proxy is imapwhy's daemon: it accepts mail apps over TLS, handles
// everything before login itself, logs in to the real IMAP server with the
// app's credentials and, when that works, forwards the session byte for
// byte. When the login fails it asks package diagnose why and answers with a
// human-readable NO instead of the opaque one.
//
// One connection goes through these steps (session.go drives them; see
// docs/ARCHITECTURE.md):
//
//	accept -> TLS (implicit, or STARTTLS later) -> pre-auth front end (preauth.go)
//	       -> protections (protect.go) -> pick the upstream (route.go) -> upstream login
//	       -> success: tag OK [CAPABILITY ...], then splice (splice.go)
//	       -> failure: diagnose, Options.OnRefusal, * OK [ALERT] + tag NO [CODE] (reply.go)
//
// The proxy tells the outside world about a refused login only through
// Options.OnRefusal; incident pages, notifications and the notice mailbox
// live elsewhere and are composed by the caller.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/bridge"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/live"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// Options carries what the configuration file cannot: objects made by the
// caller.
type Options struct {
	// Logger receives the structured events. The zero value discards them.
	Logger zerolog.Logger
	// TLS is the proxy's own server certificate configuration
	// (certs.Manager.TLSConfig()). It is required when any listener uses
	// implicit TLS or STARTTLS.
	TLS *tls.Config
	// UpstreamRoots, if set, are the roots trusted for upstream
	// certificates instead of the system's (tests and the demo). A
	// listener's ca_file is added to them.
	UpstreamRoots *x509.CertPool
	// Dial, if set, replaces net.Dialer for upstream connections that
	// were configured (not discovered: those go through discovery's guard
	// unless discovery.allow_private is set).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver, if set, does discovery's DNS lookups (tests point it at a
	// DNS server on loopback). nil: the system's.
	Resolver discover.Resolver
	// discoverTest, if set, adjusts discovery's options (tests point
	// autoconfig at a server on loopback).
	discoverTest func(*discover.Options)
	// Shield, if set, keeps the login history: it explains failures by
	// what worked before and holds back a password that keeps failing
	// (shield.Open builds it from config's shield section). nil: off. The
	// caller closes it after Shutdown.
	Shield *shield.Shield
	// Metrics, if set, counts logins, failures, sessions and latencies
	// (metrics.New; the caller serves them with metrics.Serve). nil: off.
	Metrics *metrics.Metrics
	// OnRefusal, if set, is asked how to answer each login the proxy
	// refuses after trying it, as httputil.ReverseProxy asks its
	// ErrorHandler: it gets the Refusal (diagnosis, user, client,
	// language) and returns the Answer (the NO's text, a link for the
	// ALERT, or a Handoff of the connection). It runs in the session's
	// goroutine after the failure delay, before the client is answered, so
	// it must be safe for concurrent use and return quickly. ctx carries
	// the session's logger (zerolog.Ctx). nil: every refusal gets the plain
	// diagnosed NO.
	OnRefusal func(ctx context.Context, r Refusal) Answer
	// SharedLimits, if set, keeps the login rate limits where every
	// instance behind a load balancer counts against them (state.Redis's
	// Limiter). nil: this process's memory.
	SharedLimits shield.SharedLimiter
	// OnLogin, if set, is told of each login that worked, once the client
	// has its OK (the set-up page's live view). It runs in the session's
	// goroutine: it must be safe for concurrent use and return at once.
	OnLogin func(Login)
	// OnUntrusted, if set, is told when a client ends the TLS handshake
	// with an alert saying it does not trust the proxy's certificate (the
	// device has not installed the local CA yet). Same rules as OnLogin.
	OnUntrusted func(client netip.Addr, alert string)
	// ClientAllowed, if set, is asked about each new connection's address;
	// a connection it refuses is closed before a word is said
	// (config.Config.ClientAllowed: local mode takes loopback and private
	// addresses only).
	ClientAllowed func(netip.Addr) bool
	// Bridge, if set, signs the password logins of the accounts connected
	// to the OAuth bridge in upstream with an access token (bridge.New).
	Bridge *bridge.Bridge
}

// Login is a login that worked, for Options.OnLogin.
type Login struct {
	User   string
	Client netip.Addr
	Time   time.Time
}

// Server is the proxy. Create it with New, then Start it; Shutdown stops it.
type Server struct {
	opts     Options
	log      zerolog.Logger
	throttle *shield.Throttle // failure delay, rate and connection limits (config.Limits)

	mu        sync.Mutex
	cfg       config.Config
	prepared  []*listenerSettings  // made by New for Start
	disc      *discover.Discoverer // kept across reloads with cfg.Discovery
	listeners []*listener
	sessions  live.Set[*session] // Close()d when Shutdown begins

	wg     sync.WaitGroup // accept loops and sessions
	idBase string
	nextID atomic.Uint64
}

// listener is one bound address. Its settings can be swapped by Reload while
// it keeps its socket.
type listener struct {
	ln       net.Listener
	settings atomic.Pointer[listenerSettings]
}

// listenerSettings is everything a new connection on a listener needs,
// prepared once per configuration.
type listenerSettings struct {
	cfg      config.Listener
	timeouts config.Timeouts
	limits   config.Limits
	upstream *upstream.Config // nil: chosen per login by router
	router   *router          // routes and discovery for upstream: auto
	base     *tls.Config      // upstream TLS base config (roots, verification)
	// proxyFrom are the sources that must send a PROXY header (proxyproto.go).
	proxyFrom []netip.Prefix
	oauth     oauthOffer // whether the fixed upstream takes XOAUTH2/OAUTHBEARER
}

// New checks the configuration against the options and prepares the server.
// Nothing is bound until Start.
func New(cfg config.Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.TLS == nil {
		for i, l := range cfg.Listeners {
			if l.TLS != config.TLSNone {
				return nil, fmt.Errorf("listeners[%d]: tls %s needs the proxy's certificate", i, l.TLS)
			}
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		throttle: shield.NewThrottle(cfg.Limits, nil),
		cfg:      cfg,
		idBase:   hex.EncodeToString(b[:]),
	}
	opts.Metrics.CountParked(parkedDirections.Load)
	// Check every listener's upstream settings now, so that a bad CA file
	// is reported before anything is bound. Start uses them.
	settings, disc, err := s.prepare(cfg)
	if err != nil {
		return nil, err
	}
	s.prepared, s.disc = settings, disc
	if opts.SharedLimits != nil {
		s.throttle.SetShared(opts.SharedLimits)
	}
	return s, nil
}

// prepare makes the settings of every listener of cfg, and returns the
// discoverer they use: the server's own while cfg's discovery settings are
// those it was made with, so that a reload keeps its cache.
func (s *Server) prepare(cfg config.Config) ([]*listenerSettings, *discover.Discoverer, error) {
	s.mu.Lock()
	disc := s.disc
	old := s.cfg.Discovery
	s.mu.Unlock()
	if disc == nil || !sameDiscovery(old, cfg.Discovery) {
		disc = newDiscoverer(cfg.Discovery, s.opts)
	}
	rt, err := newRouter(cfg, s.opts, disc)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*listenerSettings, len(cfg.Listeners))
	for i := range cfg.Listeners {
		if out[i], err = s.settingsFor(cfg, i, rt); err != nil {
			return nil, nil, err
		}
	}
	return out, disc, nil
}

// newDiscoverer makes the discoverer for the discovery settings d.
func newDiscoverer(d config.Discovery, opts Options) *discover.Discoverer {
	o := discover.Options{
		Catalog:      discover.BuiltinCatalog,
		Resolver:     opts.Resolver,
		AllowPrivate: d.AllowPrivate,
		AllowDomains: d.AllowDomains,
		TTL:          d.CacheTTL.D(),
	}
	if opts.discoverTest != nil {
		opts.discoverTest(&o)
	}
	return discover.New(o)
}

// sameDiscovery reports whether a and b discover alike.
func sameDiscovery(a, b config.Discovery) bool {
	return a.AllowPrivate == b.AllowPrivate && a.CacheTTL == b.CacheTTL && slices.Equal(a.AllowDomains, b.AllowDomains)
}

// settingsFor prepares listener i of cfg.
func (s *Server) settingsFor(cfg config.Config, i int, rt *router) (*listenerSettings, error) {
	l := cfg.Listeners[i]
	base, err := upstream.TLSBase(l.Upstream, s.opts.UpstreamRoots)
	if err != nil {
		return nil, fmt.Errorf("listeners[%d].upstream: %w", i, err)
	}
	st := &listenerSettings{cfg: l, timeouts: cfg.Timeouts, limits: cfg.Limits, base: base, router: rt,
		proxyFrom: l.ProxyProtocol.Prefixes()}
	if l.Upstream.Address != config.UpstreamAuto {
		uc := upstream.NewConfig(l.Upstream, base, cfg.Timeouts, s.opts.Dial)
		st.upstream = &uc
		st.initOAuthOffer()
	}
	return st, nil
}

// Start binds every listener, then serves each in its own goroutine. If one
// address cannot be bound, the ones already bound are closed again.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners != nil || s.prepared == nil {
		return errors.New("proxy: already started")
	}
	ls, _, err := bind(s.cfg.Listeners, s.prepared, nil)
	if err != nil {
		return err
	}
	s.listeners, s.prepared = ls, nil
	for _, l := range ls {
		st := l.settings.Load()
		s.log.Info().Str("event", "listening").Str("address", l.ln.Addr().String()).
			Str("tls", st.cfg.TLS).Str("upstream", st.cfg.Upstream.Address).
			Str("upstream_tls", st.cfg.Upstream.TLS).Str("language", st.cfg.Language).Msg("listening")
		if st.cfg.Upstream.InsecureSkipVerify {
			s.log.Warn().Str("event", "insecure_upstream").Str("upstream", st.cfg.Upstream.Address).
				Msg("upstream certificate verification is OFF for this listener")
		}
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	return nil
}

// bind gives each of the configured listeners its settings, on the
// listener reuse returns for its address or, if none (or reuse is nil), on
// one bound now: fresh are these. If an address cannot be bound, the ones
// bound here are closed again.
func bind(cfgs []config.Listener, settings []*listenerSettings, reuse func(address string) *listener) (all, fresh []*listener, err error) {
	for i, lc := range cfgs {
		var l *listener
		if reuse != nil {
			l = reuse(lc.Address)
		}
		if l == nil {
			ln, err := net.Listen("tcp", lc.Address)
			if err != nil {
				for _, l := range fresh {
					l.ln.Close()
				}
				return nil, nil, fmt.Errorf("listeners[%d]: %w", i, err)
			}
			l = &listener{ln: ln}
			fresh = append(fresh, l)
		}
		l.settings.Store(settings[i])
		all = append(all, l)
	}
	return all, fresh, nil
}

// Addrs returns the bound addresses in the order of the configuration's
// listeners.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		a[i] = l.ln.Addr()
	}
	return a
}

// Reload applies a new configuration to new connections. Listeners whose
// address is unchanged keep their socket and their sessions; the others are
// bound or closed (sessions on a closed listener go on until they end).
// Timeouts and limits apply to connections accepted after the reload; the
// rate-limit and failure-delay state is kept, and so is the discovery
// cache unless the discovery settings changed. Web and notify settings are
// not the proxy's: the caller reloads whatever it gave as OnRefusal.
func (s *Server) Reload(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	settings, disc, err := s.prepare(cfg)
	if err != nil {
		return err
	}
	for i, st := range settings {
		if st.cfg.TLS != config.TLSNone && s.opts.TLS == nil {
			return fmt.Errorf("listeners[%d]: tls %s needs the proxy's certificate", i, st.cfg.TLS)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions.Closed() {
		return errors.New("proxy: shutting down")
	}
	// A listener is kept when the new configuration names it by its
	// configured or its bound address (the latter matters for ":0").
	old := map[string]*listener{}
	for i, l := range s.listeners {
		old[s.cfg.Listeners[i].Address] = l
		old[l.ln.Addr().String()] = l
	}
	kept := map[*listener]bool{}
	next, fresh, err := bind(cfg.Listeners, settings, func(address string) *listener {
		if l, ok := old[address]; ok && !kept[l] {
			kept[l] = true
			return l
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range s.listeners {
		if !kept[l] {
			l.ln.Close()
		}
	}
	for _, l := range fresh {
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	s.listeners = next
	cacheKept := disc == s.disc
	s.cfg, s.disc = cfg, disc
	s.throttle.SetLimits(cfg.Limits)
	s.log.Info().Str("event", "reloaded").Int("listeners", len(next)).
		Bool("discovery_cache_kept", cacheKept).Msg("configuration reloaded")
	return nil
}

// acceptLoop accepts connections until the listener is closed.
func (s *Server) acceptLoop(l *listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, instead of spinning.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			s.log.Error().Err(err).Str("event", "accept_error").Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if allow := s.opts.ClientAllowed; allow != nil && !allow(clientAddr(c)) {
			s.log.Info().Str("event", "client_refused").Str("client", clientAddr(c).String()).
				Str("listener", l.ln.Addr().String()).Msg("connection from an address not allowed (allow_clients; local mode: home network only)")
			c.Close()
			continue
		}
		sess := &session{
			srv:  s,
			id:   fmt.Sprintf("%s-%d", s.idBase, s.nextID.Add(1)),
			raw:  c,
			addr: clientAddr(c),
			st:   l.settings.Load(),
			born: time.Now(),
			stop: make(chan struct{}),
		}
		if !s.sessions.Add(sess) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go sess.serve()
	}
}

// Draining reports whether Shutdown has begun: the admin listener's
// /readyz then fails, so that a load balancer sends nothing new.
func (s *Server) Draining() bool {
	return s.sessions.Closed()
}

// Shutdown stops accepting, says BYE to every session still before login,
// and waits for forwarded sessions to end until ctx is done; then it closes
// what is left and waits for every goroutine.
func (s *Server) Shutdown(ctx context.Context) error {
	// Refused from now on, an accepted connection is closed at once. The
	// listeners are closed after that, under s.mu, so that a concurrent
	// Reload either sees the shutdown or has its listeners closed here.
	sessions, _ := s.sessions.Close()
	s.mu.Lock()
	for _, l := range s.listeners {
		l.ln.Close()
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.interruptPreAuth()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	left := s.sessions.Members()
	for _, sess := range left {
		sess.closeAll()
	}
	n := len(left)
	s.log.Warn().Str("event", "drain_timeout").Int("sessions", n).Msg("closed sessions still open at the drain deadline")
	<-done
	return ctx.Err()
}
