// Package upstreamtest has test peers for the upstream login client and
// its callers: scripted servers, go-imap's imapserver with imapmemserver,
// a test PKI and a loopback DNS server.
package upstreamtest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
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

// Timeout bounds every wait of a scripted server.
const Timeout = 10 * time.Second

// Conn is the server side of one scripted connection.
type Conn struct {
	T      testing.TB
	Conn   net.Conn
	Reader *bufio.Reader
}

// Send writes lines, each with CRLF, in one write. Errors are ignored: some
// scripts expect the client to have gone.
func (c *Conn) Send(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.Conn.Write([]byte(b.String()))
}

// Expect reads one line and reports an error unless it is want.
func (c *Conn) Expect(want string) bool {
	c.T.Helper()
	line, err := c.Reader.ReadString('\n')
	if err != nil {
		c.T.Errorf("server: waiting for %q: %v (got %q)", want, err, line)
		return false
	}
	if got := strings.TrimSuffix(line, "\r\n"); got != want {
		c.T.Errorf("server got %q, want %q", got, want)
		return false
	}
	return true
}

// ExpectEOF reports an error unless the client hangs up without a word.
func (c *Conn) ExpectEOF() {
	c.T.Helper()
	if line, err := c.Reader.ReadString('\n'); err != io.EOF || line != "" {
		c.T.Errorf("server: got %q, %v; want the client to hang up", line, err)
	}
}

// WaitClose reads and drops everything until the client hangs up.
func (c *Conn) WaitClose() { io.Copy(io.Discard, c.Reader) }

// Serve serves play on every connection to a loopback listener
// (TLS with cert if not nil) and returns its address. Cleanup closes the
// listener and waits for the plays, each bounded by Timeout.
func Serve(t *testing.T, cert *tls.Certificate, play func(c *Conn)) string {
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
				conn.SetDeadline(time.Now().Add(Timeout))
				play(&Conn{T: t, Conn: conn, Reader: bufio.NewReader(conn)})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// PKI is a test CA and the server certificates the tests need.
type PKI struct {
	Roots      *x509.CertPool
	Good       tls.Certificate // localhost, 127.0.0.1, ::1
	OtherName  tls.Certificate // imap.other.test only
	Expired    tls.Certificate // localhost, expired yesterday
	SelfSigned tls.Certificate // localhost, signed by itself
}

// NewPKI makes a test CA and its certificates.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	now := time.Now()
	caKey := Key(t)
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
	p := &PKI{Roots: x509.NewCertPool()}
	p.Roots.AddCert(ca)
	local := []string{"localhost", "127.0.0.1", "::1"}
	p.Good = Leaf(t, local, now.Add(time.Hour), ca, caKey)
	p.OtherName = Leaf(t, []string{"imap.other.test"}, now.Add(time.Hour), ca, caKey)
	p.Expired = Leaf(t, local, now.Add(-24*time.Hour), ca, caKey)
	p.SelfSigned = Leaf(t, local, now.Add(time.Hour), nil, nil)
	return p
}

// Key makes a P-256 key.
func Key(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// Leaf makes a server certificate for names (host names or IPs),
// signed by parent, or by itself when parent is nil.
func Leaf(t testing.TB, names []string, notAfter time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
	t.Helper()
	key := Key(t)
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

// MemServer starts go-imap's imapserver with an in-memory backend
// (user alice, password alicepass, an INBOX) on loopback and returns its
// address. mode is a config TLS mode: implicit (TLS listener), starttls
// (STARTTLS offered) or none (plaintext logins allowed). With insecure
// false and mode none, the server is a plain one that refuses logins
// before TLS (LOGINDISABLED) and offers no STARTTLS.
func MemServer(t testing.TB, mode string, insecure bool, pki *PKI) string {
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
	serverTLS := &tls.Config{Certificates: []tls.Certificate{pki.Good}}
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

// NXDomainDial returns a Dial whose resolver asks a DNS server on
// loopback that answers NXDOMAIN to everything: a real *net.DNSError
// without leaving the machine.
func NXDomainDial(t testing.TB) func(ctx context.Context, network, addr string) (net.Conn, error) {
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
	case <-time.After(Timeout):
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

// Plain is the SASL PLAIN initial response for user and password, as a
// client sends it in base64.
func Plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}
