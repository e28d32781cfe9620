package proxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// startHookServer runs the proxy with one plaintext loopback listener in
// front of an in-memory IMAP server (alice / alicepass), a shield, and hook
// as OnRefusal.
func startHookServer(t *testing.T, hook func(context.Context, Refusal) Answer) (*Server, *serverLog, *testkit.MemIMAP) {
	t.Helper()
	mem := startMemUpstream(t, map[string]string{"alice": "alicepass"})
	sh := shield.New(shield.NewMemoryStore(100), shield.NewSecret(), shield.Options{Params: shield.Params{Time: 1, Memory: 64, Threads: 1}})
	t.Cleanup(func() { sh.Close() })
	s, logs := startProxy(t, fmt.Sprintf(`
log: {level: debug}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
listeners:
  - {address: 127.0.0.1:0, tls: none, language: ja, notice_mailbox: true, upstream: {address: %q, tls: none}}
`, mem.Addr), Options{OnRefusal: hook, Shield: sh})
	return s, logs, mem
}

// TestOnRefusal: the hook gets the refusal's facts, and its link and text
// are what the client reads in the ALERT and the NO; the client's ID is
// logged with the failure.
func TestOnRefusal(t *testing.T) {
	var mu sync.Mutex
	var got []Refusal
	answers := []Answer{{Link: "https://example.test/why/1"}, {Text: "Ask the help desk", Link: "https://example.test/why/2"}}
	s, logs, _ := startHookServer(t, func(ctx context.Context, r Refusal) Answer {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r)
		return answers[len(got)-1]
	})
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send("i ID (\"name\" \"Test\tApp\" \"version\" \"1.0\")\r\n")
	tc.Until("i OK")
	pass := testSecret("hook")
	tc.Send("a LOGIN alice " + pass + "\r\n")
	report, alert, no := tc.Line(), tc.Line(), tc.Line()
	if !strings.HasPrefix(report, "* OK [X-IMAPWHY cause=credentials.rejected ") {
		t.Errorf("report %q", report)
	}
	mu.Lock()
	r := got[0]
	mu.Unlock()
	if r.User != "alice" || r.Client != netip.MustParseAddr("127.0.0.1") || r.Lang != "ja" || !r.NoticeMailbox ||
		r.Diagnosis.Cause != diagnose.CauseCredentialsRejected || r.Message != diagnose.Message(r.Diagnosis, "ja") ||
		r.Local.String() != s.Addrs()[0].String() || time.Since(r.Time) > time.Minute {
		t.Errorf("refusal %+v", r)
	}
	// The client did not ask for UTF-8 (LANGUAGE): the ASCII message, with
	// the link to the page in the listener's language.
	if want := "* OK [ALERT] " + diagnose.Message(r.Diagnosis, "en") + " https://example.test/why/1"; alert != want {
		t.Errorf("ALERT %q, want %q", alert, want)
	}
	if want := "a NO [AUTHENTICATIONFAILED] " + diagnose.Message(r.Diagnosis, "en") + " https://example.test/why/1"; no != want {
		t.Errorf("NO %q, want %q", no, want)
	}
	tc.Send("b LOGIN alice " + pass + "\r\n")
	if l := tc.Until("b "); l[len(l)-1] != "b NO [AUTHENTICATIONFAILED] Ask the help desk https://example.test/why/2" {
		t.Errorf("answer with the hook's text: %q", l)
	}
	ev := logs.Events("auth_failure")
	if len(ev) != 2 || ev[0]["incident_page"] != true || ev[0]["notice"] != false || ev[0]["client_app"] != "Test App 1.0" {
		t.Errorf("auth_failure events %v", ev)
	}
}

// TestOnRefusalHandoff: a Handoff answers the login with OK and gets the
// connection with what the client pipelined; Shutdown closes it at once
// instead of draining it. Only a password the upstream accepted last may
// be answered with OK: for any other the proxy ignores the Handoff and
// says NO.
func TestOnRefusalHandoff(t *testing.T) {
	served := make(chan string, 1)
	ended := make(chan error, 1)
	var worked []bool
	s, logs, up := startHookServer(t, func(ctx context.Context, r Refusal) Answer {
		worked = append(worked, r.PasswordWorkedLast)
		return Answer{Handoff: &Handoff{
			Capabilities: []string{"IMAP4rev1", "not an atom"},
			Serve: func(ctx context.Context, conn net.Conn, br *bufio.Reader) error {
				line, _ := br.ReadString('\n')
				served <- line
				conn.Write([]byte("* handed off\r\n"))
				_, err := br.ReadByte() // until the proxy closes conn
				ended <- err
				return err
			},
		}}
	})
	tc := dialTestClient(t, s.Addrs()[0])
	tc.Send("w LOGIN alice " + testSecret("hook") + "\r\n")
	if l := tc.Until("w "); !strings.HasPrefix(l[len(l)-1], "w NO ") {
		t.Fatalf("a wrong password with a Handoff: %q, want NO", l)
	}
	tc.Send("x LOGIN alice alicepass\r\n")
	if l := tc.Until("x "); !strings.HasPrefix(l[len(l)-1], "x OK ") {
		t.Fatalf("the right password: %q", l)
	}
	tc.Send("y LOGOUT\r\n")
	tc.Until("y ")
	tc.Conn.Close()
	up.AddUser(t, testkit.MemUser{Name: "alice", Password: "changed-elsewhere"})

	tc = dialTestClient(t, s.Addrs()[0])
	tc.Send("a LOGIN alice alicepass\r\nb NOOP\r\n")
	// The login is let in, but the report says it failed (notice=1): a
	// program such as imapwhy check does not count it as a success.
	if l := tc.Line(); !strings.HasPrefix(l, "* OK [X-IMAPWHY cause=") || !strings.Contains(l, " notice=1]") {
		t.Errorf("report %q", l)
	}
	if l := tc.Line(); !strings.HasPrefix(l, "* OK [ALERT] ") {
		t.Errorf("first line %q", l)
	}
	if l := tc.Line(); l != "a OK [CAPABILITY IMAP4rev1] Logged in" {
		t.Errorf("login answer %q", l)
	}
	if l := <-served; l != "b NOOP\r\n" {
		t.Errorf("the handoff read %q", l)
	}
	if l := tc.Line(); l != "* handed off" {
		t.Errorf("then %q", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v (after %v)", err, time.Since(start))
	}
	if err := <-ended; err == nil {
		t.Error("the handed-off connection was not closed")
	}
	if ev := logs.Events("auth_failure"); len(ev) != 2 || ev[0]["notice"] != false || ev[1]["notice"] != true {
		t.Errorf("auth_failure events %v", ev)
	}
	if fmt.Sprint(worked) != "[false true]" {
		t.Errorf("PasswordWorkedLast %v, want [false true]", worked)
	}
}

// TestReloadKeepsDiscoveryCache: a reload with the same discovery settings
// keeps what discovery learnt; changed settings start afresh.
func TestReloadKeepsDiscoveryCache(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"taro@corp.test": "pw"})
	_, port, _ := net.SplitHostPort(up.Addr)
	dns := testkit.NewDNS(t)
	dns.Add("_imap._tcp.corp.test", mdns.TypeSRV, "0 0 "+port+" imap.corp.test.")
	dns.AddIPs("imap.corp.test", "127.0.0.1")
	asked := func() int { return dns.CountOf("_imap._tcp.corp.test", mdns.TypeSRV) }
	s, logs := startAutoServer(t, "discovery: {allow_private: true}\n", Options{Resolver: dns.Resolver()})
	// RFC 6186's _imap record means STARTTLS, which this plaintext test
	// server lacks: the refusal names the discovered server.
	logins := 0
	login := func() {
		t.Helper()
		loginAnswer(t, s, "taro@corp.test", "pw")
		logins++
		lastCause(t, logs, logins)
		if ev := logs.Events("auth_failure")[logins-1]; ev["upstream"] != "imap.corp.test:"+port {
			t.Fatalf("login %d did not reach the discovered server: %v", logins, ev)
		}
	}
	login()
	before := asked()
	if before == 0 {
		t.Fatal("discovery asked no SRV question")
	}
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	cfg.Listeners[0].Address = s.Addrs()[0].String()
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	login()
	if n := asked(); n != before {
		t.Errorf("after a reload %d SRV questions, want the %d before: the cache was dropped", n, before)
	}
	cfg.Discovery.CacheTTL = config.Duration(2 * time.Hour)
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	login()
	if n := asked(); n == before {
		t.Error("new discovery settings kept the old cache")
	}
	ev := logs.Events("reloaded")
	if len(ev) != 2 || ev[0]["discovery_cache_kept"] != true || ev[1]["discovery_cache_kept"] != false {
		t.Errorf("reloaded events %v", ev)
	}
}

// TestReloadKeepsRateLimits: a reload does not give an address that spent
// its logins a fresh allowance.
func TestReloadKeepsRateLimits(t *testing.T) {
	up := startMemUpstream(t, map[string]string{"alice": "alicepass"}).Addr
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms, per_address_logins_per_minute: 2}
listeners:
  - {address: 127.0.0.1:0, tls: none, upstream: {address: %q, tls: none}}
`, up)))
	if err != nil {
		t.Fatal(err)
	}
	s, logs := startProxyConfig(t, cfg, Options{})
	pass := testSecret("ratelimit")
	for i := 1; i <= 2; i++ {
		loginAnswer(t, s, "alice", pass)
		if c := lastCause(t, logs, i); c != string(diagnose.CauseCredentialsRejected) {
			t.Fatalf("login %d: cause %s", i, c)
		}
	}
	cfg.Listeners[0].Address = s.Addrs()[0].String()
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	loginAnswer(t, s, "alice", pass)
	if c := lastCause(t, logs, 3); c != string(diagnose.CauseClientRateLimited) {
		t.Errorf("third login after a reload: cause %s, want %s", c, diagnose.CauseClientRateLimited)
	}
}
