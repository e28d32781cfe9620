package proxy

// Upstream faults: scripted upstreams on loopback that refuse,
// stay silent, hang, hang up, send garbage, speak another protocol, or drop
// a forwarded session in the middle of a FETCH. Each must give the client a
// clear answer with its cause within the configured deadlines, leave the
// client's session usable, and free every goroutine.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// faultGreeting is a minimal IMAP greeting: LOGIN comes next.
const faultGreeting = "* OK [CAPABILITY IMAP4rev1] fake ready"

// faultReadCommand reads the proxy's next command line and returns its tag.
func faultReadCommand(c *testkit.Conn) string {
	line, err := c.Reader.ReadString('\n')
	if err != nil {
		return ""
	}
	tag, _, _ := strings.Cut(line, " ")
	return tag
}

// faultLoginThen greets, reads the login and hands over to then.
func faultLoginThen(then func(c *testkit.Conn, tag string)) func(*testkit.Conn) {
	return func(c *testkit.Conn) {
		c.Send(faultGreeting)
		then(c, faultReadCommand(c))
	}
}

// faultReset closes c with a TCP RST instead of a FIN.
func faultReset(c *testkit.Conn) {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Conn.Close()
}

// faultFlood writes line until the proxy goes away.
func faultFlood(c *testkit.Conn, line string) {
	b := bytes.Repeat([]byte(line), 64)
	for {
		if _, err := c.Conn.Write(b); err != nil {
			return
		}
	}
}

// upstreamFaults are the scripted upstreams, each with the cause the
// proxy must name. A nil play means nobody listens.
var upstreamFaults = []struct {
	name  string
	play  func(c *testkit.Conn)
	cause diagnose.Cause
}{
	{"refuses", nil, diagnose.CauseUpstreamRefused},
	{"never greets", (*testkit.Conn).WaitClose, diagnose.CauseUpstreamTimeout},
	{"greeting one byte at a time, never ending", func(c *testkit.Conn) {
		for i := 0; ; i++ {
			if _, err := c.Conn.Write([]byte{"* OK "[min(i, 4)]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}, diagnose.CauseUpstreamTimeout},
	{"greets then hangs at login", faultLoginThen(func(c *testkit.Conn, _ string) { c.WaitClose() }), diagnose.CauseUpstreamTimeout},
	{"closes at login", faultLoginThen(func(*testkit.Conn, string) {}), diagnose.CauseServerTemporaryFailure},
	{"resets at login", faultLoginThen(func(c *testkit.Conn, _ string) { faultReset(c) }), diagnose.CauseServerTemporaryFailure},
	{"BYE at login", faultLoginThen(func(c *testkit.Conn, _ string) { c.Send("* BYE shutting down") }), diagnose.CauseServerTemporaryFailure},
	{"binary garbage", func(c *testkit.Conn) {
		junk := make([]byte, 512)
		rng := rand.New(rand.NewPCG(7, 7))
		for i := range junk {
			junk[i] = byte(rng.UintN(256))
		}
		c.Conn.Write(append(junk, '\r', '\n'))
		c.WaitClose()
	}, diagnose.CauseUpstreamNotIMAP},
	{"over-long greeting", func(c *testkit.Conn) {
		c.Conn.Write([]byte("* OK " + strings.Repeat("x", 200<<10)))
		c.WaitClose()
	}, diagnose.CauseUpstreamNotIMAP},
	{"over-long reply to login", faultLoginThen(func(c *testkit.Conn, tag string) {
		c.Send(tag + " NO " + strings.Repeat("x", 200<<10))
		c.WaitClose()
	}), diagnose.CauseUpstreamNotIMAP},
	{"endless untagged responses", faultLoginThen(func(c *testkit.Conn, _ string) {
		faultFlood(c, "* OK still thinking\r\n")
	}), diagnose.CauseUpstreamNotIMAP},
	{"huge literal in a response", faultLoginThen(func(c *testkit.Conn, _ string) {
		c.Send(`* ID ("name" {2000000000}`)
		faultFlood(c, "xxxxxxxxxxxxxxxx")
	}), diagnose.CauseUpstreamNotIMAP},
	{"POP3", testkit.Says("+OK POP3 server ready"), diagnose.CauseUpstreamNotIMAP},
	{"SMTP", testkit.Says("220 mail.example.test ESMTP"), diagnose.CauseUpstreamNotIMAP},
	{"HTTP", testkit.Says("HTTP/1.1 400 Bad Request", "Content-Length: 0", ""), diagnose.CauseUpstreamNotIMAP},
	{"SSH", testkit.Says("SSH-2.0-OpenSSH_9.2p1 Debian-2"), diagnose.CauseUpstreamNotIMAP},
}

// TestUpstreamFaults: the client's LOGIN is answered with an ALERT and a NO
// naming the cause within the login deadline, the client can go on (and
// LOGOUT), and nothing is left running.
func TestUpstreamFaults(t *testing.T) {
	for _, f := range upstreamFaults {
		t.Run(f.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			addr := testkit.ClosedPort(t)
			if f.play != nil {
				addr = testkit.Serve(t, nil, f.play)
			}
			p := startRig(t, rigConfig(t, config.TLSNone, addr, config.TLSNone), Options{})
			pass := testSecret("fault")
			tc := rigGreeted(t, p.addr)

			start := time.Now()
			tc.Send("a LOGIN alice " + pass + "\r\n")
			lines := tc.Until("a ")
			took := time.Since(start)
			t.Logf("answered in %v: %q", took.Round(time.Millisecond), lines)
			if took > rigUpstreamLogin+rigSlack {
				t.Errorf("answered after %v, past the login deadline %v", took, rigUpstreamLogin)
			}
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "* OK [X-IMAPWHY cause=") || !strings.HasPrefix(lines[1], "* OK [ALERT] ") || !strings.HasPrefix(lines[2], "a NO [UNAVAILABLE] ") {
				t.Errorf("answer %q, want the report, an ALERT and NO [UNAVAILABLE]", lines)
			}
			testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_failure")) > 0 })
			ev := p.logs.Events("auth_failure")
			if len(ev) != 1 || ev[0]["cause"] != string(f.cause) {
				t.Errorf("auth_failure events %v, want cause %s", ev, f.cause)
			}
			tc.Send("b LOGOUT\r\n")
			tc.Until("b OK")
			tc.Conn.Close()
			p.waitSessions(t, 0)
			if !t.Failed() {
				tally.add("upstream faults survived", 1)
			}
		})
	}
}

// TestUpstreamEchoesPassword: an upstream that quotes the password back in
// its refusal gets it into neither the proxy's log nor the client's reply.
func TestUpstreamEchoesPassword(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("echoed")
	for _, mech := range []string{"LOGIN", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			up := testkit.Serve(t, nil, func(c *testkit.Conn) {
				c.Send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake ready")
				line, err := c.Reader.ReadString('\n')
				if err != nil {
					return
				}
				tag, cmd, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
				c.Send("* OK [ALERT] You typed "+pass+", which is wrong",
					tag+" NO [AUTHENTICATIONFAILED] Command "+cmd+" failed for password "+pass)
				c.WaitClose()
			})
			p := startRig(t, rigConfig(t, config.TLSNone, up, config.TLSNone), Options{})
			tc := rigGreeted(t, p.addr)
			if mech == "LOGIN" {
				tc.Send("a LOGIN alice " + pass + "\r\n")
			} else {
				tc.Send("a AUTHENTICATE PLAIN " + testkit.Plain("alice", pass) + "\r\n")
			}
			reply := strings.Join(tc.Until("a "), "\n")
			if !strings.Contains(reply, "a NO [AUTHENTICATIONFAILED]") {
				t.Errorf("reply %q", reply)
			}
			testkit.WaitFor(t, func() bool { return len(p.logs.Events("auth_failure")) > 0 })
			log := p.logs.String()
			for _, form := range secretForms(pass) {
				if strings.Contains(log, form) || strings.Contains(reply, form) {
					t.Errorf("the password (as %q) is in the log or the reply:\n%s\n%s", form, log, reply)
				}
			}
			if ev := p.logs.Events("auth_failure"); len(ev) != 1 || !strings.Contains(fmt.Sprint(ev[0]["detail"]), "failed for password") {
				t.Errorf("auth_failure %v: want the rest of the server's text kept as detail", ev)
			}
		})
	}
}

// TestUpstreamDropsMidFetch: the upstream goes away in the middle of a
// FETCH literal of a forwarded session. The proxy cannot say BYE there
// (the client is inside a literal, a BYE would become message data), so
// it must pass on what arrived and close the client's connection at once,
// whether the upstream closed (FIN) or reset (RST), and whether or not the
// client closes its side (a client that does not is cut off after
// clientLinger).
func TestUpstreamDropsMidFetch(t *testing.T) {
	const announced, sent = 1 << 20, 300 << 10
	body := bytes.Repeat([]byte("0123456789abcdef"), sent/16)
	for _, tc := range []struct {
		name         string
		reset        bool
		clientCloses bool
	}{
		{"upstream closes", false, true},
		{"upstream resets", true, true},
		{"upstream closes, client stays", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			pass := testSecret("dropped")
			up := testkit.Serve(t, nil, faultLoginThen(func(c *testkit.Conn, tag string) {
				c.Send(tag + " OK [CAPABILITY IMAP4rev1 IDLE] Logged in")
				fetch := faultReadCommand(c)
				if fetch == "" {
					return
				}
				c.Conn.Write([]byte(fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n", announced)))
				c.Conn.Write(body)
				if tc.reset {
					faultReset(c)
				}
			}))
			p := startRig(t, rigConfig(t, config.TLSNone, up, config.TLSNone), Options{})
			cl := rigGreeted(t, p.addr)
			cl.Send("a LOGIN alice " + pass + "\r\n")
			if l := cl.Line(); !strings.HasPrefix(l, "a OK ") {
				t.Fatalf("login: %q", l)
			}
			cl.Conn.SetDeadline(time.Now().Add(clientLinger + rigSlack))
			cl.Send("b FETCH 1 BODY[]\r\n")
			if l := cl.Line(); l != fmt.Sprintf("* 1 FETCH (BODY[] {%d}", announced) {
				t.Fatalf("FETCH: %q", l)
			}
			got := make([]byte, len(body))
			if _, err := io.ReadFull(cl.Reader, got); err != nil && !tc.reset {
				t.Fatalf("reading what the upstream sent: %v", err)
			} else if err == nil && !bytes.Equal(got, body) {
				t.Error("the part of the literal that arrived was altered")
			}
			if !tc.clientCloses {
				// The client does nothing: the proxy must end the session
				// by itself, after clientLinger.
				p.waitSessions(t, 0)
			}
			rest, err := cl.ReadToEnd()
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after the drop: %v, want the connection closed", err)
			}
			if len(rest) > 0 && !tc.reset {
				t.Errorf("%d bytes after the upstream's last", len(rest))
			}
			cl.Conn.Close()
			p.waitSessions(t, 0)
			if ev := p.logs.Events("session_end"); len(ev) != 1 {
				t.Errorf("session_end events: %v", ev)
			}
			if !t.Failed() {
				tally.add("upstream faults survived", 1)
			}
		})
	}
}

// startClosedUpstream runs the proxy with a listener in lang in front of a
// closed loopback port, with no failure delay to speak of, and a client
// on it that has asked for lang.
func startClosedUpstream(t *testing.T, lang string, opts Options) (*testkit.Client, *serverLog) {
	t.Helper()
	srv, logs := startProxy(t, fmt.Sprintf(`
listeners:
  - address: 127.0.0.1:0
    tls: none
    language: %s
    upstream: {address: %q, tls: none}
limits: {failure_delay_base: 1ms, failure_delay_max: 1ms}
`, lang, testkit.ClosedPort(t)), opts)
	tc := dialTestClient(t, srv.Addrs()[0])
	t.Cleanup(func() { tc.Conn.Close() })
	if lang == "ja" {
		tc.Send("e LANGUAGE JA\r\n")
		tc.Until("e ")
	}
	return tc, logs
}

// TestUpstreamDownNotTheApp: when imapwhy's own upstream does not answer,
// the mail app is told that imapwhy cannot reach the mail server, that its
// settings and password are fine, and which setting the person running
// imapwhy must check; not to check the port in its own settings.
func TestUpstreamDownNotTheApp(t *testing.T) {
	testkit.CheckNoLeaks(t)
	for _, lang := range []string{"en", "ja"} {
		t.Run(lang, func(t *testing.T) {
			tc, logs := startClosedUpstream(t, lang, Options{})
			tc.Send("a LOGIN alice " + testSecret("down") + "\r\n")
			lines := tc.Until("a ")
			no := lines[len(lines)-1]
			want := map[string][]string{
				"en": {"a NO [UNAVAILABLE] imapwhy cannot reach the mail server (nothing answers).", "mail app and password are fine", "listeners[].upstream"},
				"ja": {"a NO [UNAVAILABLE] imapwhyがメールサーバーに接続できません", "メールアプリの設定とパスワードは問題ありません", "listeners[].upstream"},
			}[lang]
			for _, w := range want {
				if !strings.Contains(no, w) {
					t.Errorf("NO %q: %q missing", no, w)
				}
			}
			if strings.Contains(no, "your settings") || strings.Contains(no, "設定されたポート") {
				t.Errorf("NO %q blames the mail app's settings", no)
			}
			testkit.WaitFor(t, func() bool { return len(logs.Events("auth_failure")) > 0 })
			if c := logs.Events("auth_failure")[0]["cause"]; c != string(diagnose.CauseUpstreamRefused) {
				t.Errorf("cause %v", c)
			}
		})
	}
}

// TestUpstreamLocalFailure: when imapwhy itself cannot open the upstream
// connection (the process is out of file descriptors: socket() fails with
// EMFILE), the mail app is not told that its password was refused, nor that
// the mail server has a problem: it gets a temporary failure in words that
// assert neither; the admin gets an error naming the cause.
func TestUpstreamLocalFailure(t *testing.T) {
	testkit.CheckNoLeaks(t)
	for _, lang := range []string{"en", "ja"} {
		t.Run(lang, func(t *testing.T) {
			var dials atomic.Int32
			emfile := func(context.Context, string, string) (net.Conn, error) {
				dials.Add(1)
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}
			}
			tc, logs := startClosedUpstream(t, lang, Options{Dial: emfile})
			pass := testSecret("emfile")
			tc.Send("a LOGIN alice@example.com " + pass + "\r\n")
			lines := tc.Until("a ")
			no := lines[len(lines)-1]
			t.Logf("answer: %q", lines)
			want := map[string]string{
				"en": "a NO [UNAVAILABLE] No normal answer came from the mail server; it did not say the password was wrong.",
				"ja": "a NO [UNAVAILABLE] メールサーバーから正常な応答が得られませんでした(パスワードが違うとは言っていません)。",
			}[lang]
			if !strings.HasPrefix(no, want) {
				t.Errorf("NO %q, want it to start %q", no, want)
			}
			if strings.Contains(strings.Join(lines, "\n"), "AUTHENTICATIONFAILED") {
				t.Errorf("answer %q: a refusal of the credentials nobody checked", lines)
			}
			if dials.Load() == 0 {
				t.Fatal("the upstream dial seam was not used")
			}
			testkit.WaitFor(t, func() bool { return len(logs.Events("auth_failure")) > 0 })
			ev := logs.Events("auth_failure")[0]
			if ev["cause"] != string(diagnose.CauseServerTemporaryFailure) || ev["confidence"] != string(diagnose.Low) ||
				ev["net_error"] != string(diagnose.NetLocal) || ev["temporary"] != true {
				t.Errorf("auth_failure %v, want server.temporary_failure, low, net_error local, temporary", ev)
			}
			local := logs.Events("upstream_dial_local_error")
			if len(local) != 1 || local[0]["level"] != "error" || !strings.Contains(fmt.Sprint(local[0]["error"]), "socket: too many open files") {
				t.Errorf("upstream_dial_local_error events %v, want one at error level with the error text", local)
			}
			if strings.Contains(logs.String(), pass) {
				t.Error("the password is in the log")
			}
		})
	}
}
