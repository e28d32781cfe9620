package proxy_test

// The upstream connection made before the client's login (upstream.predial),
// against a real Dovecot: the login goes over it; a client that leaves, or
// a login the shield holds, closes it with LOGOUT and nothing else; an
// upstream that dropped it still gives a working login.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// tap dials the upstream for the proxy (Options.Dial) and keeps each
// connection with what went over it.
type tap struct {
	mu    sync.Mutex
	conns []*tapped
}

// tapped is one upstream connection: what the proxy wrote on it, and
// whether the proxy closed it.
type tapped struct {
	net.Conn
	mu     sync.Mutex
	wrote  bytes.Buffer
	closed bool
}

func (tp *tap) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &tapped{Conn: c}
	tp.mu.Lock()
	tp.conns = append(tp.conns, tc)
	tp.mu.Unlock()
	return tc, nil
}

// count is the number of upstream connections dialled so far.
func (tp *tap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.conns)
}

// conn is the i-th upstream connection (from 0).
func (tp *tap) conn(i int) *tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.conns[i]
}

func (c *tapped) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.wrote.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tapped) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}

// state is what the proxy wrote and whether it closed the connection.
func (c *tapped) state() (wrote string, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrote.String(), c.closed
}

// predialRig is a proxy with plaintext listeners in front of Dovecot's
// plaintext, implicit-TLS and STARTTLS ports, each dialled before the
// login (the default), through a tap.
type predialRig struct {
	dc    *dovecottest.Server
	tap   *tap
	addrs map[string]string // listener by upstream TLS mode
	logs  *lockedBuffer
	m     *metrics.Metrics
	srv   *proxy.Server
}

var predialUpstreams = []string{config.TLSNone, config.TLSImplicit, config.TLSStartTLS}

func startPredialRig(t *testing.T, sh *shield.Shield) *predialRig {
	t.Helper()
	return startPredialRigWith(t, sh, dovecottest.Options{}, "", "")
}

// startPredialRigWith is startPredialRig with Dovecot's options, and more
// settings for each listener and each listener's upstream (YAML flow
// mapping entries, each starting with a comma).
func startPredialRigWith(t *testing.T, sh *shield.Shield, dco dovecottest.Options, listener, upstream string) *predialRig {
	t.Helper()
	proxy.RegisterTestSecrets(secrets...)
	r := &predialRig{
		dc:    dovecottest.Start(t, dco),
		tap:   &tap{},
		addrs: map[string]string{},
		logs:  &lockedBuffer{},
		m:     metrics.New(),
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nlog: {format: json, level: debug}\n", t.TempDir())
	b.WriteString("limits: {failure_delay_base: 10ms, failure_delay_max: 10ms}\nlisteners:\n")
	for i, mode := range predialUpstreams {
		up := map[string]string{config.TLSNone: r.dc.IMAP, config.TLSImplicit: r.dc.IMAPS, config.TLSStartTLS: r.dc.Insecure}[mode]
		fmt.Fprintf(&b, "  - {address: %q, tls: none%s, upstream: {address: %q, tls: %s%s}}\n",
			listenHosts[i]+":0", listener, up, mode, upstream)
	}
	cfg, err := config.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	t.Cleanup(func() { (&e2e{logs: r.logs}).checkLogHasNoSecrets(t) })
	r.srv = startE2EProxy(t, cfg, proxy.Options{UpstreamRoots: r.dc.CAPool, Dial: r.tap.dial, Shield: sh, Metrics: r.m}, r.logs)
	for i, a := range r.srv.Addrs() {
		r.addrs[predialUpstreams[i]] = a.String()
	}
	return r
}

// greeted connects to the listener in front of the upstream mode and
// reads the greeting; it then waits until the connection made before the
// login is ready (Dovecot's greeting read), and returns it too: the
// client has not said a word yet.
func (r *predialRig) greeted(t *testing.T, mode string) (*testkit.Client, *tapped) {
	t.Helper()
	return r.greetedAfter(t, mode, "")
}

// greetedAfter is greeted for a client that first sends head.
func (r *predialRig) greetedAfter(t *testing.T, mode, head string) (*testkit.Client, *tapped) {
	t.Helper()
	ready, dialled := len(r.logs.events("predial_ready")), r.tap.count()
	conn, err := net.DialTimeout("tcp", r.addrs[mode], e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(e2eTimeout))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	c := &testkit.Client{T: t, Conn: conn, Reader: bufio.NewReader(conn)}
	c.Greeting()
	testkit.WaitFor(t, func() bool { return len(r.logs.events("predial_ready")) > ready })
	return c, r.tap.conn(dialled)
}

// TestPredialUsedForLogin: before the client says anything, the proxy has
// connected to Dovecot (plaintext, implicit TLS with its certificate
// verified, STARTTLS); the login and the session then go over that
// connection: no other is dialled.
func TestPredialUsedForLogin(t *testing.T) {
	r := startPredialRig(t, nil)
	for i, mode := range predialUpstreams {
		t.Run("upstream="+mode, func(t *testing.T) {
			c, _ := r.greeted(t, mode)
			if got := c.Command("a LOGIN alice alicepass"); !strings.HasPrefix(got[len(got)-1], "a OK ") {
				t.Fatalf("LOGIN: %q", got)
			}
			if got := c.Command("b SELECT INBOX"); !strings.HasPrefix(got[len(got)-1], "b OK ") {
				t.Fatalf("SELECT: %q", got)
			}
			c.Command("c LOGOUT")
			if n := r.tap.count(); n != i+1 {
				t.Errorf("%d upstream connections for %d logins: the login did not use the one made before it", n, i+1)
			}
			if mode == config.TLSNone {
				wrote, _ := r.tap.conn(i).state()
				if !strings.Contains(wrote, "AUTHENTICATE PLAIN") || !strings.Contains(wrote, "SELECT INBOX") {
					t.Errorf("the pre-dialled connection carried %q, want the login and the session", wrote)
				}
			}
		})
	}
	m := gatherCounter(t, r.m, "imapwhy_upstream_predials_total", "used")
	if m != float64(len(predialUpstreams)) {
		t.Errorf("upstream_predials_total{outcome=used} = %v, want %d", m, len(predialUpstreams))
	}
}

// TestPredialSendsClientAddress: behind a trusted balancer, with send_id,
// the connection made before the login tells Dovecot the client's address
// from the PROXY header (ID's x-originating-ip), and the login on it shows
// that address in Dovecot's log.
func TestPredialSendsClientAddress(t *testing.T) {
	r := startPredialRigWith(t, nil, dovecottest.Options{TrustedNetworks: []string{"127.0.0.0/8"}},
		", proxy_protocol: {trusted: [127.0.0.0/8]}", ", send_id: true")
	c, _ := r.greetedAfter(t, config.TLSNone, "PROXY TCP4 192.0.2.7 127.0.0.1 40711 143\r\n")
	if got := c.Command("a LOGIN alice alicepass"); !strings.HasPrefix(got[len(got)-1], "a OK ") {
		t.Fatalf("LOGIN: %q", got)
	}
	if n := r.tap.count(); n != 1 {
		t.Errorf("%d upstream connections, want the one made before the login", n)
	}
	testkit.WaitFor(t, func() bool {
		return strings.Contains(r.dc.LogTail(20), "Login: user=<alice>") && strings.Contains(r.dc.LogTail(20), "rip=192.0.2.7")
	})
}

// TestPredialAbandoned: a client that connects and leaves without a login
// gets its upstream connection closed with LOGOUT, and nothing else sent
// on it.
func TestPredialAbandoned(t *testing.T) {
	r := startPredialRig(t, nil)
	c, up := r.greeted(t, config.TLSNone)
	c.Conn.Close()
	testkit.WaitFor(t, func() bool { _, closed := up.state(); return closed })
	if wrote, _ := up.state(); wrote != "a1 LOGOUT\r\n" {
		t.Errorf("the proxy wrote %q on the unused connection, want only LOGOUT", wrote)
	}
	testkit.WaitFor(t, func() bool { return gatherCounter(t, r.m, "imapwhy_upstream_predials_total", "unused") == 1 })
}

// TestPredialShutdown: Shutdown says BYE to a client before its login and
// closes its upstream connection with LOGOUT before it returns.
func TestPredialShutdown(t *testing.T) {
	r := startPredialRig(t, nil)
	c, up := r.greeted(t, config.TLSImplicit)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, closed := up.state(); !closed {
		t.Error("Shutdown returned with the upstream connection made before login still open")
	}
	if l := c.Line(); !strings.HasPrefix(l, "* BYE ") {
		t.Errorf("the client got %q, want BYE", l)
	}
	// Dovecot's log process writes the line a moment later.
	testkit.WaitFor(t, func() bool { return strings.Contains(r.dc.LogTail(20), "Aborted login by logging out") })
}

// TestPredialShieldHeld: a stale password is forwarded forwarded_tries
// times; the next login, held by the shield, sends nothing on its
// pre-dialled connection but LOGOUT.
func TestPredialShieldHeld(t *testing.T) {
	sh := shield.New(shield.NewMemoryStore(100), shield.NewSecret(), shield.Options{
		Params:  shield.Params{Time: 1, Memory: 64, Threads: 1},
		OnError: func(err error) { t.Errorf("shield store: %v", err) },
	})
	t.Cleanup(func() { sh.Close() }) // after the proxy's shutdown
	r := startPredialRig(t, sh)
	tries := config.Default().Shield.ForwardedTries
	for i := range tries + 1 {
		c, up := r.greeted(t, config.TLSNone)
		got := c.Command("a LOGIN alice " + wrongPassword)
		if !strings.HasPrefix(got[len(got)-1], "a NO ") {
			t.Fatalf("attempt %d: %q", i+1, got)
		}
		c.Conn.Close()
		testkit.WaitFor(t, func() bool { _, closed := up.state(); return closed })
		wrote, _ := up.state()
		sent := strings.Contains(wrote, "AUTHENTICATE") || strings.Contains(wrote, "LOGIN ")
		if held := i == tries; sent == held {
			t.Errorf("attempt %d (held %v): the proxy wrote %q upstream", i+1, held, wrote)
		}
	}
	if wrote, _ := r.tap.conn(tries).state(); wrote != "a1 LOGOUT\r\n" {
		t.Errorf("the held login's connection carried %q, want only LOGOUT", wrote)
	}
	if ev := r.logs.events("auth_failure"); len(ev) != tries+1 || !strings.Contains(ev[tries], `"held":true`) {
		t.Errorf("auth_failure events: %q", ev)
	}
}

// TestPredialDroppedByUpstream: Dovecot's login process dies while the
// pre-dialled connection waits; the client's login then dials anew and
// works, and is not told about the dead connection.
func TestPredialDroppedByUpstream(t *testing.T) {
	r := startPredialRig(t, nil)
	for i, mode := range []string{config.TLSNone, config.TLSImplicit} {
		t.Run("upstream="+mode, func(t *testing.T) {
			first := r.tap.count()
			c, up := r.greeted(t, mode)
			killPeer(t, up.Conn)
			testkit.WaitFor(t, func() bool { _, closed := up.state(); return closed })
			if got := c.Command("a LOGIN alice alicepass"); !strings.HasPrefix(got[len(got)-1], "a OK ") {
				t.Fatalf("LOGIN after the upstream dropped the pre-dialled connection: %q", got)
			}
			if got := c.Command("b SELECT INBOX"); !strings.HasPrefix(got[len(got)-1], "b OK ") {
				t.Fatalf("SELECT: %q", got)
			}
			if n := r.tap.count(); n != first+2 {
				t.Errorf("%d upstream connections, want %d: the dropped one and a new one for the login", n-first, 2)
			}
			if got := gatherCounter(t, r.m, "imapwhy_upstream_predials_total", "stale"); got != float64(i+1) {
				t.Errorf("upstream_predials_total{outcome=stale} = %v, want %d", got, i+1)
			}
		})
	}
}

// killPeer kills the process at the other end of the loopback TCP
// connection c (here Dovecot's imap-login, which Dovecot restarts): the
// server side of the connection goes away as in a crash.
func killPeer(t *testing.T, c net.Conn) {
	t.Helper()
	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	inode := socketInode(t, remote.Port, local.Port)
	pid := socketOwner(t, inode)
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Kill()
	}
	if err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

// socketInode finds, in /proc/net/tcp, the inode of the socket whose
// local port is lport and remote port rport.
func socketInode(t *testing.T, lport, rport int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		if hexPort(f[1]) == lport && hexPort(f[2]) == rport {
			return f[9]
		}
	}
	t.Fatalf("no socket %d -> %d in /proc/net/tcp", lport, rport)
	return ""
}

func hexPort(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseUint(p, 16, 16)
	return int(n)
}

// socketOwner is the process holding the socket with the inode.
func socketOwner(t *testing.T, inode string) int {
	t.Helper()
	want := "socket:[" + inode + "]"
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && link == want {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if pid != os.Getpid() {
				return pid
			}
		}
	}
	t.Fatalf("no process holds %s", want)
	return 0
}

// gatherCounter is the value of the counter name with the one label value
// in m.
func gatherCounter(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetValue() == label {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}
