package proxy

// The upstream login: our own small synchronous IMAP client (DESIGN.md,
// data flow step 4). It dials the real server, secures the connection,
// reads the greeting and capabilities, optionally forwards the client's
// address with ID, logs in with AUTHENTICATE PLAIN or LOGIN, and records
// every fact it sees in a diagnose.Observation. net/smtp's Client.cmd is the
// model: write one command, read until its tagged reply. go-imap's
// imapclient cannot be used: it runs its own reader goroutine and keeps the
// connection, which the proxy must splice after login.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/diagnose"
)

const (
	// Used when upstreamConfig leaves a timeout at zero, so that every
	// network wait stays bounded (the same as config's defaults).
	upstreamDefaultDialTimeout  = 10 * time.Second
	upstreamDefaultLoginTimeout = 30 * time.Second

	// A TLS port sends nothing until it gets a ClientHello, just like a
	// silent server. When a plaintext connection has had no greeting for
	// upstreamProbeDelay, a second connection tries a TLS handshake for at
	// most upstreamProbeTimeout, while the first one goes on waiting.
	upstreamProbeDelay   = 2 * time.Second
	upstreamProbeTimeout = 3 * time.Second

	// upstreamMaxResponses bounds the responses accepted while waiting for
	// one tagged reply; upstreamMaxUntagged bounds those kept in the
	// Observation.
	upstreamMaxResponses = 1000
	upstreamMaxUntagged  = 64
)

// upstreamConfig says how to reach and log in to one upstream server.
type upstreamConfig struct {
	Address      string        // host:port
	TLS          string        // config.TLSImplicit | TLSStartTLS | TLSNone
	ServerName   string        // for TLS verification and fingerprinting; "" means the host of Address
	TLSConfig    *tls.Config   // base config (RootCAs from ca_file, InsecureSkipVerify); ServerName is set by login
	DialTimeout  time.Duration // DNS + TCP + implicit TLS; 0 means 10s
	LoginTimeout time.Duration // the whole login, dial included; 0 means 30s
	SendID       bool          // send ID ("x-originating-ip" ... ) before login

	// Dial connects to the server (tests, a custom resolver); nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// upstream is a logged-in connection, ready to splice. Its deadlines are
// cleared.
type upstream struct {
	conn net.Conn      // after a successful login: the connection to splice
	br   *bufio.Reader // may hold bytes that arrived after the tagged OK
	caps []string      // post-login capabilities (from OK [CAPABILITY], untagged CAPABILITY, or a CAPABILITY command)
}

// login dials, (STARTTLS,) reads greeting + capabilities, optionally ID,
// then LOGIN or AUTHENTICATE PLAIN. It fills obs (Host, Port, TLSMode,
// ServerName, Phase, NetError, NotIMAP, Greeting, Capabilities,
// StartTLSOffered, Mechanism, Untagged, Reply) in every case. err != nil
// means no session; the caller diagnoses obs. Cancelling ctx closes the
// connection and ends the login at once.
func login(ctx context.Context, cfg upstreamConfig, req *loginRequest, client net.Addr, obs *diagnose.Observation) (*upstream, error) {
	upstreamObserveTarget(cfg, obs)
	if err := upstreamCheckRequest(cfg, req); err != nil {
		obs.Phase = diagnose.PhaseProxy
		return nil, &upstreamError{Phase: diagnose.PhaseProxy, Err: err}
	}
	s := newUpstreamSession(cfg, obs)
	up, err := s.run(ctx, req, client)
	if err != nil {
		return nil, s.failed(ctx, err)
	}
	return up, nil
}

// upstreamObserveTarget records where the login goes.
func upstreamObserveTarget(cfg upstreamConfig, obs *diagnose.Observation) {
	host, port, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		host = cfg.Address
	}
	obs.Host = host
	obs.Port, _ = strconv.Atoi(port)
	obs.TLSMode = cfg.TLS
	if cfg.ServerName != "" && cfg.ServerName != host {
		obs.ServerName = cfg.ServerName
	}
}

// upstreamCheckRequest refuses, before anything is dialled, a login that
// must not go out: an unknown TLS mode, or credentials with CR, LF or NUL
// (which could end the command line and start another one).
func upstreamCheckRequest(cfg upstreamConfig, req *loginRequest) error {
	switch cfg.TLS {
	case config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
	default:
		return fmt.Errorf("unknown upstream TLS mode %q", cfg.TLS)
	}
	if req == nil {
		return errors.New("no login request")
	}
	fields := []struct{ name, value string }{
		{"user name", req.Username},
		{"password", req.Password},
		{"authorization identity", req.Authzid},
	}
	for _, f := range fields {
		if strings.ContainsAny(f.value, "\r\n\x00") {
			return fmt.Errorf("the %s %w", f.name, errUpstreamUnsafeCredentials)
		}
	}
	return nil
}

// upstreamSession is the state of one login attempt.
type upstreamSession struct {
	cfg      upstreamConfig
	obs      *diagnose.Observation
	start    time.Time
	deadline time.Time // the whole login's

	raw    net.Conn      // the TCP connection
	conn   net.Conn      // raw, or the *tls.Conn over it
	br     *bufio.Reader // reads conn
	secure bool          // conn is TLS
	caps   []string      // current pre-login capabilities
	tags   int
}

func newUpstreamSession(cfg upstreamConfig, obs *diagnose.Observation) *upstreamSession {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = upstreamDefaultDialTimeout
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = upstreamDefaultLoginTimeout
	}
	now := time.Now()
	return &upstreamSession{cfg: cfg, obs: obs, start: now, deadline: now.Add(cfg.LoginTimeout)}
}

// run connects and logs in. Once connected, cancelling ctx closes the
// connection, which ends any read or write in progress.
func (s *upstreamSession) run(ctx context.Context, req *loginRequest, client net.Addr) (*upstream, error) {
	if err := s.connect(ctx); err != nil {
		if s.raw != nil {
			s.raw.Close()
		}
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	up, err := s.converse(ctx, req, client)
	if !stop() && err == nil {
		err = errors.New("connection closed when the login was cancelled")
	}
	if err != nil {
		s.raw.Close()
		return nil, err
	}
	return up, nil
}

// converse runs the IMAP exchange on a connected session.
func (s *upstreamSession) converse(ctx context.Context, req *loginRequest, client net.Addr) (*upstream, error) {
	if err := s.readGreeting(ctx); err != nil {
		return nil, err
	}
	if err := s.loadCapabilities(); err != nil {
		return nil, err
	}
	if s.cfg.TLS == config.TLSStartTLS {
		if err := s.startTLS(ctx); err != nil {
			return nil, err
		}
	}
	if s.cfg.SendID {
		if err := s.sendID(client); err != nil {
			return nil, err
		}
	}
	caps, err := s.authenticate(req)
	if err != nil {
		return nil, err
	}
	s.conn.SetDeadline(time.Time{}) // forwarding has none: IDLE sits quiet for 30 minutes
	return &upstream{conn: s.conn, br: s.br, caps: caps}, nil
}

// failed completes the Observation for err and wraps err with its phase.
func (s *upstreamSession) failed(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if s.obs.NetError == diagnose.NetOK {
		s.obs.NetError = upstreamNetError(err, s.obs.Phase)
	}
	return &upstreamError{Phase: s.obs.Phase, Err: err}
}

// connect dials and, for implicit TLS, handshakes, within the dial timeout.
func (s *upstreamSession) connect(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseDial
	deadline := s.start.Add(s.cfg.DialTimeout)
	if s.deadline.Before(deadline) {
		deadline = s.deadline
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := s.dial(dctx)
	if err != nil {
		return err
	}
	s.raw, s.conn = conn, conn
	if s.cfg.TLS == config.TLSImplicit {
		conn.SetDeadline(deadline)
		if err := s.handshake(dctx); err != nil {
			return err
		}
	}
	s.conn.SetDeadline(s.deadline)
	s.br = bufio.NewReader(s.conn)
	return nil
}

func (s *upstreamSession) dial(ctx context.Context) (net.Conn, error) {
	if s.cfg.Dial != nil {
		return s.cfg.Dial(ctx, "tcp", s.cfg.Address)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.cfg.Address)
}

// serverName is the name the certificate must carry.
func (s *upstreamSession) serverName() string {
	if s.cfg.ServerName != "" {
		return s.cfg.ServerName
	}
	return s.obs.Host
}

// tlsConfig is the base config with our server name, TLS 1.2 at least.
// Certificates are verified unless the operator's base config says not to.
func (s *upstreamSession) tlsConfig() *tls.Config {
	c := &tls.Config{}
	if s.cfg.TLSConfig != nil {
		c = s.cfg.TLSConfig.Clone()
	}
	c.ServerName = s.serverName()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// handshake secures raw (implicit TLS, or after STARTTLS). When the server
// answers the ClientHello in plaintext, the record header (its first five
// bytes) tells which kind of server it is.
func (s *upstreamSession) handshake(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseTLS
	tc := tls.Client(s.raw, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		s.obs.NotIMAP = diagnose.NotIMAPOf(err)
		return fmt.Errorf("TLS handshake: %w", err)
	}
	s.conn, s.secure = tc, true
	return nil
}

// readGreeting reads and checks the server's first line.
func (s *upstreamSession) readGreeting(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseGreeting
	if !s.secure {
		if err := s.awaitPlaintextGreeting(ctx); err != nil {
			return err
		}
	}
	r, err := wireRead(s.br)
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	s.obs.Greeting = r.line
	if r.kind != wireUntagged {
		s.obs.NetError = diagnose.NetProtocol
		s.obs.NotIMAP = diagnose.SniffProtocol([]byte(r.line))
		return &upstreamProtocolError{what: "the greeting is not IMAP (" + s.obs.NotIMAP + ")"}
	}
	switch r.name {
	case "OK":
		if r.status.Code == "CAPABILITY" {
			s.setCaps(wireCaps(r.status.CodeArg))
		}
		return nil
	case "BYE":
		return s.refused(r.status)
	case "PREAUTH":
		s.obs.NetError = diagnose.NetProtocol
		return &upstreamProtocolError{what: "PREAUTH greeting: logged in before any credentials"}
	}
	s.obs.NetError = diagnose.NetProtocol
	return &upstreamProtocolError{what: "the greeting is not OK, PREAUTH or BYE"}
}

// awaitPlaintextGreeting waits for the first bytes of a plaintext greeting
// and refuses a TLS record. When nothing comes for a while, the port may
// speak implicit TLS and be waiting for our ClientHello: a second
// connection tries a TLS handshake, and if that fails this one goes on
// waiting (a slow greeting is still read, the probe only costs time).
func (s *upstreamSession) awaitPlaintextGreeting(ctx context.Context) error {
	s.conn.SetReadDeadline(time.Now().Add(min(upstreamProbeDelay, time.Until(s.deadline)/3)))
	_, err := s.br.Peek(2)
	s.conn.SetReadDeadline(s.deadline)
	if err != nil && diagnose.NetErrorOf(err) == diagnose.NetTimeout && ctx.Err() == nil {
		if s.portSpeaksTLS(ctx) {
			s.obs.NetError = diagnose.NetPlainToTLS
			return errUpstreamPlainToTLS
		}
		_, err = s.br.Peek(2)
	}
	if err != nil {
		return fmt.Errorf("waiting for the greeting: %w", err)
	}
	if head, _ := s.br.Peek(2); diagnose.LooksLikeTLSRecord(head) {
		s.obs.NetError = diagnose.NetPlainToTLS
		return &upstreamProtocolError{what: "a TLS record where the plaintext greeting belongs"}
	}
	return nil
}

// portSpeaksTLS reports whether a new connection to the server completes a
// TLS handshake, within upstreamProbeTimeout and the login's deadline.
func (s *upstreamSession) portSpeaksTLS(ctx context.Context) bool {
	deadline := time.Now().Add(upstreamProbeTimeout)
	if s.deadline.Before(deadline) {
		deadline = s.deadline
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := s.dial(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Only the question "is this TLS?" is asked: nothing is sent over the
	// connection, so the certificate does not matter here.
	tc := tls.Client(conn, &tls.Config{ServerName: s.serverName(), InsecureSkipVerify: true})
	return tc.HandshakeContext(ctx) == nil
}

// setCaps records the current pre-login capabilities, upper-cased.
func (s *upstreamSession) setCaps(caps []string) {
	s.caps = wireUpper(caps)
	s.obs.Capabilities = s.caps
	if !s.secure {
		s.obs.StartTLSOffered = s.has(imap.CapStartTLS)
	}
}

// has reports whether the server advertised capability c.
func (s *upstreamSession) has(c imap.Cap) bool {
	for _, have := range s.caps {
		if have == string(c) {
			return true
		}
	}
	return false
}

// loadCapabilities asks for the capabilities unless the greeting gave them.
func (s *upstreamSession) loadCapabilities() error {
	s.obs.Phase = diagnose.PhaseCapability
	if s.caps != nil {
		return nil
	}
	caps, err := s.capability()
	if err != nil {
		return err
	}
	s.setCaps(caps)
	return nil
}

// capability sends CAPABILITY and returns the list.
func (s *upstreamSession) capability() ([]string, error) {
	var caps []string
	cmd, err := s.command("CAPABILITY").finish()
	if err != nil {
		return nil, err
	}
	reply, err := s.exchange(cmd, func(r wireResponse) {
		if r.name == "CAPABILITY" {
			caps = wireCaps(r.text)
		}
	})
	if err != nil {
		return nil, err
	}
	if reply.Status != "OK" {
		return nil, s.refused(reply)
	}
	if caps == nil {
		return nil, &upstreamProtocolError{what: "CAPABILITY answered without a capability list"}
	}
	return caps, nil
}

// startTLS upgrades the connection with STARTTLS (RFC 9051 section 6.2.1).
func (s *upstreamSession) startTLS(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseStartTLS
	if !s.obs.StartTLSOffered {
		return errUpstreamNoStartTLS
	}
	cmd, err := s.command("STARTTLS").finish()
	if err != nil {
		return err
	}
	reply, err := s.exchange(cmd, nil)
	if err != nil {
		return err
	}
	if reply.Status != "OK" {
		return s.refused(reply)
	}
	// Bytes already after the OK were sent in plaintext, before TLS; taking
	// them as TLS-protected responses is the STARTTLS injection attack
	// (CVE-2011-0411 and its IMAP cousins).
	if s.br.Buffered() > 0 {
		s.obs.NetError = diagnose.NetProtocol
		return errUpstreamStartTLSInjection
	}
	if err := s.handshake(ctx); err != nil {
		return err
	}
	s.br.Reset(s.conn)
	// What the server said in plaintext is forgotten; ask again.
	s.obs.Phase = diagnose.PhaseCapability
	caps, err := s.capability()
	if err != nil {
		return err
	}
	s.setCaps(caps)
	return nil
}

// sendID tells the server the client's address (Dovecot's x-originating-ip,
// RFC 2971), for servers that trust the proxy. The reply is ignored, unless
// it is a BYE.
func (s *upstreamSession) sendID(client net.Addr) error {
	if !s.has(imap.CapID) {
		return nil
	}
	fields := upstreamIDFields(client, s.raw.RemoteAddr())
	if fields == nil {
		return nil
	}
	cmd, err := s.command("ID").list(fields...).finish()
	if err != nil {
		return err
	}
	_, err = s.exchange(cmd, nil)
	return err
}

// upstreamIDFields are the ID parameters for the client's address and the
// address it reached (here: the upstream's, as the listener's is not known
// to login); nil if an address has no IP and port.
func upstreamIDFields(client, connected net.Addr) []string {
	if client == nil || connected == nil {
		return nil
	}
	cip, cport, err1 := net.SplitHostPort(client.String())
	lip, lport, err2 := net.SplitHostPort(connected.String())
	if err1 != nil || err2 != nil {
		return nil
	}
	return []string{
		"x-originating-ip", cip, "x-originating-port", cport,
		"x-connected-ip", lip, "x-connected-port", lport,
	}
}

// authenticate logs in and returns the post-login capabilities: from the
// tagged OK's code, else from an untagged CAPABILITY sent with it, else from
// a CAPABILITY command of our own.
func (s *upstreamSession) authenticate(req *loginRequest) ([]string, error) {
	s.obs.Phase = diagnose.PhaseLogin
	cmd, err := s.credentialsCommand(req)
	if err != nil {
		return nil, err
	}
	defer cmd.wipe()
	var caps []string
	reply, err := s.exchange(cmd, func(r wireResponse) {
		s.recordUntagged(r)
		if r.name == "CAPABILITY" {
			caps = wireCaps(r.text)
		}
	})
	if err != nil {
		return nil, err
	}
	s.obs.Reply = &reply
	if reply.Status != "OK" {
		return nil, &upstreamStatusError{Resp: reply}
	}
	switch {
	case reply.Code == "CAPABILITY":
		return wireCaps(reply.CodeArg), nil
	case caps != nil:
		return caps, nil
	}
	s.obs.Phase = diagnose.PhaseAfterLogin
	return s.capability()
}

// credentialsCommand picks the mechanism and encodes the credentials.
func (s *upstreamSession) credentialsCommand(req *loginRequest) (wireCommand, error) {
	s.obs.Mechanism = upstreamMechanism(s.caps, req.Authzid != "")
	switch s.obs.Mechanism {
	case sasl.Plain:
		_, ir, err := sasl.NewPlainClient(req.Authzid, req.Username, req.Password).Start()
		if err != nil {
			return wireCommand{}, err
		}
		resp := base64.StdEncoding.EncodeToString(ir)
		clear(ir)
		e := s.command("AUTHENTICATE").atom(sasl.Plain)
		if s.has(imap.CapSASLIR) {
			e.atom(resp) // RFC 4959
		} else {
			e.respond(resp)
		}
		return e.cancelWith("*").finish()
	case "LOGIN":
		return s.command("LOGIN").str(req.Username).str(req.Password).finish()
	}
	return wireCommand{}, errUpstreamNoMechanism
}

// upstreamMechanism chooses how to send a password: "PLAIN"
// (AUTHENTICATE PLAIN) when advertised, else "LOGIN", which every IMAP
// server accepts unless it says LOGINDISABLED (RFC 9051 section 6.2.3);
// "" when neither may be used. LOGINDISABLED also rules out PLAIN: the
// server does not want passwords on this connection. LOGIN cannot carry an
// authorization identity, so a request with one needs PLAIN.
func upstreamMechanism(caps []string, authzid bool) string {
	has := func(c string) bool {
		for _, have := range caps {
			if have == c {
				return true
			}
		}
		return false
	}
	switch {
	case has(string(imap.CapLoginDisabled)):
		return ""
	case has("AUTH=PLAIN"):
		return sasl.Plain
	case authzid:
		return ""
	}
	return "LOGIN"
}

// recordUntagged keeps an untagged response of the login exchange.
func (s *upstreamSession) recordUntagged(r wireResponse) {
	if len(s.obs.Untagged) >= upstreamMaxUntagged {
		return
	}
	resp := r.status
	if !r.isStatus() {
		resp = diagnose.Response{Status: r.name, Text: r.text}
	}
	s.obs.Untagged = append(s.obs.Untagged, resp)
}

// refused records a status response that ends the login and returns its error.
func (s *upstreamSession) refused(resp diagnose.Response) error {
	s.obs.Reply = &resp
	return &upstreamStatusError{Resp: resp}
}

// command starts a command with the next tag.
func (s *upstreamSession) command(name string) *wireEncoder {
	s.tags++
	return wireNewCommand("a"+strconv.Itoa(s.tags), name, s.nonSyncLiteral)
}

// nonSyncLiteral reports whether a literal of n bytes may go without
// waiting for the server's "+" (RFC 7888).
func (s *upstreamSession) nonSyncLiteral(n int) bool {
	return s.has(imap.CapLiteralPlus) || (s.has(imap.CapLiteralMinus) && n <= wireMaxNonSyncLiteral)
}

// exchange sends cmd and reads until its tagged reply, which it returns
// whatever its status. Each chunk after the first waits for a continuation
// request. Untagged responses go to onUntagged (if not nil); an untagged
// BYE ends the exchange with an error and becomes obs.Reply.
func (s *upstreamSession) exchange(cmd wireCommand, onUntagged func(wireResponse)) (diagnose.Response, error) {
	pending := cmd.chunks
	cancelled := false
	if err := s.write(pending[0]); err != nil {
		return diagnose.Response{}, err
	}
	pending = pending[1:]
	for range upstreamMaxResponses {
		r, err := wireRead(s.br)
		if err != nil {
			return diagnose.Response{}, err
		}
		switch {
		case r.kind == wireContinuation && len(pending) > 0:
			err = s.write(pending[0])
			pending = pending[1:]
		case r.kind == wireContinuation && cmd.cancel != nil && !cancelled:
			err = s.write(cmd.cancel)
			cancelled = true
		case r.kind == wireContinuation:
			err = &upstreamProtocolError{what: "unexpected continuation request"}
		case r.kind == wireUntagged:
			if onUntagged != nil {
				onUntagged(r)
			}
			if r.name == "BYE" {
				err = s.refused(r.status)
			}
		case r.tag != cmd.tag:
			err = &upstreamProtocolError{what: "tagged reply to a command never sent"}
		case r.name != "OK" && r.name != "NO" && r.name != "BAD":
			err = &upstreamProtocolError{what: "tagged reply is not OK, NO or BAD"}
		default:
			return r.status, nil // a server may answer before taking all chunks
		}
		if err != nil {
			return diagnose.Response{}, err
		}
	}
	return diagnose.Response{}, &upstreamProtocolError{what: "no tagged reply after " + strconv.Itoa(upstreamMaxResponses) + " responses"}
}

func (s *upstreamSession) write(b []byte) error {
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
