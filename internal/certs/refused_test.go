package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// serverHandshake runs one handshake with the manager's configuration
// against a client configured by conf, and returns the server's error.
func serverHandshake(t *testing.T, m *Manager, conf *tls.Config) error {
	t.Helper()
	client, server := testkit.TCPPair(t)
	done := make(chan error, 1)
	go func() {
		s := tls.Server(server, m.TLSConfig())
		err := s.Handshake()
		if err == nil {
			// TLS 1.3: the client checks the certificate after the
			// server's handshake is done; its alert arrives on the
			// first read.
			_, err = s.Read(make([]byte, 1))
		}
		server.Close()
		done <- err
	}()
	c := tls.Client(client, conf)
	if err := c.Handshake(); err == nil {
		c.Close()
	} else {
		client.Close()
	}
	return <-done
}

// TestRefusedByClient: a client without the local CA refuses the
// certificate, and the server recognises that; a client with it does not;
// other failures are not taken for distrust.
func TestRefusedByClient(t *testing.T) {
	standInHost(t, []string{"imapwhy.test"}, "127.0.0.1")
	m := newLocal(t, filepath.Join(t.TempDir(), "state"))
	err := serverHandshake(t, m, &tls.Config{ServerName: "127.0.0.1"})
	if alert, ok := RefusedByClient(err); !ok || alert == "" {
		t.Errorf("client without the CA: server error %v not recognised", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(m.caCert)
	err = serverHandshake(t, m, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool})
	if _, ok := RefusedByClient(err); ok {
		t.Errorf("client with the CA: %v taken for distrust", err)
	}
	// A protocol mismatch is an alert too, but not about trust.
	err = serverHandshake(t, m, &tls.Config{ServerName: "127.0.0.1", RootCAs: pool, MaxVersion: tls.VersionTLS11})
	if _, ok := RefusedByClient(err); ok || err == nil {
		t.Errorf("TLS 1.1 client: %v taken for distrust", err)
	}
	for _, e := range []error{nil, errors.New("remote error: tls: bad certificate"), &net.OpError{Op: "read", Err: errors.New("x")}} {
		if _, ok := RefusedByClient(e); ok {
			t.Errorf("%v taken for distrust", e)
		}
	}
}
