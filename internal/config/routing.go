package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Discovery governs `upstream: auto`: how the proxy finds the server for a
// user's email domain (the built-in catalog, the domain's autoconfig file,
// DNS SRV, MX) and what it may connect to.
type Discovery struct {
	// AllowPrivate lets discovered servers be on loopback, private,
	// link-local or other non-public addresses. Off: otherwise anyone who
	// controls a domain's DNS could make the proxy connect into the
	// operator's own network.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowDomains, when not empty, are the only email domains served in
	// auto mode; other users get a clear NO (client.unknown_domain).
	AllowDomains []string `yaml:"allow_domains"`
	// CacheTTL is how long a discovered server is remembered. Default 1h.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// Route sends the users of one email domain to a fixed upstream in auto
// mode, before any discovery.
type Route struct {
	Domain   string   `yaml:"domain"`
	Upstream Upstream `yaml:"upstream"`
}

func (c *Config) applyRoutingDefaults() {
	setDur(&c.Discovery.CacheTTL, time.Hour)
	for i := range c.Routes {
		u := &c.Routes[i].Upstream
		if u.TLS == "" {
			u.TLS = TLSImplicit
		}
		if u.ServerName == "" {
			if h, _, err := net.SplitHostPort(u.Address); err == nil {
				u.ServerName = h
			}
		}
	}
}

func (c *Config) validateRouting() error {
	seen := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		d := strings.ToLower(strings.TrimSpace(r.Domain))
		if d == "" || strings.ContainsAny(d, "@ /") {
			return fmt.Errorf("%s.domain: %q is not an email domain", key, r.Domain)
		}
		if seen[d] {
			return fmt.Errorf("%s.domain: %s is routed twice", key, d)
		}
		seen[d] = true
		if r.Upstream.Address == UpstreamAuto {
			return fmt.Errorf("%s.upstream.address: a route needs host:port, not auto", key)
		}
		if r.Upstream.ProxyProtocol != "" {
			return fmt.Errorf("%s.upstream.proxy_protocol: only a listener's own upstream can take a PROXY header", key)
		}
		if r.Upstream.Predial != nil {
			return fmt.Errorf("%s.upstream.predial: only a listener's own upstream is dialled before the login", key)
		}
		if err := validateUpstream(key+".upstream", r.Upstream); err != nil {
			return err
		}
	}
	for i, d := range c.Discovery.AllowDomains {
		if strings.TrimSpace(d) == "" || strings.ContainsAny(d, "@ /") {
			return fmt.Errorf("discovery.allow_domains[%d]: %q is not an email domain", i, d)
		}
	}
	return nil
}

// Warnings are settings that work but that the operator should know about;
// serve logs them at start.
func (c *Config) Warnings() []string {
	var w []string
	if len(c.Discovery.AllowDomains) == 0 && !c.LocalMode() {
		for i, l := range c.Listeners {
			if l.Upstream.Address == UpstreamAuto {
				w = append(w, fmt.Sprintf("listeners[%d]: upstream auto on a gateway without discovery.allow_domains relays logins "+
					"for any email domain to any public IMAP server, password guessing included; list your domains in discovery.allow_domains", i))
			}
		}
	}
	return append(w, c.State.warnings(c.Shield)...)
}
