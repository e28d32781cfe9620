package proxy

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// routeDNS serves, on 127.0.0.1, an SRV record pointing _imap._tcp.<domain>
// at imap.<domain>:port and an A record for imap.<domain> of 127.0.0.1. The
// other names discovery asks about under domain exist without records.
func routeDNS(t *testing.T, domain, port string) *net.Resolver {
	t.Helper()
	s := testkit.NewDNS(t)
	s.Add("_imap._tcp."+domain, dns.TypeSRV, "0 0 "+port+" imap."+domain+".")
	s.Add("imap."+domain, dns.TypeA, "127.0.0.1")
	for _, name := range []string{domain, "_imaps._tcp." + domain, "autoconfig." + domain} {
		s.Exist(name)
	}
	return s.Resolver()
}

// startAutoServer runs the proxy with one plaintext `upstream: auto`
// listener and the given extra configuration.
func startAutoServer(t *testing.T, extra string, opts Options) (*Server, *serverLog) {
	t.Helper()
	return startProxy(t, `
listeners:
  - address: 127.0.0.1:0
    tls: none
    upstream: {address: auto}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
`+extra, opts)
}

// loginAnswer sends one LOGIN and returns the tagged answer.
func loginAnswer(t *testing.T, s *Server, user, pass string) string {
	t.Helper()
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send(fmt.Sprintf("a LOGIN %q %q\r\n", user, pass))
	lines := tc.Until("a ")
	return lines[len(lines)-1]
}

// lastCause returns the cause of the n-th auth_failure event, waiting for
// it: the NO reaches the client before the event is written.
func lastCause(t *testing.T, logs *serverLog, n int) string {
	t.Helper()
	testkit.WaitFor(t, func() bool { return len(logs.Events("auth_failure")) >= n })
	c, _ := logs.Events("auth_failure")[n-1]["cause"].(string)
	return c
}

func TestAutoRoute(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"taro@corp.test": "pw"}).Addr
	s, logs := startAutoServer(t, fmt.Sprintf("routes:\n  - {domain: corp.test, upstream: {address: %q, tls: none}}\n", up), Options{})
	if l := loginAnswer(t, s, "taro@corp.test", "pw"); !strings.HasPrefix(l, "a OK ") {
		t.Errorf("routed login: %q", l)
	}
	if l := loginAnswer(t, s, "taro", "pw"); !strings.HasPrefix(l, "a NO ") {
		t.Errorf("user name without a domain: %q", l)
	}
	if c := lastCause(t, logs, 1); c != "username.missing_domain" {
		t.Errorf("user name without a domain: cause %s", c)
	}
}

// TestAutoDiscoveryRefusesPrivate: a domain whose DNS points at a loopback
// address is refused unless discovery.allow_private is set, and then the
// discovered server is used.
func TestAutoDiscoveryRefusesPrivate(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"taro@corp.test": "pw"}).Addr
	_, port, _ := net.SplitHostPort(up)
	res := routeDNS(t, "corp.test", port)

	s, logs := startAutoServer(t, "", Options{Resolver: res})
	if l := loginAnswer(t, s, "taro@corp.test", "pw"); !strings.HasPrefix(l, "a NO ") {
		t.Fatalf("a discovered loopback server was used: %q", l)
	}
	if c := lastCause(t, logs, 1); c != "client.unknown_domain" {
		t.Errorf("cause %s, want client.unknown_domain", c)
	}
	if !strings.Contains(logs.String(), "not public") && !strings.Contains(logs.String(), "127.0.0.1") {
		t.Errorf("the log does not say why:\n%s", logs)
	}

	// Allowed, the discovered server is contacted. RFC 6186's _imap
	// record means STARTTLS, which this plaintext test server lacks: the
	// answer proves the proxy talked to it.
	s2, logs2 := startAutoServer(t, "discovery: {allow_private: true}\n", Options{Resolver: res})
	loginAnswer(t, s2, "taro@corp.test", "pw")
	lastCause(t, logs2, 1)
	ev := logs2.Events("auth_failure")
	if len(ev) != 1 || ev[0]["upstream"] != "imap.corp.test:"+port || ev[0]["cause"] != "upstream.starttls_unavailable" {
		t.Errorf("with allow_private the discovered server was not contacted: %v", ev)
	}
}

// TestAutoAllowDomains: with an allow-list, other domains are refused
// before any lookup.
func TestAutoAllowDomains(t *testing.T) {
	s, logs := startAutoServer(t, "discovery: {allow_domains: [corp.test]}\n", Options{})
	if l := loginAnswer(t, s, "someone@elsewhere.test", "pw"); !strings.HasPrefix(l, "a NO ") {
		t.Fatalf("a domain off the allow-list was served: %q", l)
	}
	if c := lastCause(t, logs, 1); c != "client.unknown_domain" {
		t.Errorf("cause %s, want client.unknown_domain", c)
	}
}

// TestAutoRouteOffline: with DNS not answering, a domain the built-in
// catalog knows gets a diagnosis about the network that names its
// provider, not "imapwhy does not know the mail server".
func TestAutoRouteOffline(t *testing.T) {
	dns := testkit.NewDNS(t)
	dns.Fail("imap.spmode.ne.jp") // SERVFAIL: DNS is not answering
	res := dns.Resolver()
	s, logs := startAutoServer(t, "", Options{Resolver: res})
	l := loginAnswer(t, s, "taro@docomo.ne.jp", "pw")
	if !strings.HasPrefix(l, "a NO ") || strings.Contains(l, "does not know") || !strings.Contains(l, "docomo") {
		t.Errorf("answer: %q", l)
	}
	if c := lastCause(t, logs, 1); c != "network.dns_unavailable" {
		t.Errorf("cause %s, want network.dns_unavailable", c)
	}
}
