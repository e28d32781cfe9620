package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// operatorFiles is a cert_file/key_file pair in a temporary directory and
// the CA that issues its contents.
type operatorFiles struct {
	pki               *testkit.CA
	certFile, keyFile string
}

func newOperatorFiles(t *testing.T) *operatorFiles {
	t.Helper()
	dir := t.TempDir()
	return &operatorFiles{
		pki:      testkit.NewCA(t, "operator CA"),
		certFile: filepath.Join(dir, "fullchain.pem"),
		keyFile:  filepath.Join(dir, "privkey.pem"),
	}
}

// install writes a new certificate for localhost (key first, as tools do)
// and returns it.
func (o *operatorFiles) install(t *testing.T) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM := issuePEM(t, o.pki, time.Now().Add(24*time.Hour), "localhost")
	writeFile(t, o.keyFile, keyPEM)
	writeFile(t, o.certFile, certPEM)
	return parsePEMCert(t, certPEM)
}

func (o *operatorFiles) config() config.TLS {
	return config.TLS{CertFile: o.certFile, KeyFile: o.keyFile}
}

func (o *operatorFiles) client() *tls.Config {
	return &tls.Config{RootCAs: o.pki.Pool(), ServerName: "localhost"}
}

func newFiles(t *testing.T, o *operatorFiles) (*Manager, *logBuffer) {
	t.Helper()
	log, buf := testLog(t)
	m, err := New(context.Background(), o.config(), t.TempDir(), log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, buf
}

// TestFilesReload: Reload swaps the certificate for new handshakes only;
// a broken file keeps the current one.
func TestFilesReload(t *testing.T) {
	o := newOperatorFiles(t)
	a := o.install(t)
	m, _ := newFiles(t, o)
	if m.CAFile() != "" {
		t.Errorf("CAFile() = %q in files mode, want \"\"", m.CAFile())
	}
	if got, want := m.Fingerprint(), fingerprint(a); got != want || m.LeafFingerprint() != want {
		t.Errorf("Fingerprint() = %q, LeafFingerprint() = %q, want both %q", got, m.LeafFingerprint(), want)
	}
	addr := startTLSServer(t, m.TLSConfig())
	connA := dialTLS(t, addr, o.client())
	if got := connA.ConnectionState().PeerCertificates[0]; !got.Equal(a) {
		t.Fatalf("first handshake served serial %v, want A (%v)", got.SerialNumber, a.SerialNumber)
	}

	b := o.install(t)
	if err := m.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	connB := dialTLS(t, addr, o.client())
	if got := connB.ConnectionState().PeerCertificates[0]; !got.Equal(b) {
		t.Fatalf("after Reload the handshake served serial %v, want B (%v)", got.SerialNumber, b.SerialNumber)
	}
	echo(t, connA)
	if m.Fingerprint() != fingerprint(b) {
		t.Errorf("Fingerprint() = %q after Reload, want B's", m.Fingerprint())
	}

	broken := []struct {
		name       string
		file       string
		data       string
		wantPrefix string
	}{
		{"garbage certificate", o.certFile, "garbage\n", "tls.cert_file: "},
		{"garbage key", o.keyFile, "garbage\n", "tls.key_file: "},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, tt.file, []byte(tt.data))
			wantErrPrefix(t, m.Reload(), tt.wantPrefix, nil)
			if got := peerLeaf(t, addr, o.client()); !got.Equal(b) {
				t.Errorf("after a failed Reload the handshake served serial %v, want B (%v)", got.SerialNumber, b.SerialNumber)
			}
			echo(t, connA)
			echo(t, connB)
			o.install(t) // repair for the next case
			if err := m.Reload(); err != nil {
				t.Fatal(err)
			}
			b = peerLeaf(t, addr, o.client())
		})
	}
}

// TestFilesWatch: a replaced pair is served without Reload.
func TestFilesWatch(t *testing.T) {
	prev := filePollInterval
	filePollInterval = 20 * time.Millisecond
	t.Cleanup(func() { filePollInterval = prev })

	o := newOperatorFiles(t)
	o.install(t)
	m, _ := newFiles(t, o)
	addr := startTLSServer(t, m.TLSConfig())
	before := dialTLS(t, addr, o.client())

	b := o.install(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := peerLeaf(t, addr, o.client())
		if got.Equal(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not picked up: still serial %v, want %v", got.SerialNumber, b.SerialNumber)
		}
		time.Sleep(20 * time.Millisecond)
	}
	echo(t, before)
}

// TestFilesPoll drives the poll step by step: it waits for the files to
// stay the same for one interval, reports a broken version once and keeps
// the current certificate.
func TestFilesPoll(t *testing.T) {
	o := newOperatorFiles(t)
	a := o.install(t)
	log, buf := testLog(t)
	s, err := newFileSource(o.certFile, o.keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate { return s.leaf() }

	s.reloadIfChanged()
	if !served().Equal(a) || buf.count("certificate reloaded") != 0 {
		t.Fatal("poll of unchanged files reloaded")
	}

	writeFile(t, o.certFile, []byte("garbage\n"))
	s.reloadIfChanged() // first sight: the writer may not be done
	if n := buf.count("certificate reload failed, keeping the current certificate"); n != 0 {
		t.Fatalf("failure reported on first sight (%d times), want after one stable interval", n)
	}
	for range 3 {
		s.reloadIfChanged()
	}
	if n := buf.count("certificate reload failed, keeping the current certificate"); n != 1 {
		t.Errorf("broken file reported %d times, want once", n)
	}
	if !served().Equal(a) {
		t.Error("a broken file replaced the certificate")
	}

	b := o.install(t)
	s.reloadIfChanged()
	s.reloadIfChanged()
	if !served().Equal(b) {
		t.Fatalf("repaired files not loaded: serving serial %v, want %v", served().SerialNumber, b.SerialNumber)
	}
	if n := buf.count("certificate reloaded"); n != 1 {
		t.Errorf("reload logged %d times, want once", n)
	}
}

// TestFilesConfigErrors: errors at start name the configuration key.
func TestFilesConfigErrors(t *testing.T) {
	o := newOperatorFiles(t)
	o.install(t)
	other := newOperatorFiles(t)
	other.install(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name       string
		cfg        config.TLS
		wantPrefix string
		wantIs     error
	}{
		{"cert_file missing", config.TLS{CertFile: missing, KeyFile: o.keyFile}, "tls.cert_file: open " + missing, fs.ErrNotExist},
		{"key_file missing", config.TLS{CertFile: o.certFile, KeyFile: missing}, "tls.key_file: open " + missing, fs.ErrNotExist},
		{"cert_file holds a key", config.TLS{CertFile: o.keyFile, KeyFile: o.keyFile}, "tls.cert_file: " + o.keyFile, errNoCertificate},
		{"key_file unparsable", config.TLS{CertFile: o.certFile, KeyFile: garbage}, "tls.key_file: " + garbage, nil},
		{"key_file of another certificate", config.TLS{CertFile: o.certFile, KeyFile: other.keyFile}, "tls.key_file: " + other.keyFile, nil},
		{"cert_file alone", config.TLS{CertFile: o.certFile}, "tls: cert_file and key_file go together", nil},
		{"key_file alone", config.TLS{KeyFile: o.keyFile}, "tls: cert_file and key_file go together", nil},
		{"acme and files", config.TLS{CertFile: o.certFile, KeyFile: o.keyFile, ACME: &config.ACME{Domains: []string{"x.test"}}}, "tls: acme and cert_file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := testLog(t)
			m, err := New(context.Background(), tt.cfg, t.TempDir(), log)
			if err == nil {
				m.Close()
			}
			wantErrPrefix(t, err, tt.wantPrefix, tt.wantIs)
		})
	}
}
