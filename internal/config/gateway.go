package config

// Running several instances behind a load balancer: the PROXY protocol on
// both sides of the proxy, and state shared through Redis.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ProxyProtocol is a listener's PROXY protocol (HAProxy's, v1 and v2)
// setting.
type ProxyProtocol struct {
	// Trusted are the sources (CIDR prefixes, or single IPs) whose
	// connections must start with a PROXY header; the address in it is
	// then the client for limits, logs, the shield, the pages and the
	// upstream. A header from any other source is not believed: those
	// connections are served as the TCP peer's. Empty: no PROXY header is
	// read.
	Trusted []string `yaml:"trusted"`
}

// Prefixes are the trusted sources, parsed. Validate has checked them.
func (p ProxyProtocol) Prefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.Trusted))
	for _, s := range p.Trusted {
		if pf, err := parseSource(s); err == nil {
			out = append(out, pf)
		}
	}
	return out
}

// parseSource reads "10.0.0.0/8" or "10.0.0.5" (a /32 or /128).
func parseSource(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// unmapBits is what an IPv4-mapped IPv6 prefix loses when written as IPv4.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// Upstream PROXY protocol versions.
const ProxyV2 = "v2"

// validateGateway checks a listener's PROXY protocol settings.
func (l Listener) validateGateway(key string) error {
	for j, s := range l.ProxyProtocol.Trusted {
		p, err := parseSource(s)
		if err != nil || p.Bits() < 0 {
			return fmt.Errorf("%s.proxy_protocol.trusted[%d]: %q is not a CIDR prefix or an IP address", key, j, s)
		}
	}
	if p := l.Upstream.Predial; p != nil && *p && l.Upstream.Address == UpstreamAuto {
		return fmt.Errorf("%s.upstream.predial: only a fixed upstream can be dialled before the login, not auto", key)
	}
	switch l.Upstream.ProxyProtocol {
	case "":
	case ProxyV2:
		if l.Upstream.Address == UpstreamAuto {
			return fmt.Errorf("%s.upstream.proxy_protocol: only a fixed upstream can take a PROXY header, not auto", key)
		}
	default:
		return fmt.Errorf("%s.upstream.proxy_protocol: %q is not v2", key, l.Upstream.ProxyProtocol)
	}
	return nil
}

// State says where the instances keep what they remember: the shield's
// history and failure windows, the login rate limits and the incident
// pages. Without Redis each process keeps its own, in memory.
type State struct {
	Redis Redis `yaml:"redis"`
}

// Redis is a Redis (or Valkey) server shared by every instance.
type Redis struct {
	// Address is host:port; "" (the default) keeps the state in memory.
	Address string `yaml:"address"`
	// PasswordFile holds the password (AUTH), if the server wants one.
	PasswordFile string `yaml:"password_file"`
	// Username is the ACL user name for AUTH, if not "default".
	Username string `yaml:"username"`
	// TLS connects with TLS, verifying the server's certificate against
	// the system's roots and CAFile.
	TLS        bool   `yaml:"tls"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"` // default: the host of Address
	// KeyPrefix starts every key; default "imapwhy:".
	KeyPrefix string `yaml:"key_prefix"`
	// DB is the database number (SELECT); default 0.
	DB int `yaml:"db"`
	// Timeout bounds each command; past it the instance goes on with its
	// own memory until Redis answers again. Default 250ms.
	Timeout Duration `yaml:"timeout"`
	// SecretFile is the key that every instance must share: the history's
	// verifiers and user keys, the limits' keys and the incident pages
	// are keyed or encrypted with it. Default state_dir/secret (made on
	// first start: copy it to the other instances).
	SecretFile string `yaml:"secret_file"`
}

// On reports whether state is shared through Redis.
func (r Redis) On() bool { return r.Address != "" }

func (c *Config) applyStateDefaults() {
	r := &c.State.Redis
	if !r.On() {
		return
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = "imapwhy:"
	}
	setDur(&r.Timeout, 250*time.Millisecond)
	if r.TLS && r.ServerName == "" {
		if h, _, err := net.SplitHostPort(r.Address); err == nil {
			r.ServerName = h
		}
	}
}

// warnings are the settings that state.redis makes meaningless.
func (s *State) warnings(sh Shield) []string {
	if s.Redis.On() && sh.Store == StoreFile {
		return []string{"shield.store: file is not used: with state.redis the history is kept in Redis"}
	}
	return nil
}

func (s *State) validate() error {
	r := s.Redis
	if !r.On() {
		if r.PasswordFile != "" || r.TLS || r.KeyPrefix != "" || r.DB != 0 || r.SecretFile != "" || r.CAFile != "" {
			return fmt.Errorf("state.redis.address: needed by the other state.redis settings")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(r.Address)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("state.redis.address: %q is not host:port", r.Address)
	}
	if r.DB < 0 {
		return fmt.Errorf("state.redis.db: %d is not a database number", r.DB)
	}
	if r.CAFile != "" && !r.TLS {
		return fmt.Errorf("state.redis.ca_file: only with state.redis.tls: true")
	}
	if r.Timeout.D() > 5*time.Second {
		return fmt.Errorf("state.redis.timeout: %s would hold logins up; at most 5s", r.Timeout.D())
	}
	return nil
}
