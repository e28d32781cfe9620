package dovecottest

import (
	"fmt"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// certSet is a throwaway CA and a server certificate it signed, PEM-encoded.
type certSet struct {
	caPEM   []byte
	certPEM []byte // leaf followed by the CA, as Dovecot's ssl_cert expects a chain
	keyPEM  []byte
}

// certHosts are the names the server certificate is valid for: everything a
// test may dial.
var certHosts = []string{"localhost", "127.0.0.1", "127.0.0.2", "::1"}

// newCertSet makes a fresh CA and a leaf for certHosts, valid from an hour
// ago (a just-created certificate must not be "not yet valid") for a day.
func newCertSet() (*certSet, error) {
	ca, err := testkit.MakeCA("dovecottest CA")
	if err != nil {
		return nil, fmt.Errorf("test CA: %w", err)
	}
	leaf, err := ca.Make(testkit.Spec{CommonName: "localhost", Names: certHosts})
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return &certSet{caPEM: ca.PEM(), certPEM: ca.ChainPEM(leaf), keyPEM: leaf.KeyPEM()}, nil
}
