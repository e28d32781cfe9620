package testkit

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Timeout bounds the waits of the fixtures: a server's start, a scripted
// connection.
const Timeout = 10 * time.Second

// DNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP) that
// answers from a table and counts the queries it gets.
//
// A name with records of some type answers the others with an empty
// NOERROR; a name with none is NXDOMAIN. Answers are authoritative with
// recursion available, or Go's resolver takes an empty answer for a lame
// referral.
type DNS struct {
	udpAddr, tcpAddr string

	mu       sync.Mutex
	records  map[dnsKey][]string             // zone-file data: "127.0.0.1", "10 imap.a.test."
	dynamic  map[dnsKey]func(n int) []string // n is the query number for the key, from 1
	all      map[uint16][]string             // every name's answer of a type
	exists   map[string]bool
	servfail map[string]bool
	drop     map[string]bool
	queries  map[dnsKey]int
	total    int
}

type dnsKey struct {
	name  string // absolute, lower case
	qtype uint16
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

// NewDNS starts a DNS server that knows no names yet. It stops when the
// test ends.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	s := &DNS{
		records:  make(map[dnsKey][]string),
		dynamic:  make(map[dnsKey]func(int) []string),
		all:      make(map[uint16][]string),
		exists:   make(map[string]bool),
		servfail: make(map[string]bool),
		drop:     make(map[string]bool),
		queries:  make(map[dnsKey]int),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dns: listen udp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		t.Fatalf("dns: listen tcp: %v", err)
	}
	s.udpAddr, s.tcpAddr = pc.LocalAddr().String(), ln.Addr().String()
	s.serve(t, &dns.Server{PacketConn: pc, Handler: s})
	s.serve(t, &dns.Server{Listener: ln, Handler: s})
	return s
}

// serve runs srv until the test ends, and waits for it to stop.
func (s *DNS) serve(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	stopped := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { stopped <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-stopped:
		t.Fatalf("dns: serve: %v", err)
	case <-time.After(Timeout):
		t.Fatal("dns: server did not start")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := srv.ShutdownContext(ctx); err != nil {
			t.Errorf("dns: shutdown: %v", err)
		}
		<-stopped
	})
}

// Add adds records for name, each the data of a zone-file line:
// Add("a.test", dns.TypeA, "127.0.0.1").
func (s *DNS) Add(name string, qtype uint16, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dnsKey{fqdn(name), qtype}
	s.records[k] = append(s.records[k], values...)
}

// AddIPs adds A records for the IPv4 addresses among ips (IPv4-mapped IPv6
// ones included) and AAAA records for the others.
func (s *DNS) AddIPs(name string, ips ...string) {
	s.Add(name, dns.TypeA, IPsOfType(dns.TypeA, ips)...)
	s.Add(name, dns.TypeAAAA, IPsOfType(dns.TypeAAAA, ips)...)
	s.Exist(name)
}

// IPsOfType returns the addresses among ips that go into records of qtype
// (A or AAAA), IPv4-mapped addresses as IPv4.
func IPsOfType(qtype uint16, ips []string) []string {
	var out []string
	for _, a := range ips {
		ip := net.ParseIP(a)
		switch {
		case ip.To4() != nil && qtype == dns.TypeA:
			out = append(out, ip.To4().String())
		case ip.To4() == nil && qtype == dns.TypeAAAA:
			out = append(out, ip.String())
		}
	}
	return out
}

// AnswerWith makes name's answer of qtype change from query to query: f
// gets the number of the query for that name and type, from 1.
func (s *DNS) AnswerWith(name string, qtype uint16, f func(n int) []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynamic[dnsKey{fqdn(name), qtype}] = f
}

// AnswerAll makes every name answer queries of qtype with values.
func (s *DNS) AnswerAll(qtype uint16, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all[qtype] = values
}

// Exist makes name exist (NOERROR) even without records of its own.
func (s *DNS) Exist(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exists[fqdn(name)] = true
}

// Fail makes every query for name answer SERVFAIL.
func (s *DNS) Fail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[fqdn(name)] = true
}

// Drop makes every query for name go unanswered: the resolver times out.
func (s *DNS) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop[fqdn(name)] = true
}

// Count returns the number of queries answered so far.
func (s *DNS) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// CountOf returns the number of queries for one name and type.
func (s *DNS) CountOf(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dnsKey{fqdn(name), qtype}]
}

// UDPAddr and TCPAddr are the server's addresses.
func (s *DNS) UDPAddr() string { return s.udpAddr }
func (s *DNS) TCPAddr() string { return s.tcpAddr }

// Resolver returns a pure-Go resolver that asks this server only.
func (s *DNS) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				return d.DialContext(ctx, "tcp", s.tcpAddr)
			}
			return d.DialContext(ctx, "udp", s.udpAddr)
		},
	}
}

// Dial returns a dial function that resolves names with Resolver.
func (s *DNS) Dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{Resolver: s.Resolver()}).DialContext
}

// ServeDNS answers from the table.
func (s *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	if len(req.Question) == 1 {
		q := req.Question[0]
		rcode, answer, drop := s.answer(dnsKey{strings.ToLower(q.Name), q.Qtype})
		if drop {
			return
		}
		m.Rcode, m.Answer = rcode, answer
	}
	_ = w.WriteMsg(m) // a lost answer shows as a resolver error in the test
}

func (s *DNS) answer(k dnsKey) (rcode int, rrs []dns.RR, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.queries[k]++
	if s.drop[k.name] {
		return 0, nil, true
	}
	if s.servfail[k.name] {
		return dns.RcodeServerFailure, nil, false
	}
	values, all := s.records[k], s.all[k.qtype]
	if f, ok := s.dynamic[k]; ok {
		values = f(s.queries[k])
	}
	for _, v := range slices.Concat(values, all) {
		rr, err := dns.NewRR(k.name + " 60 IN " + dns.TypeToString[k.qtype] + " " + v)
		if err != nil {
			panic("testkit: bad DNS record " + v + ": " + err.Error())
		}
		rrs = append(rrs, rr)
	}
	if len(rrs) == 0 && len(s.all) == 0 && !s.nameExistsLocked(k.name) {
		return dns.RcodeNameError, nil, false
	}
	return dns.RcodeSuccess, rrs, false
}

func (s *DNS) nameExistsLocked(name string) bool {
	if s.exists[name] {
		return true
	}
	for k := range s.records {
		if k.name == name {
			return true
		}
	}
	for k := range s.dynamic {
		if k.name == name {
			return true
		}
	}
	return false
}
