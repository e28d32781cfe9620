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
	Address string `yaml:"address"` // "" disables it
}

// Timeouts bound each phase of a connection.
type Timeouts struct {
	PreAuth       Duration `yaml:"preauth"`        // from accept to a successful login
	UpstreamDial  Duration `yaml:"upstream_dial"`  // DNS + TCP + TLS to the upstream
	UpstreamLogin Duration `yaml:"upstream_login"` // greeting to the tagged login reply
	Drain         Duration `yaml:"drain"`          // how long SIGTERM waits for forwarded sessions
}

// Limits bound what an unauthenticated client may send.
type Limits struct {
	MaxLine        int `yaml:"max_line"`         // bytes in one pre-auth command line
	MaxLiteral     int `yaml:"max_literal"`      // bytes in one pre-auth literal
	MaxCommands    int `yaml:"max_commands"`     // commands before login, then BYE
	MaxBadCommands int `yaml:"max_bad_commands"` // BAD answers before BYE
	MaxLoginTries  int `yaml:"max_login_tries"`  // failed logins on one connection, then BYE
}

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
		u := l.Upstream
		if err := checkTLSMode(key+".upstream.tls", u.TLS); err != nil {
			return err
		}
		if u.Address == UpstreamAuto {
			continue
		}
		uhost, _, err := net.SplitHostPort(u.Address)
		if err != nil {
			return fmt.Errorf("%s.upstream.address: %q is not host:port or auto", key, u.Address)
		}
		if u.TLS == TLSNone && !IsLoopbackHost(uhost) {
			return fmt.Errorf("%s.upstream.tls: none is only allowed to a loopback address, not %q", key, uhost)
		}
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
		if _, _, err := net.SplitHostPort(c.Admin.Address); err != nil {
			return fmt.Errorf("admin.address: %q is not host:port", c.Admin.Address)
		}
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
