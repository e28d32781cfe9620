package proxy

// Restarts: a reload (what SIGHUP does in cmd/imapwhy: the
// certificates, then the configuration) under load drops no forwarded
// session; a shutdown (SIGTERM) lets forwarded sessions finish what they
// are doing up to the drain deadline, a FETCH in flight byte for byte, and
// only then closes. The signal plumbing itself is tested with the binary in
// cmd/imapwhy.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/certs"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// restartPKI is a CA whose leaf certificates for 127.0.0.1 the proxy
// serves, one after the other.
type restartPKI struct {
	t     *testing.T
	ca    *x509.Certificate
	roots *x509.CertPool
	issue func() tls.Certificate
}

func newRestartPKI(t *testing.T) *restartPKI {
	t.Helper()
	ca := testkit.NewCA(t, "imapwhy restart test CA")
	p := &restartPKI{t: t, ca: ca.X509, roots: ca.Pool()}
	p.issue = func() tls.Certificate {
		return ca.Issue(t, testkit.Spec{Names: []string{"127.0.0.1"}, NotAfter: time.Now().Add(time.Hour)}).TLS()
	}
	return p
}

// write puts c into the PEM files certs.Manager reads.
func (p *restartPKI) write(c tls.Certificate, certFile, keyFile string) {
	p.t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		p.t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		p.t.Fatal(err)
	}
}

// restartMessage is a message of about size bytes with CRLF line ends,
// different for each seed.
func restartMessage(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: bob@example.test\r\nSubject: message %d\r\n\r\n", seed)
	line := make([]byte, 78)
	for b.Len() < size {
		for i := range line {
			line[i] = byte('!' + rng.IntN(94))
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// rawSession is an IMAP session through the proxy, driven by hand. Its
// methods return errors instead of failing the test, for goroutines; each
// exchange is bounded by rawTimeout. The response lines it reads go to
// exposure; message contents, megabytes of them, do not.
type rawSession struct {
	c    net.Conn
	br   *bufio.Reader
	tags int
}

const rawTimeout = 10 * time.Second

// restartLogin connects over TLS, logs in as alice and selects INBOX.
func restartLogin(t *testing.T, addr string, clientTLS *tls.Config, pass string) *rawSession {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSession{c: conn, br: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(rawTimeout))
	if g, err := s.line(); err != nil || !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting %q, %v", g, err)
	}
	for _, cmd := range []string{"LOGIN alice " + pass, "SELECT INBOX"} {
		if _, err := s.command(cmd); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// command sends one command and reads up to its tagged reply, which must
// be OK.
func (s *rawSession) command(cmd string) ([]string, error) {
	s.tags++
	tag := fmt.Sprintf("t%d", s.tags)
	s.c.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := fmt.Fprintf(s.c, "%s %s\r\n", tag, cmd); err != nil {
		return nil, err
	}
	lines, err := s.until(tag + " ")
	if err != nil {
		return lines, err
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, tag+" OK") {
		return lines, fmt.Errorf("%s: %q", strings.Fields(cmd)[0], last)
	}
	return lines, nil
}

// line reads a response line and exposes it.
func (s *rawSession) line() (string, error) {
	l, err := testkit.ReadLine(s.br)
	expose(l)
	return l, err
}

// until reads lines up to and including the first that starts with prefix.
func (s *rawSession) until(prefix string) ([]string, error) {
	var lines []string
	for {
		l, err := s.line()
		if err != nil {
			return lines, fmt.Errorf("waiting for %q: %w (after %q)", prefix, err, lines)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines, nil
		}
	}
}

// fetch sends FETCH 1 BODY.PEEK[] and returns the body, read by chunks of
// chunk bytes with pause after each (a client on a slow link); started, if
// not nil, is closed once the first chunk has arrived.
func (s *rawSession) fetch(chunk int, pause time.Duration, started chan<- struct{}) ([]byte, error) {
	s.tags++
	tag := fmt.Sprintf("t%d", s.tags)
	s.c.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := fmt.Fprintf(s.c, "%s FETCH 1 BODY.PEEK[]\r\n", tag); err != nil {
		return nil, err
	}
	head, err := s.line()
	if err != nil {
		return nil, err
	}
	var n int
	if i := strings.LastIndexByte(head, '{'); !strings.HasPrefix(head, "* 1 FETCH (") || i < 0 {
		return nil, fmt.Errorf("FETCH: %q", head)
	} else if _, err := fmt.Sscanf(head[i:], "{%d}", &n); err != nil {
		return nil, fmt.Errorf("FETCH: %q: %w", head, err)
	}
	body := make([]byte, n)
	for off := 0; off < n; off += chunk {
		s.c.SetDeadline(time.Now().Add(rawTimeout))
		if _, err := io.ReadFull(s.br, body[off:min(n, off+chunk)]); err != nil {
			return nil, fmt.Errorf("FETCH literal at %d of %d: %w", off, n, err)
		}
		if started != nil {
			close(started)
			started = nil
		}
		time.Sleep(pause)
	}
	lines, err := s.until(tag + " ")
	if err != nil {
		return nil, err
	}
	if last := lines[len(lines)-1]; lines[0] != ")" || !strings.HasPrefix(last, tag+" OK") {
		return nil, fmt.Errorf("after the FETCH literal: %q", lines)
	}
	return body, nil
}

// fetchCompare fetches the message and compares it with want.
func (s *rawSession) fetchCompare(want []byte) error {
	got, err := s.fetch(len(want), 0, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("FETCH returned %d bytes that differ from the %d stored", len(got), len(want))
	}
	return nil
}

// TestReloadUnderLoad: while forwarded sessions keep fetching, the
// certificate files are replaced and reloaded and the configuration is
// reloaded, three times over. No session is dropped or disturbed; new
// connections get the new certificate and the new configuration.
func TestReloadUnderLoad(t *testing.T) {
	const sessions, reloads = 24, 3
	testkit.CheckNoLeaks(t)
	pass := testSecret("reload")
	msg := restartMessage(1, 64<<10)
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass, Messages: [][]byte{msg}})

	pki := newRestartPKI(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pki.write(pki.issue(), certFile, keyFile)
	cm, err := certs.New(context.Background(), config.TLS{CertFile: certFile, KeyFile: keyFile}, dir, testLogger(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	cfg := rigConfig(t, config.TLSImplicit, up, config.TLSNone)
	cfg.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile}
	// One test host logs in many times: the rate limits would refuse it.
	cfg.Limits.PerAddressLoginsPerMinute = config.Unlimited
	cfg.Limits.PerUserLoginsPerMinute = config.Unlimited
	p := startRig(t, cfg, Options{TLS: cm.TLSConfig()})
	clientTLS := &tls.Config{RootCAs: pki.roots, ServerName: "127.0.0.1"}

	// The sessions: each fetches the message over and over, checking it.
	stop := make(chan struct{})
	var fetches atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		s := restartLogin(t, p.addr, clientTLS, pass)
		wg.Go(func() {
			defer s.c.Close()
			for {
				select {
				case <-stop:
					if _, err := s.command("LOGOUT"); err != nil {
						errs <- fmt.Errorf("session %d: LOGOUT: %w", i, err)
					}
					return
				default:
				}
				if err := s.fetchCompare(msg); err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					return
				}
				fetches.Add(1)
			}
		})
	}

	for r := range reloads {
		before := fetches.Load()
		leaf := pki.issue()
		pki.write(leaf, certFile, keyFile)
		if err := cm.Reload(); err != nil {
			t.Fatalf("certificate reload: %v", err)
		}
		next := cfg
		next.Listeners = append([]config.Listener(nil), cfg.Listeners...)
		next.Listeners[0].Address = p.addr // keep the socket (it was bound as :0)
		next.Listeners[0].Language = []string{"ja", "en"}[r%2]
		next.Timeouts.UpstreamLogin = config.Duration(rigUpstreamLogin + time.Duration(r)*time.Second)
		if err := p.srv.Reload(next); err != nil {
			t.Fatalf("configuration reload: %v", err)
		}
		// A new connection gets the new certificate and configuration.
		conn, err := tls.Dial("tcp", p.addr, clientTLS)
		if err != nil {
			t.Fatalf("after reload %d: %v", r+1, err)
		}
		if got := conn.ConnectionState().PeerCertificates[0]; !bytes.Equal(got.Raw, leaf.Certificate[0]) {
			t.Errorf("after reload %d the old certificate is served", r+1)
		}
		conn.SetDeadline(time.Now().Add(rigPreAuth))
		tc := &testkit.Client{T: t, Conn: conn, Reader: rigReader(conn)}
		tc.Line()
		// Japanese text only to a client that agreed to it.
		tc.Send("l LANGUAGE DEFAULT\r\n")
		tc.Until("l ")
		tc.Send("a LOGIN alice wrong-password\r\n")
		no := tc.Until("a ")
		if ja := strings.ContainsFunc(no[len(no)-1], func(r rune) bool { return r > 0x3000 }); ja != (next.Listeners[0].Language == "ja") {
			t.Errorf("after reload %d to language %s: %q", r+1, next.Listeners[0].Language, no)
		}
		conn.Close()
		// Let the sessions work a while under the new settings.
		for deadline := time.Now().Add(rawTimeout); fetches.Load() < before+sessions; {
			select {
			case err := <-errs:
				t.Fatalf("during reload %d: %v", r+1, err)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sessions made no progress after reload %d", r+1)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p.waitSessions(t, 0)
	ends := p.logs.Events("session_end")
	t.Logf("%d sessions held through %d reloads: %d FETCHes compared, %d session ends (all at LOGOUT)", sessions, reloads, fetches.Load(), len(ends))
	tally.add("sessions held through reloads", sessions)
	if len(ends) != sessions {
		t.Errorf("%d session_end events, want %d", len(ends), sessions)
	}
}

// TestShutdownDrainsFetch: Shutdown says BYE to a session that has not
// logged in and stops accepting at once, but lets a forwarded session
// finish a FETCH of a large message read slowly, byte for byte, and LOGOUT;
// it returns only after that.
func TestShutdownDrainsFetch(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("drain")
	msg := restartMessage(2, 4<<20)
	up := rigMemUpstream(t, testkit.MemUser{Name: "alice", Password: pass, Messages: [][]byte{msg}})
	serverTLS, clientTLS := frontTestTLS(t)
	p := startRig(t, rigConfig(t, config.TLSImplicit, up, config.TLSNone), Options{TLS: serverTLS})

	waiting := rigGreetedTLS(t, p.addr, clientTLS) // logged in nowhere
	s := restartLogin(t, p.addr, clientTLS, pass)
	started := make(chan struct{})
	type result struct {
		body []byte
		err  error
	}
	fetched := make(chan result, 1)
	go func() {
		// 4 MiB by 128 KiB every 25 ms: about a second in flight.
		body, err := s.fetch(128<<10, 25*time.Millisecond, started)
		fetched <- result{body, err}
	}()
	<-started

	shutdown := testkit.ShutdownAsync(p.srv.Shutdown, 20*time.Second)
	if l := waiting.Line(); !strings.HasPrefix(l, "* BYE ") {
		t.Errorf("a client that had not logged in got %q at shutdown, want BYE", l)
	}
	testkit.WaitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	r := <-fetched
	if r.err != nil {
		t.Fatalf("FETCH during shutdown: %v", r.err)
	}
	if !bytes.Equal(r.body, msg) {
		t.Fatalf("FETCH during shutdown returned %d bytes that differ from the %d stored", len(r.body), len(msg))
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a session was still logged in", err)
	default:
	}
	if _, err := s.command("LOGOUT"); err != nil {
		t.Errorf("LOGOUT during shutdown: %v", err)
	}
	s.c.Close()
	select {
	case err := <-shutdown:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(rawTimeout):
		t.Fatal("Shutdown did not return after the last session ended")
	}
	t.Logf("%d bytes fetched during the drain, identical", len(r.body))
	tally.add("bytes fetched during a drain", int64(len(r.body)))
}

// TestShutdownDeadlineMidFetch: a forwarded session whose client stopped
// reading in the middle of a large FETCH (the proxy is blocked writing to
// it) is cut at the drain deadline, and Shutdown reports the deadline. The
// upstream is scripted: it streams the FETCH until the proxy hangs up
// (go-imap's imapserver, cut off in the middle of a FETCH, keeps a
// goroutine waiting on a lock of its own forever).
func TestShutdownDeadlineMidFetch(t *testing.T) {
	testkit.CheckNoLeaks(t)
	pass := testSecret("stuck")
	up := testkit.Serve(t, nil, faultLoginThen(func(c *testkit.Conn, tag string) {
		c.Send(tag + " OK [CAPABILITY IMAP4rev1] Logged in")
		if tag = faultReadCommand(c); tag == "" {
			return
		}
		c.Send("* 1 EXISTS", tag+" OK [READ-WRITE] SELECT completed")
		if faultReadCommand(c) == "" {
			return
		}
		c.Send("* 1 FETCH (BODY[] {1073741824}")
		faultFlood(c, "0123456789abcdef")
	}))
	serverTLS, clientTLS := frontTestTLS(t)
	p := startRig(t, rigConfig(t, config.TLSImplicit, up, config.TLSNone), Options{TLS: serverTLS})
	s := restartLogin(t, p.addr, clientTLS, pass)
	fmt.Fprintf(s.c, "x FETCH 1 BODY.PEEK[]\r\n")
	if l, err := s.line(); err != nil || !strings.HasPrefix(l, "* 1 FETCH") {
		t.Fatalf("FETCH: %q, %v", l, err)
	}
	// The client reads no more: the socket buffers fill up.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline", err)
	}
	if p.sessions() != 0 {
		t.Errorf("%d sessions left after Shutdown", p.sessions())
	}
}

// rigGreetedTLS connects with TLS and reads the greeting.
func rigGreetedTLS(t *testing.T, addr string, clientTLS *tls.Config) *testkit.Client {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(rawTimeout))
	tc := &testkit.Client{T: t, Conn: conn, Reader: rigReader(conn)}
	tc.Greeting()
	return tc
}
