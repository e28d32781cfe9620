package config

import (
	"fmt"
	"net/netip"
)

// homePrefixes are the clients local mode accepts by default: loopback,
// private (RFC 1918, RFC 4193) and link-local addresses.
var homePrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
}

// ClientPrefixes are the client addresses allowed in: allow_clients, else
// in local mode the home prefixes; nil means every address.
func (c *Config) ClientPrefixes() ([]netip.Prefix, error) {
	if len(c.AllowClients) == 0 {
		if c.LocalMode() {
			return homePrefixes, nil
		}
		return nil, nil
	}
	out := make([]netip.Prefix, 0, len(c.AllowClients))
	for i, s := range c.AllowClients {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("allow_clients[%d]: %q is not an address or CIDR prefix", i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ClientAllowed returns the test for a client address: nil when every
// address is allowed.
func (c *Config) ClientAllowed() func(netip.Addr) bool {
	ps, err := c.ClientPrefixes()
	if err != nil || ps == nil {
		return nil // Validate refused a bad list already
	}
	return func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}
