// Package testkit holds the fixtures the tests of this module share: a test
// PKI, a loopback DNS server, a fake clock, loopback servers (scripted and
// in-memory IMAP, connection counters), a line reader for transcripts and a
// check that a test leaves no goroutine behind.
//
// Only tests and test rigs (internal/dovecottest, internal/loadtest,
// cmd/imapwhy-bench) import it. Everything it serves listens on loopback.
package testkit

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/pki"
)

// LoopbackNames are the names a certificate for a loopback server covers:
// whatever a test may dial.
var LoopbackNames = []string{"localhost", "127.0.0.1", "::1"}

// Spec describes a certificate. Zero fields take defaults.
type Spec struct {
	// CommonName defaults to the first of Names, or "imapwhy test CA".
	CommonName string
	// Names are host names or IP addresses (IPs go to IPAddresses).
	Names []string
	// NotAfter defaults to a day from now; NotBefore to an hour ago, or
	// to NotAfter less 48 hours if that is earlier (an expired certificate).
	NotBefore, NotAfter time.Time
	// CA makes a certificate authority (it may still carry Names).
	CA bool
}

// Cert is a certificate and its key.
type Cert struct {
	X509 *x509.Certificate
	DER  []byte
	Key  *ecdsa.PrivateKey
}

// TLS returns c as a tls.Certificate (with Leaf set).
func (c *Cert) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key, Leaf: c.X509}
}

// PEM returns the certificate, PEM-encoded.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM returns the key, PKCS #8 PEM-encoded.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic("testkit: marshal an ECDSA key: " + err.Error()) // cannot fail for P-256
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Pool returns a pool that trusts c alone.
func (c *Cert) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.X509)
	return pool
}

// CA is a throwaway certificate authority.
type CA struct {
	Cert
}

// MakeCA makes a CA named commonName, valid from an hour ago for a week.
func MakeCA(commonName string) (*CA, error) {
	c, err := makeCert(Spec{CommonName: commonName, CA: true, NotAfter: time.Now().Add(7 * 24 * time.Hour)}, nil)
	if err != nil {
		return nil, err
	}
	return &CA{*c}, nil
}

// NewCA is MakeCA for a test.
func NewCA(t testing.TB, commonName string) *CA {
	t.Helper()
	ca, err := MakeCA(commonName)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// Make issues a certificate described by s.
func (ca *CA) Make(s Spec) (*Cert, error) { return makeCert(s, &ca.Cert) }

// Issue is Make for a test.
func (ca *CA) Issue(t testing.TB, s Spec) *Cert {
	t.Helper()
	c, err := ca.Make(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Leaf issues a server certificate for names with the default validity.
func (ca *CA) Leaf(t testing.TB, names ...string) *Cert {
	t.Helper()
	return ca.Issue(t, Spec{Names: names})
}

// ChainPEM returns leaf followed by the CA, PEM-encoded: what a server
// that reads its chain from one file (Dovecot's ssl_cert) wants.
func (ca *CA) ChainPEM(leaf *Cert) []byte {
	return append(leaf.PEM(), ca.PEM()...)
}

// ClientConfig returns a client configuration that trusts the CA alone.
// serverName may be empty where tls.Dial derives it from the address.
func (ca *CA) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// SelfSigned makes a certificate described by s that signs itself.
func SelfSigned(t testing.TB, s Spec) *Cert {
	t.Helper()
	c, err := makeCert(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ServerConfig returns a server configuration presenting cert.
func ServerConfig(cert *Cert) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, MinVersion: tls.VersionTLS12}
}

// PKI is a test CA and the server certificates tests need.
type PKI struct {
	CA         *CA
	Roots      *x509.CertPool  // trusts CA alone
	Good       tls.Certificate // LoopbackNames
	OtherName  tls.Certificate // imap.other.test only
	Expired    tls.Certificate // LoopbackNames, expired yesterday
	SelfSigned tls.Certificate // LoopbackNames, signed by itself
}

// NewPKI makes a fresh CA and its certificates.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca := NewCA(t, "imapwhy test CA")
	return &PKI{
		CA:         ca,
		Roots:      ca.Pool(),
		Good:       ca.Leaf(t, LoopbackNames...).TLS(),
		OtherName:  ca.Leaf(t, "imap.other.test").TLS(),
		Expired:    ca.Issue(t, Spec{Names: LoopbackNames, NotAfter: time.Now().Add(-24 * time.Hour)}).TLS(),
		SelfSigned: SelfSigned(t, Spec{Names: LoopbackNames}).TLS(),
	}
}

// ServerConfig presents the Good certificate.
func (p *PKI) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.Good}, MinVersion: tls.VersionTLS12}
}

// ClientConfig trusts the CA and expects serverName ("" to derive it from
// the dialled address).
func (p *PKI) ClientConfig(serverName string) *tls.Config { return p.CA.ClientConfig(serverName) }

func makeCert(s Spec, parent *Cert) (*Cert, error) {
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: s.CommonName},
		NotBefore: s.NotBefore,
		NotAfter:  s.NotAfter,
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "imapwhy test CA"
		if len(s.Names) > 0 {
			tmpl.Subject.CommonName = s.Names[0]
		}
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		if early := tmpl.NotAfter.Add(-48 * time.Hour); early.Before(tmpl.NotBefore) {
			tmpl.NotBefore = early
		}
	}
	pki.AddNames(tmpl, s.Names...)
	if s.CA {
		tmpl.Subject.Organization = []string{"imapwhy tests"}
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		if len(s.Names) > 0 {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	var signed *pki.Signed
	var err error
	if parent != nil {
		signed, err = pki.Sign(tmpl, parent.X509, parent.Key)
	} else {
		signed, err = pki.Sign(tmpl, nil, nil)
	}
	if err != nil {
		return nil, err
	}
	return &Cert{X509: signed.Cert, DER: signed.DER, Key: signed.Key}, nil
}
