package proxy

// Discovery cannot turn the proxy into a scanner: on an
// `upstream: auto` listener, a domain whose discovered server resolves to a
// non-public address is refused by default, also when its DNS answers
// change from one lookup to the next, and nothing is dialled. discover's
// own tests (scanner_test.go there) cover every non-public range, and show
// with a stand-in for a public address that public answers get through.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/config"
)

// scannerDNS is an authoritative DNS server on loopback. For each domain
// it answers the SRV record _imaps._tcp.<domain> with imap.<domain>:port,
// and the address records of imap.<domain> with the domain's next answer
// at each query. Everything else is NXDOMAIN.
type scannerDNS struct {
	port    uint16
	mu      sync.Mutex
	answers map[string][]string // domain -> one answer per query, in turn
	queries map[string]int      // domain -> address queries of imap.<domain>
}

func (s *scannerDNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	name := strings.ToLower(q.Question[0].Name)
	qtype := q.Question[0].Qtype
	s.mu.Lock()
	defer s.mu.Unlock()
	hdr := dns.RR_Header{Name: name, Rrtype: qtype, Class: dns.ClassINET, Ttl: 0}
	switch {
	case strings.HasPrefix(name, "_imaps._tcp.") && s.answers[strings.TrimSuffix(strings.TrimPrefix(name, "_imaps._tcp."), ".")] != nil:
		domain := strings.TrimSuffix(strings.TrimPrefix(name, "_imaps._tcp."), ".")
		if qtype == dns.TypeSRV {
			m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Port: s.port, Target: "imap." + domain + "."})
		}
	case strings.HasPrefix(name, "imap.") && s.answers[strings.TrimSuffix(strings.TrimPrefix(name, "imap."), ".")] != nil:
		domain := strings.TrimSuffix(strings.TrimPrefix(name, "imap."), ".")
		if qtype != dns.TypeA && qtype != dns.TypeAAAA {
			break
		}
		list := s.answers[domain]
		// One query of each type makes one lookup: count the A queries.
		n := s.queries[domain]
		if qtype == dns.TypeA {
			s.queries[domain]++
		} else {
			n = max(0, n-1)
		}
		for _, a := range strings.Split(list[n%len(list)], ",") {
			ip := net.ParseIP(a)
			switch {
			case ip.To4() != nil && qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
			case ip.To4() == nil && qtype == dns.TypeAAAA:
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
			}
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// startScannerDNS serves s on loopback until the test ends and returns a
// resolver that asks it only.
func startScannerDNS(t *testing.T, s *scannerDNS) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx contextT, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// TestDiscoveryIsNoScanner logs in twice per domain (the second time the
// discovery is cached and the server's name is resolved again) and checks
// that every login is refused for the reason that the address is not
// public, and that the IMAP server listening at 127.0.0.1 is never
// reached. With discovery.allow_private, the same server is reached: the
// test's DNS and port are right.
func TestDiscoveryIsNoScanner(t *testing.T) {
	checkNoLeaks(t)
	target, accepted := rigCountingUpstream(t)
	_, portText, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portText)
	dnsServer := &scannerDNS{
		port: uint16(port),
		// Only loopback answers: should the guard ever let one through,
		// the dial stays on this machine (and the counting listener on
		// 127.0.0.1 sees it). The other non-public ranges (private,
		// link-local, multicast...) are checked in discover, where Vet
		// refuses them without dialling.
		answers: map[string][]string{
			"loopback.test":  {"127.0.0.1"},
			"elsewhere.test": {"127.1.2.3"},
			"lo6.test":       {"::1"},
			"mapped.test":    {"::ffff:127.0.0.1"},
			"mixed.test":     {"127.0.0.1,::1", "127.0.0.3,::ffff:127.0.0.1"},
			// A different answer at each lookup.
			"rebinding.test": {"127.0.0.3", "127.0.0.1", "::1", "::ffff:127.0.0.1", "127.255.255.254"},
		},
		queries: map[string]int{},
	}
	resolver := startScannerDNS(t, dnsServer)
	pass := testSecret("scanner")

	cfg := rigConfig(t, config.TLSNone, config.UpstreamAuto, config.TLSImplicit)
	p := startRig(t, cfg, Options{Resolver: resolver})
	tried := 0
	for domain := range dnsServer.answers {
		for try := range 2 {
			tc := rigGreeted(t, p.addr)
			tc.send(fmt.Sprintf("a LOGIN alice@%s %s\r\n", domain, pass))
			if l := tc.until("a "); !strings.HasPrefix(l[len(l)-1], "a NO ") {
				t.Errorf("%s, login %d: %q", domain, try+1, l)
			}
			tc.c.Close()
			tried++
			waitFor(t, func() bool { return len(p.logs.events("auth_failure")) == tried })
			ev := p.logs.events("auth_failure")[tried-1]
			if e, _ := ev["error"].(string); !strings.Contains(e, "resolves to") || !strings.HasSuffix(e, "refused") {
				t.Errorf("%s, login %d: error %q, want the address refused", domain, try+1, e)
			}
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the IMAP server on loopback got %d connections", n)
	}
	dnsServer.mu.Lock()
	if n := dnsServer.queries["rebinding.test"]; n < 2 {
		t.Errorf("rebinding.test resolved %d times for two logins", n)
	}
	dnsServer.mu.Unlock()
	t.Logf("%d logins to %d domains on non-public addresses refused; nothing dialled", tried, len(dnsServer.answers))

	// The control: allowed, the same discovery reaches the server.
	cfg.Discovery.AllowPrivate = true
	open := startRig(t, cfg, Options{Resolver: resolver})
	tc := rigGreeted(t, open.addr)
	tc.send("a LOGIN alice@loopback.test " + pass + "\r\n")
	tc.until("a ")
	waitFor(t, func() bool { return accepted.Load() == 1 })
}
