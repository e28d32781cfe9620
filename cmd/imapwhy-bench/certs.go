//go:build linux

package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// proxyCert is the certificate both proxies (imapwhy and nginx) present:
// ECDSA P-256 signed by a CA made for this run, like Dovecot's own
// (internal/dovecottest), so that every TLS path does the same handshake
// work.
type proxyCert struct {
	CertFile, KeyFile string
	CA                *x509.Certificate
}

// writeProxyCert creates the CA and a leaf for localhost and 127.0.0.1
// and writes the leaf and its key as PEM files into dir.
func writeProxyCert(dir string) (*proxyCert, error) {
	ca, err := testkit.MakeCA("imapwhy-bench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Make(testkit.Spec{Names: []string{"localhost", "127.0.0.1"}, NotAfter: time.Now().Add(7 * 24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	pc := &proxyCert{
		CertFile: filepath.Join(dir, "proxy-cert.pem"),
		KeyFile:  filepath.Join(dir, "proxy-key.pem"),
		CA:       ca.X509,
	}
	if err := writeFile(pc.CertFile, leaf.PEM(), 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(pc.KeyFile, leaf.KeyPEM(), 0o600); err != nil {
		return nil, err
	}
	return pc, nil
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
