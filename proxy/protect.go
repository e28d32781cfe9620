package proxy

// The protections around a login, between the pre-auth front end
// and the upstream:
//
//	accept -> per-address connection limit (BYE at once past it)
//	login  -> rate limits per address and per user (client.rate_limited)
//	       -> the upstream: the listener's, or routing's choice (route.go)
//	       -> the shield: the same failing password again is answered from
//	          history (credentials.repeated_failure), nothing is sent upstream
//	       -> upstream login (internal/upstream)
//	       -> refused: history facts for diagnose, the failure recorded,
//	          the failure delay (credentials refused only); the session
//	          then answers (reply.go)
//	       -> logged in: the password that worked recorded, the delay reset
//
// The throttle is always on, with config.Limits; the shield and the metrics
// are Options (nil: off). Metrics are counted where each outcome is known.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/bridge"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// refusal is a login the proxy refused on its own, for a cause of its own.
type refusal struct {
	cause  diagnose.Cause
	reason string // for the log
}

func (r *refusal) Error() string { return r.reason }

// errHeld: the shield answered the login from history.
var errHeld = errors.New("held by the shield: this password failed before, not forwarded")

// clientAddr is the client's IP, the unit of the per-address limits. An
// address that is not TCP (net.Pipe in tests) is the zero Addr, which the
// limits count as one client.
func clientAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// admitConnection counts the connection against its address's limit.
// Past the limit it returns false and the caller says BYE; when it returns
// true, the caller calls releaseConnection at the end.
func (ss *session) admitConnection(log *zerolog.Logger) bool {
	s := ss.srv
	if s.throttle.Connect(ss.addr) {
		return true
	}
	s.opts.Metrics.ConnectionRefused()
	// Debug: a flood would flood the log; the metric counts them.
	log.Debug().Str("event", "connection_refused").Str("cause", string(diagnose.CauseClientTooManyConnections)).
		Msg("too many connections from this address")
	return false
}

func (ss *session) releaseConnection() { ss.srv.throttle.Disconnect(ss.addr) }

// guard is one login attempt under the protections.
type guard struct {
	ss    *session
	req   *loginRequest
	start time.Time
	// user is the name the login goes upstream with, once routing and
	// discovery chose it (a provider may want another form than the
	// client's): the per-user limits and the shield count it.
	user    string
	attempt *shield.Attempt // nil when the shield is off, or before routing
	held    bool            // the shield answered from history
	// failureDelay is the failure delay this refusal was given (from the
	// login's arrival), 0 when it got none.
	failureDelay time.Duration
}

// beginLogin starts the protections of one login attempt. The password
// stays in req; the shield computes verifiers from it only as needed.
func (ss *session) beginLogin(req *loginRequest) *guard {
	return &guard{ss: ss, req: req, start: time.Now(), user: req.Username}
}

// lastWorked reports whether the password is the one the upstream accepted
// last for this user (the shield's verifier); false without the shield.
func (g *guard) lastWorked() bool { return g.attempt != nil && g.attempt.LastWorked() }

// login tries the login under the protections, in this order: the login
// rate limits; the upstream (the listener's own, or the one routing and
// discovery choose, route.go); the shield; the upstream login
// (internal/upstream). A failure is diagnosed and recorded, and a refusal
// of the credentials is held for the failure delay, before login returns
// it with its diagnosis. stopping: the
// server is shutting down, nothing is tried.
func (g *guard) login(ctx context.Context, stopping bool) (*upstream.Session, diagnose.Diagnosis, *diagnose.Observation, error) {
	req := g.req
	// Proxied: the upstream is imapwhy's choice, not the mail app's
	// setting, and the messages say so.
	obs := &diagnose.Observation{Typed: diagnose.Facts(req.Username, req.Password), Proxied: true}
	if req.isOAuth() {
		// A token is no typed password: only the user name's facts count.
		obs.Typed = diagnose.Facts(req.Username, "")
		obs.Typed.PasswordEmpty = false
		obs.OAuth = oauthFacts(req, g.start)
		want := g.ss.st.cfg.Upstream.OAuth
		obs.OAuth.WantAudiences, obs.OAuth.WantScopes = want.Audiences, want.Scopes
	}
	up, err := g.try(ctx, stopping, obs)
	if err == nil {
		return up, diagnose.Diagnosis{}, obs, nil
	}
	d := g.diagnose(obs, err)
	if g.credentialsJudged(obs, err) {
		g.delay()
	}
	return nil, d, obs, err
}

// try is login up to the upstream's answer.
func (g *guard) try(ctx context.Context, stopping bool, obs *diagnose.Observation) (*upstream.Session, error) {
	req, st := g.req, g.ss.st
	// Only the first login may use the connection made before it
	// (predial.go); whatever its outcome, that one is let go.
	defer g.ss.dropPredial()
	if !g.ss.srv.throttle.AllowAddress(g.ss.addr) {
		return nil, g.rateLimited(obs)
	}
	if !diagnose.ValidUsername(req.Username) {
		obs.Phase = diagnose.PhaseProxy
		return nil, &refusal{cause: diagnose.CauseClientInvalidUsername, reason: "user name too long or with control or format characters"}
	}
	if stopping {
		obs.Phase = diagnose.PhaseProxy
		obs.Reply = &diagnose.Response{Tagged: true, Status: "NO", Code: "UNAVAILABLE", Text: "imapwhy is shutting down"}
		return nil, errors.New("shutting down")
	}
	uc, user := st.upstream, req.Username
	if uc == nil {
		var err error
		if uc, user, err = st.router.route(ctx, req.Username, st, obs); err != nil {
			return nil, err
		}
	}
	g.user = user
	// A token is no typed password: it changes every hour, and its
	// refusals are no wrong passwords, so the shield's history has nothing
	// to say about it, and nothing derived from a token goes into the
	// history (which may be a file). The rate limits still count OAuth
	// logins.
	if sh := g.ss.srv.opts.Shield; sh != nil && !req.isOAuth() {
		g.attempt = sh.BeginFrom(g.ss.addr, user, req.Password)
	}
	if !g.ss.srv.throttle.AllowUser(g.ss.addr, user, g.lastWorked) {
		return nil, g.rateLimited(obs)
	}
	if err := g.check(*uc, obs); err != nil {
		return nil, err
	}
	start := time.Now()
	// user may be another form of the name than the client's (a provider's
	// local part).
	cred := upstream.Credentials{User: user, Password: req.Password, Authzid: req.Authzid}
	if req.isOAuth() {
		cred.Mechanism = req.Mechanism
	} else if b := g.ss.srv.opts.Bridge; b != nil && b.Bridged(req.Username) {
		upstream.ObserveTarget(*uc, obs) // the provider, for the diagnosis
		tok, err := b.Token(ctx, req.Username, req.Password)
		if err != nil {
			return nil, bridgeRefused(obs, err)
		}
		req.bridged = tok.Access
		cred.Password, cred.Mechanism = tok.Access, tok.Mechanism
	}
	up, err := g.upstreamLogin(ctx, uc, cred, obs)
	if uc == st.upstream {
		st.noteCapabilities(obs.Capabilities)
	}
	g.ss.srv.opts.Metrics.UpstreamLogin(time.Since(start), err == nil)
	return up, err
}

// rateLimited is the refusal of a login over a rate limit.
func (g *guard) rateLimited(obs *diagnose.Observation) error {
	obs.Phase = diagnose.PhaseProxy
	return &refusal{cause: diagnose.CauseClientRateLimited, reason: "login rate limit reached"}
}

// bridgeRefused is the answer to a bridged login whose access token could
// not be had: a wrong app password is refused plainly (the provider was not
// asked); the provider's refusal of the stored grant, or its silence, is
// diagnosed from obs.Grant.
func bridgeRefused(obs *diagnose.Observation, err error) error {
	obs.Phase = diagnose.PhaseProxy
	var ge *bridge.GrantError
	if errors.As(err, &ge) {
		f := ge.Failure
		obs.Grant = &f
		return err
	}
	if errors.Is(err, bridge.ErrWrongPassword) {
		return &refusal{cause: diagnose.CauseCredentialsRejected, reason: "oauth bridge: the app password does not open the stored grant"}
	}
	return &refusal{cause: diagnose.CauseServerTemporaryFailure, reason: "oauth bridge: " + err.Error()}
}

// check asks the shield whether to forward the login to uc. When it holds
// the login, obs says why and nothing is sent upstream.
func (g *guard) check(uc upstream.Config, obs *diagnose.Observation) error {
	if g.attempt == nil {
		return nil
	}
	hold, hist := g.attempt.Check()
	if !hold {
		return nil
	}
	g.held = true
	upstream.ObserveTarget(uc, obs) // the upstream it would have gone to, for the log and the provider
	obs.Phase = diagnose.PhaseProxy
	obs.History = hist
	return errHeld
}

// timedUpstream is uc with the dial timed for the metrics.
func (s *Server) timedUpstream(uc upstream.Config) upstream.Config {
	m := s.opts.Metrics
	if m == nil {
		return uc
	}
	dial := uc.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	uc.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := dial(ctx, network, addr)
		m.UpstreamDial(time.Since(start))
		return c, err
	}
	return uc
}

// diagnose works out why the login failed: the proxy's own refusals are
// what they are; an upstream refusal of the credentials gets the history
// facts first, and is recorded in the history with its cause. It counts the
// failure in the metrics.
func (g *guard) diagnose(obs *diagnose.Observation, loginErr error) (d diagnose.Diagnosis) {
	defer func() { d.Detail, d.Proxied = g.detail(obs, d.Detail), obs.Proxied }()
	var r *refusal
	switch {
	case errors.As(loginErr, &r):
		d = diagnose.Of(r.cause)
	case g.attempt != nil && credentialsRefused(obs, loginErr):
		obs.History = g.attempt.Explain()
		d = diagnose.Classify(*obs)
		g.attempt.Failed(d.Cause)
		// Each variant compared is a guess checked: it counts as one.
		g.ss.srv.throttle.Spend(g.ss.addr, g.user, g.attempt.Checks())
	default:
		d = diagnose.Classify(*obs)
	}
	m := g.ss.srv.opts.Metrics
	m.LoginFailed(string(d.Cause), d.Provider)
	if g.held {
		m.AttemptSaved()
	}
	return d
}

// detail is the diagnosis's quote of the server without the secret: the
// raw texts lose it first, in every form the proxy sent it, and only then
// are quoted (sanitised and cut) again; a password with two spaces, a tab
// or an invalid byte, or cut in the middle, would not match afterwards.
// The cause is decided on the texts as they were: a password may be a
// word of them. A login reply's detail also loses quoted strings,
// literals and base64-looking tokens.
func (g *guard) detail(obs *diagnose.Observation, detail string) string {
	if detail == "" {
		return ""
	}
	red := *obs
	redactObservation(&red, g.req, g.user)
	detail = redactPassword(diagnose.Classify(red).Detail, g.req, g.user)
	if obs.Phase == diagnose.PhaseLogin {
		detail = scrubDetail(detail)
	}
	return detail
}

// credentialsRefused: the upstream answered the login itself with NO, so
// it has judged these credentials.
func credentialsRefused(obs *diagnose.Observation, err error) bool {
	var se *upstream.StatusError
	return obs.Phase == diagnose.PhaseLogin && errors.As(err, &se) && se.Resp.Status == "NO"
}

// credentialsJudged: the refusal is about the user name and password: the
// upstream answered the login with NO, the shield answered for a password
// the upstream refused before, or the OAuth bridge's app password was
// wrong. Only these get the failure delay, which slows guessing: an
// upstream that is down or unreachable, or a limit of the proxy's own,
// says nothing about the password.
func (g *guard) credentialsJudged(obs *diagnose.Observation, err error) bool {
	var r *refusal
	if errors.As(err, &r) {
		return r.cause == diagnose.CauseCredentialsRejected
	}
	return g.held || credentialsRefused(obs, err)
}

// delay waits out the failure delay before the NO: the NO goes out no
// sooner than the delay after the login arrived, however long the upstream
// took. Shutdown cuts it short.
func (g *guard) delay() {
	d := g.ss.srv.throttle.Failed(g.ss.addr, g.user, g.req.Password)
	g.failureDelay = d
	wait := time.Until(g.start.Add(d))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.ss.stop:
	}
}

// succeeded records a login the upstream accepted, then drops the shield's
// attempt: the session may last for days, and the attempt holds the
// password.
func (g *guard) succeeded() {
	g.ss.srv.throttle.Succeeded(g.ss.addr)
	if g.attempt != nil {
		g.attempt.Succeeded()
		g.attempt.Forget()
		g.attempt = nil
	}
	g.ss.srv.opts.Metrics.LoginSucceeded()
}
