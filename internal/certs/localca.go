package certs

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/pki"
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
	if len(ca.cert.PermittedDNSDomains) == 0 || len(ca.cert.PermittedIPRanges) == 0 {
		log.Warn().Str("old_fingerprint", fingerprint(ca.cert)).Str("file", certPath).
			Msg("the local CA could vouch for any web site (no name constraints); replacing it with one limited to this machine's names and private addresses. " +
				"Install the new CA file on every device that trusted the old one, and remove the old one there")
		return createCA(certPath, keyPath, "previous CA without name constraints", log)
	}
	if time.Now().Add(renewBefore).After(ca.cert.NotAfter) {
		log.Warn().Time("not_after", ca.cert.NotAfter).Str("old_fingerprint", fingerprint(ca.cert)).
			Msg("local CA expires within 30 days; creating a new one, devices must install it again")
		return createCA(certPath, keyPath, "previous CA expiring", log)
	}
	return ca, nil
}

func createCA(certPath, keyPath, reason string, log zerolog.Logger) (localCA, error) {
	now := time.Now()
	domains, ranges := caConstraints(hostIdentities())
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: caName(), Organization: []string{"imapwhy"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Whoever reads the CA key can only vouch for these names and
		// addresses on the phones that trust it, not for any site.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         domains,
		PermittedIPRanges:           ranges,
	}
	ca, err := pki.Sign(tmpl, nil, nil)
	if err != nil {
		return localCA{}, fmt.Errorf("local CA: %w", err)
	}
	certPEM, keyPEM, err := encodePair(ca.DER, ca.Key)
	if err != nil {
		return localCA{}, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return localCA{}, fmt.Errorf("state_dir: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return localCA{}, fmt.Errorf("state_dir: %w", err)
	}
	cert := ca.Cert
	log.Info().Str("reason", reason).Str("fingerprint", fingerprint(cert)).Str("subject", cert.Subject.CommonName).
		Time("not_after", cert.NotAfter).Str("file", certPath).Msg("created local CA")
	return localCA{cert: cert, key: ca.Key}, nil
}

// parsePEM parses with parse the first PEM block of data, which must be of
// type typ; file names the file in the error.
func parsePEM[T any](data []byte, typ, file string, parse func([]byte) (T, error)) (T, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		var zero T
		return zero, fmt.Errorf("no %s block in the %s file", typ, file)
	}
	return parse(b.Bytes)
}

// parseCA parses the CA files and checks that they belong together.
func parseCA(certPEM, keyPEM []byte) (localCA, error) {
	cert, err := parsePEM(certPEM, "CERTIFICATE", "certificate", x509.ParseCertificate)
	if err != nil {
		return localCA{}, err
	}
	if !cert.IsCA {
		return localCA{}, errors.New("the certificate is not a CA certificate")
	}
	k, err := parsePEM(keyPEM, "PRIVATE KEY", "key", x509.ParsePKCS8PrivateKey)
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

// privateRanges are the addresses the local CA may always vouch for:
// loopback, the private IPv4 ranges (RFC 1918), shared address space
// (RFC 6598, carrier NAT and overlay networks) and IPv6 unique local
// addresses.
var privateRanges = []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7"}

// caConstraints are the permitted names of a new local CA: localhost,
// .local (mDNS), the host's own names and the private ranges, plus the
// host's own public addresses, one by one.
func caConstraints(dns []string, ips []net.IP) ([]string, []*net.IPNet) {
	domains := []string{"localhost", "local"}
	for _, d := range dns {
		if !permittedName(domains, d) {
			domains = append(domains, strings.ToLower(d))
		}
	}
	var ranges []*net.IPNet
	for _, r := range privateRanges {
		_, n, _ := net.ParseCIDR(r)
		ranges = append(ranges, n)
	}
	for _, ip := range ips {
		if !permittedIP(ranges, ip) {
			if v4 := ip.To4(); v4 != nil {
				ranges = append(ranges, &net.IPNet{IP: v4, Mask: net.CIDRMask(32, 32)})
			} else {
				ranges = append(ranges, &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)})
			}
		}
	}
	return domains, ranges
}

// permitted splits the host's names and addresses into those the CA may
// vouch for and those it may not (outside, for the log): a leaf naming one
// of the latter would be refused as a whole.
func (ca localCA) permitted(dns []string, ips []net.IP) (okDNS []string, okIPs []net.IP, outside []string) {
	for _, d := range dns {
		if permittedName(ca.cert.PermittedDNSDomains, d) {
			okDNS = append(okDNS, d)
		} else {
			outside = append(outside, d)
		}
	}
	for _, ip := range ips {
		if permittedIP(ca.cert.PermittedIPRanges, ip) {
			okIPs = append(okIPs, ip)
		} else {
			outside = append(outside, ip.String())
		}
	}
	return okDNS, okIPs, outside
}

// permittedName reports whether name is one of domains or under one, as
// RFC 5280 name constraints match.
func permittedName(domains []string, name string) bool {
	name = strings.ToLower(name)
	for _, d := range domains {
		d = strings.ToLower(d)
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func permittedIP(ranges []*net.IPNet, ip net.IP) bool {
	for _, r := range ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}
