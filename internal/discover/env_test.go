package discover

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// testTimeout bounds every test's network waits.
const testTimeout = 10 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
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
	cert := testkit.SelfSigned(t, testkit.Spec{CommonName: "discover test", Names: names, CA: true})
	w.roots = cert.Pool()
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(w.serveHTTP))
	w.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS()}}
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

// env is one test's world: DNS, the autoconfig web server, a clock.
type env struct {
	dns   *testkit.DNS
	web   *testWeb
	clock *testkit.Clock
}

// newEnv starts the servers. domains are the email domains the test uses:
// the certificate covers each one and its autoconfig host.
func newEnv(t *testing.T, domains ...string) *env {
	t.Helper()
	var names []string
	for _, d := range domains {
		names = append(names, d, "autoconfig."+d)
	}
	return &env{dns: testkit.NewDNS(t), web: newTestWeb(t, names...), clock: testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
}

// options returns Options wired to the test servers. Everything here is on
// loopback, so AllowPrivate is on; tests of the guard turn it off.
func (e *env) options() Options {
	return Options{
		Resolver:        e.dns.Resolver(),
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
	e.dns.Add("autoconfig."+domain, dns.TypeA, "127.0.0.1")
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
