package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// serverLog collects the proxy's JSON log lines for assertions.
type serverLog struct{ testkit.Buffer }

// startTestServer runs the proxy with one plaintext loopback listener in
// front of an in-memory IMAP server (alice / alicepass).
func startTestServer(t *testing.T) (*Server, *serverLog) {
	t.Helper()
	return startPlain(t, testkit.MemServer(t, "none", true, testkit.NewPKI(t)), "", Options{})
}

// startPlain runs the proxy with one plaintext loopback listener in front
// of the plaintext upstream up, with the limits in YAML (flow style, may be
// empty) and opts.
func startPlain(t *testing.T, up, limits string, opts Options) (*Server, *serverLog) {
	t.Helper()
	return startProxy(t, fmt.Sprintf(`
log: {level: debug}
listeners:
  - address: 127.0.0.1:0
    tls: none
    upstream: {address: %q, tls: none}
limits: {%s}
`, up, limits), opts)
}

// startProxy runs the proxy with the configuration in yaml and opts, its
// log collected and shown if the test fails; it shuts down when the test
// ends.
func startProxy(t *testing.T, yaml string, opts Options) (*Server, *serverLog) {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return startProxyConfig(t, cfg, opts)
}

// startProxyConfig is startProxy with a parsed configuration.
func startProxyConfig(t *testing.T, cfg config.Config, opts Options) (*Server, *serverLog) {
	t.Helper()
	logs := &serverLog{}
	opts.Logger = testLogger(logs)
	testkit.ShowOnFailure(t, "proxy log", logs)
	s, err := New(cfg, opts)
	return testkit.Start(t, s, err), logs
}

// startWithSession starts a test server and a client on its listener
// that has sent cmd (tagged "a") and got its OK.
func startWithSession(t *testing.T, cmd string) (*Server, *testkit.Client) {
	t.Helper()
	s, _ := startTestServer(t)
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send("a " + cmd + "\r\n")
	tc.Until("a OK")
	return s, tc
}

func dialTestClient(t *testing.T, addr net.Addr) *testkit.Client {
	t.Helper()
	return dialTestClientFrom(t, "", addr)
}

// dialTestClientFrom dials from the loopback address from ("": any), to
// play clients on different networks (127.0.0.1 and 127.0.1.1 are two
// IPv4 /24s).
func dialTestClientFrom(t *testing.T, from string, addr net.Addr) *testkit.Client {
	t.Helper()
	tc := testkit.NewClient(t, testkit.DialFrom(t, from, addr.String()))
	tc.Greeting()
	return tc
}

// TestPipelinedLogin sends LOGIN, SELECT and LOGOUT in one write: the
// commands after LOGIN must reach the upstream once the session is spliced.
func TestPipelinedLogin(t *testing.T) {
	s, logs := startTestServer(t)
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send("a LOGIN alice alicepass\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
	login := tc.Line()
	if !strings.HasPrefix(login, "a OK [CAPABILITY ") || strings.Contains(login, "AUTH=") {
		t.Fatalf("login answer %q", login)
	}
	sel := tc.Until("b ")
	if !strings.HasPrefix(sel[len(sel)-1], "b OK") {
		t.Fatalf("SELECT through the proxy: %q", sel)
	}
	tc.Until("c OK")
	if _, err := tc.Reader.ReadByte(); err == nil {
		t.Error("connection still open after LOGOUT")
	}
	tc.Conn.Close() // as a mail app does when the server has closed
	testkit.WaitFor(t, func() bool { return len(logs.Events("session_end")) == 1 })
	ev := logs.Events("auth_success")
	if len(ev) != 1 || ev[0]["user"] != "alice" {
		t.Errorf("auth_success events: %v", ev)
	}
	end := logs.Events("session_end")[0]
	if end["bytes_in"].(float64) <= 0 || end["bytes_out"].(float64) <= 0 {
		t.Errorf("session_end without byte counts: %v", end)
	}
}

// TestFailedLoginAnswer checks the shape of a refusal and its log event,
// and that the password appears in neither.
func TestFailedLoginAnswer(t *testing.T) {
	s, logs := startTestServer(t)
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send("a1 LOGIN alice Wr0ngPassw0rd\r\n")
	report, alert, no := tc.Line(), tc.Line(), tc.Line()
	// First the diagnosis for programs, which mail apps ignore.
	if !strings.HasPrefix(report, "* OK [X-IMAPWHY cause=credentials.rejected confidence=low code=AUTHENTICATIONFAILED") {
		t.Errorf("first line %q, want the X-IMAPWHY report", report)
	}
	if !strings.HasPrefix(alert, "* OK [ALERT] ") {
		t.Errorf("first line %q, want an ALERT", alert)
	}
	if !strings.HasPrefix(no, "a1 NO [AUTHENTICATIONFAILED] ") {
		t.Errorf("tagged line %q", no)
	}
	if strings.TrimPrefix(alert, "* OK [ALERT] ") != strings.TrimPrefix(no, "a1 NO [AUTHENTICATIONFAILED] ") {
		t.Errorf("ALERT and NO say different things: %q / %q", alert, no)
	}
	// The client may try again on the same connection.
	tc.Send("a2 LOGIN alice alicepass\r\n")
	if l := tc.Line(); !strings.HasPrefix(l, "a2 OK ") {
		t.Errorf("second try: %q", l)
	}
	ev := logs.Events("auth_failure")
	if len(ev) != 1 {
		t.Fatalf("auth_failure events: %v", ev)
	}
	for _, k := range []string{"cause", "code", "user", "client", "upstream", "conn"} {
		if s, _ := ev[0][k].(string); s == "" {
			t.Errorf("auth_failure without %s: %v", k, ev[0])
		}
	}
	if ev[0]["code"] != "AUTHENTICATIONFAILED" || ev[0]["user"] != "alice" {
		t.Errorf("auth_failure: %v", ev[0])
	}
	if strings.Contains(logs.String(), "Wr0ngPassw0rd") || strings.Contains(logs.String(), "alicepass") {
		t.Error("a password reached the log")
	}
}

// TestShutdownSaysBye: a connection that has not logged in is told BYE.
func TestShutdownSaysBye(t *testing.T) {
	s, tc := startWithSession(t, "NOOP")
	done := testkit.ShutdownAsync(s.Shutdown, 5*time.Second)
	if l := tc.Line(); !strings.HasPrefix(l, "* BYE ") {
		t.Errorf("got %q, want BYE", l)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addrs()[0].String(), time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// TestShutdownDrains: a logged-in session keeps working during the drain,
// and Shutdown returns once it ends.
func TestShutdownDrains(t *testing.T) {
	s, tc := startWithSession(t, "LOGIN alice alicepass")
	done := testkit.ShutdownAsync(s.Shutdown, 10*time.Second)
	// The session goes on while the server drains.
	tc.Send("b SELECT INBOX\r\n")
	if l := tc.Until("b "); !strings.HasPrefix(l[len(l)-1], "b OK") {
		t.Errorf("SELECT while draining: %q", l)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a session was still open", err)
	case <-time.After(200 * time.Millisecond):
	}
	tc.Send("c LOGOUT\r\n")
	tc.Until("c OK")
	tc.Conn.Close()
	if err := testkit.Receive(t, done, 5*time.Second, "Shutdown to return after the last session ended"); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestShutdownDeadline: at the drain deadline the remaining sessions are
// closed and Shutdown reports the deadline.
func TestShutdownDeadline(t *testing.T) {
	s, tc := startWithSession(t, "LOGIN alice alicepass")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if _, err := tc.Reader.ReadString('\n'); err == nil {
		t.Error("session still open after the drain deadline")
	}
}

// TestReload: a listener added by Reload serves, a removed one stops
// accepting, and a session on it goes on.
func TestReload(t *testing.T) {
	s, tc := startWithSession(t, "LOGIN alice alicepass")
	old := s.Addrs()[0]

	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	l := cfg.Listeners[0]
	l.Address = "127.0.0.1:0"
	l.Language = "ja"
	cfg.Listeners = []config.Listener{l}
	// The old listener's address is "127.0.0.1:0" too, so name it by its
	// bound address to keep it, then drop it in a second reload.
	keep := cfg
	keep.Listeners = []config.Listener{l, l}
	keep.Listeners[0].Address = old.String()
	if err := s.Reload(keep); err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs(); len(got) != 2 || got[0].String() != old.String() {
		t.Fatalf("after reload: %v", got)
	}
	fresh := s.Addrs()[1]
	keep.Listeners = keep.Listeners[1:]
	keep.Listeners[0].Address = fresh.String()
	if err := s.Reload(keep); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", old.String(), time.Second); err == nil {
		t.Error("removed listener still accepts")
	}
	tc2 := dialTestClient(t, fresh)
	tc2.Send("x LOGIN alice alicepass\r\n")
	tc2.Until("x OK")
	tc.Send("b SELECT INBOX\r\n")
	if l := tc.Until("b "); !strings.HasPrefix(l[len(l)-1], "b OK") {
		t.Errorf("session on the removed listener: %q", l)
	}
	bad := keep
	bad.Log.Format = "xml"
	if err := s.Reload(bad); err == nil {
		t.Error("Reload took an invalid configuration")
	}
}

func TestStartBindError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := config.Default()
	cfg.Listeners = []config.Listener{
		{Address: "127.0.0.1:0", TLS: config.TLSNone, Language: "en", Upstream: config.Upstream{Address: "127.0.0.1:1", TLS: config.TLSNone}},
		{Address: busy.Addr().String(), TLS: config.TLSNone, Language: "en", Upstream: config.Upstream{Address: "127.0.0.1:1", TLS: config.TLSNone}},
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "listeners[1]") {
		t.Fatalf("Start: %v, want an error naming listeners[1]", err)
	}
	if len(s.Addrs()) != 0 {
		t.Error("listeners left bound after a failed Start")
	}
}

func TestNewNeedsCertificate(t *testing.T) {
	cfg := config.Default()
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("New without a certificate: %v", err)
	}
}
