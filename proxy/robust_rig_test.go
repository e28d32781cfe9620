package proxy

// The rig of the robustness tests (faults_test.go, abuse_test.go,
// restart_test.go): the proxy with short deadlines, raw clients whose every
// received byte is searched for passwords, in-memory upstreams with users
// and messages of the test's choosing, and the goroutine check.

import (
	"bufio"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// The deadlines of the robustness tests: short, so that a fault that is
// only ended by a deadline ends quickly, and far enough apart that each
// fault ends by its own.
const (
	rigPreAuth       = 4 * time.Second
	rigUpstreamDial  = 1 * time.Second
	rigUpstreamLogin = 2 * time.Second
	// rigSlack is what a reply may take beyond the deadline that caused it
	// on a busy machine. Waits are bounded by deadline + slack: a fault the
	// proxy does not end by itself fails the wait.
	rigSlack = 3 * time.Second
)

// rigConfig is the proxy's configuration for the robustness tests: one
// listener on loopback of the given TLS mode in front of upstream, with the
// rig's deadlines and a failure delay short enough not to slow the tests
// down (the throttle's own tests check the delay). Tests change it further.
func rigConfig(t *testing.T, listenerTLS, upstream, upstreamTLS string) config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`
state_dir: %s
log: {level: debug}
timeouts: {preauth: %s, upstream_dial: %s, upstream_login: %s, drain: 5s}
limits: {failure_delay_base: 10ms, failure_delay_max: 10ms}
listeners:
  - address: 127.0.0.1:0
    tls: %s
    upstream: {address: %q, tls: %s}
`, t.TempDir(), rigPreAuth, rigUpstreamDial, rigUpstreamLogin, listenerTLS, upstream, upstreamTLS)
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}

// rigProxy is a running proxy.
type rigProxy struct {
	srv  *Server
	logs *serverLog
	addr string // the first listener's
}

// startRig starts the proxy, with metrics unless opts has its own; it is
// shut down when the test ends, and its metrics are then added to what is
// searched for passwords.
func startRig(t *testing.T, cfg config.Config, opts Options) *rigProxy {
	t.Helper()
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	t.Cleanup(func() { exposeMetrics(opts.Metrics) }) // after the shutdown
	s, logs := startProxyConfig(t, cfg, opts)
	return &rigProxy{srv: s, logs: logs, addr: s.Addrs()[0].String()}
}

// exposeMetrics adds the metrics, as /metrics serves them, to what is
// searched for passwords.
func exposeMetrics(m *metrics.Metrics) {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	expose(rec.Body.String())
}

// sessions is the number of connections the proxy is serving.
func (p *rigProxy) sessions() int {
	return p.srv.sessions.Len()
}

// waitSessions waits until the proxy serves at most n connections, within
// the pre-auth deadline and slack.
func (p *rigProxy) waitSessions(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(rigPreAuth + rigSlack)
	for p.sessions() > n {
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still serves %d connections, want at most %d", p.sessions(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialRig connects to addr from the local address from ("" for any) and
// returns a raw client whose received bytes also go to exposure. Nothing is
// read yet.
func dialRig(t *testing.T, addr, from string) *testkit.Client {
	t.Helper()
	c := testkit.DialFrom(t, from, addr)
	c.SetDeadline(time.Now().Add(rigPreAuth + rigUpstreamLogin + rigSlack))
	return &testkit.Client{T: t, Conn: c, Reader: rigReader(c)}
}

// rigReader reads c through a buffer and copies what it reads into
// exposure.
func rigReader(c io.Reader) *bufio.Reader { return bufio.NewReader(io.TeeReader(c, exposure)) }

// greeted is dialRig that also reads the greeting.
func rigGreeted(t *testing.T, addr string) *testkit.Client {
	t.Helper()
	tc := dialRig(t, addr, "")
	tc.Greeting()
	return tc
}

// rigMemUpstream starts go-imap's imapserver with an in-memory backend on
// loopback (plaintext, logins allowed) and returns its address.
func rigMemUpstream(t testing.TB, users ...testkit.MemUser) string {
	t.Helper()
	return testkit.StartMemIMAP(t, testkit.MemIMAPOptions{
		Users:        users,
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIdle: {}, imap.CapUIDPlus: {}, imap.CapLiteralPlus: {}},
		InsecureAuth: true,
	}).Addr
}
