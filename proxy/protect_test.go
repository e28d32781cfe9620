package proxy

// Tests of the protections (protect.go) through the whole proxy, against an
// in-memory IMAP server whose passwords the test changes, with the shield's
// clock faked and the metrics scraped over HTTP.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// startMemUpstream is an in-memory IMAP server (no TLS, loopback) with
// users (name -> password) that counts the logins reaching it and whose
// passwords can be changed (AddUser).
func startMemUpstream(t *testing.T, users map[string]string) *testkit.MemIMAP {
	t.Helper()
	o := testkit.MemIMAPOptions{InsecureAuth: true, CountLogins: true}
	for name, pw := range users {
		o.Users = append(o.Users, testkit.MemUser{Name: name, Password: pw})
	}
	return testkit.StartMemIMAP(t, o)
}

// protectRig is the proxy with a shield on a fake clock and metrics served
// on a loopback admin listener, in front of an in-memory upstream.
type protectRig struct {
	srv     *Server
	logs    *serverLog
	up      *testkit.MemIMAP
	clock   *testkit.Clock // the shield's
	metrics *metrics.Metrics
	admin   *metrics.Admin
}

// startProtectRig starts the rig. limits is YAML for the limits section;
// every wait in it is short unless the test says otherwise.
func startProtectRig(t *testing.T, limits string) *protectRig {
	t.Helper()
	testkit.CheckNoLeaks(t) // runs last
	r := &protectRig{
		up:      startMemUpstream(t, map[string]string{"alice": "alicepass"}),
		clock:   testkit.NewClock(time.Date(2026, 11, 27, 22, 0, 0, 0, time.UTC)),
		metrics: metrics.New(),
	}
	sh := shield.New(shield.NewMemoryStore(100), shield.NewSecret(), shield.Options{
		Params:  shield.Params{Time: 1, Memory: 64, Threads: 1},
		Now:     r.clock.Now,
		OnError: func(err error) { t.Errorf("shield store: %v", err) },
	})
	t.Cleanup(func() { sh.Close() }) // after the proxy's shutdown
	r.srv, r.logs = startPlain(t, r.up.Addr, limits, Options{Shield: sh, Metrics: r.metrics})
	var err error
	r.admin, err = metrics.Serve("127.0.0.1:0", r.metrics, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
		defer cancel()
		if err := r.admin.Shutdown(ctx); err != nil {
			t.Errorf("admin Shutdown: %v", err)
		}
	})
	return r
}

// quickLimits: no failure delay to speak of, no rate limits.
const quickLimits = `failure_delay_base: 1ms, failure_delay_max: 1ms, per_address_logins_per_minute: -1, per_user_logins_per_minute: -1`

// tryLogin logs in on a new connection, the password sent as a LITERAL+
// (any bytes), and returns the tagged answer and, for a NO, the ALERT text.
// The connection is closed afterwards, as a phone does between retries.
func (r *protectRig) tryLogin(t *testing.T, user, pw string) (tagged, alert string) {
	t.Helper()
	return r.tryLoginFrom(t, "", user, pw)
}

// tryLoginFrom is tryLogin from the loopback address from.
func (r *protectRig) tryLoginFrom(t *testing.T, from, user, pw string) (tagged, alert string) {
	t.Helper()
	failures := len(r.logs.Events("auth_failure"))
	tc := dialTestClientFrom(t, from, r.srv.Addrs()[0])
	defer tc.Conn.Close()
	tc.Send(fmt.Sprintf("a LOGIN %s {%d+}\r\n%s\r\n", user, len(pw), pw))
	lines := tc.Until("a ")
	tagged = lines[len(lines)-1]
	for _, l := range lines {
		if s, ok := strings.CutPrefix(l, "* OK [ALERT] "); ok {
			alert = s
		}
	}
	if strings.HasPrefix(tagged, "a OK") {
		tc.Send("b LOGOUT\r\n")
		tc.Until("b ")
	} else {
		// The event is logged right after the NO is written.
		testkit.WaitFor(t, func() bool { return len(r.logs.Events("auth_failure")) > failures })
	}
	return tagged, alert
}

// lastFailure is the latest auth_failure log event.
func (r *protectRig) lastFailure(t *testing.T) map[string]any {
	t.Helper()
	ev := r.logs.Events("auth_failure")
	if len(ev) == 0 {
		t.Fatal("no auth_failure event")
	}
	return ev[len(ev)-1]
}

// scrape GETs /metrics from the admin listener: series -> value.
func (r *protectRig) scrape(t *testing.T) (map[string]float64, string) {
	t.Helper()
	return testkit.Scrape(t, "http://"+r.admin.Addr().String()+"/metrics")
}

// wantMessage checks that the client was told the message of cause.
func wantMessage(t *testing.T, alert string, cause diagnose.Cause) {
	t.Helper()
	if want := diagnose.Message(diagnose.Of(cause), "en"); !strings.HasPrefix(alert, want) {
		t.Errorf("the client was told %q, want the message of %s (%q)", alert, cause, want)
	}
}

// TestShieldStaleDevice: the password is changed on the server; a phone
// keeps sending the old one every 30 s for an hour. It is told the password
// was changed, the server sees at most forwarded_tries of its logins, and
// the rest are answered from history. The right password still works, and
// no password reaches the log or the metrics.
func TestShieldStaleDevice(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	if got, _ := r.tryLogin(t, "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("first login: %q", got)
	}
	r.up.AddUser(t, testkit.MemUser{Name: "alice", Password: "n3w-Secret"})
	before := r.up.Logins.Load()

	attempts, held := 0, 0
	for elapsed := time.Duration(0); elapsed < time.Hour; elapsed += 30 * time.Second {
		attempts++
		got, alert := r.tryLogin(t, "alice", "alicepass")
		if !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
			t.Fatalf("attempt %d: %q", attempts, got)
		}
		ev := r.lastFailure(t)
		// Held or not, the answer is the diagnosis of the server's
		// refusal of this password; a held one adds that imapwhy did not
		// send it again.
		if cause := diagnose.Cause(ev["cause"].(string)); cause != diagnose.CauseCredentialsPasswordChanged {
			t.Errorf("attempt %d: cause %s", attempts, cause)
		}
		wantMessage(t, alert, diagnose.CauseCredentialsPasswordChanged)
		if ev["held"] == true {
			held++
			if !strings.Contains(alert, "did not send it again") {
				t.Errorf("held attempt: the client was told %q", alert)
			}
		}
		r.clock.Advance(30 * time.Second)
	}
	reached := int(r.up.Logins.Load() - before)
	t.Logf("shield: %d of %d attempts reached the upstream", reached, attempts)
	fmt.Printf("shield: %d of %d attempts reached the upstream (through the proxy)\n", reached, attempts)
	if tries := config.Default().Shield.ForwardedTries; reached > tries || held != attempts-reached {
		t.Errorf("%d of %d attempts reached the upstream (%d held), want at most %d", reached, attempts, held, tries)
	}

	// The new password is forwarded and works.
	if got, _ := r.tryLogin(t, "alice", "n3w-Secret"); !strings.HasPrefix(got, "a OK") {
		t.Errorf("the new password: %q", got)
	}
	testkit.WaitFor(t, func() bool { return len(r.logs.Events("session_end")) == 2 })

	// Each connection was dialled before its login (upstream.predial);
	// a held login's was closed unused, with no login sent on it.
	testkit.WaitFor(t, func() bool {
		m, _ := r.scrape(t)
		return m[`imapwhy_upstream_predials_total{outcome="unused"}`] == float64(held)
	})
	m, body := r.scrape(t)
	want := map[string]float64{
		`imapwhy_upstream_predials_total{outcome="used"}`:                                       float64(reached + 2),
		`imapwhy_upstream_predials_total{outcome="unused"}`:                                     float64(held),
		`imapwhy_upstream_predials_total{outcome="stale"}`:                                      0,
		`imapwhy_upstream_predials_total{outcome="failed"}`:                                     0,
		`imapwhy_logins_total{result="success"}`:                                                2,
		`imapwhy_logins_total{result="failure"}`:                                                float64(attempts),
		`imapwhy_login_failures_total{cause="credentials.password_changed",provider="unknown"}`: float64(attempts),
		`imapwhy_shield_saved_attempts_total`:                                                   float64(held),
		`imapwhy_sessions_active`:                                                               0,
		`imapwhy_upstream_dial_seconds_count`:                                                   float64(attempts + 2),
		`imapwhy_upstream_login_seconds_count{result="success"}`:                                2,
		`imapwhy_upstream_login_seconds_count{result="failure"}`:                                float64(reached),
	}
	for series, v := range want {
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	for _, dir := range []string{"to_upstream", "to_client"} {
		if m[`imapwhy_forwarded_bytes_total{direction="`+dir+`"}`] <= 0 {
			t.Errorf("no bytes forwarded %s", dir)
		}
	}
	for _, pw := range []string{"alicepass", "n3w-Secret"} {
		if strings.Contains(r.logs.String(), pw) || strings.Contains(body, pw) {
			t.Errorf("the password %q reached the log or the metrics", pw)
		}
	}
}

// TestShieldHistoryCauses: what worked before explains the refusal, end to
// end: Caps Lock, a space around the password, full-width input.
func TestShieldHistoryCauses(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	if got, _ := r.tryLogin(t, "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("first login: %q", got)
	}
	for _, tt := range []struct {
		typed string
		cause diagnose.Cause
	}{
		{"ALICEPASS", diagnose.CauseCredentialsCapsLock},
		{"alicepass ", diagnose.CausePasswordSurroundingSpace},
		{"ａｌｉｃｅｐａｓｓ", diagnose.CausePasswordFullwidth},
	} {
		t.Run(string(tt.cause), func(t *testing.T) {
			got, alert := r.tryLogin(t, "alice", tt.typed)
			if !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
				t.Fatalf("answer %q", got)
			}
			ev := r.lastFailure(t)
			if ev["cause"] != string(tt.cause) || ev["confidence"] != string(diagnose.High) {
				t.Errorf("logged %v, want %s with high confidence", ev, tt.cause)
			}
			wantMessage(t, alert, tt.cause)
		})
	}
	for _, pw := range []string{"alicepass", "ALICEPASS", "ａｌｉｃｅｐａｓｓ"} {
		if strings.Contains(r.logs.String(), pw) {
			t.Errorf("the password %q reached the log", pw)
		}
	}
}

// TestRateLimits: past per_user_logins_per_minute failed logins the login
// is refused by the proxy itself, without reaching the server; successful
// logins do not count, and each variant of the password the history
// compared (here the case-inverted one) counts like a failure.
func TestRateLimits(t *testing.T) {
	r := startProtectRig(t, `failure_delay_base: 1ms, failure_delay_max: 1ms, per_user_logins_per_minute: 4`)
	for i := range 4 {
		if got, _ := r.tryLogin(t, "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
			t.Fatalf("login %d: %q", i, got)
		}
	}
	for i, pw := range []string{"wrong-1", "wrong-2"} {
		if got, _ := r.tryLogin(t, "alice", pw); !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
			t.Fatalf("failure %d: %q", i, got)
		}
	}
	before := r.up.Logins.Load()
	got, alert := r.tryLogin(t, "alice", "wrong-3")
	if !strings.HasPrefix(got, "a NO [UNAVAILABLE] ") {
		t.Fatalf("third failure in a minute: %q", got)
	}
	wantMessage(t, alert, diagnose.CauseClientRateLimited)
	if ev := r.lastFailure(t); ev["cause"] != string(diagnose.CauseClientRateLimited) {
		t.Errorf("logged %v", ev)
	}
	if r.up.Logins.Load() != before {
		t.Error("a rate-limited login reached the server")
	}
	// Another user from the same address is not limited by alice's count.
	if got, _ := r.tryLogin(t, "bob", "x"); strings.HasPrefix(got, "a NO [UNAVAILABLE] ") {
		t.Errorf("bob limited by alice's logins: %q", got)
	}
}

// TestConnectionLimit: past per_address_connections a connection gets BYE
// at once; when one closes, the next is served.
func TestConnectionLimit(t *testing.T) {
	r := startProtectRig(t, quickLimits+`, per_address_connections: 2`)
	a := dialTestClient(t, r.srv.Addrs()[0])
	dialTestClient(t, r.srv.Addrs()[0])
	c, err := net.DialTimeout("tcp", r.srv.Addrs()[0].String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	bye, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "* BYE ")
	if err != nil || !ok {
		t.Fatalf("third connection got %q, %v; want BYE", line, err)
	}
	wantMessage(t, bye, diagnose.CauseClientTooManyConnections)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the refused connection stayed open")
	}
	a.Conn.Close()
	testkit.WaitFor(t, func() bool {
		m, _ := r.scrape(t)
		return m["imapwhy_connections_refused_total"] == 1
	})
	// The closed connection's slot is free again once its session ended.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.srv.Addrs()[0].String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "* OK ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a connection closed: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailureDelay: a NO waits for the failure delay; Shutdown cuts the
// wait short and the client still gets its NO, then BYE.
func TestFailureDelay(t *testing.T) {
	r := startProtectRig(t, `failure_delay_base: 300ms, failure_delay_max: 1s, per_user_logins_per_minute: -1`)
	start := time.Now()
	got, _ := r.tryLogin(t, "alice", "wrong-1")
	if !strings.HasPrefix(got, "a NO ") {
		t.Fatalf("answer %q", got)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("NO after %v, before the failure delay", waited)
	}

	r2 := startProtectRig(t, `failure_delay_base: 1h, failure_delay_max: 1h`)
	tc := dialTestClient(t, r2.srv.Addrs()[0])
	tc.Send("a LOGIN alice wrong-2\r\n")
	testkit.WaitFor(t, func() bool { return r2.up.Logins.Load() == 1 }) // refused upstream; now waiting
	done := testkit.ShutdownAsync(r2.srv.Shutdown, 5*time.Second)
	lines := tc.Until("* BYE ")
	if !containsLine(lines, "a NO [AUTHENTICATIONFAILED] ") {
		t.Errorf("no NO before the BYE: %q", lines)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// TestFailureDelayOnlyForCredentials: the failure delay (which doubles with
// each further wrong password) is for refusals of the user name and
// password; an upstream that refuses connections gets its NO at once, and
// does not count as a further failure. The delays are read from the
// auth_failure events, not timed.
func TestFailureDelayOnlyForCredentials(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"alice": "alicepass"})
	srv, logs := startProxy(t, fmt.Sprintf(`
listeners:
  - {address: "127.0.0.1:0", tls: none, upstream: {address: %q, tls: none}}
  - {address: "127.0.0.1:0", tls: none, upstream: {address: %q, tls: none}}
limits: {failure_delay_base: 1ms, failure_delay_max: 1h, per_address_logins_per_minute: -1, per_user_logins_per_minute: -1}
`, up.Addr, testkit.ClosedPort(t)), Options{})
	login := func(listener int, pw string) map[string]any {
		t.Helper()
		n := len(logs.Events("auth_failure"))
		tc := dialTestClient(t, srv.Addrs()[listener])
		defer tc.Conn.Close()
		tc.Send(fmt.Sprintf("a LOGIN alice {%d+}\r\n%s\r\n", len(pw), pw))
		if l := tc.Until("a "); !strings.HasPrefix(l[len(l)-1], "a NO ") {
			t.Fatalf("answer %q", l)
		}
		testkit.WaitFor(t, func() bool { return len(logs.Events("auth_failure")) > n })
		return logs.Events("auth_failure")[n]
	}
	delayMS := func(ev map[string]any) float64 {
		v, _ := ev["failure_delay"].(float64)
		return v
	}
	for i, want := range []float64{1, 2, 4} {
		if got := delayMS(login(0, fmt.Sprintf("wrong-%d", i))); got != want {
			t.Errorf("wrong password %d: failure delay %vms, want %vms", i+1, got, want)
		}
	}
	ev := login(1, "wrong-9")
	if ev["cause"] != string(diagnose.CauseUpstreamRefused) || delayMS(ev) != 0 {
		t.Errorf("upstream down: cause %v, failure delay %vms, want upstream.refused without delay", ev["cause"], delayMS(ev))
	}
	if got := delayMS(login(0, "wrong-4")); got != 8 {
		t.Errorf("wrong password after the upstream failure: failure delay %vms, want 8ms (the failure was not counted)", got)
	}
}
