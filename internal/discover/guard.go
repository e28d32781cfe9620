package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// IPResolver resolves host names to addresses. *net.Resolver implements it.
type IPResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ForbiddenAddressError reports a host that resolves to an address discovery
// must not reach (loopback, private, link-local...). errors.Is(err,
// ErrPrivateAddress) is true for it.
type ForbiddenAddressError struct {
	Host   string     // the name that was resolved (or the IP literal as given)
	Addr   netip.Addr // the first forbidden address in the answer
	Reason string     // which range it is in ("private, RFC 1918")
}

func (e *ForbiddenAddressError) Error() string {
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("%s is %s: refused", e.Addr, e.Reason)
	}
	return fmt.Sprintf("%s resolves to %s (%s): refused", e.Host, e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrPrivateAddress) true.
func (e *ForbiddenAddressError) Is(target error) bool { return target == ErrPrivateAddress }

// Guard checks a host before it is dialled, so that discovery (whose answers
// come from DNS and from files on web servers that anyone can publish) cannot
// turn the proxy into a tool for reaching the operator's own network (SSRF).
//
// It resolves the host once, refuses the whole answer if any address is
// forbidden, and dials the vetted addresses themselves, never the name
// again: a second resolution could return something else (DNS rebinding).
// The zero value is not usable; use NewGuard.
type Guard struct {
	resolver     IPResolver
	allowPrivate bool
	// forbidden returns why an address must not be dialled, or "" when it
	// may be. Tests replace it to treat one loopback address as public.
	forbidden func(netip.Addr) string
}

// NewGuard returns a Guard resolving through r (nil: net.DefaultResolver).
// allowPrivate turns the address check off: for operators whose IMAP
// servers live on their own network, and for tests.
func NewGuard(r IPResolver, allowPrivate bool) *Guard {
	if r == nil {
		r = net.DefaultResolver
	}
	return &Guard{resolver: r, allowPrivate: allowPrivate, forbidden: forbiddenReason}
}

// Vet resolves host (a name or an IP literal) and returns its addresses if
// every one of them may be dialled. A mixed answer (one public address, one
// private) is refused whole: it is what a rebinding attacker would send.
// The error is a *ForbiddenAddressError, or the resolver's own error
// (*net.DNSError) wrapped.
func (g *Guard) Vet(ctx context.Context, host string) ([]netip.Addr, error) {
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := g.check(host, a); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// DialContext resolves the host in addr, vets the answer and dials the
// vetted addresses in turn. It has the signature of net.Dialer.DialContext
// so it can be used as http.Transport.DialContext and as the proxy's
// upstream dial. Only "tcp", "tcp4" and "tcp6" are allowed, and the port must
// be numeric. Dial errors (*net.OpError) stay in the chain.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("guard: network %q is not allowed", network)
	}
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("guard: port %q is not a number from 1 to 65535", portText)
	}
	addrs, err := g.Vet(ctx, host)
	if err != nil {
		return nil, err
	}
	addrs = onNetwork(addrs, network)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("guard: %s has no %s address", host, network)
	}
	return g.dialEach(ctx, network, addrs, uint16(port))
}

// connect opens one connection for dialEach. Tests replace it with one that
// refuses anything but loopback, so that a broken guard cannot make the test
// suite itself reach another network.
var connect = func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	return d.DialContext(ctx, network, address)
}

// dialEach dials the addresses in the resolver's order until one answers.
func (g *Guard) dialEach(ctx context.Context, network string, addrs []netip.Addr, port uint16) (net.Conn, error) {
	d := &net.Dialer{ControlContext: g.control}
	conn, errs, ok := firstWorking(ctx, addrs, func(a netip.Addr) (net.Conn, error) {
		return connect(ctx, d, network, netip.AddrPortFrom(a, port).String())
	})
	if ok {
		return conn, nil
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// firstWorking calls try on each item in turn until one succeeds, and
// returns its result with ok true; otherwise the errors of the tries. It
// stops early once ctx is done.
func firstWorking[T, R any](ctx context.Context, items []T, try func(T) (R, error)) (r R, errs []error, ok bool) {
	for _, it := range items {
		r, err := try(it)
		if err == nil {
			return r, errs, true
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return r, errs, false
}

// control is the last fence: it runs on the socket about to connect, with
// the address actually being dialled, so nothing reaches a forbidden
// address even if a caller found a way around Vet.
func (g *Guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("guard: unexpected dial address %q: %w", address, err)
	}
	return g.check("", ap.Addr())
}

func (g *Guard) check(host string, a netip.Addr) error {
	if g.allowPrivate {
		return nil
	}
	if reason := g.forbidden(a); reason != "" {
		return &ForbiddenAddressError{Host: host, Addr: a, Reason: reason}
	}
	return nil
}

// resolve returns the addresses of host. IP literals are not looked up.
// Names are looked up as absolute names (trailing dot) so that the
// resolver's search list cannot turn "mail.example" into
// "mail.example.corp.internal".
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	if host == "" {
		return nil, errors.New("guard: empty host name")
	}
	name := host
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("guard: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("guard: %s has no address", host)
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

// onNetwork keeps the addresses usable on network ("tcp4" wants IPv4).
func onNetwork(addrs []netip.Addr, network string) []netip.Addr {
	if network == "tcp" {
		return addrs
	}
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is4() == (network == "tcp4") {
			out = append(out, a)
		}
	}
	return out
}

type forbiddenRange struct {
	prefix netip.Prefix
	reason string
}

// forbiddenRanges are the special-purpose ranges (IANA registries, RFC 6890)
// that a public IMAP or web server never uses and that reach the operator's
// own machine or network. Order matters only for the reason reported.
var forbiddenRanges = []forbiddenRange{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network", RFC 791`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private, RFC 1918"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (carrier-grade NAT), RFC 6598"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, RFC 3927"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private, RFC 1918"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments, RFC 6890"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private, RFC 1918"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking, RFC 2544"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6, deprecated by RFC 4291"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64, RFC 8215"},
	{netip.MustParsePrefix("100::/64"), "discard-only, RFC 6666"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private), RFC 4193"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local, deprecated by RFC 3879"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: IPv4 in the last 32 bits
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056: IPv4 in bits 16-47
)

// forbiddenReason says why a must not be dialled, or "" when it may be.
// IPv4-mapped addresses (::ffff:10.0.0.1) are judged as the IPv4 address
// they carry; so are NAT64 and 6to4 addresses, which a gateway on the
// operator's network would turn into that IPv4 address.
func forbiddenReason(a netip.Addr) string {
	// netip.Prefix.Contains never matches an address with a zone, and a
	// zone (fe80::1%eth0) only makes sense for link-local addresses anyway.
	a = a.WithZone("").Unmap()
	if v4, ok := embeddedIPv4(a); ok {
		if reason := forbiddenReason(v4); reason != "" {
			return "carries IPv4 " + v4.String() + ", " + reason
		}
	}
	for _, r := range forbiddenRanges {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address inside a NAT64 or 6to4 address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}
