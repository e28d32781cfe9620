// Package config loads imapwhy's YAML configuration: one file, strict (an
// unknown key is an error naming it), with a default for every field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// TLS modes for listeners and upstreams.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// UpstreamAuto routes each login by the user name's email domain.
const UpstreamAuto = "auto"

// Config is the whole configuration.
type Config struct {
	StateDir  string     `yaml:"state_dir"`
	Log       Log        `yaml:"log"`
	Listeners []Listener `yaml:"listeners"`
	TLS       TLS        `yaml:"tls"`
	Admin     Admin      `yaml:"admin"`
	Timeouts  Timeouts   `yaml:"timeouts"`
	Limits    Limits     `yaml:"limits"`
	Shield    Shield     `yaml:"shield"`
	Discovery Discovery  `yaml:"discovery"`
	Routes    []Route    `yaml:"routes"`
	// Incident and status pages, notifications (reach.go).
	Web    Web    `yaml:"web"`
	Notify Notify `yaml:"notify"`
	// State is where instances behind a load balancer share what they
	// remember (gateway.go); memory of each process by default.
	State State `yaml:"state"`
	// AllowClients are the client addresses (CIDR prefixes) the listeners
	// and pages accept; others are closed at once. Default: in local mode
	// loopback, private (RFC 1918, RFC 4193) and link-local addresses, in
	// gateway mode every address.
	AllowClients []string `yaml:"allow_clients"`
	// OAuthBridge lets password-only apps sign in to providers that want
	// OAuth (bridge.go). Off by default.
	OAuthBridge OAuthBridge `yaml:"oauth_bridge"`
}

// Log selects the log format and level.
type Log struct {
	Format string `yaml:"format"` // json | console
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// Listener is one address the proxy accepts mail apps on.
type Listener struct {
	Address  string   `yaml:"address"`
	TLS      string   `yaml:"tls"`      // implicit | starttls | none (none: loopback only)
	Language string   `yaml:"language"` // ja | en
	Upstream Upstream `yaml:"upstream"`
	// NoticeMailbox (reach.go): when a login fails for a cause
	// that typing again cannot fix, accept it into a read-only mailbox
	// whose one message explains the problem. Default false.
	NoticeMailbox bool `yaml:"notice_mailbox"`
	// ProxyProtocol accepts a PROXY header from load balancers
	// (gateway.go).
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`
}

// Upstream is the real IMAP server behind a listener.
type Upstream struct {
	Address    string `yaml:"address"`     // host:port, or "auto"
	TLS        string `yaml:"tls"`         // implicit | starttls | none (none: loopback only)
	ServerName string `yaml:"server_name"` // TLS name and provider fingerprint; default: the host of Address
	CAFile     string `yaml:"ca_file"`     // extra trusted CA (PEM)
	// InsecureSkipVerify turns off certificate verification. Only for tests
	// and servers the operator knows; logged loudly at start.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// SendID sends the client's address in an ID command before login
	// (Dovecot's x-originating-ip), for upstreams that trust this proxy.
	SendID bool `yaml:"send_id"`
	// ProxyProtocol "v2" sends a PROXY v2 header with the client's address
	// first (Dovecot's haproxy = yes listeners); "" sends none.
	ProxyProtocol string `yaml:"proxy_protocol"`
	// Predial connects to a fixed upstream as soon as a client connection
	// is admitted, up to the login (TCP, PROXY header, TLS, greeting,
	// capabilities, ID), so that the client's login does not wait for it.
	// Default true for a fixed address; not for auto, nor in routes. Read
	// it with PredialOn. (omitempty: a configuration written out by a
	// program is read by older versions too.)
	Predial *bool `yaml:"predial,omitempty"`
	// OAuth is what the server wants of an OAuth token (XOAUTH2,
	// OAUTHBEARER), for explaining refused token logins: the audience and
	// the scope a token for it carries. Empty: what the provider is known
	// to want (Gmail, Microsoft 365), or unknown.
	OAuth OAuthWants `yaml:"oauth"`
}

// PredialOn reports whether connections to this upstream are made
// before the client's login: on by default for a fixed address, never
// for auto (the server depends on the login's user name).
func (u Upstream) PredialOn() bool {
	return u.Address != UpstreamAuto && (u.Predial == nil || *u.Predial)
}

// OAuthWants is what an upstream wants of an OAuth access token.
type OAuthWants struct {
	Audiences []string `yaml:"audiences"` // any one of these as the token's aud
	Scopes    []string `yaml:"scopes"`    // any one of these among its scopes
}

// TLS is the proxy's own certificate. Nothing set: a local CA and leaf
// certificate created in StateDir.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	ACME     *ACME  `yaml:"acme"`
}

// ACME obtains certificates for a public host name.
type ACME struct {
	Domains []string `yaml:"domains"`
	Email   string   `yaml:"email"`
	CA      string   `yaml:"ca"`      // directory URL; default Let's Encrypt production
	CARoot  string   `yaml:"ca_root"` // PEM file whose roots replace the system's for the ACME server's own HTTPS (test CAs)
	// HTTPPort and TLSALPNPort are the ports the challenge solvers listen on
	// (defaults 80 and 443).
	HTTPPort    int `yaml:"http_port"`
	TLSALPNPort int `yaml:"tls_alpn_port"`
}

// Admin is the metrics and health listener.
type Admin struct {
	// Address is host:port of the HTTP listener serving /metrics and
	// /healthz; "" (the default) disables it. The host must be given:
	// 127.0.0.1 keeps it on loopback, 0.0.0.0 must be asked for.
	Address string `yaml:"address"`
}

// Timeouts bound each phase of a connection.
type Timeouts struct {
	PreAuth       Duration `yaml:"preauth"`        // from accept to a successful login
	UpstreamDial  Duration `yaml:"upstream_dial"`  // DNS + TCP + TLS to the upstream
	UpstreamLogin Duration `yaml:"upstream_login"` // greeting to the tagged login reply
	Drain         Duration `yaml:"drain"`          // how long SIGTERM waits for forwarded sessions
}

// Limits bound what an unauthenticated client may send, and how fast.
type Limits struct {
	MaxLine        int `yaml:"max_line"`         // bytes in one pre-auth command line
	MaxLiteral     int `yaml:"max_literal"`      // bytes in one pre-auth literal
	MaxCommands    int `yaml:"max_commands"`     // commands before login, then BYE
	MaxBadCommands int `yaml:"max_bad_commands"` // BAD answers before BYE
	MaxLoginTries  int `yaml:"max_login_tries"`  // failed logins on one connection, then BYE

	// FailureDelayBase is how long a failed login waits before its NO, the
	// first time; every further failure from the same client address
	// doubles it, up to FailureDelayMax. The same password sent again does
	// not count as a further failure, and a successful login starts over
	// (Dovecot's auth penalty works the same way). Defaults 2s and 15s.
	FailureDelayBase Duration `yaml:"failure_delay_base"`
	FailureDelayMax  Duration `yaml:"failure_delay_max"`
	// Logins per minute from one client address, and failed logins per
	// minute for one user name from one client network (IPv4 /24, IPv6
	// /64; five times as many from all networks together); more are
	// refused with client.rate_limited, except the password that worked
	// last for that user. Connections open at once
	// from one client address; more are answered with BYE at once
	// (client.too_many_connections). For each: 0 takes the default
	// (60, 20, 50), -1 turns the limit off.
	PerAddressLoginsPerMinute int `yaml:"per_address_logins_per_minute"`
	PerUserLoginsPerMinute    int `yaml:"per_user_logins_per_minute"`
	PerAddressConnections     int `yaml:"per_address_connections"`
}

// Unlimited turns off a per-address or per-user limit.
const Unlimited = -1

// Shield stores the outcome of past logins (verifiers, never passwords) to
// explain failures by history and to stop forwarding a password that keeps
// failing before the provider locks the account.
type Shield struct {
	// Enabled switches the history and the shield; default true. Read it
	// with On.
	Enabled *bool `yaml:"enabled"`
	// Store is where the history lives: memory (the default; forgotten at
	// exit) or file (state_dir/history.db, kept across restarts).
	Store string `yaml:"store"`
	// ForwardedTries is how many times the same failing password of a user
	// is forwarded within Window; later tries are answered from history
	// (credentials.repeated_failure). Default 3.
	ForwardedTries int `yaml:"forwarded_tries"`
	// Window is how long a failing password is remembered after it was
	// last forwarded. Default 1h.
	Window Duration `yaml:"window"`
	// HistoryTTL is how long the passwords that worked are remembered.
	// Default 720h (30 days).
	HistoryTTL Duration `yaml:"history_ttl"`
	// MaxUsers bounds the users with a history; past it, the record that
	// would expire first is dropped. Default 100000.
	MaxUsers int `yaml:"max_users"`
}

// Shield stores.
const (
	StoreMemory = "memory"
	StoreFile   = "file"
)

// On reports whether the shield is enabled (the default).
func (s Shield) On() bool { return s.Enabled == nil || *s.Enabled }

// Duration is a time.Duration written as "30s", "5m".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 30s or 5m)", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q is negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default returns the built-in configuration: loopback listeners on 1993
// (implicit TLS) and 1143 (STARTTLS), each login routed to the provider of
// the user's email domain.
func Default() Config {
	c := Config{
		Listeners: []Listener{
			{Address: "127.0.0.1:1993", TLS: TLSImplicit, Upstream: Upstream{Address: UpstreamAuto}},
			{Address: "127.0.0.1:1143", TLS: TLSStartTLS, Upstream: Upstream{Address: UpstreamAuto}},
		},
	}
	c.applyDefaults()
	return c
}

// Load reads and validates the file at path.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, err
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration from r, applies defaults and validates it.
func Parse(r io.Reader) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return Config{}, err
	}
	if len(data) > 1<<20 {
		return Config{}, errors.New("configuration larger than 1 MiB")
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(c.Listeners) == 0 {
		c.Listeners = Default().Listeners
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir()
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.TLS == "" {
			l.TLS = TLSImplicit
		}
		if l.Language == "" {
			l.Language = "en"
		}
		if l.Upstream.Address == "" {
			l.Upstream.Address = UpstreamAuto
		}
		if l.Upstream.TLS == "" {
			l.Upstream.TLS = TLSImplicit
		}
		if l.Upstream.ServerName == "" && l.Upstream.Address != UpstreamAuto {
			if h, _, err := net.SplitHostPort(l.Upstream.Address); err == nil {
				l.Upstream.ServerName = h
			}
		}
	}
	c.applyRoutingDefaults()
	c.applyReachDefaults()
	c.applyStateDefaults()
	c.applyBridgeDefaults()
	t := &c.Timeouts
	setDur(&t.PreAuth, 60*time.Second)
	setDur(&t.UpstreamDial, 10*time.Second)
	setDur(&t.UpstreamLogin, 30*time.Second)
	setDur(&t.Drain, 30*time.Second)
	m := &c.Limits
	setInt(&m.MaxLine, 8192)
	setInt(&m.MaxLiteral, 8192)
	setInt(&m.MaxCommands, 100)
	setInt(&m.MaxBadCommands, 5)
	setInt(&m.MaxLoginTries, 5)
	setDur(&m.FailureDelayBase, 2*time.Second)
	setDur(&m.FailureDelayMax, 15*time.Second)
	setInt(&m.PerAddressLoginsPerMinute, 60)
	setInt(&m.PerUserLoginsPerMinute, 20)
	setInt(&m.PerAddressConnections, 50)
	sh := &c.Shield
	if sh.Enabled == nil {
		on := true
		sh.Enabled = &on
	}
	if sh.Store == "" {
		sh.Store = StoreMemory
	}
	setInt(&sh.ForwardedTries, 3)
	setDur(&sh.Window, time.Hour)
	setDur(&sh.HistoryTTL, 30*24*time.Hour)
	setInt(&sh.MaxUsers, 100000)
	if a := c.TLS.ACME; a != nil {
		if a.CA == "" {
			a.CA = "https://acme-v02.api.letsencrypt.org/directory"
		}
		setInt(&a.HTTPPort, 80)
		setInt(&a.TLSALPNPort, 443)
	}
}

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

// DefaultStateDir is $XDG_STATE_HOME/imapwhy, ~/.local/state/imapwhy, or
// /var/lib/imapwhy for root without a home.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "imapwhy")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" && h != "/" {
		return filepath.Join(h, ".local", "state", "imapwhy")
	}
	return "/var/lib/imapwhy"
}

// Validate reports the first problem, naming the key.
func (c *Config) Validate() error {
	switch c.Log.Format {
	case "json", "console":
	default:
		return fmt.Errorf("log.format: %q is not json or console", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	seen := map[string]bool{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		host, _, err := net.SplitHostPort(l.Address)
		if err != nil {
			return fmt.Errorf("%s.address: %q is not host:port", key, l.Address)
		}
		// Port 0 asks for a free port, so it may appear more than once.
		if seen[l.Address] && !strings.HasSuffix(l.Address, ":0") {
			return fmt.Errorf("%s.address: %s is used twice", key, l.Address)
		}
		seen[l.Address] = true
		if err := checkTLSMode(key+".tls", l.TLS); err != nil {
			return err
		}
		if l.TLS == TLSNone && !IsLoopbackHost(host) {
			return fmt.Errorf("%s.tls: none is only allowed on a loopback address, not %q (passwords would cross the network in the clear)", key, host)
		}
		switch l.Language {
		case "ja", "en":
		default:
			return fmt.Errorf("%s.language: %q is not ja or en", key, l.Language)
		}
		if err := validateUpstream(key+".upstream", l.Upstream); err != nil {
			return err
		}
		if err := l.validateGateway(key); err != nil {
			return err
		}
	}
	if err := c.validateRouting(); err != nil {
		return err
	}
	if err := c.validateBridge(); err != nil {
		return err
	}
	if _, err := c.ClientPrefixes(); err != nil {
		return err
	}
	if err := c.validateReach(); err != nil {
		return err
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
	}
	if c.TLS.ACME != nil {
		if c.TLS.CertFile != "" {
			return errors.New("tls: acme and cert_file exclude each other")
		}
		if len(c.TLS.ACME.Domains) == 0 {
			return errors.New("tls.acme.domains: at least one domain is needed")
		}
		if c.TLS.ACME.Email == "" {
			return errors.New("tls.acme.email: an address is needed (the CA sends expiry warnings there)")
		}
	}
	if c.Admin.Address != "" {
		host, _, err := net.SplitHostPort(c.Admin.Address)
		if err != nil {
			return fmt.Errorf("admin.address: %q is not host:port", c.Admin.Address)
		}
		if host == "" {
			return fmt.Errorf("admin.address: %q has no host; write 127.0.0.1%s for loopback (0.0.0.0 for every interface)", c.Admin.Address, c.Admin.Address)
		}
	}
	if err := c.Limits.validate(); err != nil {
		return err
	}
	if err := c.State.validate(); err != nil {
		return err
	}
	return c.Shield.validate()
}

// validate checks the rate limits; the pre-auth sizes take defaults when
// unset and need no check.
func (m *Limits) validate() error {
	if m.FailureDelayMax < m.FailureDelayBase {
		return fmt.Errorf("limits.failure_delay_max: %s is less than limits.failure_delay_base (%s)",
			m.FailureDelayMax.D(), m.FailureDelayBase.D())
	}
	for _, l := range []struct {
		key string
		v   int
	}{
		{"per_address_logins_per_minute", m.PerAddressLoginsPerMinute},
		{"per_user_logins_per_minute", m.PerUserLoginsPerMinute},
		{"per_address_connections", m.PerAddressConnections},
	} {
		if l.v < Unlimited {
			return fmt.Errorf("limits.%s: %d is not a limit (a positive number, or -1 for none)", l.key, l.v)
		}
	}
	return nil
}

func (s *Shield) validate() error {
	switch s.Store {
	case StoreMemory, StoreFile:
	default:
		return fmt.Errorf("shield.store: %q is not memory or file", s.Store)
	}
	if s.ForwardedTries < 1 {
		return fmt.Errorf("shield.forwarded_tries: %d; at least 1 try must reach the server", s.ForwardedTries)
	}
	if s.HistoryTTL < s.Window {
		return fmt.Errorf("shield.history_ttl: %s is shorter than shield.window (%s)", s.HistoryTTL.D(), s.Window.D())
	}
	if s.MaxUsers < 1 {
		return fmt.Errorf("shield.max_users: %d; at least 1", s.MaxUsers)
	}
	return nil
}

// validateUpstream checks one upstream; key names it in errors.
func validateUpstream(key string, u Upstream) error {
	if err := checkTLSMode(key+".tls", u.TLS); err != nil {
		return err
	}
	if u.Address == UpstreamAuto {
		if u.InsecureSkipVerify {
			// It would turn verification off for every server that
			// discovery finds, for any email domain a client names.
			return fmt.Errorf("%s.insecure_skip_verify: not allowed with address auto; give the server's address (or a routes entry) to skip verification for it", key)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(u.Address)
	if err != nil {
		return fmt.Errorf("%s.address: %q is not host:port or auto", key, u.Address)
	}
	if u.TLS == TLSNone && !IsLoopbackHost(host) {
		return fmt.Errorf("%s.tls: none is only allowed to a loopback address, not %q", key, host)
	}
	return nil
}

func checkTLSMode(key, v string) error {
	switch v {
	case TLSImplicit, TLSStartTLS, TLSNone:
		return nil
	}
	return fmt.Errorf("%s: %q is not implicit, starttls or none", key, v)
}

// IsLoopbackHost reports whether host is "localhost" or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
