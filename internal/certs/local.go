package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/pki"
)

// Files of the local mode, in the state directory.
const (
	caCertName   = "ca.pem"
	caKeyName    = "ca-key.pem"
	leafCertName = "cert.pem"
	leafKeyName  = "key.pem"
)

const (
	// caLifetime: two years. The CA is limited to this machine's names
	// and private addresses (caConstraints), but a phone trusts it until
	// it expires, so not for longer than a user can be expected to
	// remember installing it.
	caLifetime = 2 * 365 * 24 * time.Hour
	// leafLifetime stays under the 398 days Apple platforms accept for a
	// TLS server certificate issued after 2020-09-01
	// (https://support.apple.com/en-us/102028); 825 days is the limit for
	// certificates from a user-installed CA, the shorter one fits both.
	leafLifetime = 397 * 24 * time.Hour
	// renewBefore is how long before expiry the leaf (or the CA) is
	// replaced.
	renewBefore = 30 * 24 * time.Hour
	// backdate covers clocks a little behind ours (phones, VMs).
	backdate = time.Hour
)

// hostIdentities returns the names and addresses the local leaf is for.
// A variable so that tests can stand in for the host.
var hostIdentities = systemIdentities

// localCA is the CA that signs the local leaf certificate.
type localCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// localSource serves a leaf certificate signed by a CA of its own, both
// kept in the state directory.
type localSource struct {
	dir string
	log zerolog.Logger
	ca  localCA

	cur atomic.Pointer[tls.Certificate]
	mu  sync.Mutex // serialises checks and leaf renewal
}

func newLocalSource(dir string, log zerolog.Logger) (*localSource, error) {
	if dir == "" {
		return nil, errors.New("state_dir: empty; the local certificate needs a directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	ca, err := loadOrCreateCA(dir, log)
	if err != nil {
		return nil, err
	}
	s := &localSource{dir: dir, log: log, ca: ca}
	if err := s.ensureLeaf(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *localSource) caPath() string { return filepath.Join(s.dir, caCertName) }

func (s *localSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

func (s *localSource) leaf() *x509.Certificate { return s.cur.Load().Leaf }

func (s *localSource) close() {}

func (s *localSource) reload() error {
	if err := s.ensureLeaf(); err != nil {
		s.log.Error().Err(err).Msg("local certificate check failed, keeping the current certificate")
		return err
	}
	return nil
}

// check is the periodic form of reload.
func (s *localSource) check() { _ = s.reload() }

// ensureLeaf loads the leaf from the state directory and issues a new one
// when it is missing, unusable, signed by another CA, expires within
// renewBefore, or is not for exactly the host's current names and
// addresses.
func (s *localSource) ensureLeaf() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dns, ips, outside := s.ca.permitted(hostIdentities())
	now := time.Now()
	certPath, keyPath := filepath.Join(s.dir, leafCertName), filepath.Join(s.dir, leafKeyName)
	c, reason := s.usableLeaf(certPath, keyPath, dns, ips, now)
	if reason == "" {
		if old := s.cur.Load(); old == nil || !old.Leaf.Equal(c.Leaf) {
			s.cur.Store(c)
		}
		return nil
	}
	c, err := s.issueLeaf(certPath, keyPath, dns, ips, now)
	if err != nil {
		return err
	}
	s.cur.Store(c)
	s.log.Info().Str("reason", reason).Str("leaf_fingerprint", fingerprint(c.Leaf)).
		Strs("names", certNames(c.Leaf)).Time("not_after", c.Leaf.NotAfter).
		Str("file", certPath).Strs("left_out", outside).Msg("issued local certificate")
	return nil
}

// usableLeaf returns the leaf on disk, or why a new one is needed.
func (s *localSource) usableLeaf(certPath, keyPath string, dns []string, ips []net.IP, now time.Time) (*tls.Certificate, string) {
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, "no certificate yet"
	case err != nil:
		return nil, "unusable: " + err.Error()
	case c.Leaf.CheckSignatureFrom(s.ca.cert) != nil:
		return nil, "not issued by the current local CA"
	case now.Add(renewBefore).After(c.Leaf.NotAfter):
		return nil, "expires within 30 days"
	case !slices.Equal(identityList(c.Leaf.DNSNames, c.Leaf.IPAddresses), identityList(dns, ips)):
		return nil, "host names or addresses changed"
	}
	return &c, ""
}

// issueLeaf creates a key and a leaf certificate for dns and ips, writes
// both (key first: a crash in between leaves a pair that does not match,
// which the next start replaces) and returns them.
func (s *localSource) issueLeaf(certPath, keyPath string, dns []string, ips []net.IP, now time.Time) (*tls.Certificate, error) {
	notAfter := now.Add(leafLifetime)
	if s.ca.cert.NotAfter.Before(notAfter) {
		notAfter = s.ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: primaryName(dns), Organization: []string{"imapwhy"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	leaf, err := pki.Sign(tmpl, s.ca.cert, s.ca.key)
	if err != nil {
		return nil, fmt.Errorf("local certificate: %w", err)
	}
	certPEM, keyPEM, err := encodePair(leaf.DER, leaf.Key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("local certificate: %w", err) // unreachable: we just made the pair
	}
	return &c, nil
}

func encodePair(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	return certPEM, keyPEM, nil
}

// writeFileAtomic replaces path with data: readers see the old file or the
// new one, never a part. The temporary file is created 0600, so a key is
// never readable by others, not even briefly.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

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
