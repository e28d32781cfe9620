package imitate

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/imapwhy/imapwhy/internal/pki"
)

// certValidity is how long the CA and its certificates are valid. The
// imitations live in memory for one test or one demo run; a year keeps a
// long-running demo clear of expiry without looking like a real authority.
const certValidity = 365 * 24 * time.Hour

// CA is a certificate authority that lives in memory only. It signs the
// imitations' certificates so that a client (the proxy) can verify them for
// real: give it Pool() as its roots and the provider's host name as
// ServerName.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a fresh authority with a new key.
func NewCA() (*CA, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "imapwhy imitation CA",
			Organization: []string{"imapwhy provider imitations (not a real authority)"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca, err := pki.Sign(tmpl, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("imitate: CA certificate: %w", err)
	}
	return &CA{cert: ca.Cert, key: ca.Key}, nil
}

// Pool returns a new pool holding only this authority.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// PEM returns the authority's certificate in PEM form (for tools such as
// curl --cacert or openssl s_client -CAfile).
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Issue makes a server certificate for the given names, signed by ca. A name
// that parses as an IP address becomes an IP subject alternative name, any
// other a DNS name. The chain sent to clients includes the CA certificate.
func (ca *CA) Issue(names ...string) (tls.Certificate, error) {
	if len(names) == 0 {
		return tls.Certificate{}, errors.New("imitate: a certificate needs at least one name")
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	pki.AddNames(tmpl, names...)
	leaf, err := pki.Sign(tmpl, ca.cert, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("imitate: certificate for %s: %w", names[0], err)
	}
	return tls.Certificate{
		Certificate: [][]byte{leaf.DER, ca.cert.Raw},
		PrivateKey:  leaf.Key,
		Leaf:        leaf.Cert,
	}, nil
}
