// Package redistest runs a real Redis (Debian's redis-server) for tests:
// on a free loopback port, in a temporary directory, without persistence,
// stopped when the test ends. Stop and Start again on the same port test
// what happens while it is away.
//
//	r := redistest.Start(t)
//	// state.redis.address: r.Addr
//	r.Stop()
//	r.Start()
//
// A missing redis-server fails the test (it never skips): run scripts/test,
// which installs it.
package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// startTimeout bounds the wait for redis-server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server process.
type Server struct {
	// Addr is 127.0.0.1:port; it stays the same across Stop and Start.
	Addr string
	// Password is what AUTH needs ("" for none).
	Password string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate, with Options.TLS; "" otherwise.
	CAFile string

	t   testing.TB
	dir string
	tls *tls.Config // the client side of Options.TLS, nil without

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Options change the server. The zero value is fine.
type Options struct {
	// Password requires AUTH with it (requirepass).
	Password string
	// TLS serves TLS only (tls-port), with a certificate for 127.0.0.1
	// from a CA of its own (Server.CAFile).
	TLS bool
}

// Start starts redis-server and returns once it answers.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redistest: redis-server not found (apt-get install redis-server; scripts/test installs it)")
	}
	addr := testkit.FreeAddr(t)
	s := &Server{Addr: addr, Password: o.Password, t: t, dir: t.TempDir()}
	if o.TLS {
		ca := testkit.NewCA(t, "redistest CA")
		leaf := ca.Leaf(t, "127.0.0.1")
		s.CAFile = filepath.Join(s.dir, "ca.pem")
		for name, b := range map[string][]byte{"ca.pem": ca.PEM(), "cert.pem": leaf.PEM(), "key.pem": leaf.KeyPEM()} {
			if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s.tls = ca.ClientConfig("127.0.0.1")
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Start starts the server again after Stop (a no-op while it runs).
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
		"--logfile", filepath.Join(s.dir, "redis.log")}
	if s.tls != nil {
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", filepath.Join(s.dir, "cert.pem"), "--tls-key-file", filepath.Join(s.dir, "key.pem"),
			"--tls-ca-cert-file", s.CAFile, "--tls-auth-clients", "no")
	}
	if s.Password != "" {
		args = append(args, "--requirepass", s.Password)
	}
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redistest: redis-server on %s does not answer: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING (after AUTH) and waits for PONG.
func (s *Server) ping() error {
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr, s.tls)
	} else {
		c, err = net.DialTimeout("tcp", s.Addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(c)
	if s.Password != "" {
		fmt.Fprintf(c, "AUTH %s\r\n", s.Password)
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("AUTH: %q %v", l, err)
		}
	}
	fmt.Fprintf(c, "PING\r\n")
	l, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(l, "+PONG") {
		return fmt.Errorf("PING answered %q", l)
	}
	return nil
}

// Pause stops the server's process (SIGSTOP) without closing anything:
// connections open and commands go unanswered, as with an overloaded or
// partitioned Redis. Resume continues it.
func (s *Server) Pause() { s.signal(sigStop) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(sigCont) }

func (s *Server) signal(sig os.Signal) {
	if sig == nil {
		s.t.Fatal("redistest: Pause and Resume need Unix signals")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Stop stops the server (SIGKILL: at once, as a crash would) and waits
// for it to exit. It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
