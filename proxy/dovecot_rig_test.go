package proxy_test

// The rig of the end-to-end tests in dovecot_test.go: a real Dovecot, the
// proxy in front of it with one listener per route, and the clients.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// e2eTimeout bounds each connection (as a deadline) and each external
// client process.
const e2eTimeout = 30 * time.Second

// route is one proxy listener: how the client reaches the proxy and how the
// proxy reaches Dovecot.
type route struct {
	client   string // config.TLSImplicit or config.TLSStartTLS
	upstream string
}

func (r route) String() string { return "client=" + r.client + "/upstream=" + r.upstream }

// routes are the proxy's listeners, in this order. The STARTTLS upstream is
// Dovecot's 127.0.0.2 address, where it shows LOGINDISABLED until STARTTLS,
// as a remote server would.
var routes = []route{
	{config.TLSImplicit, config.TLSImplicit},
	{config.TLSImplicit, config.TLSStartTLS},
	{config.TLSStartTLS, config.TLSImplicit},
	{config.TLSStartTLS, config.TLSStartTLS},
}

// listenHosts are the listeners' hosts, one per route: config.Validate
// refuses the same address twice, "127.0.0.1:0" included.
var listenHosts = []string{"127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

// secrets are the passwords the tests type; none may appear in the proxy's
// log, nor the AUTHENTICATE PLAIN payloads made of them.
var secrets = []string{"alicepass", "bobpass", "carolpass", dovecottest.UTF8Password, wrongPassword}

const wrongPassword = "Wr0ng-Passw0rd-4711"

// e2e is the proxy in front of a real Dovecot.
type e2e struct {
	dc     *dovecottest.Server
	srv    *proxy.Server    // startE2E's proxy
	addrs  map[route]string // the proxy's listener for each route
	pool   *x509.CertPool   // trusts the proxy's certificate
	caFile string           // the same CA as a PEM file, for curl and Python
	logs   *lockedBuffer    // the proxy's JSON log
}

// startE2E starts Dovecot and a proxy with one listener per route. Both are
// stopped when t ends; the proxy's log is checked for passwords and printed
// if t failed.
func startE2E(t *testing.T) *e2e {
	t.Helper()
	proxy.RegisterTestSecrets(secrets...)
	dc := dovecottest.Start(t, dovecottest.Options{})
	e, cert := newE2E(t, dc)
	t.Cleanup(func() { e.checkLogHasNoSecrets(t) }) // after the proxy's shutdown: its last words too
	srv := startE2EProxy(t, e2eConfig(t, dc), proxy.Options{
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		UpstreamRoots: dc.CAPool,
	}, e.logs)
	e.srv = srv
	addrs := srv.Addrs()
	if len(addrs) != len(routes) {
		t.Fatalf("proxy bound %d addresses, want %d", len(addrs), len(routes))
	}
	for i, r := range routes {
		e.addrs[r] = addrs[i].String()
	}
	return e
}

// newE2E is the client side of a rig in front of dc, before its proxy
// starts: a pool and a CA file that trust the proxy's certificate, which
// it returns too.
func newE2E(t *testing.T, dc *dovecottest.Server) (*e2e, tls.Certificate) {
	t.Helper()
	cert, caPEM := newProxyCert(t)
	e := &e2e{
		dc:     dc,
		addrs:  map[route]string{},
		pool:   x509.NewCertPool(),
		caFile: filepath.Join(t.TempDir(), "proxy-ca.pem"),
		logs:   &lockedBuffer{},
	}
	e.pool.AppendCertsFromPEM(caPEM)
	if err := os.WriteFile(e.caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return e, cert
}

// startE2EProxy runs the proxy with cfg and opts, its log going to logs
// and shown if the test fails; it shuts down when the test ends.
func startE2EProxy(t *testing.T, cfg config.Config, opts proxy.Options, logs *lockedBuffer) *proxy.Server {
	t.Helper()
	opts.Logger = proxy.NewTestLogger(logs)
	testkit.ShowOnFailure(t, "proxy log", logs)
	srv, err := proxy.New(cfg, opts)
	return testkit.Start(t, srv, err)
}

// e2eConfig is the YAML a user would write, with the upstream per route.
func e2eConfig(t *testing.T, dc *dovecottest.Server) config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nlog: {format: json, level: debug}\nlisteners:\n", t.TempDir())
	for i, r := range routes {
		up := dc.IMAPS
		if r.upstream == config.TLSStartTLS {
			up = dc.Insecure
		}
		fmt.Fprintf(&b, "  - address: %s:0\n    tls: %s\n    language: en\n    upstream: {address: %q, tls: %s}\n",
			listenHosts[i], r.client, up, r.upstream)
	}
	cfg, err := config.Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", b.String(), err)
	}
	return cfg
}

func (e *e2e) checkLogHasNoSecrets(t *testing.T) {
	t.Helper()
	log := e.logs.String()
	for _, user := range []string{"alice", "bob", "carol@example.test", "utf8"} {
		for _, pass := range secrets {
			plain := testkit.Plain(user, pass)
			if strings.Contains(log, plain) {
				t.Errorf("proxy log contains the AUTHENTICATE PLAIN payload of %s", user)
			}
		}
	}
	for _, pass := range secrets {
		if strings.Contains(log, pass) {
			t.Errorf("proxy log contains the password %q", pass)
		}
	}
}

// forEachRoute runs f for every route in parallel subtests, each with a
// user of its own so that mailbox contents do not mix, and returns when all
// are done.
func forEachRoute(t *testing.T, f func(t *testing.T, r route, user, pass string)) {
	users := [][2]string{{"alice", "alicepass"}, {"bob", "bobpass"}, {"carol@example.test", "carolpass"}, {"utf8", dovecottest.UTF8Password}}
	t.Run("routes", func(t *testing.T) {
		for i, r := range routes {
			t.Run(r.String(), func(t *testing.T) {
				t.Parallel()
				f(t, r, users[i][0], users[i][1])
			})
		}
	})
}

// quote is an IMAP quoted string of an ASCII s.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// client connects go-imap's imapclient to the proxy on route r, with every
// operation bounded by e2eTimeout.
func (e *e2e) client(t *testing.T, r route, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	t.Helper()
	addr := e.addrs[r]
	host, _, _ := net.SplitHostPort(addr)
	tlsConfig := &tls.Config{RootCAs: e.pool, ServerName: host}
	opts := &imapclient.Options{TLSConfig: tlsConfig, UnilateralDataHandler: h}
	conn, err := net.DialTimeout("tcp", addr, e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		t.Fatal(err)
	}
	var c *imapclient.Client
	if r.client == config.TLSImplicit {
		c = imapclient.New(tls.Client(conn, tlsConfig), opts)
	} else if c, err = imapclient.NewStartTLS(conn, opts); err != nil {
		conn.Close()
		t.Fatalf("STARTTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func appendMessage(t *testing.T, c *imapclient.Client, msg []byte) imap.UID {
	t.Helper()
	cmd := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := cmd.Write(msg); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	if data.UID == 0 {
		t.Fatal("APPEND: no APPENDUID (UIDPLUS)")
	}
	return data.UID
}

func fetchMessage(t *testing.T, c *imapclient.Client, uid imap.UID) []byte {
	t.Helper()
	body := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH UID %d: %d messages", uid, len(msgs))
	}
	return msgs[0].FindBodySection(body)
}

// largeMessage is a text message of about size bytes with CRLF line ends
// (Dovecot serves what it stores; bare LF would come back as CRLF).
func largeMessage(size int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var b bytes.Buffer
	b.Grow(size + 80)
	b.WriteString("From: bob@example.test\r\nTo: alice@example.test\r\nSubject: large\r\n\r\n")
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	line := make([]byte, 76)
	for b.Len() < size {
		for i := range line {
			line[i] = alphabet[rng.IntN(len(alphabet))]
		}
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// rawConn is a raw client whose DEFLATE (RFC 4978) can be switched on.
type rawConn struct{ *testkit.Client }

// raw connects to route r and returns after the greeting and, for a
// STARTTLS listener, after STARTTLS.
func (e *e2e) raw(t *testing.T, r route) *rawConn {
	t.Helper()
	addr := e.addrs[r]
	host, _, _ := net.SplitHostPort(addr)
	conn, err := net.DialTimeout("tcp", addr, e2eTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(e2eTimeout)); err != nil {
		t.Fatal(err)
	}
	tlsConfig := &tls.Config{RootCAs: e.pool, ServerName: host}
	var rc *rawConn
	if r.client == config.TLSImplicit {
		rc = newRawConn(t, tls.Client(conn, tlsConfig))
		rc.Greeting()
		return rc
	}
	rc = newRawConn(t, conn)
	rc.Greeting()
	if got := rc.Command("s STARTTLS"); !strings.HasPrefix(got[len(got)-1], "s OK") {
		t.Fatalf("STARTTLS: %q", got)
	}
	rc = newRawConn(t, tls.Client(conn, tlsConfig))
	return rc
}

func newRawConn(t *testing.T, c net.Conn) *rawConn {
	return &rawConn{&testkit.Client{T: t, Conn: c, Reader: bufio.NewReader(c)}}
}

// deflate switches both directions to DEFLATE, keeping what the reader
// already buffered.
func (rc *rawConn) deflate() {
	fw, _ := flate.NewWriter(rc.Conn, flate.DefaultCompression) // valid level: no error
	rc.Conn = &flateConn{Conn: rc.Conn, fw: fw}
	rc.Reader = bufio.NewReader(flate.NewReader(rc.Reader))
}

// flateConn writes through a DEFLATE writer, flushed after each write.
type flateConn struct {
	net.Conn
	fw *flate.Writer
}

func (c *flateConn) Write(p []byte) (int, error) {
	n, err := c.fw.Write(p)
	if err == nil {
		err = c.fw.Flush()
	}
	return n, err
}

// newProxyCert makes a throwaway CA and a certificate for localhost and
// the proxy's listener hosts, as certs.Manager would in local mode, and
// returns the certificate and the CA's PEM.
func newProxyCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	ca := testkit.NewCA(t, "imapwhy e2e test CA")
	leaf := ca.Issue(t, testkit.Spec{CommonName: "localhost", Names: append([]string{"localhost"}, listenHosts...)})
	return leaf.TLS(), ca.PEM()
}

// lockedBuffer is the proxy's JSON log.
type lockedBuffer struct{ testkit.Buffer }

// events returns the JSON log lines of one event.
func (l *lockedBuffer) events(name string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, `"event":"`+name+`"`) {
			out = append(out, line)
		}
	}
	return out
}
