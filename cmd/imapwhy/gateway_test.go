//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/redistest"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// The gateway test runs what docs/gateway.md describes, with the configs
// in configs/cluster: Debian's haproxy (send-proxy-v2) in front of two
// `imapwhy serve` processes sharing Debian's redis-server, in front of
// Dovecot listening with haproxy = yes. Mail apps connect to the balancer
// from 127.0.0.3 (and its neighbours); the balancer connects to the
// instances from 127.0.0.1, the one trusted source.

// gwInstance is one imapwhy behind the balancer.
type gwInstance struct {
	name  string
	proc  *serveProcess
	admin string // host:port of /healthz, /readyz
	web   string // host:port of the incident pages
	addr  string // the IMAP listener
}

// gwRig is the whole deployment.
type gwRig struct {
	t        *testing.T
	front    string // the balancer's address
	inst     [2]*gwInstance
	dovecot  *dovecottest.Server
	redis    *redistest.Server
	certPool *x509.CertPool
}

// writeTestCert writes a certificate for 127.0.0.1, the one every
// instance serves, and returns the files and a pool trusting it.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := testkit.NewCA(t, "imapwhy gateway test CA")
	leaf := ca.Leaf(t, "127.0.0.1")
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, ca.ChainPEM(leaf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, leaf.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Pool()
}

// haproxyBinary is haproxy on PATH or where Debian puts it (/usr/sbin,
// which a user's PATH may lack); "" if neither.
func haproxyBinary() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	return ""
}

// startGateway starts Dovecot, Redis, two instances and HAProxy.
func startGateway(t *testing.T) *gwRig {
	t.Helper()
	if haproxyBinary() == "" {
		t.Fatal("haproxy not found (apt-get install haproxy; scripts/test installs it)")
	}
	bin := buildImapwhy(t)
	dir := t.TempDir()
	r := &gwRig{t: t, front: testkit.FreeAddr(t)}
	r.dovecot = dovecottest.Start(t, dovecottest.Options{HAProxy: true})
	r.redis = redistest.Start(t)
	caFile := filepath.Join(dir, "dovecot-ca.pem")
	if err := os.WriteFile(caFile, r.dovecot.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := writeTestCert(t, dir)
	r.certPool = pool
	secret := make([]byte, 32)
	rand.Read(secret)
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl := template.Must(template.ParseFiles(filepath.Join("..", "..", "configs", "cluster", "imapwhy.yaml.tmpl")))
	for i, name := range []string{"a", "b"} {
		in := &gwInstance{name: name, admin: testkit.FreeAddr(t), web: testkit.FreeAddr(t), addr: testkit.FreeAddr(t)}
		cfgFile := filepath.Join(dir, "imapwhy-"+name+".yaml")
		f, err := os.Create(cfgFile)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.Execute(f, map[string]string{
			"StateDir": filepath.Join(dir, "state-"+name), "CertFile": certFile, "KeyFile": keyFile,
			"Admin": in.admin, "Listen": in.addr, "Balancer": "127.0.0.1/32",
			"Upstream": r.dovecot.HAProxyIMAPS, "UpstreamCA": caFile, "Web": in.web,
			"Redis": r.redis.Addr, "SecretFile": secretFile,
		})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		in.proc = startServe(t, bin, cfgFile)
		in.proc.expect(`listening on`)
		r.inst[i] = in
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("instance %s log:\n%s", name, in.proc.stderr)
			}
		})
	}
	r.startHAProxy(dir)
	return r
}

// startHAProxy runs haproxy in the foreground with configs/cluster's file
// and waits until both instances are up behind it.
func (r *gwRig) startHAProxy(dir string) {
	t := r.t
	t.Helper()
	cfg, err := filepath.Abs(filepath.Join("..", "..", "configs", "cluster", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	_, portA, _ := net.SplitHostPort(r.inst[0].admin)
	_, portB, _ := net.SplitHostPort(r.inst[1].admin)
	env := append(os.Environ(),
		"IMAPWHY_FRONTEND="+r.front,
		"IMAPWHY_A="+r.inst[0].addr, "IMAPWHY_B="+r.inst[1].addr,
		"IMAPWHY_A_ADMIN_PORT="+portA, "IMAPWHY_B_ADMIN_PORT="+portB)
	check := exec.Command(haproxyBinary(), "-c", "-f", cfg)
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c %s: %v\n%s", cfg, err, out)
	}
	cmd := exec.Command(haproxyBinary(), "-db", "-f", cfg)
	cmd.Env = env
	out := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out)
		}
	})
	// Both instances answer through the balancer (round robin: two
	// logins in a row reach both).
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := r.login("127.0.0.3", "alice", "alicepass")
		b := r.login("127.0.0.3", "alice", "alicepass")
		if strings.HasPrefix(a.tagged, "a1 OK") && strings.HasPrefix(b.tagged, "a1 OK") &&
			r.logged(0, "auth_success") && r.logged(1, "auth_success") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the balancer does not reach both instances: %q %q (%v %v)\n%s", a.tagged, b.tagged, a.err, b.err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// addUsers adds n Dovecot users named prefix0... with password "pw": each
// case logs in as its own users, below the per-user limit.
func (r *gwRig) addUsers(t *testing.T, prefix string, n int) []string {
	t.Helper()
	var users []string
	for i := range n {
		users = append(users, fmt.Sprintf("%s%d", prefix, i))
	}
	if err := r.dovecot.AddUsers("pw", users...); err != nil {
		t.Fatal(err)
	}
	return users
}

// waitLog waits up to 5 s for a line of instance i's log matching re
// (the log reaches the test through a pipe, a moment after the answer).
func (r *gwRig) waitLog(i int, re string) bool {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(5 * time.Second)
	for !rx.MatchString(r.inst[i].proc.stderr.String()) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// logged reports whether instance i has logged an event.
func (r *gwRig) logged(i int, event string) bool {
	return strings.Contains(r.inst[i].proc.stderr.String(), `"event":"`+event+`"`)
}

// gwAnswer is what one login through the balancer was answered.
type gwAnswer struct {
	lines  []string
	tagged string
	err    error
}

// session logs in through the balancer from the local address from and
// returns the connection, logged in or not.
func (r *gwRig) session(from, user, pass string) (*tls.Conn, gwAnswer) {
	return r.sessionTo(r.front, from, user, pass)
}

// sessionTo is session to addr (an instance, past the balancer).
func (r *gwRig) sessionTo(addr, from, user, pass string) (*tls.Conn, gwAnswer) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(&d, "tcp", addr, &tls.Config{RootCAs: r.certPool, ServerName: "127.0.0.1"})
	if err != nil {
		return nil, gwAnswer{err: err}
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	var a gwAnswer
	g, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, gwAnswer{err: fmt.Errorf("greeting: %w", err)}
	}
	a.lines = append(a.lines, g)
	fmt.Fprintf(c, "a1 LOGIN %q %q\r\n", user, pass)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			a.err = err
			return nil, a
		}
		l = strings.TrimRight(l, "\r\n")
		a.lines = append(a.lines, l)
		if strings.HasPrefix(l, "a1 ") {
			a.tagged = l
			c.SetDeadline(time.Time{})
			return c, a
		}
	}
}

// login logs in through the balancer and logs out.
func (r *gwRig) login(from, user, pass string) gwAnswer {
	return r.loginTo(r.front, from, user, pass)
}

// loginTo is login to addr.
func (r *gwRig) loginTo(addr, from, user, pass string) gwAnswer {
	c, a := r.sessionTo(addr, from, user, pass)
	if c != nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "a2 LOGOUT\r\n")
		io.Copy(io.Discard, c)
		c.Close()
	}
	return a
}

// get fetches an admin or web URL; TLS for the web pages.
func (r *gwRig) get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: r.certPool, ServerName: "127.0.0.1"},
	}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *gwRig) healthz(i int) string {
	_, body := r.get("http://" + r.inst[i].admin + "/healthz")
	return strings.TrimSpace(body)
}

// countDovecot counts the lines of Dovecot's log matching re.
func (r *gwRig) countDovecot(re string) int {
	rx := regexp.MustCompile(re)
	return len(rx.FindAllString(r.dovecot.LogTail(100000), -1))
}

// TestGateway runs the deployment through its cases, in one setup (it
// takes seconds to start): each case uses its own users and client
// addresses, and the case that kills an instance comes last.
func TestGateway(t *testing.T) {
	r := startGateway(t)

	t.Run("client address", func(t *testing.T) {
		// From 127.0.0.3 through the balancer (which connects from
		// 127.0.0.1): the instance and Dovecot both see 127.0.0.3.
		if a := r.login("127.0.0.3", "alice", "alicepass"); !strings.HasPrefix(a.tagged, "a1 OK") {
			t.Fatalf("login: %q %v", a.lines, a.err)
		}
		re := `"client":"127\.0\.0\.3:\d+","via":"127\.0\.0\.1:\d+"[^\n]*"event":"auth_success"`
		if !r.waitLog(0, re) && !r.waitLog(1, re) {
			t.Error("no auth_success with the PROXY header's client 127.0.0.3 in the instances' logs")
		}
		if strings.Contains(r.inst[0].proc.stderr.String()+r.inst[1].proc.stderr.String(), `"event":"proxy_header_refused"`) {
			t.Error("a header from the balancer was refused")
		}
		if n := r.countDovecot(`Login: user=<alice>[^\n]*rip=127\.0\.0\.3`); n == 0 {
			t.Errorf("Dovecot's log has no login of alice from 127.0.0.3 (PROXY out):\n%s", r.dovecot.LogTail(10))
		}
	})

	t.Run("stale password held across instances", func(t *testing.T) {
		if err := r.dovecot.AddUser("bob2", "bobpass"); err != nil {
			t.Fatal(err)
		}
		if a := r.login("127.0.0.4", "bob2", "bobpass"); !strings.HasPrefix(a.tagged, "a1 OK") {
			t.Fatalf("first login: %q %v", a.lines, a.err)
		}
		if err := r.dovecot.SetPassword("bob2", "changed-on-the-web"); err != nil {
			t.Fatal(err)
		}
		// The phone keeps trying the old password: five logins, which
		// round robin spreads over both instances.
		held := 0
		for range 5 {
			a := r.login("127.0.0.4", "bob2", "bobpass")
			if !strings.HasPrefix(a.tagged, "a1 NO") {
				t.Fatalf("stale password answered %q %v", a.lines, a.err)
			}
			if strings.Contains(strings.Join(a.lines, "\n"), "not sent") || strings.Contains(a.tagged, "several times") {
				held++
			}
		}
		n := r.countDovecot(`passwd-file\(bob2,[^\n]*Password mismatch`)
		if n == 0 || n > 3 {
			t.Errorf("Dovecot saw the stale password %d times, want 1 to shield.forwarded_tries (3) in all", n)
		}
		t.Logf("Dovecot saw the stale password %d times of 5", n)
	})

	t.Run("per-user limit across instances", func(t *testing.T) {
		// Someone guesses carol2's password through the balancer: the
		// per-user limit counts the failures of every instance.
		if err := r.dovecot.AddUser("carol2", "carolpass"); err != nil {
			t.Fatal(err)
		}
		tried, limited := 0, 0
		start := time.Now()
		for i := range 10 {
			a := r.login("127.0.0.5", "carol2", fmt.Sprintf("guess%d", i))
			switch {
			case strings.Contains(a.tagged, "AUTHENTICATIONFAILED"):
				tried++
			case strings.Contains(a.tagged, "UNAVAILABLE"):
				limited++
			default:
				t.Fatalf("guess %d: %q %v", i, a.lines, a.err)
			}
		}
		// per_user_logins_per_minute: 6 in all, and one more for every 10 s
		// the guesses took (the budget refills); per instance it would be
		// all 10.
		refilled := int(time.Since(start) / (10 * time.Second))
		if tried < 6 || tried > 6+refilled {
			t.Errorf("%d of 10 guesses reached the server through two instances in %s, want 6 (+%d refilled)",
				tried, time.Since(start).Round(time.Second), refilled)
		}
		if n := r.countDovecot(`passwd-file\(carol2,[^\n]*Password mismatch`); n != tried {
			t.Errorf("Dovecot saw %d guesses, the instances said %d went through", n, tried)
		}
		if !r.waitLog(0, `"cause":"client.rate_limited"`) && !r.waitLog(1, `"cause":"client.rate_limited"`) {
			t.Error("no client.rate_limited in the logs")
		}
	})

	t.Run("incident link opens on the other instance", func(t *testing.T) {
		a := r.login("127.0.0.6", "nosuchuser", "whatever")
		all := strings.Join(a.lines, "\n")
		m := regexp.MustCompile(`https://(127\.0\.0\.1:\d+)/why/([a-z2-7]+)`).FindStringSubmatch(all)
		if m == nil {
			t.Fatalf("no incident link in %q", all)
		}
		other := r.inst[0].web
		if m[1] == other {
			other = r.inst[1].web
		}
		code, body := r.get("https://" + other + "/why/" + m[2])
		if code != http.StatusOK {
			t.Fatalf("the link made on %s does not open on %s: %d %s", m[1], other, code, body)
		}
		if code, _ := r.get("https://" + other + "/why/" + strings.Repeat("a", len(m[2]))); code == http.StatusOK {
			t.Error("an unknown incident opens")
		}
	})

	t.Run("spoofed header from an untrusted source", func(t *testing.T) {
		// Straight to an instance from 127.0.0.7: a PROXY header in the
		// IMAP stream claiming 203.0.113.9 is a bad command, and the login
		// after it is 127.0.0.7's.
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}}
		c, err := tls.DialWithDialer(&d, "tcp", r.inst[0].addr, &tls.Config{RootCAs: r.certPool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		br.ReadString('\n')
		fmt.Fprintf(c, "PROXY TCP4 203.0.113.9 127.0.0.1 4444 993\r\n")
		if l, _ := br.ReadString('\n'); !strings.Contains(l, "BAD") {
			t.Errorf("the spoofed header was answered %q", l)
		}
		fmt.Fprintf(c, "a1 LOGIN spoofer wrongpass\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil || strings.HasPrefix(l, "a1 ") {
				break
			}
		}
		if !r.waitLog(0, `"client":"127\.0\.0\.7:\d+"[^\n]*"event":"auth_failure"`) {
			t.Error("no auth_failure from the TCP peer 127.0.0.7")
		}
		if strings.Contains(r.inst[0].proc.stderr.String(), "203.0.113.9") {
			t.Error("the spoofed address reached the log")
		}
		if r.countDovecot(`203\.0\.113\.9`) != 0 {
			t.Error("the spoofed address reached Dovecot")
		}
	})

	t.Run("Redis stopped and started", func(t *testing.T) {
		users := r.addUsers(t, "redis", 11)
		r.redis.Stop()
		// Logins go on; each instance finds Redis gone at its next login.
		for i := 0; i < 10 && (r.healthz(0) == "ok" || r.healthz(1) == "ok"); i++ {
			if a := r.login("127.0.0.8", users[i], "pw"); !strings.HasPrefix(a.tagged, "a1 OK") {
				t.Fatalf("login without Redis: %q %v", a.lines, a.err)
			}
		}
		for i := range 2 {
			if h := r.healthz(i); !strings.HasPrefix(h, "degraded") {
				t.Errorf("instance %s /healthz %q without Redis, want degraded", r.inst[i].name, h)
			}
			if !r.logged(i, "state_degraded") {
				t.Errorf("instance %s logged no state_degraded", r.inst[i].name)
			}
		}
		_, m := r.get("http://" + r.inst[0].admin + "/metrics")
		if !strings.Contains(m, "imapwhy_state_degraded 1") {
			t.Error("imapwhy_state_degraded is not 1")
		}
		r.redis.Start()
		deadline := time.Now().Add(15 * time.Second)
		for r.healthz(0) != "ok" || r.healthz(1) != "ok" {
			if time.Now().After(deadline) {
				t.Fatalf("not recovered: %q %q", r.healthz(0), r.healthz(1))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if a := r.login("127.0.0.8", users[10], "pw"); !strings.HasPrefix(a.tagged, "a1 OK") {
			t.Fatalf("login after Redis came back: %q %v", a.lines, a.err)
		}
	})

	t.Run("one instance killed with sessions open", func(t *testing.T) {
		users := r.addUsers(t, "kill", 10)
		var open []*tls.Conn
		for i := range 4 {
			c, a := r.session("127.0.0.9", users[i], "pw")
			if !strings.HasPrefix(a.tagged, "a1 OK") {
				t.Fatalf("session: %q %v", a.lines, a.err)
			}
			open = append(open, c)
		}
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		r.inst[0].proc.cmd.Process.Kill()
		r.inst[0].proc.cmd.Wait()
		for i := range 6 {
			if a := r.login("127.0.0.10", users[4+i], "pw"); !strings.HasPrefix(a.tagged, "a1 OK") {
				t.Fatalf("login %d after the kill: %q %v", i, a.lines, a.err)
			}
		}
	})

	t.Run("readyz fails while draining", func(t *testing.T) {
		// The survivor, with a session open, gets SIGTERM: it stays up for
		// the session (timeouts.drain) and tells the balancer not to send
		// it more.
		b := r.inst[1]
		if code, body := r.get("http://" + b.admin + "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz before SIGTERM: %d %q", code, body)
		}
		c, a := r.session("127.0.0.11", "alice", "alicepass")
		if !strings.HasPrefix(a.tagged, "a1 OK") {
			t.Fatalf("session: %q %v", a.lines, a.err)
		}
		defer c.Close()
		b.proc.cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := r.get("http://" + b.admin + "/readyz")
			if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz while draining: %d %q", code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The drained session still works.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "a2 NOOP\r\n")
		br := bufio.NewReader(c)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("the session open at SIGTERM: %v", err)
			}
			if strings.HasPrefix(l, "a2 ") {
				if !strings.HasPrefix(l, "a2 OK") {
					t.Errorf("NOOP while draining: %q", l)
				}
				break
			}
		}
	})
}
