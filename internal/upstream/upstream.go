// Package upstream is the one IMAP client for a login: our own small
// synchronous client. It dials the real server, secures the connection,
// reads the greeting and capabilities, optionally forwards the client's
// address with ID, logs in with AUTHENTICATE PLAIN or LOGIN, and records
// every fact it sees in a diagnose.Observation. net/smtp's Client.cmd is the
// model: write one command, read until its tagged reply. go-imap's
// imapclient cannot be used for the login the proxy forwards: it runs its
// own reader goroutine and keeps the connection, which the proxy must
// splice after login.
//
// The proxy logs in with Login; `imapwhy check` runs the same steps one by
// one on a Client (Attach, Handshake, ReadGreeting, LoadCapabilities,
// StartTLS, Capability) to report each of them, and picks its mechanism
// with ChooseMechanism.
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
	"unsafe"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imapwire"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

const (
	// Used when Config leaves a timeout at zero, so that every
	// network wait stays bounded (the same as config's defaults).
	defaultDialTimeout  = 10 * time.Second
	defaultLoginTimeout = 30 * time.Second

	// A TLS port sends nothing until it gets a ClientHello, just like a
	// silent server. When a plaintext connection has had no greeting for
	// probeDelay, a second connection tries a TLS handshake for at
	// most probeTimeout, while the first one goes on waiting.
	probeDelay   = 2 * time.Second
	probeTimeout = 3 * time.Second

	// maxResponses bounds the responses accepted while waiting for
	// one tagged reply; maxUntagged bounds those kept in the
	// Observation.
	maxResponses = 1000
	maxUntagged  = 64
)

// DialFunc connects to a server, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config says how to reach and log in to one upstream server.
type Config struct {
	Address      string        // host:port
	TLS          string        // config.TLSImplicit | TLSStartTLS | TLSNone
	ServerName   string        // for TLS verification and fingerprinting; "" means the host of Address
	TLSConfig    *tls.Config   // base config (RootCAs from ca_file, InsecureSkipVerify); ServerName is set by Login
	DialTimeout  time.Duration // DNS + TCP + implicit TLS; 0 means 10s
	LoginTimeout time.Duration // the whole login, dial included; 0 means 30s
	SendID       bool          // send ID ("x-originating-ip" ... ) before login
	ProxyHeader  bool          // start with a PROXY v2 header naming the client (proxyheader.go)

	// Dial connects to the server (tests, a custom resolver); nil means a net.Dialer.
	Dial DialFunc
}

// NewConfig is the Config for the upstream u of the operator's
// configuration: reached with dial (nil: a net.Dialer), verified against
// base (see TLSBase), within the configured timeouts.
func NewConfig(u config.Upstream, base *tls.Config, t config.Timeouts, dial DialFunc) Config {
	return Config{
		Address:      u.Address,
		TLS:          u.TLS,
		ServerName:   u.ServerName,
		TLSConfig:    base,
		DialTimeout:  t.UpstreamDial.D(),
		LoginTimeout: t.UpstreamLogin.D(),
		SendID:       u.SendID,
		ProxyHeader:  u.ProxyProtocol == config.ProxyV2,
		Dial:         dial,
	}
}

// TLSBase builds the TLS client configuration for the upstream u: the
// given roots (or the system's), plus u's ca_file.
func TLSBase(u config.Upstream, roots *x509.CertPool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: u.InsecureSkipVerify}
	if roots != nil {
		c.RootCAs = roots.Clone()
	}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		if c.RootCAs == nil {
			if c.RootCAs, err = x509.SystemCertPool(); err != nil {
				c.RootCAs = x509.NewCertPool()
			}
		}
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", u.CAFile)
		}
	}
	return c, nil
}

// Credentials are what a login sends. They never appear in errors.
type Credentials struct {
	User     string
	Password string
	Authzid  string // the SASL authorization identity, "" normally (needs AUTHENTICATE PLAIN)
	// Mechanism is the kind of secret: "" for a password, which goes out
	// with AUTHENTICATE PLAIN or LOGIN as the server allows (see
	// ChooseMechanism); "XOAUTH2" or "OAUTHBEARER" for an OAuth bearer
	// token in Password, which goes out with that mechanism, or the other
	// one when the server offers only that.
	Mechanism string
}

// Session is a logged-in connection, ready to splice. Its deadlines are
// cleared.
type Session struct {
	Conn   net.Conn      // the connection to splice
	Reader *bufio.Reader // reads Conn; may hold bytes that arrived after the tagged OK
	Caps   []string      // post-login capabilities as the server wrote them (from OK [CAPABILITY], untagged CAPABILITY, or a CAPABILITY command)
}

// Login dials, (STARTTLS,) reads greeting + capabilities, optionally ID,
// then logs in with the mechanism ChooseMechanism picks. It fills obs
// (Host, Port, TLSMode, ServerName, Phase, NetError, NotIMAP, Greeting,
// Capabilities, StartTLSOffered, Mechanism, Untagged, Reply) in every case.
// err != nil means no session; the caller diagnoses obs. client, when not
// nil, is the address sent with ID and in the PROXY header. Cancelling
// ctx closes the connection and ends the login at once.
func Login(ctx context.Context, cfg Config, cred Credentials, client net.Addr, obs *diagnose.Observation) (*Session, error) {
	ObserveTarget(cfg, obs)
	if cfg.ProxyHeader && client != nil {
		cfg.Dial = proxyHeaderDial(cfg.Dial, client)
	}
	if err := checkCredentials(cfg, cred); err != nil {
		obs.Phase = diagnose.PhaseProxy
		return nil, &Error{Phase: diagnose.PhaseProxy, Err: err}
	}
	s := NewClient(cfg, obs)
	up, err := s.run(ctx, cred, client)
	if err != nil {
		return nil, s.failed(ctx, err)
	}
	return up, nil
}

// ObserveTarget records where the login goes.
func ObserveTarget(cfg Config, obs *diagnose.Observation) {
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

// checkCredentials refuses, before anything is dialled, a login that
// must not go out: an unknown TLS mode, or credentials with CR, LF or NUL
// (which could end the command line and start another one).
func checkCredentials(cfg Config, req Credentials) error {
	switch cfg.TLS {
	case config.TLSImplicit, config.TLSStartTLS, config.TLSNone:
	default:
		return fmt.Errorf("unknown upstream TLS mode %q", cfg.TLS)
	}
	if req.Mechanism != "" {
		if _, ok := oauthsasl.Is(req.Mechanism); !ok {
			return fmt.Errorf("mechanism %q: %w", req.Mechanism, ErrNoMechanism)
		}
		if !oauthsasl.ValidToken(req.Password) {
			return fmt.Errorf("the bearer token %w", ErrUnsafeCredentials)
		}
	}
	fields := []struct{ name, value string }{
		{"user name", req.User},
		{"password", req.Password},
		{"authorization identity", req.Authzid},
	}
	for _, f := range fields {
		if imapwire.Unsendable(f.value) {
			return fmt.Errorf("the %s %w", f.name, ErrUnsafeCredentials)
		}
	}
	return nil
}

// Client is one connection to an upstream server up to the login, driven
// step by step: Login runs the steps for the proxy, and `imapwhy check`
// runs them one at a time to report each (it dials itself and hands the
// connection over with Attach). Each step records what it sees in the
// Observation. A Client is used by one goroutine.
type Client struct {
	cfg      Config
	obs      *diagnose.Observation
	start    time.Time
	deadline time.Time // of the whole login, or the one SetDeadline set

	raw    net.Conn      // the TCP connection
	conn   net.Conn      // raw, or the *tls.Conn over it
	br     *bufio.Reader // reads conn
	secure bool          // conn is TLS
	caps   []string      // current pre-login capabilities
	tags   int
	reads  int // responses read
}

// NewClient prepares a Client for the server of cfg, recording into obs.
// Nothing is dialled yet.
func NewClient(cfg Config, obs *diagnose.Observation) *Client {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = defaultLoginTimeout
	}
	now := time.Now()
	return &Client{cfg: cfg, obs: obs, start: now, deadline: now.Add(cfg.LoginTimeout)}
}

// Attach makes conn, dialled by the caller, the Client's connection.
func (s *Client) Attach(conn net.Conn) {
	s.raw, s.conn = conn, conn
	s.br = bufio.NewReader(conn)
}

// SetDeadline bounds the steps that follow (instead of the login timeout).
func (s *Client) SetDeadline(t time.Time) {
	s.deadline = t
	if s.conn != nil {
		s.conn.SetDeadline(t)
	}
}

// Conn is the connection: the TCP one, or TLS over it.
func (s *Client) Conn() net.Conn { return s.conn }

// Reader reads Conn; it may hold bytes not yet taken.
func (s *Client) Reader() *bufio.Reader { return s.br }

// TLSState is the state of the TLS connection, false before TLS.
func (s *Client) TLSState() (tls.ConnectionState, bool) {
	if tc, ok := s.conn.(*tls.Conn); ok && s.secure {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// run connects and logs in. Once connected, cancelling ctx closes the
// connection, which ends any read or write in progress.
func (s *Client) run(ctx context.Context, req Credentials, client net.Addr) (*Session, error) {
	if err := s.open(ctx, client); err != nil {
		return nil, err
	}
	return s.login(ctx, req)
}

// open connects and takes the connection up to the login: greeting,
// capabilities, (STARTTLS,) ID. On an error the connection is closed.
func (s *Client) open(ctx context.Context, client net.Addr) error {
	if err := s.Connect(ctx); err != nil {
		if s.raw != nil {
			s.raw.Close()
		}
		return err
	}
	return s.guarded(ctx, func() error { return s.prepare(ctx, client) })
}

// login logs in on the prepared connection.
func (s *Client) login(ctx context.Context, req Credentials) (*Session, error) {
	var up *Session
	err := s.guarded(ctx, func() (err error) {
		up, err = s.finish(req)
		return err
	})
	return up, err
}

// guarded runs step on the connection with cancelling ctx closing it,
// which ends any read or write in progress. On an error the connection
// is closed.
func (s *Client) guarded(ctx context.Context, step func() error) error {
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	err := step()
	if !stop() && err == nil {
		err = errors.New("connection closed when the login was cancelled")
	}
	if err != nil {
		s.raw.Close()
	}
	return err
}

// prepare runs the IMAP exchange on a connected session up to the login.
func (s *Client) prepare(ctx context.Context, client net.Addr) error {
	if err := s.ReadGreeting(ctx); err != nil {
		return err
	}
	if err := s.LoadCapabilities(); err != nil {
		return err
	}
	if s.cfg.TLS == config.TLSStartTLS {
		if err := s.StartTLS(); err != nil {
			return err
		}
		if err := s.Handshake(ctx); err != nil {
			return err
		}
		// What the server said in plaintext is forgotten; ask again.
		if err := s.Capability(); err != nil {
			return err
		}
	}
	if s.cfg.SendID {
		return s.sendID(client)
	}
	return nil
}

// finish logs in on a prepared connection.
func (s *Client) finish(req Credentials) (*Session, error) {
	caps, err := s.authenticate(req)
	if err != nil {
		return nil, err
	}
	s.conn.SetDeadline(time.Time{}) // forwarding has none: IDLE sits quiet for 30 minutes
	return &Session{Conn: s.conn, Reader: s.br, Caps: caps}, nil
}

// failed completes the Observation for err and wraps err with its phase.
func (s *Client) failed(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if s.obs.NetError == diagnose.NetOK {
		s.obs.NetError = NetErrorOf(err, s.obs.Phase)
	}
	return &Error{Phase: s.obs.Phase, Err: err}
}

// Connect dials and, for implicit TLS, handshakes, within the dial timeout.
func (s *Client) Connect(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseDial
	conn, dctx, cancel, err := s.dialWithin(ctx, s.start.Add(s.cfg.DialTimeout))
	if err != nil {
		return err
	}
	defer cancel()
	s.raw, s.conn = conn, conn
	if s.cfg.TLS == config.TLSImplicit {
		if err := s.Handshake(dctx); err != nil {
			return err
		}
	}
	s.conn.SetDeadline(s.deadline)
	if s.br == nil {
		s.br = bufio.NewReader(s.conn)
	}
	return nil
}

// dialWithin dials by limit or the login's deadline, whichever comes
// first: the connection's deadline and the returned context's are that
// time (call cancel when done with it; on an error it is done already).
func (s *Client) dialWithin(ctx context.Context, limit time.Time) (net.Conn, context.Context, context.CancelFunc, error) {
	deadline := limit
	if s.deadline.Before(deadline) {
		deadline = s.deadline
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	conn, err := s.dial(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	conn.SetDeadline(deadline)
	return conn, ctx, cancel, nil
}

func (s *Client) dial(ctx context.Context) (net.Conn, error) {
	if s.cfg.Dial != nil {
		return s.cfg.Dial(ctx, "tcp", s.cfg.Address)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.cfg.Address)
}

// serverName is the name the certificate must carry.
func (s *Client) serverName() string {
	if s.cfg.ServerName != "" {
		return s.cfg.ServerName
	}
	return s.obs.Host
}

// tlsConfig is the base config with our server name, TLS 1.2 at least.
// Certificates are verified unless the operator's base config says not to.
func (s *Client) tlsConfig() *tls.Config {
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

// Handshake secures the connection (implicit TLS, or after StartTLS),
// verifying the certificate against the configured roots and server name.
// When the server answers the ClientHello in plaintext, the record header
// (its first five bytes) tells which kind of server it is.
func (s *Client) Handshake(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseTLS
	tc := tls.Client(s.raw, s.tlsConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		s.obs.NotIMAP = diagnose.NotIMAPOf(err)
		return fmt.Errorf("TLS handshake: %w", err)
	}
	s.conn, s.secure = tc, true
	if s.br != nil {
		s.br.Reset(s.conn) // nothing was buffered: StartTLS checked
	}
	return nil
}

// ReadGreeting reads and checks the server's first line: another
// protocol's greeting (obs.NotIMAP), a BYE (*StatusError), PREAUTH
// (ErrPreauth) and anything but an untagged OK are errors.
func (s *Client) ReadGreeting(ctx context.Context) error {
	s.obs.Phase = diagnose.PhaseGreeting
	if !s.secure {
		if err := s.awaitPlaintextGreeting(ctx); err != nil {
			return err
		}
	}
	r, err := s.read()
	if err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	s.obs.Greeting = r.Line
	if p := diagnose.SniffProtocol([]byte(r.Line)); p != "" {
		s.obs.NetError, s.obs.NotIMAP = diagnose.NetProtocol, p
		return &ProtocolError{what: "the greeting is not IMAP (" + p + ")"}
	}
	switch {
	case r.Kind != imapwire.Untagged:
	case r.Name == "OK":
		if r.Status.Code == "CAPABILITY" {
			s.setCaps(imapwire.Caps(r.Status.CodeArg))
		}
		return nil
	case r.Name == "BYE":
		return s.refused(StatusOf(r))
	case r.Name == "PREAUTH":
		s.obs.NetError = diagnose.NetProtocol
		return ErrPreauth
	}
	s.obs.NetError = diagnose.NetProtocol
	return &ProtocolError{what: "the greeting is not OK, PREAUTH or BYE"}
}

// awaitPlaintextGreeting waits for the first bytes of a plaintext greeting
// and refuses a TLS record. When nothing comes for a while, the port may
// speak implicit TLS and be waiting for our ClientHello: a second
// connection tries a TLS handshake, and if that fails this one goes on
// waiting (a slow greeting is still read, the probe only costs time).
func (s *Client) awaitPlaintextGreeting(ctx context.Context) error {
	s.conn.SetReadDeadline(time.Now().Add(min(probeDelay, time.Until(s.deadline)/3)))
	_, err := s.br.Peek(2)
	s.conn.SetReadDeadline(s.deadline)
	if err != nil && diagnose.NetErrorOf(err) == diagnose.NetTimeout && ctx.Err() == nil {
		if s.portSpeaksTLS(ctx) {
			s.obs.NetError = diagnose.NetPlainToTLS
			return ErrPlainToTLS
		}
		_, err = s.br.Peek(2)
	}
	if err != nil {
		return fmt.Errorf("waiting for the greeting: %w", err)
	}
	if head, _ := s.br.Peek(2); diagnose.LooksLikeTLSRecord(head) {
		s.obs.NetError = diagnose.NetPlainToTLS
		return &ProtocolError{what: "a TLS record where the plaintext greeting belongs"}
	}
	return nil
}

// portSpeaksTLS reports whether a new connection to the server completes a
// TLS handshake, within probeTimeout and the login's deadline.
func (s *Client) portSpeaksTLS(ctx context.Context) bool {
	conn, ctx, cancel, err := s.dialWithin(ctx, time.Now().Add(probeTimeout))
	if err != nil {
		return false
	}
	defer cancel()
	defer conn.Close()
	// Only the question "is this TLS?" is asked: nothing is sent over the
	// connection, so the certificate does not matter here.
	tc := tls.Client(conn, &tls.Config{ServerName: s.serverName(), InsecureSkipVerify: true})
	return tc.HandshakeContext(ctx) == nil
}

// setCaps records the current pre-login capabilities, upper-cased.
func (s *Client) setCaps(caps []string) {
	s.caps = imapwire.Upper(caps)
	s.obs.Capabilities = s.caps
	if !s.secure {
		s.obs.StartTLSOffered = s.has(imap.CapStartTLS)
	}
}

// has reports whether the server advertised capability c.
func (s *Client) has(c imap.Cap) bool {
	for _, have := range s.caps {
		if have == string(c) {
			return true
		}
	}
	return false
}

// LoadCapabilities asks for the capabilities unless the greeting gave them.
func (s *Client) LoadCapabilities() error {
	if s.caps != nil {
		s.obs.Phase = diagnose.PhaseCapability
		return nil
	}
	return s.Capability()
}

// Capability sends CAPABILITY and records the list as the current
// pre-login capabilities (after STARTTLS: what the server said in
// plaintext is forgotten).
func (s *Client) Capability() error {
	s.obs.Phase = diagnose.PhaseCapability
	caps, err := s.capability()
	if err != nil {
		return err
	}
	s.setCaps(caps)
	return nil
}

// capability sends CAPABILITY and returns the list.
func (s *Client) capability() ([]string, error) {
	var caps []string
	cmd, err := s.command("CAPABILITY").Finish()
	if err != nil {
		return nil, err
	}
	reply, err := s.exchange(cmd, func(r imapwire.Response) {
		if r.Name == "CAPABILITY" {
			caps = imapwire.Caps(r.Text)
		}
	})
	if err != nil {
		return nil, err
	}
	if reply.Status != "OK" {
		return nil, s.refused(reply)
	}
	if caps == nil {
		return nil, &ProtocolError{what: "CAPABILITY answered without a capability list"}
	}
	return caps, nil
}

// StartTLS sends STARTTLS (RFC 9051 section 6.2.1), if offered: Handshake
// is the next step.
func (s *Client) StartTLS() error {
	s.obs.Phase = diagnose.PhaseStartTLS
	if !s.obs.StartTLSOffered {
		return ErrNoStartTLS
	}
	cmd, err := s.command("STARTTLS").Finish()
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
		return ErrStartTLSInjection
	}
	return nil
}

// sendID tells the server the client's address (Dovecot's x-originating-ip,
// RFC 2971), for servers that trust the proxy. The reply is ignored, unless
// it is a BYE.
func (s *Client) sendID(client net.Addr) error {
	if !s.has(imap.CapID) {
		return nil
	}
	fields := idFields(client, s.raw.RemoteAddr())
	if fields == nil {
		return nil
	}
	cmd, err := s.command("ID").List(fields...).Finish()
	if err != nil {
		return err
	}
	_, err = s.exchange(cmd, nil)
	return err
}

// idFields are the ID parameters for the client's address and the
// address it reached (here: the upstream's, as the listener's is not known
// to login); nil if an address has no IP and port.
func idFields(client, connected net.Addr) []string {
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
func (s *Client) authenticate(req Credentials) ([]string, error) {
	s.obs.Phase = diagnose.PhaseLogin
	cmd, err := s.credentialsCommand(req)
	if err != nil {
		return nil, err
	}
	defer cmd.Wipe()
	var caps []string
	reply, err := s.exchange(cmd, func(r imapwire.Response) {
		s.recordUntagged(r)
		if r.Name == "CAPABILITY" {
			caps = imapwire.Caps(r.Text)
		}
	})
	if err != nil {
		return nil, err
	}
	s.obs.Reply = &reply
	if reply.Status != "OK" {
		return nil, &StatusError{Resp: reply}
	}
	if err := s.checkMailbox(); err != nil {
		return nil, err
	}
	switch {
	case reply.Code == "CAPABILITY":
		return imapwire.Caps(reply.CodeArg), nil
	case caps != nil:
		return caps, nil
	}
	s.obs.Phase = diagnose.PhaseAfterLogin
	return s.capability()
}

// credentialsCommand picks the mechanism and encodes the credentials.
func (s *Client) credentialsCommand(req Credentials) (imapwire.Command, error) {
	s.obs.Mechanism = ChooseMechanism(s.caps, req)
	switch s.obs.Mechanism {
	case sasl.Plain:
		// RFC 4616: [authzid] NUL authcid NUL passwd, built in one buffer
		// that is wiped (go-sasl's client leaves a string copy behind).
		ir := make([]byte, 0, len(req.Authzid)+len(req.User)+len(req.Password)+2)
		ir = append(append(append(append(append(ir, req.Authzid...), 0), req.User...), 0), req.Password...)
		// The base64 form in bytes wiped once copied into the command,
		// which the caller wipes once sent.
		b := make([]byte, base64.StdEncoding.EncodedLen(len(ir)))
		base64.StdEncoding.Encode(b, ir)
		clear(ir)
		defer clear(b)
		resp := unsafe.String(unsafe.SliceData(b), len(b))
		e := s.command("AUTHENTICATE").Atom(sasl.Plain)
		if s.has(imap.CapSASLIR) {
			e.Atom(resp) // RFC 4959
		} else {
			e.Respond(resp)
		}
		return e.CancelWith("*").Finish()
	case "LOGIN":
		return s.command("LOGIN").String(req.User).String(req.Password).Finish()
	case oauthsasl.XOAUTH2, oauthsasl.OAUTHBEARER:
		return s.oauthCommand(req), nil
	}
	return imapwire.Command{}, ErrNoMechanism
}

// ChooseMechanism chooses how to send cred, given the server's
// capabilities (upper-cased). A password goes with "PLAIN" (AUTHENTICATE
// PLAIN) when advertised, else "LOGIN", which every IMAP server accepts
// unless it says LOGINDISABLED (RFC 9051 section 6.2.3); "" when neither
// may be used. LOGINDISABLED also rules out PLAIN: the server does not want
// passwords on this connection. LOGIN cannot carry an authorization
// identity, so credentials with one need PLAIN. This is the one place that
// picks a mechanism: a new kind of credentials gets its case here and its
// encoding in credentialsCommand.
func ChooseMechanism(caps []string, cred Credentials) string {
	has := func(c string) bool {
		for _, have := range caps {
			if have == c {
				return true
			}
		}
		return false
	}
	if mech, ok := oauthsasl.Is(cred.Mechanism); ok {
		other := oauthsasl.OAUTHBEARER
		if mech == oauthsasl.OAUTHBEARER {
			other = oauthsasl.XOAUTH2
		}
		switch {
		case has("AUTH=" + mech):
			return mech
		case has("AUTH=" + other):
			return other
		}
		return ""
	}
	switch {
	case cred.Mechanism != "":
		return ""
	case has(string(imap.CapLoginDisabled)):
		return ""
	case has("AUTH=PLAIN"):
		return sasl.Plain
	case cred.Authzid != "":
		return ""
	}
	return "LOGIN"
}

// recordUntagged keeps an untagged response of the login exchange.
func (s *Client) recordUntagged(r imapwire.Response) {
	if len(s.obs.Untagged) >= maxUntagged {
		return
	}
	resp := StatusOf(r)
	if !r.IsStatus() {
		resp = diagnose.Response{Status: r.Name, Text: r.Text}
	}
	s.obs.Untagged = append(s.obs.Untagged, resp)
}

// refused records a status response that ends the login and returns its error.
func (s *Client) refused(resp diagnose.Response) error {
	s.obs.Reply = &resp
	return &StatusError{Resp: resp}
}

// command starts a command with the next tag.
func (s *Client) command(name string) *imapwire.Encoder {
	s.tags++
	return imapwire.NewCommand("a"+strconv.Itoa(s.tags), name, s.nonSyncLiteral)
}

// nonSyncLiteral reports whether a literal of n bytes may go without
// waiting for the server's "+" (RFC 7888).
func (s *Client) nonSyncLiteral(n int) bool {
	return s.has(imap.CapLiteralPlus) || (s.has(imap.CapLiteralMinus) && n <= imapwire.MaxNonSyncLiteral)
}

// exchange sends cmd and reads until its tagged reply, which it returns
// whatever its status. Each chunk after the first waits for a continuation
// request. Untagged responses go to onUntagged (if not nil); an untagged
// BYE ends the exchange with an error and becomes obs.Reply.
func (s *Client) exchange(cmd imapwire.Command, onUntagged func(imapwire.Response)) (diagnose.Response, error) {
	pending := cmd.Chunks
	cancelled := false
	if err := s.write(pending[0]); err != nil {
		return diagnose.Response{}, err
	}
	pending = pending[1:]
	for range maxResponses {
		r, err := s.read()
		if err != nil {
			return diagnose.Response{}, err
		}
		switch {
		case r.Kind == imapwire.Continuation && len(pending) > 0:
			err = s.write(pending[0])
			pending = pending[1:]
		case r.Kind == imapwire.Continuation && cmd.Cancel != nil && !cancelled:
			if cmd.OnChallenge != nil {
				cmd.OnChallenge(r.Text)
			}
			err = s.write(cmd.Cancel)
			cancelled = true
		case r.Kind == imapwire.Continuation:
			err = &ProtocolError{what: "unexpected continuation request"}
		case r.Kind == imapwire.Untagged:
			if onUntagged != nil {
				onUntagged(r)
			}
			if r.Name == "BYE" {
				err = s.refused(StatusOf(r))
			}
		case r.Tag != cmd.Tag:
			err = &ProtocolError{what: "tagged reply to a command never sent"}
		case r.Name != "OK" && r.Name != "NO" && r.Name != "BAD":
			err = &ProtocolError{what: "tagged reply is not OK, NO or BAD"}
		default:
			return StatusOf(r), nil // a server may answer before taking all chunks
		}
		if err != nil {
			return diagnose.Response{}, err
		}
	}
	return diagnose.Response{}, &ProtocolError{what: "no tagged reply after " + strconv.Itoa(maxResponses) + " responses"}
}

func (s *Client) write(b []byte) error {
	if _, err := s.conn.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Bounds of one server response.
var responseLimits = imapwire.ResponseLimits{
	MaxLine:     64 << 10,  // one line: a login never needs more
	MaxResponse: 256 << 10, // one response with its literals (an ID reply may carry some)
}

// read reads one server response.
func (s *Client) read() (imapwire.Response, error) {
	r, err := imapwire.ReadResponse(s.br, responseLimits)
	if tl, ok := errors.AsType[*imapwire.TooLongError](err); ok {
		return imapwire.Response{}, &ProtocolError{what: "response " + tl.Error()}
	}
	if err == nil {
		s.reads++
	}
	return r, err
}

// StatusOf is the status response r as the Observation keeps it.
func StatusOf(r imapwire.Response) diagnose.Response {
	return diagnose.Response{
		Tagged:  r.Kind == imapwire.Tagged,
		Status:  string(r.Status.Type),
		Code:    string(r.Status.Code),
		CodeArg: r.Status.CodeArg,
		Text:    r.Status.Text,
	}
}
