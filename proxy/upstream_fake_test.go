package proxy

// Test peers for the upstream client: scripted servers, go-imap's
// imapserver with imapmemserver, a test PKI and a loopback DNS server.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/miekg/dns"
)

// upstreamFakeTimeout bounds every wait of a scripted server.
const upstreamFakeTimeout = 10 * time.Second

// upstreamFakeConn is the server side of one scripted connection.
type upstreamFakeConn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

// send writes lines, each with CRLF, in one write. Errors are ignored: some
// scripts expect the client to have gone.
func (c *upstreamFakeConn) send(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.conn.Write([]byte(b.String()))
}

// expect reads one line and reports an error unless it is want.
func (c *upstreamFakeConn) expect(want string) bool {
	c.t.Helper()
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Errorf("server: waiting for %q: %v (got %q)", want, err, line)
		return false
	}
	if got := strings.TrimSuffix(line, "\r\n"); got != want {
		c.t.Errorf("server got %q, want %q", got, want)
		return false
	}
	return true
}

// expectEOF reports an error unless the client hangs up without a word.
func (c *upstreamFakeConn) expectEOF() {
	c.t.Helper()
	if line, err := c.br.ReadString('\n'); err != io.EOF || line != "" {
		c.t.Errorf("server: got %q, %v; want the client to hang up", line, err)
	}
}

// waitClose reads and drops everything until the client hangs up.
func (c *upstreamFakeConn) waitClose() { io.Copy(io.Discard, c.br) }

// upstreamFake serves play on every connection to a loopback listener
// (TLS with cert if not nil) and returns its address. Cleanup closes the
// listener and waits for the plays, each bounded by upstreamFakeTimeout.
func upstreamFake(t *testing.T, cert *tls.Certificate, play func(c *upstreamFakeConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(upstreamFakeTimeout))
				play(&upstreamFakeConn{t: t, conn: conn, br: bufio.NewReader(conn)})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// upstreamTestPKI is a test CA and the server certificates the tests need.
type upstreamTestPKI struct {
	roots      *x509.CertPool
	good       tls.Certificate // localhost, 127.0.0.1, ::1
	otherName  tls.Certificate // imap.other.test only
	expired    tls.Certificate // localhost, expired yesterday
	selfSigned tls.Certificate // localhost, signed by itself
}

func upstreamNewPKI(t testing.TB) *upstreamTestPKI {
	t.Helper()
	now := time.Now()
	caKey := upstreamKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imapwhy upstream test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &upstreamTestPKI{roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	local := []string{"localhost", "127.0.0.1", "::1"}
	p.good = upstreamLeaf(t, local, now.Add(time.Hour), ca, caKey)
	p.otherName = upstreamLeaf(t, []string{"imap.other.test"}, now.Add(time.Hour), ca, caKey)
	p.expired = upstreamLeaf(t, local, now.Add(-24*time.Hour), ca, caKey)
	p.selfSigned = upstreamLeaf(t, local, now.Add(time.Hour), nil, nil)
	return p
}

func upstreamKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// upstreamLeaf makes a server certificate for names (host names or IPs),
// signed by parent, or by itself when parent is nil.
func upstreamLeaf(t testing.TB, names []string, notAfter time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key := upstreamKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    notAfter.Add(-48 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// upstreamMemServer starts go-imap's imapserver with an in-memory backend
// (user alice, password alicepass, an INBOX) on loopback and returns its
// address. mode is a config TLS mode: implicit (TLS listener), starttls
// (STARTTLS offered) or none (plaintext logins allowed). With insecure
// false and mode none, the server is a plain one that refuses logins
// before TLS (LOGINDISABLED) and offers no STARTTLS.
func upstreamMemServer(t testing.TB, mode string, insecure bool, pki *upstreamTestPKI) string {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("alice", "alicepass")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		Logger:       log.New(io.Discard, "", 0),
		InsecureAuth: insecure,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{pki.good}}
	switch mode {
	case "implicit":
		ln = tls.NewListener(ln, serverTLS)
	case "starttls":
		opts.TLSConfig = serverTLS
	}
	srv := imapserver.New(opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// upstreamNXDomainDial returns a Dial whose resolver asks a DNS server on
// loopback that answers NXDOMAIN to everything: a real *net.DNSError
// without leaving the machine.
func upstreamNXDomainDial(t testing.TB) func(ctx context.Context, network, addr string) (net.Conn, error) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{
		PacketConn:        pc,
		NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeNameError)
			w.WriteMsg(m)
		}),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ActivateAndServe()
	}()
	select {
	case <-started:
	case <-time.After(upstreamFakeTimeout):
		t.Fatal("DNS server did not start")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		<-served
	})
	resolver := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
	return (&net.Dialer{Resolver: resolver}).DialContext
}
