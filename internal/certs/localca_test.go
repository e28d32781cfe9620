package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestLocalCANameConstraints: whoever reads the local CA's key can vouch
// only for this machine's names, localhost, .local and private or own
// addresses on the devices that trust it, not for any web site.
func TestLocalCANameConstraints(t *testing.T) {
	standInHost(t, []string{"localhost", "laptop.example.lan"}, "127.0.0.1", "::1", "192.168.1.10", "203.0.113.5")
	m := newLocal(t, t.TempDir())
	ca := m.src.(*localSource).ca
	p := &testkit.CA{Cert: testkit.Cert{X509: ca.cert, Key: ca.key.(*ecdsa.PrivateKey)}}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	verify := func(name string) error {
		certPEM, _ := issuePEM(t, p, time.Now().Add(24*time.Hour), name)
		leaf := parsePEMCert(t, certPEM)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name})
		return err
	}
	for _, name := range []string{"localhost", "laptop.example.lan", "phone.local", "127.0.0.1", "::1",
		"192.168.1.10", "10.20.30.40", "172.16.0.9", "fd00::1", "203.0.113.5"} {
		if err := verify(name); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	for _, name := range []string{"imap.gmail.com", "mail.example.lan", "example.com", "8.8.8.8", "203.0.113.6", "2001:db8::1"} {
		err := verify(name)
		var inv x509.CertificateInvalidError
		if !errors.As(err, &inv) || inv.Reason != x509.CANotAuthorizedForThisName {
			t.Errorf("%s: %v, want refused by the name constraints", name, err)
		}
	}
	// The leaf the proxy serves passes its own CA's constraints.
	leaf := parsePEMCert(t, readFile(t, filepath.Join(m.src.(*localSource).dir, leafCertName)))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "laptop.example.lan"}); err != nil {
		t.Errorf("the served leaf: %v", err)
	}
}

// TestLocalCAWithoutConstraintsReplaced: a CA made before the constraints
// (any name, ten years) is replaced at start, with a log line that tells
// the user to trust the new one.
func TestLocalCAWithoutConstraintsReplaced(t *testing.T) {
	dir := t.TempDir()
	old := testkit.NewCA(t, "imapwhy local CA old")
	writeFile(t, filepath.Join(dir, caCertName), old.PEM())
	writeFile(t, filepath.Join(dir, caKeyName), old.KeyPEM())

	log, buf := testLog(t)
	m, err := New(context.Background(), config.TLS{}, dir, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer m.Close()
	if m.Fingerprint() == fingerprint(old.X509) {
		t.Fatal("the CA without name constraints was kept")
	}
	checkLocalCA(t, parsePEMCert(t, readFile(t, m.CAFile())))
	logged := buf.String()
	if !strings.Contains(logged, `"level":"warn"`) || !strings.Contains(logged, "Install the new CA file on every device") ||
		!strings.Contains(logged, fingerprint(old.X509)) {
		t.Errorf("no clear log line about the replaced CA:\n%s", logged)
	}
	// The second start keeps the new one.
	m.Close()
	log2, _ := testLog(t)
	m2, err := New(context.Background(), config.TLS{}, dir, log2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.Fingerprint() != m.Fingerprint() {
		t.Error("the constrained CA was replaced again")
	}
}
