// Package certs provides imapwhy's own TLS certificate, the one mail apps
// see, in one of three ways chosen by the configuration:
//
//   - tls.acme: certificates for a public host name obtained and renewed
//     through ACME by certmagic (a gateway);
//   - tls.cert_file and tls.key_file: files given by the operator, re-read
//     on change and on Reload (SIGHUP);
//   - nothing set: a local CA and a leaf certificate for this host, created
//     in the state directory on first run and reused after. A user installs
//     the CA on a phone and checks its Fingerprint.
//
// In every mode the certificate is served through tls.Config.GetCertificate,
// so a new certificate reaches new handshakes without restarting a listener
// and without touching established sessions.
//
// Usage:
//
//	m, err := certs.New(ctx, cfg.TLS, cfg.StateDir, log)
//	if err != nil {
//		return err
//	}
//	defer m.Close()
//	log.Info().Str("fingerprint", m.Fingerprint()).Str("ca_file", m.CAFile()).Msg("certificate ready")
//	ln := tls.NewListener(plain, m.TLSConfig())
//	// on SIGHUP:
//	_ = m.Reload() // logs the outcome; the old certificate stays on error
package certs

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
)

// Intervals of the background checks. Variables so that tests can shorten
// them.
var (
	// filePollInterval is how often the operator's files are checked for a
	// change. Polling (not inotify) also sees a file replaced by rename or
	// by a symlink swap (Kubernetes secrets).
	filePollInterval = 2 * time.Second

	// localCheckInterval is how often the local leaf certificate is checked
	// for expiry and for changed host addresses (a laptop moving networks).
	localCheckInterval = time.Hour
)

// source is one way of providing the certificate.
type source interface {
	// getCertificate is the tls.Config.GetCertificate callback.
	getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// reload re-reads or re-checks the certificate and logs the outcome;
	// on error the current certificate stays in use.
	reload() error
	// leaf is the certificate currently served (nil if none).
	leaf() *x509.Certificate
	// close releases the source's resources.
	close()
}

// Manager provides the proxy's own certificate. Its methods are safe for
// concurrent use.
type Manager struct {
	src     source
	tlsConf *tls.Config
	log     zerolog.Logger

	// local CA mode only: the certificate users install and check.
	caCert *x509.Certificate
	caFile string

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New picks the mode from cfg (tls.acme, then tls.cert_file/key_file, else
// the local CA in stateDir), and returns once a certificate is ready: in
// ACME mode that means obtained or loaded from stateDir/certmagic, bounded
// by ctx and by a start timeout. Errors name the configuration key.
func New(ctx context.Context, cfg config.TLS, stateDir string, log zerolog.Logger) (*Manager, error) {
	m := &Manager{log: log, stop: make(chan struct{})}
	switch {
	case cfg.ACME != nil:
		if cfg.CertFile != "" || cfg.KeyFile != "" {
			return nil, errors.New("tls: acme and cert_file/key_file exclude each other")
		}
		src, err := newACMESource(ctx, *cfg.ACME, stateDir, log)
		if err != nil {
			return nil, err
		}
		m.src = src
		m.logReady("acme")
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("tls: cert_file and key_file go together")
		}
		src, err := newFileSource(cfg.CertFile, cfg.KeyFile, log)
		if err != nil {
			return nil, err
		}
		m.src = src
		m.logReady("files")
		m.startCheck(filePollInterval, src.reloadIfChanged)
	default:
		src, err := newLocalSource(stateDir, log)
		if err != nil {
			return nil, err
		}
		m.src = src
		m.caCert, m.caFile = src.ca.cert, src.caPath()
		m.logReady("local")
		m.startCheck(localCheckInterval, src.check)
	}
	m.tlsConf = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: m.src.getCertificate,
	}
	return m, nil
}

// TLSConfig returns a server configuration (TLS 1.2 or newer) whose
// GetCertificate serves the current certificate. Each call returns a new
// copy, so a caller may set fields such as NextProtos on it.
func (m *Manager) TLSConfig() *tls.Config {
	return m.tlsConf.Clone()
}

// Reload re-reads the operator's files (files mode) or re-checks the local
// leaf certificate against expiry and the host's addresses (local mode). It
// logs the outcome; on error the current certificate stays in use and the
// error is returned. In ACME mode it does nothing: certmagic renews in the
// background.
func (m *Manager) Reload() error {
	return m.src.reload()
}

// Fingerprint is "SHA256 AB:CD:..." of the certificate users should check:
// the local CA in local mode (what is installed on a phone), otherwise the
// leaf certificate currently served.
func (m *Manager) Fingerprint() string {
	if m.caCert != nil {
		return fingerprint(m.caCert)
	}
	return m.LeafFingerprint()
}

// LeafFingerprint is "SHA256 AB:CD:..." of the leaf certificate currently
// served, for logs; "" if there is none.
func (m *Manager) LeafFingerprint() string {
	leaf := m.src.leaf()
	if leaf == nil {
		return ""
	}
	return fingerprint(leaf)
}

// CAFile is the path of the local CA certificate (PEM) to install on a
// phone; "" unless in local mode.
func (m *Manager) CAFile() string {
	return m.caFile
}

// Close stops the background checks and certmagic's maintenance. Handshakes
// keep being served the last certificate. Close is idempotent.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.src.close()
	})
	return nil
}

// startCheck runs check every interval until Close.
func (m *Manager) startCheck(interval time.Duration, check func()) {
	m.wg.Add(1)
	go m.runCheck(interval, check)
}

func (m *Manager) runCheck(interval time.Duration, check func()) {
	defer m.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			check()
		}
	}
}

func (m *Manager) logReady(mode string) {
	ev := m.log.Info().Str("mode", mode).Str("fingerprint", m.Fingerprint())
	if m.caFile != "" {
		ev = ev.Str("ca_file", m.caFile).Str("leaf_fingerprint", m.LeafFingerprint())
	}
	if leaf := m.src.leaf(); leaf != nil {
		ev = ev.Strs("names", certNames(leaf)).Time("not_after", leaf.NotAfter)
	}
	ev.Msg("tls certificate ready")
}

// fingerprint formats the SHA-256 of a certificate's DER encoding the way
// phones and browsers show it: "SHA256 AB:CD:...".
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	b.Grow(len("SHA256 ") + 3*len(sum))
	b.WriteString("SHA256 ")
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// certNames lists the DNS names and IP addresses a certificate is for.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// NotAfter is when the leaf certificate currently served expires, the zero
// time if there is none (for the expiry metric).
func (m *Manager) NotAfter() time.Time {
	if leaf := m.src.leaf(); leaf != nil {
		return leaf.NotAfter
	}
	return time.Time{}
}
