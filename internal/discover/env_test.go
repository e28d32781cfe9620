package discover

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testTimeout bounds every test's network waits.
const testTimeout = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testDNS is an authoritative DNS server on 127.0.0.1 (UDP and TCP) for the
// names the test gives it. It counts the queries it answers.
type testDNS struct {
	udpAddr, tcpAddr string

	mu       sync.Mutex
	records  map[dnsKey][]string             // zone-file lines without name and type
	dynamic  map[dnsKey]func(n int) []string // answers that change: n is the query number, from 1
	servfail map[string]bool
	queries  map[dnsKey]int
	total    int
}

type dnsKey struct {
	name  string // absolute, lower case
	qtype uint16
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

func newTestDNS(t *testing.T) *testDNS {
	t.Helper()
	s := &testDNS{
		records:  make(map[dnsKey][]string),
		dynamic:  make(map[dnsKey]func(int) []string),
		servfail: make(map[string]bool),
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
func (s *testDNS) serve(t *testing.T, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	stopped := make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { stopped <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-stopped:
		t.Fatalf("dns: serve: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("dns: server did not start")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.ShutdownContext(ctx); err != nil {
			t.Errorf("dns: shutdown: %v", err)
		}
		<-stopped
	})
}

// add adds records for name: add("a.test", dns.TypeA, "127.0.0.1").
func (s *testDNS) add(name string, qtype uint16, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := dnsKey{fqdn(name), qtype}
	s.records[k] = append(s.records[k], values...)
}

// answerWith makes name's qtype answer change from query to query.
func (s *testDNS) answerWith(name string, qtype uint16, f func(n int) []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynamic[dnsKey{fqdn(name), qtype}] = f
}

// failWith makes every query for name answer SERVFAIL.
func (s *testDNS) failWith(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[fqdn(name)] = true
}

// count returns the number of queries answered so far.
func (s *testDNS) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// countOf returns the number of queries for one name and type.
func (s *testDNS) countOf(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dnsKey{fqdn(name), qtype}]
}

// ServeDNS answers from the records. The answer is authoritative with
// recursion available, or Go's resolver takes an empty answer for a lame
// referral. A name with no records of any type is NXDOMAIN; a name with
// records of other types gets an empty NOERROR answer.
func (s *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	if len(req.Question) == 1 {
		q := req.Question[0]
		rcode, answer := s.answer(dnsKey{strings.ToLower(q.Name), q.Qtype})
		m.Rcode, m.Answer = rcode, answer
	}
	_ = w.WriteMsg(m) // a lost answer shows as a resolver error in the test
}

func (s *testDNS) answer(k dnsKey) (int, []dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.queries[k]++
	if s.servfail[k.name] {
		return dns.RcodeServerFailure, nil
	}
	values := s.records[k]
	if f, ok := s.dynamic[k]; ok {
		values = f(s.queries[k])
	}
	var rrs []dns.RR
	for _, v := range values {
		rr, err := dns.NewRR(k.name + " 60 IN " + dns.TypeToString[k.qtype] + " " + v)
		if err != nil {
			panic("bad test record " + v + ": " + err.Error())
		}
		rrs = append(rrs, rr)
	}
	if len(rrs) == 0 && !s.nameExistsLocked(k.name) {
		return dns.RcodeNameError, nil
	}
	return dns.RcodeSuccess, rrs
}

func (s *testDNS) nameExistsLocked(name string) bool {
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

// resolver returns a pure-Go resolver that asks this server only.
func (s *testDNS) resolver() *net.Resolver {
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

// page is what the test web server answers for one host and path.
type page struct {
	status   int    // 0: 200
	body     string // the response body
	location string // a redirect target (status 3xx)
}

// testWeb is an HTTPS server on 127.0.0.1 with a certificate for the test's
// names, answering per host name and path. It stands for every autoconfig
// host; DNS maps those names to 127.0.0.1.
type testWeb struct {
	srv   *httptest.Server
	port  string
	roots *x509.CertPool

	mu    sync.Mutex
	pages map[string]page // host + path
	hits  map[string]int
	gate  func(r *http.Request) // called before answering; tests may block in it
}

func newTestWeb(t *testing.T, names ...string) *testWeb {
	t.Helper()
	w := &testWeb{pages: make(map[string]page), hits: make(map[string]int)}
	cert, roots := selfSigned(t, names)
	w.roots = roots
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(w.serveHTTP))
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	w.srv.StartTLS()
	t.Cleanup(w.srv.Close)
	_, w.port, _ = net.SplitHostPort(w.srv.Listener.Addr().String())
	return w
}

func (w *testWeb) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	key := host + r.URL.Path
	w.mu.Lock()
	w.hits[key]++
	p, ok := w.pages[key]
	gate := w.gate
	w.mu.Unlock()
	if gate != nil {
		gate(r)
	}
	switch {
	case !ok:
		http.NotFound(rw, r)
	case p.location != "":
		http.Redirect(rw, r, p.location, p.status)
	default:
		if p.status != 0 {
			rw.WriteHeader(p.status)
		}
		_, _ = rw.Write([]byte(p.body))
	}
}

// set serves p at https://host:port/path.
func (w *testWeb) set(host, path string, p page) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pages[host+path] = p
}

// setGate makes every request call gate before it is answered.
func (w *testWeb) setGate(gate func(r *http.Request)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate = gate
}

// count returns the number of requests for host and path ("" and "": all).
func (w *testWeb) count(host, path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if host == "" {
		n := 0
		for _, h := range w.hits {
			n += h
		}
		return n
	}
	return w.hits[host+path]
}

// urls builds the standard autoconfig URLs, on the test server's port.
func (w *testWeb) urls(domain, email string) []string {
	return []string{
		"https://autoconfig." + domain + ":" + w.port + autoconfigPath + "?emailaddress=" + url.QueryEscape(email),
		"https://" + domain + ":" + w.port + wellKnownPath,
	}
}

const (
	autoconfigPath = "/mail/config-v1.1.xml"
	wellKnownPath  = "/.well-known/autoconfig/mail/config-v1.1.xml"
)

// selfSigned makes a certificate for names and a pool that trusts it.
func selfSigned(t *testing.T, names []string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "discover test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              names,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one test's world: DNS, the autoconfig web server, a clock.
type env struct {
	dns   *testDNS
	web   *testWeb
	clock *fakeClock
}

// newEnv starts the servers. domains are the email domains the test uses:
// the certificate covers each one and its autoconfig host.
func newEnv(t *testing.T, domains ...string) *env {
	t.Helper()
	var names []string
	for _, d := range domains {
		names = append(names, d, "autoconfig."+d)
	}
	return &env{dns: newTestDNS(t), web: newTestWeb(t, names...), clock: newFakeClock()}
}

// options returns Options wired to the test servers. Everything here is on
// loopback, so AllowPrivate is on; tests of the guard turn it off.
func (e *env) options() Options {
	return Options{
		Resolver:        e.dns.resolver(),
		AllowPrivate:    true,
		AutoconfigRoots: e.web.roots,
		AutoconfigURLs:  e.web.urls,
		Now:             e.clock.Now,
		Timeout:         testTimeout / 2,
	}
}

// serveAutoconfig publishes an autoconfig file for domain at the first
// standard URL (autoconfig.<domain>).
func (e *env) serveAutoconfig(domain, file string) {
	e.dns.add("autoconfig."+domain, dns.TypeA, "127.0.0.1")
	e.web.set("autoconfig."+domain, autoconfigPath, page{body: file})
}

// configFile returns a one-server clientConfig file.
func configFile(host, port, socketType, username string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example">
    <incomingServer type="imap">
      <hostname>` + host + `</hostname>
      <port>` + port + `</port>
      <socketType>` + socketType + `</socketType>
      <username>` + username + `</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
  </emailProvider>
</clientConfig>`
}

// mustLookup runs a lookup that must succeed.
func mustLookup(t *testing.T, d *Discoverer, email string) Result {
	t.Helper()
	r, err := d.Lookup(testContext(t), email)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", email, err)
	}
	return r
}

// isNotFound reports whether err is a *NotFoundError.
func isNotFound(err error) bool {
	var nf *NotFoundError
	return errors.As(err, &nf)
}
