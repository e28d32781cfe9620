package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
)

var (
	// acmeStartTimeout bounds obtaining (or loading and, if due, renewing)
	// the certificate at start. Let's Encrypt usually takes seconds; the
	// bound turns a CA that cannot validate us into an error at start
	// rather than a daemon without a certificate.
	acmeStartTimeout = 3 * time.Minute

	// acmeListenHost is the address the HTTP-01 and TLS-ALPN-01 challenge
	// solvers bind; "" is every interface, which a public CA needs. Tests
	// set 127.0.0.1.
	acmeListenHost = ""
)

// acmeSource serves certificates that certmagic obtains and renews.
type acmeSource struct {
	domains []string
	cache   *certmagic.Cache
	magic   *certmagic.Config
}

func newACMESource(ctx context.Context, a config.ACME, stateDir string, log zerolog.Logger) (*acmeSource, error) {
	if len(a.Domains) == 0 {
		return nil, errors.New("tls.acme.domains: at least one domain is needed")
	}
	// certmagic asks on stdin for an address when there is none, which a
	// daemon must not do.
	if strings.TrimSpace(a.Email) == "" {
		return nil, errors.New("tls.acme.email: needed for the ACME account (the CA writes there about problems with the certificate)")
	}
	if stateDir == "" {
		return nil, errors.New("state_dir: empty; ACME needs a directory for its account and certificates")
	}
	roots, err := loadCARoot(a.CARoot)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(stateDir, "certmagic")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	ca := a.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	zl := newZapLogger(log)

	s := &acmeSource{domains: a.Domains}
	s.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return s.magic, nil },
		Logger:           zl,
	})
	s.magic = certmagic.New(s.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: dir},
		Logger:  zl,
		// A client that sends no SNI (connecting by address) or another
		// name gets the certificate anyway: it then reports a name
		// mismatch the user can act on, instead of a handshake failure.
		DefaultServerName:  a.Domains[0],
		FallbackServerName: a.Domains[0],
	})
	s.magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(s.magic, certmagic.ACMEIssuer{
		CA:     ca,
		TestCA: testCA(ca),
		Email:  a.Email,
		Agreed: true,
		// The challenge ports as configured: a non-root daemon behind a
		// port forward from 80 and 443.
		AltHTTPPort:    a.HTTPPort,
		AltTLSALPNPort: a.TLSALPNPort,
		ListenHost:     acmeListenHost,
		TrustedRoots:   roots,
		Logger:         zl,
	})}

	ctx, cancel := context.WithTimeout(ctx, acmeStartTimeout)
	defer cancel()
	if err := s.magic.ManageSync(ctx, a.Domains); err != nil {
		s.cache.Stop()
		return nil, fmt.Errorf("tls.acme (CA %s): %w", ca, err)
	}
	if s.leaf() == nil {
		s.cache.Stop()
		return nil, fmt.Errorf("tls.acme: no certificate for %s after obtaining it", a.Domains[0]) // unreachable
	}
	return s, nil
}

// testCA is the directory certmagic retries failed orders against, to spare
// the real CA's rate limits: Let's Encrypt's staging for Let's Encrypt
// (NewACMEIssuer fills it in when empty), the CA itself for any other.
func testCA(ca string) string {
	if ca == certmagic.LetsEncryptProductionCA {
		return ""
	}
	return ca
}

// loadCARoot reads the PEM file of roots to trust for the ACME server's own
// HTTPS; nil (the system's roots) when path is empty.
func loadCARoot(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
	}
	if err := checkCertPEM(data); err != nil {
		return nil, fmt.Errorf("tls.acme.ca_root: %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	return pool, nil
}

func (s *acmeSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.magic.GetCertificate(hello)
}

// leaf is the newest certificate certmagic holds for the first domain.
func (s *acmeSource) leaf() *x509.Certificate {
	var best *x509.Certificate
	for _, c := range s.cache.AllMatchingCertificates(s.domains[0]) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
			best = c.Leaf
		}
	}
	return best
}

// reload does nothing: certmagic checks for renewal on its own schedule
// and swaps the renewed certificate into its cache.
func (s *acmeSource) reload() error { return nil }

func (s *acmeSource) close() { s.cache.Stop() }
