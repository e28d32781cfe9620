package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// newLocal starts a Manager in local mode on dir, closed at the end of the
// test.
func newLocal(t *testing.T, dir string) *Manager {
	t.Helper()
	log, _ := testLog(t)
	m, err := New(context.Background(), config.TLS{}, dir, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// standInHost makes the local mode see a host with these names and
// addresses until the end of the test.
func standInHost(t *testing.T, dns []string, ips ...string) {
	t.Helper()
	var parsed []net.IP
	for _, s := range ips {
		parsed = append(parsed, net.ParseIP(s))
	}
	prev := hostIdentities
	hostIdentities = func() ([]string, []net.IP) { return dns, parsed }
	t.Cleanup(func() { hostIdentities = prev })
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	m := newLocal(t, dir)

	modes := map[string]fs.FileMode{
		"":           0o700,
		caCertName:   0o644,
		caKeyName:    0o600,
		leafCertName: 0o644,
		leafKeyName:  0o600,
	}
	for name, want := range modes {
		if got := fileMode(t, filepath.Join(dir, name)); got != want {
			t.Errorf("mode of %q = %v, want %v", filepath.Join(dir, name), got, want)
		}
	}

	if got, want := m.CAFile(), filepath.Join(dir, caCertName); got != want {
		t.Errorf("CAFile() = %q, want %q", got, want)
	}
	ca := parsePEMCert(t, readFile(t, m.CAFile()))
	checkLocalCA(t, ca)
	if got, want := m.Fingerprint(), fingerprint(ca); got != want {
		t.Errorf("Fingerprint() = %q, want the CA's %q", got, want)
	}
	if !fingerprintRE.MatchString(m.Fingerprint()) || !fingerprintRE.MatchString(m.LeafFingerprint()) {
		t.Errorf("fingerprints %q, %q are not SHA256 AB:CD:...", m.Fingerprint(), m.LeafFingerprint())
	}
	if m.LeafFingerprint() == m.Fingerprint() {
		t.Error("LeafFingerprint() is the CA's")
	}

	leaf := parsePEMCert(t, readFile(t, filepath.Join(dir, leafCertName)))
	checkLocalLeaf(t, leaf)

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	addr := startTLSServer(t, m.TLSConfig())
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("leaf does not verify for %q: %v", name, err)
		}
		if name == "::1" {
			continue // the listener is on 127.0.0.1
		}
		got := peerLeaf(t, addr, &tls.Config{RootCAs: roots, ServerName: name})
		if !got.Equal(leaf) {
			t.Errorf("handshake for %q served %v, want the leaf in %s", name, got.Subject, leafCertName)
		}
	}
}

// checkLocalCA checks the properties a phone's trust store cares about.
func checkLocalCA(t *testing.T, ca *x509.Certificate) {
	t.Helper()
	host, _ := os.Hostname()
	if want := "imapwhy local CA " + host; ca.Subject.CommonName != want {
		t.Errorf("CA subject = %q, want %q", ca.Subject.CommonName, want)
	}
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v BasicConstraintsValid=%v KeyUsage=%v", ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage)
	}
	if k, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < 365*24*time.Hour || life > 2*366*24*time.Hour {
		t.Errorf("CA lifetime = %v, want at most 2 years", life)
	}
	if !ca.PermittedDNSDomainsCritical || !slices.Contains(ca.PermittedDNSDomains, "localhost") ||
		!slices.Contains(ca.PermittedDNSDomains, "local") || len(ca.PermittedIPRanges) == 0 {
		t.Errorf("CA name constraints: critical %v, names %v, addresses %v", ca.PermittedDNSDomainsCritical, ca.PermittedDNSDomains, ca.PermittedIPRanges)
	}
}

// checkLocalLeaf checks what Apple platforms require of a TLS server
// certificate: serverAuth, names in the SAN, at most 398 days.
func checkLocalLeaf(t *testing.T, leaf *x509.Certificate) {
	t.Helper()
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 398*24*time.Hour {
		t.Errorf("leaf lifetime = %v, want at most 398 days", life)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("leaf ExtKeyUsage=%v IsCA=%v, want serverAuth only", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if !slices.Contains(leaf.DNSNames, "localhost") {
		t.Errorf("leaf DNS names %v lack localhost", leaf.DNSNames)
	}
	for _, want := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		if !slices.ContainsFunc(leaf.IPAddresses, want.Equal) {
			t.Errorf("leaf addresses %v lack %v", leaf.IPAddresses, want)
		}
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
}

func TestLocalSecondRunReuses(t *testing.T) {
	dir := t.TempDir()
	first := newLocal(t, dir)
	fp, leafFP := first.Fingerprint(), first.LeafFingerprint()
	files := map[string][]byte{}
	for _, name := range []string{caCertName, caKeyName, leafCertName, leafKeyName} {
		files[name] = readFile(t, filepath.Join(dir, name))
	}
	first.Close()

	second := newLocal(t, dir)
	if got := second.Fingerprint(); got != fp {
		t.Errorf("second run CA fingerprint = %q, want %q", got, fp)
	}
	if got := second.LeafFingerprint(); got != leafFP {
		t.Errorf("second run leaf fingerprint = %q, want %q", got, leafFP)
	}
	for name, before := range files {
		if !bytes.Equal(readFile(t, filepath.Join(dir, name)), before) {
			t.Errorf("%s was rewritten on the second run", name)
		}
	}
}

// TestLocalRenewsLeaf: the leaf is replaced, and the CA kept, when the
// leaf on disk cannot serve this host any more.
func TestLocalRenewsLeaf(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes the state directory (or the host) after a first run.
		spoil   func(t *testing.T, dir string, ca localCA)
		wantDNS string // a name the new leaf must have
	}{
		{
			name: "host name changed",
			spoil: func(t *testing.T, dir string, ca localCA) {
				standInHost(t, []string{"localhost", "renamed", "renamed.local"}, "127.0.0.1", "::1")
			},
			wantDNS: "renamed.local",
		},
		{
			name: "address added",
			spoil: func(t *testing.T, dir string, ca localCA) {
				standInHost(t, []string{"localhost", "first.test"}, "127.0.0.1", "::1", "192.168.1.10")
			},
			wantDNS: "first.test",
		},
		{
			name: "expires within 30 days",
			spoil: func(t *testing.T, dir string, ca localCA) {
				writeLeaf(t, dir, &testkit.CA{Cert: testkit.Cert{X509: ca.cert, Key: ca.key.(*ecdsa.PrivateKey)}},
					time.Now().Add(10*24*time.Hour), "localhost", "first.test", "127.0.0.1", "::1")
			},
			wantDNS: "first.test",
		},
		{
			name: "issued by another CA",
			spoil: func(t *testing.T, dir string, ca localCA) {
				writeLeaf(t, dir, testkit.NewCA(t, "other CA"),
					time.Now().Add(300*24*time.Hour), "localhost", "first.test", "127.0.0.1", "::1")
			},
			wantDNS: "first.test",
		},
		{
			name: "leaf file broken",
			spoil: func(t *testing.T, dir string, ca localCA) {
				writeFile(t, filepath.Join(dir, leafCertName), []byte("not a certificate"))
			},
			wantDNS: "first.test",
		},
		{
			name: "leaf key missing",
			spoil: func(t *testing.T, dir string, ca localCA) {
				if err := os.Remove(filepath.Join(dir, leafKeyName)); err != nil {
					t.Fatal(err)
				}
			},
			wantDNS: "first.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			standInHost(t, []string{"localhost", "first.test"}, "127.0.0.1", "::1")
			first := newLocal(t, dir)
			fp, leafFP := first.Fingerprint(), first.LeafFingerprint()
			ca := first.src.(*localSource).ca
			first.Close()

			tt.spoil(t, dir, ca)
			second := newLocal(t, dir)
			if got := second.Fingerprint(); got != fp {
				t.Errorf("CA fingerprint changed: %q, want %q", got, fp)
			}
			if second.LeafFingerprint() == leafFP {
				t.Error("leaf was not renewed")
			}
			leaf := parsePEMCert(t, readFile(t, filepath.Join(dir, leafCertName)))
			if fingerprint(leaf) != second.LeafFingerprint() {
				t.Errorf("%s on disk is not the leaf served", leafCertName)
			}
			checkLocalLeaf(t, leaf)
			if !slices.Contains(leaf.DNSNames, tt.wantDNS) {
				t.Errorf("new leaf names %v lack %q", leaf.DNSNames, tt.wantDNS)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.cert)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
				t.Errorf("new leaf does not verify against the kept CA: %v", err)
			}
		})
	}
}

// writeLeaf replaces the local leaf with one issued by p.
func writeLeaf(t *testing.T, dir string, p *testkit.CA, notAfter time.Time, names ...string) {
	t.Helper()
	certPEM, keyPEM := issuePEM(t, p, notAfter, names...)
	writeFile(t, filepath.Join(dir, leafKeyName), keyPEM)
	writeFile(t, filepath.Join(dir, leafCertName), certPEM)
}

// TestLocalReloadFollowsHost: a running Manager picks up a changed address
// on Reload (as on its hourly check), without a restart, and keeps serving
// established connections.
func TestLocalReloadFollowsHost(t *testing.T) {
	standInHost(t, []string{"localhost", "laptop.test"}, "127.0.0.1", "::1", "192.168.1.10")
	m := newLocal(t, t.TempDir())
	roots := x509.NewCertPool()
	roots.AddCert(m.src.(*localSource).ca.cert)
	conf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	addr := startTLSServer(t, m.TLSConfig())
	before := dialTLS(t, addr, conf)
	oldFP := m.LeafFingerprint()

	if err := m.Reload(); err != nil {
		t.Fatalf("Reload with nothing changed: %v", err)
	}
	if m.LeafFingerprint() != oldFP {
		t.Error("Reload renewed a leaf that is still good")
	}

	standInHost(t, []string{"localhost", "laptop.test"}, "127.0.0.1", "::1", "10.1.2.3")
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	leaf := peerLeaf(t, addr, conf)
	if !slices.ContainsFunc(leaf.IPAddresses, net.ParseIP("10.1.2.3").Equal) {
		t.Errorf("after Reload the served leaf is for %v, want 10.1.2.3 among them", leaf.IPAddresses)
	}
	if fingerprint(leaf) == oldFP {
		t.Error("the served leaf did not change")
	}
	echo(t, before)
}

// TestLocalCAProblems: a CA that users may have installed is never
// replaced silently.
func TestLocalCAProblems(t *testing.T) {
	tests := []struct {
		name       string
		spoil      func(t *testing.T, dir string)
		wantPrefix string // "" means New succeeds
		wantNewCA  bool
		wantIs     error
	}{
		{
			name: "key missing",
			spoil: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, caKeyName)); err != nil {
					t.Fatal(err)
				}
			},
			wantPrefix: "state_dir: local CA key: open ",
			wantIs:     fs.ErrNotExist,
		},
		{
			name: "certificate broken",
			spoil: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, caCertName), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
			},
			wantPrefix: "state_dir: local CA ",
		},
		{
			name: "key of another CA",
			spoil: func(t *testing.T, dir string) {
				_, keyPEM := issuePEM(t, testkit.NewCA(t, "x"), time.Now().Add(time.Hour), "x.test")
				writeFile(t, filepath.Join(dir, caKeyName), keyPEM)
			},
			wantPrefix: "state_dir: local CA ",
		},
		{
			name: "certificate missing: a first run cut short",
			spoil: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, caCertName)); err != nil {
					t.Fatal(err)
				}
			},
			wantNewCA: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			fp := newLocal(t, dir).Fingerprint()
			tt.spoil(t, dir)
			log, _ := testLog(t)
			m, err := New(context.Background(), config.TLS{}, dir, log)
			if tt.wantPrefix != "" {
				wantErrPrefix(t, err, tt.wantPrefix, tt.wantIs)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer m.Close()
			if got := m.Fingerprint() != fp; got != tt.wantNewCA {
				t.Errorf("new CA = %v, want %v", got, tt.wantNewCA)
			}
		})
	}
}

func TestSystemIdentities(t *testing.T) {
	dns, ips := systemIdentities()
	if !slices.Contains(dns, "localhost") {
		t.Errorf("names %v lack localhost", dns)
	}
	for _, want := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback} {
		if !slices.ContainsFunc(ips, want.Equal) {
			t.Errorf("addresses %v lack %v", ips, want)
		}
	}
	for _, ip := range ips {
		if ip.IsLinkLocalUnicast() {
			t.Errorf("link-local address %v included", ip)
		}
	}
	for i := range ips {
		for j := range i {
			if ips[i].Equal(ips[j]) {
				t.Errorf("address %v listed twice", ips[i])
			}
		}
	}
}
