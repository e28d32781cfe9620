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
	"testing"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// scannerDNS serves, on loopback, for each domain of answers the SRV
// record _imaps._tcp.<domain> with imap.<domain>:port, and the address
// records of imap.<domain> with the domain's next answer (a comma-separated
// list of addresses) at each lookup. Everything else is NXDOMAIN.
func scannerDNS(t *testing.T, port int, answers map[string][]string) *testkit.DNS {
	t.Helper()
	s := testkit.NewDNS(t)
	for domain, list := range answers {
		s.Add("_imaps._tcp."+domain, dns.TypeSRV, fmt.Sprintf("0 0 %d imap.%s.", port, domain))
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			s.AnswerWith("imap."+domain, qtype, func(n int) []string {
				return testkit.IPsOfType(qtype, strings.Split(list[(n-1)%len(list)], ","))
			})
		}
	}
	return s
}

// TestDiscoveryIsNoScanner logs in twice per domain (the second time the
// discovery is cached and the server's name is resolved again) and checks
// that every login is refused for the reason that the address is not
// public, and that the IMAP server listening at 127.0.0.1 is never
// reached. With discovery.allow_private, the same server is reached: the
// test's DNS and port are right.
func TestDiscoveryIsNoScanner(t *testing.T) {
	testkit.CheckNoLeaks(t)
	target, accepted := testkit.Counting(t, "")
	_, portText, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portText)
	// Only loopback answers: should the guard ever let one through,
	// the dial stays on this machine (and the counting listener on
	// 127.0.0.1 sees it). The other non-public ranges (private,
	// link-local, multicast...) are checked in discover, where Vet
	// refuses them without dialling.
	answers := map[string][]string{
		"loopback.test":  {"127.0.0.1"},
		"elsewhere.test": {"127.1.2.3"},
		"lo6.test":       {"::1"},
		"mapped.test":    {"::ffff:127.0.0.1"},
		"mixed.test":     {"127.0.0.1,::1", "127.0.0.3,::ffff:127.0.0.1"},
		// A different answer at each lookup.
		"rebinding.test": {"127.0.0.3", "127.0.0.1", "::1", "::ffff:127.0.0.1", "127.255.255.254"},
	}
	dnsServer := scannerDNS(t, port, answers)
	resolver := dnsServer.Resolver()
	pass := testSecret("scanner")

	cfg := rigConfig(t, config.TLSNone, config.UpstreamAuto, config.TLSImplicit)
	p := startRig(t, cfg, Options{Resolver: resolver})
	tried := 0
	for domain := range answers {
		for try := range 2 {
			tc := rigGreeted(t, p.addr)
			tc.Send(fmt.Sprintf("a LOGIN alice@%s %s\r\n", domain, pass))
			if l := tc.Until("a "); !strings.HasPrefix(l[len(l)-1], "a NO ") {
				t.Errorf("%s, login %d: %q", domain, try+1, l)
			}
			tc.Conn.Close()
			tried++
			testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_failure")) == tried })
			ev := p.logs.Events("auth_failure")[tried-1]
			if e, _ := ev["error"].(string); !strings.Contains(e, "resolves to") || !strings.HasSuffix(e, "refused") {
				t.Errorf("%s, login %d: error %q, want the address refused", domain, try+1, e)
			}
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the IMAP server on loopback got %d connections", n)
	}
	if n := dnsServer.CountOf("imap.rebinding.test", dns.TypeA); n < 2 {
		t.Errorf("rebinding.test resolved %d times for two logins", n)
	}
	t.Logf("%d logins to %d domains on non-public addresses refused; nothing dialled", tried, len(answers))

	// The control: allowed, the same discovery reaches the server.
	cfg.Discovery.AllowPrivate = true
	open := startRig(t, cfg, Options{Resolver: resolver})
	tc := rigGreeted(t, open.addr)
	tc.Send("a LOGIN alice@loopback.test " + pass + "\r\n")
	tc.Until("a ")
	testkit.WaitFor(t, func() bool { return accepted.Load() == 1 })
}
