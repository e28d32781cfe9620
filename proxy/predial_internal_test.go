package proxy

import (
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// predialMetrics reads m as /metrics shows it.
func predialMetrics(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return testkit.ParseMetrics(t, rec.Body.String())
}

// TestPredialDroppedAtLogin: the upstream closes the connection made before
// the login just as the login arrives on it, without answering (it was
// closed between its last check and the login). The login dials anew and
// works; the client never hears of the first connection.
func TestPredialDroppedAtLogin(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("predial-dropped")
	var conns atomic.Int32
	up := testkit.Serve(t, nil, func(c *testkit.Conn) {
		c.Send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready")
		line, err := c.Line()
		if conns.Add(1) == 1 || err != nil {
			return // the first connection: closed at the login, unanswered
		}
		if !strings.HasPrefix(line, "a1 AUTHENTICATE PLAIN ") {
			t.Errorf("the second connection got %q, want the login", line)
			return
		}
		c.Send("a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
		c.WaitClose()
	})
	m := metrics.New()
	p := startRig(t, rigConfig(t, config.TLSNone, up, config.TLSNone), Options{Metrics: m})
	tc := rigGreeted(t, p.addr)
	testkit.WaitFor(t, func() bool { return len(p.logs.Events("predial_ready")) == 1 })
	tc.Send("a LOGIN alice " + pass + "\r\n")
	if reply := tc.Until("a "); !strings.HasPrefix(reply[len(reply)-1], "a OK ") {
		t.Fatalf("the login: %q", reply)
	}
	got := predialMetrics(t, m)
	if stale, used, dials := got[`imapwhy_upstream_predials_total{outcome="stale"}`], got[`imapwhy_upstream_predials_total{outcome="used"}`],
		got["imapwhy_upstream_dial_seconds_count"]; stale != 1 || used != 0 || dials != 2 {
		t.Errorf("predials stale %v, used %v, dials %v; want 1, 0, 2", stale, used, dials)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("the upstream got %d logins, want 2", n)
	}
}

// TestPredialIdleClient: a client that idles before its login does not pin
// the upstream connection made for it: after predialIdle it is closed
// (with LOGOUT); the login that comes later dials anew and works.
func TestPredialIdleClient(t *testing.T) {
	testkit.CheckNoLeaks(t)
	was := predialIdle.Swap(int64(100 * time.Millisecond))
	t.Cleanup(func() { predialIdle.Store(was) })
	pass := testSecret("predial-idle")
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass})
	m := metrics.New()
	p := startRig(t, rigConfig(t, config.TLSNone, up, config.TLSNone), Options{Metrics: m})
	scrape := func() map[string]float64 { return predialMetrics(t, m) }

	tc := rigGreeted(t, p.addr)
	testkit.WaitFor(t, func() bool { return scrape()[`imapwhy_upstream_predials_total{outcome="unused"}`] == 1 })
	tc.Send("a LOGIN alice " + pass + "\r\n")
	if reply := tc.Until("a "); !strings.HasPrefix(reply[len(reply)-1], "a OK ") {
		t.Fatalf("the late login: %q", reply)
	}
	tc.Send("b NOOP\r\n")
	if reply := tc.Until("b "); !strings.HasPrefix(reply[len(reply)-1], "b OK ") {
		t.Errorf("NOOP after the late login: %q", reply)
	}
	got := scrape()
	if n := got[`imapwhy_upstream_predials_total{outcome="used"}`]; n != 0 {
		t.Errorf("predials used: %v, want 0 (the connection had been closed)", n)
	}
	if n := got["imapwhy_upstream_dial_seconds_count"]; n != 2 {
		t.Errorf("upstream dials: %v, want 2 (the expired one and the login's)", n)
	}
}

// TestPredialReload: upstream.predial follows a reload for the connections
// accepted after it.
func TestPredialReload(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("predial-reload")
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass})
	m := metrics.New()
	cfg := rigConfig(t, config.TLSNone, up, config.TLSNone)
	p := startRig(t, cfg, Options{Metrics: m})
	login := func(when string) {
		tc := rigGreeted(t, p.addr)
		tc.Send("a LOGIN alice " + pass + "\r\n")
		if reply := tc.Until("a "); !strings.HasPrefix(reply[len(reply)-1], "a OK ") {
			t.Fatalf("%s: %q", when, reply)
		}
		tc.Conn.Close()
	}
	used := func() float64 { return predialMetrics(t, m)[`imapwhy_upstream_predials_total{outcome="used"}`] }

	login("predial on")
	if n := used(); n != 1 {
		t.Fatalf("predial on: %v logins on a connection made before them, want 1", n)
	}
	off := false
	cfg.Listeners[0].Upstream.Predial = &off
	if err := p.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	login("predial off")
	if n := used(); n != 1 {
		t.Errorf("after the reload to predial: false: %v logins on a connection made before them, want still 1", n)
	}
	if n := predialMetrics(t, m)["imapwhy_upstream_dial_seconds_count"]; n != 2 {
		t.Errorf("%v upstream dials for two logins, want 2", n)
	}
}
