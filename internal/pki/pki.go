// Package pki signs X.509 certificates: the one place where a certificate
// gets its new key and serial number and is signed, for the local CA and
// its leaf, the provider imitations' CA and the tests' certificates. What a
// certificate says (names, lifetime, constraints, usages) stays with the
// caller's template.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
)

// Signed is a certificate and its private key.
type Signed struct {
	Cert *x509.Certificate
	DER  []byte
	Key  *ecdsa.PrivateKey
}

// Sign makes a new P-256 key, gives tmpl a random serial number and signs
// it with parent and parentKey; a nil parent signs tmpl with its own new
// key (a root).
func Sign(tmpl, parent *x509.Certificate, parentKey crypto.Signer) (*Signed, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new certificate: %w", err) // unreachable: just made
	}
	return &Signed{Cert: cert, DER: der, Key: key}, nil
}

// AddNames adds each name to tmpl: to IPAddresses if it parses as an IP
// address, else to DNSNames.
func AddNames(tmpl *x509.Certificate, names ...string) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
}

// randomSerial returns a random 128-bit serial number (RFC 5280 allows up
// to 20 octets; random serials keep two CAs from colliding in one trust
// store).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n, nil
}
