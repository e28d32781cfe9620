package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// loadOrCreateCA loads the CA from dir, or creates it on the first run or
// when it expires within renewBefore. A CA certificate whose key is missing
// or broken is an error, not a reason to create a new one silently: devices
// that trust it would have to install the new one.
func loadOrCreateCA(dir string, log zerolog.Logger) (localCA, error) {
	certPath, keyPath := filepath.Join(dir, caCertName), filepath.Join(dir, caKeyName)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		// A key without its certificate is a first run cut short: the
		// certificate was never there to be installed anywhere.
		return createCA(certPath, keyPath, "no local CA yet", log)
	}
	if err != nil {
		return localCA{}, fmt.Errorf("state_dir: local CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return localCA{}, fmt.Errorf("state_dir: local CA key: %w (remove %s as well to create a new CA; devices that trust the old one must then install the new one)", err, certPath)
	}
	ca, err := parseCA(certPEM, keyPEM)
	if err != nil {
		return localCA{}, fmt.Errorf("state_dir: local CA %s, %s: %w (remove both to create a new CA; devices that trust the old one must then install the new one)", certPath, keyPath, err)
	}
	if time.Now().Add(renewBefore).After(ca.cert.NotAfter) {
		log.Warn().Time("not_after", ca.cert.NotAfter).Str("old_fingerprint", fingerprint(ca.cert)).
			Msg("local CA expires within 30 days; creating a new one, devices must install it again")
		return createCA(certPath, keyPath, "previous CA expiring", log)
	}
	return ca, nil
}

func createCA(certPath, keyPath, reason string, log zerolog.Logger) (localCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return localCA{}, fmt.Errorf("local CA: generating key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return localCA{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caName(), Organization: []string{"imapwhy"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return localCA{}, fmt.Errorf("local CA: signing: %w", err)
	}
	certPEM, keyPEM, err := encodePair(der, key)
	if err != nil {
		return localCA{}, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return localCA{}, fmt.Errorf("state_dir: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return localCA{}, fmt.Errorf("state_dir: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return localCA{}, fmt.Errorf("local CA: %w", err) // unreachable: we just made it
	}
	log.Info().Str("reason", reason).Str("fingerprint", fingerprint(cert)).Str("subject", cert.Subject.CommonName).
		Time("not_after", cert.NotAfter).Str("file", certPath).Msg("created local CA")
	return localCA{cert: cert, key: key}, nil
}

// parseCA parses the CA files and checks that they belong together.
func parseCA(certPEM, keyPEM []byte) (localCA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return localCA{}, errors.New("no CERTIFICATE block in the certificate file")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return localCA{}, err
	}
	if !cert.IsCA {
		return localCA{}, errors.New("the certificate is not a CA certificate")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return localCA{}, errors.New("no PRIVATE KEY block in the key file")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return localCA{}, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return localCA{}, fmt.Errorf("unsupported key type %T", k)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return localCA{}, errors.New("the key does not match the certificate")
	}
	return localCA{cert: cert, key: signer}, nil
}
