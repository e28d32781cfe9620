package certs

import (
	"context"
	"io/fs"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// TestACMEConfigErrors: problems found before or while talking to the CA
// are errors at start that name the configuration key.
func TestACMEConfigErrors(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, []byte("not PEM\n"))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	caPEM := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caPEM, testkit.NewCA(t, "ACME server CA").PEM())

	// A port nothing listens on: connection refused, at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "https://" + ln.Addr().String() + "/dir"
	ln.Close()

	base := config.ACME{
		Domains:     []string{"mail.example.test"},
		Email:       "postmaster@example.test",
		CA:          refused,
		CARoot:      caPEM,
		HTTPPort:    testkit.FreePort(t),
		TLSALPNPort: testkit.FreePort(t),
	}
	tests := []struct {
		name       string
		edit       func(a *config.ACME)
		wantPrefix string
		wantIs     error
	}{
		{"no domains", func(a *config.ACME) { a.Domains = nil }, "tls.acme.domains: ", nil},
		{"no email", func(a *config.ACME) { a.Email = " " }, "tls.acme.email: ", nil},
		{"ca_root missing", func(a *config.ACME) { a.CARoot = missing }, "tls.acme.ca_root: open " + missing, fs.ErrNotExist},
		{"ca_root not PEM", func(a *config.ACME) { a.CARoot = garbage }, "tls.acme.ca_root: " + garbage, errNoCertificate},
		{"CA unreachable", func(a *config.ACME) {}, "tls.acme (CA " + refused + "): mail.example.test: ", nil},
	}
	prevHost := acmeListenHost
	acmeListenHost = "127.0.0.1"
	t.Cleanup(func() { acmeListenHost = prevHost })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			tt.edit(&a)
			log, _ := testLog(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			m, err := New(ctx, config.TLS{ACME: &a}, t.TempDir(), log)
			if err == nil {
				m.Close()
			}
			wantErrPrefix(t, err, tt.wantPrefix, tt.wantIs)
		})
	}
}
