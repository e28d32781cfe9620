package pki

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestSignRootAndLeaf: a root signed by its own new key and a leaf it
// signs for a name and an address verify for both, with distinct keys and
// serial numbers.
func TestSignRootAndLeaf(t *testing.T) {
	now := time.Now()
	root, err := Sign(&x509.Certificate{
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	AddNames(tmpl, "imap.example.test", "127.0.0.1")
	leaf, err := Sign(tmpl, root.Cert, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	for _, name := range []string{"imap.example.test", "127.0.0.1"} {
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("leaf for %s: %v", name, err)
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: "other.example.test", Roots: roots}); err == nil {
		t.Error("leaf verified for a name it does not have")
	}
	if leaf.Key.Equal(root.Key) || leaf.Cert.SerialNumber.Cmp(root.Cert.SerialNumber) == 0 {
		t.Error("leaf shares the root's key or serial number")
	}
	if leaf.Cert.CheckSignatureFrom(root.Cert) != nil || root.Cert.CheckSignatureFrom(root.Cert) != nil {
		t.Error("signatures do not check")
	}
}
