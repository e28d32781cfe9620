package proxy

// Client faults and abuse: clients that vanish in the middle of
// a command, announce huge literals, send lines without end, open
// thousands of connections and say nothing, flood wrong passwords, pipeline
// plaintext after STARTTLS, or send binary junk. Each ends within the
// pre-auth deadline with memory and goroutines bounded, and the proxy
// serves everyone else meanwhile.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// withoutPredial turns the upstream connection before login off on every
// listener of cfg: the front end's tests count what a client causes
// upstream (connections, memory, goroutines), which the pre-dial's own
// connection would blur; predial_test.go tests it.
func withoutPredial(cfg config.Config) config.Config {
	off := false
	for i := range cfg.Listeners {
		cfg.Listeners[i].Upstream.Predial = &off
	}
	return cfg
}

// rigThreeListeners is a proxy with a plaintext (tls: none), a STARTTLS
// and an implicit-TLS listener in front of upstream, without pre-dialling,
// and the client TLS configuration that trusts it.
func rigThreeListeners(t *testing.T, upstream string) (*rigProxy, map[string]string, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := frontTestTLS(t)
	cfg := withoutPredial(rigConfig(t, config.TLSNone, upstream, config.TLSNone))
	for _, mode := range []string{config.TLSStartTLS, config.TLSImplicit} {
		l := cfg.Listeners[0]
		l.TLS = mode
		cfg.Listeners = append(cfg.Listeners, l)
	}
	p := startRig(t, cfg, Options{TLS: serverTLS})
	addrs := map[string]string{}
	for i, a := range p.srv.Addrs() {
		addrs[cfg.Listeners[i].TLS] = a.String()
	}
	return p, addrs, clientTLS
}

// clientHelloPrefix is the start of a TLS ClientHello record: enough for a
// server to wait for the rest.
var clientHelloPrefix = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}

// TestClientVanishesMidCommand: a client that closes its connection in the
// middle of a command, a literal, an AUTHENTICATE exchange or a TLS
// handshake ends its session at once, not at the pre-auth deadline, and
// nothing reaches the upstream.
func TestClientVanishesMidCommand(t *testing.T) {
	testkit.CheckNoLeaks(t)
	up, accepted := testkit.Counting(t, "")
	p, addrs, _ := rigThreeListeners(t, up)
	// answered sends cmd, checks that the answer starts with want, then
	// sends part, the start of what would follow.
	answered := func(cmd, want, part string) func(tc *testkit.Client) {
		return func(tc *testkit.Client) {
			tc.Send(cmd)
			if l := tc.Line(); !strings.HasPrefix(l, want) {
				t.Errorf("after %q: %q", cmd, l)
			}
			tc.Send(part)
		}
	}
	cases := []struct {
		name, listener string
		script         func(tc *testkit.Client)
	}{
		{"mid line", config.TLSNone, func(tc *testkit.Client) { tc.Send("a LOGIN alice pass") }},
		{"mid synchronising literal", config.TLSNone, answered("a LOGIN alice {20}\r\n", "+ ", "01234")},
		{"mid non-synchronising literal", config.TLSNone, func(tc *testkit.Client) { tc.Send("a LOGIN alice {20+}\r\n01234") }},
		{"mid AUTHENTICATE", config.TLSNone, answered("a AUTHENTICATE PLAIN\r\n", "+", "AGFsaWNlAG")},
		{"mid STARTTLS handshake", config.TLSStartTLS, answered("a STARTTLS\r\n", "a OK", string(clientHelloPrefix))},
		{"mid TLS handshake", config.TLSImplicit, func(tc *testkit.Client) { tc.Send(string(clientHelloPrefix)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc := dialRig(t, addrs[c.listener], "")
			if c.listener != config.TLSImplicit {
				tc.Line() // greeting
			}
			c.script(tc)
			testkit.WaitFor(t, func() bool { return p.sessions() == 1 })
			start := time.Now()
			tc.Conn.Close()
			p.waitSessions(t, 0)
			if took := time.Since(start); took > rigPreAuth/2 {
				t.Errorf("the session ended %v after the client left: it waited for a deadline", took)
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the upstream got %d connections", n)
	}
	tally.add("bad inputs tried", int64(len(cases)))
}

// TestHugeLiterals: literal sizes far past the limit are refused before a
// byte of them is read or allocated: a synchronising literal with NO
// [TOOBIG] (the client never sent it; the dialog goes on), a
// non-synchronising one with BYE (its bytes are on the way).
func TestHugeLiterals(t *testing.T) {
	testkit.CheckNoLeaks(t)
	up, accepted := testkit.Counting(t, "")
	p := startRig(t, withoutPredial(rigConfig(t, config.TLSNone, up, config.TLSNone)), Options{})
	limit := config.Default().Limits.MaxLiteral
	sizes := []string{fmt.Sprint(limit + 1), "4294967296", "99999999999", "9223372036854775807", "18446744073709551616", strings.Repeat("9", 400)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tried := 0
	for _, n := range sizes {
		for _, cmd := range []string{"a LOGIN alice {%s}", "a LOGIN {%s}", "a ID (\"name\" {%s}", "a NOOP {%s}"} {
			tc := rigGreeted(t, p.addr)
			tc.Send(fmt.Sprintf(cmd, n) + "\r\n")
			tried++
			if l := tc.Line(); !strings.HasPrefix(l, "a NO [TOOBIG]") && !strings.HasPrefix(l, "a BAD") {
				t.Errorf("%s: %q, want NO [TOOBIG] (or BAD where no literal belongs)", fmt.Sprintf(cmd, n), l)
			}
			tc.Send("b NOOP\r\n")
			if l := tc.Line(); l != "b OK NOOP completed" {
				t.Errorf("after the refused literal: %q", l)
			}
			tc.Conn.Close()

			tc = rigGreeted(t, p.addr)
			tc.Send(fmt.Sprintf(cmd, n+"+") + "\r\n" + strings.Repeat("x", 4096))
			tried++
			if out, _ := tc.ReadToEnd(); !strings.Contains(out, "* BYE ") && !strings.Contains(out, "a BAD") {
				t.Errorf("%s+: %q, want BYE", fmt.Sprintf(cmd, n), out)
			}
			tc.Conn.Close()
		}
	}
	runtime.ReadMemStats(&after)
	t.Logf("%d huge literals refused; %d KiB allocated in all", tried, (after.TotalAlloc-before.TotalAlloc)>>10)
	tally.add("bad inputs tried", int64(tried))
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("%d MiB allocated for %d refused literals", grew>>20, tried)
	}
	p.waitSessions(t, 0)
	if accepted.Load() != 0 {
		t.Error("a login reached the upstream")
	}
}

// TestSlowClients: clients that never finish (slowloris) are told BYE at
// the pre-auth deadline and disconnected; clients that send too much too
// fast are told BYE at once. They run together, and a normal login goes
// through meanwhile.
func TestSlowClients(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("slow")
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass})
	p, addrs, clientTLS := rigThreeListeners(t, up)

	drip := func(tc *testkit.Client, s string) {
		for i := 0; ; i++ {
			if _, err := tc.Conn.Write([]byte{s[i%len(s)]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cases := []struct {
		name, listener string
		script         func(tc *testkit.Client)
		want           string // in what the client receives last; "" for nothing (no TLS yet)
		atDeadline     bool
	}{
		{"silent after the greeting", config.TLSNone, func(*testkit.Client) {}, "* BYE ", true},
		{"a line without end, slowly", config.TLSNone, func(tc *testkit.Client) { drip(tc, "a LOGIN alice x") }, "* BYE ", true},
		{"a literal without end, slowly", config.TLSNone, func(tc *testkit.Client) {
			tc.Send("a LOGIN alice {100}\r\n")
			drip(tc, "x")
		}, "* BYE ", true},
		{"AUTHENTICATE without a response", config.TLSNone, func(tc *testkit.Client) { tc.Send("a AUTHENTICATE PLAIN\r\n") }, "* BYE ", true},
		{"silent, implicit TLS", config.TLSImplicit, func(*testkit.Client) {}, "", true},
		{"a ClientHello without end, slowly", config.TLSImplicit, func(tc *testkit.Client) { drip(tc, string(clientHelloPrefix)) }, "", true},
		{"silent after STARTTLS", config.TLSStartTLS, func(tc *testkit.Client) { tc.Send("a STARTTLS\r\n") }, "a OK ", true},
		{"a line without end, fast", config.TLSNone, func(tc *testkit.Client) {
			tc.Conn.Write(bytes.Repeat([]byte("x"), 1<<20))
		}, "* BYE Command line too long", false},
		// 150 commands at once: a few more than max_commands, pipelined. (With
		// far more, the proxy closes with unread input, the kernel resets the
		// connection and the client may lose the BYE.)
		{"commands without end", config.TLSNone, func(tc *testkit.Client) {
			tc.Conn.Write(bytes.Repeat([]byte("a NOOP\r\n"), 150))
		}, "* BYE Too many commands", false},
		{"bad commands without end", config.TLSNone, func(tc *testkit.Client) {
			tc.Conn.Write(bytes.Repeat([]byte("a FETCH 1:* ALL\r\n"), 100))
		}, "* BYE Too many invalid commands", false},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		tc := dialRig(t, addrs[c.listener], "")
		start := time.Now()
		if c.listener != config.TLSImplicit {
			tc.Line()
		}
		wg.Go(func() {
			go c.script(tc) // ends when the proxy closes the connection
			out, err := tc.ReadToEnd()
			took := time.Since(start)
			switch {
			case err != nil && !errors.Is(err, syscall.ECONNRESET):
				t.Errorf("%s: %v after %v, want the proxy to close the connection", c.name, err, took)
			case !strings.Contains(lastLine(out), c.want):
				t.Errorf("%s: last line %q, want %q", c.name, lastLine(out), c.want)
			case c.atDeadline && (took < rigPreAuth-time.Second || took > rigPreAuth+rigSlack):
				t.Errorf("%s: disconnected after %v, want at the pre-auth deadline (%v)", c.name, took, rigPreAuth)
			case !c.atDeadline && took > rigPreAuth/2:
				t.Errorf("%s: disconnected after %v, want at once", c.name, took)
			}
		})
	}
	// Meanwhile, a mail app logs in and works.
	appWorks(t, addrs[config.TLSImplicit], clientTLS, pass, rigPreAuth, "during the attack")
	wg.Wait()
	t.Logf("%d slow or flooding clients cut off", len(cases))
	tally.add("bad inputs tried", int64(len(cases)))
	p.waitSessions(t, 0)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	return strings.TrimRight(lines[len(lines)-1], "\r")
}

// TestReplyPastPreAuthDeadline: a login that arrived before the pre-auth
// deadline is answered even when the upstream's answer comes after it (a
// slow server): NO then BYE for a refusal, a working session for a success.
func TestReplyPastPreAuthDeadline(t *testing.T) {
	const preAuth, before, upstreamDelay = 1500 * time.Millisecond, time.Second, time.Second
	testkit.CheckNoLeaks(t)
	pass := testSecret("late")
	for _, verdict := range []string{"NO [AUTHENTICATIONFAILED] wrong", "OK [CAPABILITY IMAP4rev1] Logged in"} {
		t.Run(verdict[:2], func(t *testing.T) {
			up := testkit.Serve(t, nil, faultLoginThen(func(c *testkit.Conn, tag string) {
				time.Sleep(upstreamDelay)
				c.Send(tag + " " + verdict)
				if noop := faultReadCommand(c); noop != "" {
					c.Send("* 1 EXISTS", noop+" OK NOOP done")
				}
				c.WaitClose()
			}))
			cfg := rigConfig(t, config.TLSNone, up, config.TLSNone)
			cfg.Timeouts.PreAuth = config.Duration(preAuth)
			p := startRig(t, cfg, Options{})
			tc := rigGreeted(t, p.addr)
			// Log in so that the upstream answers past the deadline.
			time.Sleep(before)
			tc.Send("a LOGIN alice " + pass + "\r\n")
			reply := tc.Until("a ")
			if verdict[:2] == "NO" {
				if !strings.HasPrefix(reply[len(reply)-1], "a NO [AUTHENTICATIONFAILED]") {
					t.Errorf("reply %q", reply)
				}
				if l := tc.Line(); !strings.HasPrefix(l, "* BYE ") {
					t.Errorf("after the NO, past the deadline: %q, want BYE", l)
				}
				return
			}
			if !strings.HasPrefix(reply[len(reply)-1], "a OK ") {
				t.Fatalf("reply %q", reply)
			}
			tc.Send("b NOOP\r\n")
			if l := tc.Until("b "); l[len(l)-1] != "b OK NOOP done" {
				t.Errorf("the session after a late login: %q", l)
			}
		})
	}
}

// TestIdleConnections: thousands of connections that send nothing cost a
// bounded, small amount each (measured in-process), and the proxy serves a
// normal login meanwhile. Half are greeted on a plaintext listener, half
// never start TLS on an implicit-TLS one. They come from 50 loopback
// addresses, as many clients would, which keeps each address under the
// per-address connection limit.
func TestIdleConnections(t *testing.T) {
	const perListener, sources = 1000, 50
	testkit.CheckNoLeaks(t)
	testkit.RaiseFileLimit(t, 4*2*perListener+1000)
	pass := testSecret("idle")
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass})
	serverTLS, clientTLS := frontTestTLS(t)
	// The front end's cost; with upstream.predial each admitted
	// connection also holds an upstream connection for at most
	// predialIdle.
	cfg := withoutPredial(rigConfig(t, config.TLSNone, up, config.TLSNone))
	cfg.Timeouts.PreAuth = config.Duration(time.Minute) // they must stay for the measurement
	l := cfg.Listeners[0]
	l.TLS = config.TLSImplicit
	cfg.Listeners = append(cfg.Listeners, l)
	p := startRig(t, cfg, Options{TLS: serverTLS})

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	greeting := make([]byte, 512)
	open := func(addr string, greeted bool) {
		for i := range perListener {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%sources))}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
			if greeted {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := c.Read(greeting); err != nil || !bytes.HasPrefix(greeting[:n], []byte("* OK ")) {
					t.Fatalf("connection %d: greeting %q, %v", i, greeting[:n], err)
				}
			}
		}
		testkit.WaitFor(t, func() bool { return p.sessions() == len(conns) })
	}
	base := measure()
	open(p.srv.Addrs()[0].String(), true)
	plain := measure()
	open(p.srv.Addrs()[1].String(), false)
	tlsIdle := measure()
	perPlain, perTLS := plain.per(base, perListener), tlsIdle.per(plain, perListener)
	t.Logf("%d idle connections held: plaintext, greeted: %s; implicit TLS, no handshake: %s",
		len(conns), perPlain, perTLS)
	tally.add("idle connections held", int64(len(conns)))
	for _, c := range []struct {
		name string
		cost connCost
	}{{"plaintext", perPlain}, {"implicit TLS", perTLS}} {
		// One goroutine per connection (the session's), and a few KiB:
		// its stack and the front end's buffers.
		if c.cost.goroutines > 1.05 || c.cost.bytes > 48<<10 {
			t.Errorf("%s: %s per idle connection, want at most 1 goroutine and 48 KiB", c.name, c.cost)
		}
	}

	// Meanwhile, a mail app logs in and works.
	start := time.Now()
	appWorks(t, p.srv.Addrs()[1].String(), clientTLS, pass, 10*time.Second, "among the idle ones")
	t.Logf("a normal login, SELECT and LOGOUT among them took %v", time.Since(start).Round(time.Millisecond))

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	p.waitSessions(t, 0)
}

// connCost is the memory and goroutines in use at one moment, or their
// difference per connection.
type connCost struct {
	bytes      float64 // heap and goroutine stacks in use
	goroutines float64
}

func (c connCost) String() string {
	return fmt.Sprintf("%.1f KiB and %.2f goroutines", c.bytes/1024, c.goroutines)
}

func measure() connCost {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return connCost{bytes: float64(m.HeapInuse + m.StackInuse), goroutines: float64(runtime.NumGoroutine())}
}

// per is the cost of each of n connections opened between base and c.
func (c connCost) per(base connCost, n int) connCost {
	return connCost{bytes: (c.bytes - base.bytes) / float64(n), goroutines: (c.goroutines - base.goroutines) / float64(n)}
}

// TestWrongPasswordFloods: floods of wrong passwords, from one address and
// from many, with the shield on, are each answered NO (and BYE after
// max_login_tries on a connection) and never let anyone in, with
// goroutines and memory bounded; another user logs in meanwhile.
func TestWrongPasswordFloods(t *testing.T) {
	const conns, concurrent = 120, 20 // per flood; each tries max_login_tries passwords
	testkit.CheckNoLeaks(t)
	pass, other := testSecret("flooded"), testSecret("bystander")
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass}, testkit.MemUser{Name: "bob", Password: other})
	sh := shield.New(shield.NewMemoryStore(1000), shield.NewSecret(), shield.Options{
		Params:  shield.Params{Time: 1, Memory: 64, Threads: 1}, // the argon2 cost is the shield's own test
		OnError: func(err error) { t.Errorf("shield: %v", err) },
	})
	defer sh.Close()
	cfg := rigConfig(t, config.TLSNone, up, config.TLSNone)
	p := startRig(t, cfg, Options{Shield: sh})
	tries := cfg.Limits.MaxLoginTries

	for _, flood := range []struct {
		name    string
		sources int
	}{{"from one address", 1}, {"from many addresses", 100}} {
		t.Run(flood.name, func(t *testing.T) {
			base := measure()
			var peak atomic.Int64
			var answered atomic.Int64
			sem := make(chan struct{}, concurrent)
			var wg sync.WaitGroup
			for i := range conns {
				sem <- struct{}{}
				tc := dialRig(t, p.addr, fmt.Sprintf("127.0.2.%d", 1+i%flood.sources))
				wg.Go(func() {
					defer func() { <-sem }()
					defer tc.Conn.Close()
					if _, err := testkit.ReadLine(tc.Reader); err != nil {
						t.Errorf("greeting: %v", err)
						return
					}
					for j := range tries {
						// Some retry the same password, most try new ones.
						tag := fmt.Sprintf("a%d", j)
						fmt.Fprintf(tc.Conn, "%s LOGIN alice wrong-%d-%d\r\n", tag, i%7, j)
						lines, err := testkit.ReadUntil(tc.Reader, tag+" ")
						if err != nil || !strings.HasPrefix(lines[len(lines)-1], tag+" NO ") {
							t.Errorf("wrong password answered %q, %v", lines, err)
							return
						}
						answered.Add(1)
						storeMax(&peak, int64(runtime.NumGoroutine()))
					}
					if out, _ := tc.ReadToEnd(); !strings.Contains(out, "* BYE Too many failed logins") {
						t.Errorf("after %d failed logins: %q, want BYE", tries, out)
					}
				})
			}
			// Meanwhile, someone else logs in.
			bob := dialRig(t, p.addr, "127.0.3.1")
			bob.Line()
			bob.Send("a LOGIN bob " + other + "\r\nb LOGOUT\r\n")
			if l := bob.Line(); !strings.HasPrefix(l, "a OK ") {
				t.Errorf("another user during the flood: %q", l)
			}
			bob.Until("b OK")
			wg.Wait()
			bob.Conn.Close()
			p.waitSessions(t, 0)
			after := measure()
			t.Logf("%d wrong passwords answered; goroutines at most %d (from %d); %.1f KiB more in use after",
				answered.Load(), peak.Load(), int(base.goroutines), (after.bytes-base.bytes)/1024)
			tally.add("wrong passwords answered", answered.Load())
			if peak.Load() > int64(base.goroutines)+4*concurrent+50 {
				t.Errorf("%d goroutines during a flood of %d concurrent connections", peak.Load(), concurrent)
			}
			if after.bytes-base.bytes > 16<<20 {
				t.Errorf("%.1f MiB more in use after the flood", (after.bytes-base.bytes)/(1<<20))
			}
		})
	}
	if ev := p.logs.Events("auth_success"); len(ev) != 2 {
		t.Errorf("auth_success events %v, want bob's two logins only", ev)
	}
}

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for old := m.Load(); v > old && !m.CompareAndSwap(old, v); old = m.Load() {
	}
}

// TestStartTLSInjection: plaintext commands pipelined after STARTTLS are
// never executed: refused when they arrive with STARTTLS, and a TLS
// handshake failure when they come after the OK.
func TestStartTLSInjection(t *testing.T) {
	testkit.CheckNoLeaks(t)
	up, accepted := testkit.Counting(t, "")
	p, addrs, _ := rigThreeListeners(t, up)

	tc := rigGreeted(t, addrs[config.TLSStartTLS])
	tc.Send("a STARTTLS\r\nb LOGIN alice injected-pass\r\n")
	out, err := tc.ReadToEnd()
	if err != nil || !strings.Contains(out, "a BAD [CLIENTBUG]") || !strings.Contains(out, "* BYE ") {
		t.Errorf("STARTTLS with a pipelined LOGIN: %q, %v", out, err)
	}

	tc = rigGreeted(t, addrs[config.TLSStartTLS])
	tc.Send("a STARTTLS\r\n")
	if l := tc.Line(); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc.Send("b LOGIN alice injected-pass\r\n")
	if out, _ := tc.ReadToEnd(); strings.Contains(out, "b ") {
		t.Errorf("plaintext after STARTTLS was answered: %q", out)
	}
	p.waitSessions(t, 0)
	if accepted.Load() != 0 {
		t.Error("the injected LOGIN reached the upstream")
	}
	tally.add("bad inputs tried", 2)
}

// TestBinaryJunk: random bytes on every kind of listener end with a
// well-formed BYE or a closed connection, never a panic, and no login.
func TestBinaryJunk(t *testing.T) {
	const perListener, concurrent = 60, 12
	testkit.CheckNoLeaks(t)
	up, accepted := testkit.Counting(t, "")
	p, addrs, _ := rigThreeListeners(t, up)
	rng := rand.New(rand.NewPCG(2026, 7))
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrent)
	var sent atomic.Int64
	var mu sync.Mutex
	var outputs []string // of the plaintext listeners, checked at the end
	tried := 0
	for _, listener := range []string{config.TLSNone, config.TLSStartTLS, config.TLSImplicit} {
		for range perListener {
			junk := make([]byte, 1+rng.IntN(1<<rng.IntN(17)))
			for i := range junk {
				junk[i] = byte(rng.UintN(256))
			}
			if rng.IntN(4) == 0 { // junk that looks like the start of a command
				junk = append([]byte("a LOGIN {"), junk...)
			}
			tried++
			sem <- struct{}{}
			tc := dialRig(t, addrs[listener], "")
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := tc.Conn.Write(junk); err == nil {
					sent.Add(int64(len(junk)))
				}
				tc.Conn.(*net.TCPConn).CloseWrite()
				out, err := tc.ReadToEnd()
				if err != nil && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%d junk bytes to %s: %v, want the connection closed", len(junk), listener, err)
				}
				if listener != config.TLSImplicit {
					mu.Lock()
					outputs = append(outputs, out)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	for _, out := range outputs {
		frontCheckOutput(t, out, config.Default().Limits.MaxLine)
	}
	p.waitSessions(t, 0)
	t.Logf("%d junk inputs (%d KiB) tried on three listeners", tried, sent.Load()>>10)
	tally.add("bad inputs tried", int64(tried))
	if ev := p.logs.Events("panic"); len(ev) > 0 {
		t.Errorf("sessions panicked: %v", ev)
	}
	if accepted.Load() != 0 {
		t.Error("junk reached the upstream")
	}
}

// appWorks is a mail app at addr (TLS with conf) that logs in as alice with pass,
// SELECTs INBOX and logs out, within limit; when says when, in the error.
func appWorks(t *testing.T, addr string, conf *tls.Config, pass string, limit time.Duration, when string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(limit))
	app := &testkit.Client{T: t, Conn: conn, Reader: rigReader(conn)}
	app.Line()
	app.Send("a LOGIN alice " + pass + "\r\nb SELECT INBOX\r\n")
	if l := app.Until("b "); !strings.HasPrefix(l[len(l)-1], "b OK") {
		t.Errorf("a normal session %s: %q", when, l)
	}
	app.Send("c LOGOUT\r\n")
	app.Until("c OK")
}
