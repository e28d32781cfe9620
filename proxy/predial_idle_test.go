package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

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
	scrape := func() map[string]float64 {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return testkit.ParseMetrics(t, rec.Body.String())
	}

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
