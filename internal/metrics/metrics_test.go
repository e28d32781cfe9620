package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestAdminServes: the admin listener serves the metrics by name and value
// over real HTTP, and /healthz.
func TestAdminServes(t *testing.T) {
	m := New()
	m.LoginSucceeded()
	m.LoginFailed("credentials.rejected", "")
	m.LoginFailed("credentials.repeated_failure", "gmail")
	m.LoginFailed("credentials.repeated_failure", "gmail")
	m.AttemptSaved()
	m.AttemptSaved()
	m.ConnectionRefused()
	m.SessionStarted()
	m.SessionStarted()
	m.SessionEnded(100, 2000)
	m.CountParked(func() int64 { return 3 })
	m.UpstreamDial(3 * time.Millisecond)
	m.UpstreamLogin(700*time.Millisecond, false)

	healthy := true
	a, err := Serve("127.0.0.1:0", m, func() error {
		if healthy {
			return nil
		}
		return context.Canceled
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	base := "http://" + a.Addr().String()
	got, _ := testkit.Scrape(t, base+"/metrics")
	want := map[string]float64{
		`imapwhy_logins_total{result="success"}`:                                              1,
		`imapwhy_logins_total{result="failure"}`:                                              3,
		`imapwhy_login_failures_total{cause="credentials.rejected",provider="unknown"}`:       1,
		`imapwhy_login_failures_total{cause="credentials.repeated_failure",provider="gmail"}`: 2,
		`imapwhy_shield_saved_attempts_total`:                                                 2,
		`imapwhy_connections_refused_total`:                                                   1,
		`imapwhy_sessions_active`:                                                             1,
		`imapwhy_forwarding_parked`:                                                           3,
		`imapwhy_forwarded_bytes_total{direction="to_upstream"}`:                              100,
		`imapwhy_forwarded_bytes_total{direction="to_client"}`:                                2000,
		`imapwhy_upstream_dial_seconds_count`:                                                 1,
		`imapwhy_upstream_dial_seconds_bucket{le="0.005"}`:                                    1,
		`imapwhy_upstream_dial_seconds_bucket{le="0.001"}`:                                    0,
		`imapwhy_upstream_login_seconds_count{result="failure"}`:                              1,
		`imapwhy_upstream_login_seconds_bucket{result="failure",le="1"}`:                      1,
		`imapwhy_upstream_login_seconds_bucket{result="failure",le="0.5"}`:                    0,
		`imapwhy_upstream_login_seconds_count{result="success"}`:                              0,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	c := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range []struct {
		healthy bool
		code    int
	}{{true, 200}, {false, 503}} {
		healthy = tt.healthy
		resp, err := c.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("healthz (healthy %v): %d, want %d", tt.healthy, resp.StatusCode, tt.code)
		}
	}
	resp, err := c.Post(base+"/metrics", "text/plain", nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics: %d", resp.StatusCode)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
	if _, err := c.Get(base + "/healthz"); err == nil {
		t.Error("still serving after Shutdown")
	}
}

// TestNilMetrics: a nil *Metrics records nothing and does not panic.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.LoginSucceeded()
	m.LoginFailed("x", "y")
	m.AttemptSaved()
	m.ConnectionRefused()
	m.SessionStarted()
	m.SessionEnded(1, 2)
	m.UpstreamDial(time.Second)
	m.UpstreamLogin(time.Second, true)
}

// TestOwnRegistry: two Metrics do not share counters (no global registry).
func TestOwnRegistry(t *testing.T) {
	a, b := New(), New()
	a.AttemptSaved()
	if got := testutil.ToFloat64(b.saved); got != 0 {
		t.Errorf("b saw a's counter: %v", got)
	}
	if n, err := testutil.GatherAndCount(a.Registry(), "imapwhy_shield_saved_attempts_total"); err != nil || n != 1 {
		t.Errorf("gather: %d, %v", n, err)
	}
	if problems, err := testutil.GatherAndLint(a.Registry()); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestServeBindError(t *testing.T) {
	a, err := Serve("127.0.0.1:0", New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := Serve(a.Addr().String(), New(), nil); err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("second bind: %v", err)
	}
}
