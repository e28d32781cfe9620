package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// fileSource serves the certificate and key files given by the operator.
//
// The pair is held in an atomic pointer behind GetCertificate rather than in
// a certmagic cache: the operator's certificate is served whatever name the
// client asks for (certmagic would refuse a handshake whose SNI the
// certificate does not cover, instead of letting the client report the name
// mismatch), and a reload does no network I/O (certmagic would fetch an OCSP
// staple while loading).
type fileSource struct {
	certFile, keyFile string
	log               zerolog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu     sync.Mutex // serialises reloads; guards the stamps below
	loaded fileStamp  // the files behind cur
	seen   fileStamp  // what the previous poll saw
	failed fileStamp  // the files of the last failed reload, reported once
}

// fileStamp identifies a version of the two files without reading them.
type fileStamp struct {
	cert, key os.FileInfo
}

func newFileSource(certFile, keyFile string, log zerolog.Logger) (*fileSource, error) {
	s := &fileSource{certFile: certFile, keyFile: keyFile, log: log}
	st := s.stamp()
	c, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	warnValidity(log, c.Leaf, certFile)
	s.cur.Store(c)
	s.loaded, s.seen = st, st
	return s, nil
}

func (s *fileSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

func (s *fileSource) leaf() *x509.Certificate { return s.cur.Load().Leaf }

func (s *fileSource) close() {}

func (s *fileSource) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(s.stamp())
}

// reloadIfChanged is the poll: it reloads once the files differ from the
// loaded ones and have stayed the same for one interval, so a cert and key
// written one after the other are read as a pair, and a broken version is
// reported once rather than on every poll.
func (s *fileSource) reloadIfChanged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stamp()
	prev := s.seen
	s.seen = st
	if st.equal(s.loaded) || !st.equal(prev) || st.equal(s.failed) {
		return
	}
	_ = s.reloadLocked(st) // logged
}

// reloadLocked loads the files; st was taken before reading them, so a
// change during the read is seen again by the next poll.
func (s *fileSource) reloadLocked(st fileStamp) error {
	c, err := loadKeyPair(s.certFile, s.keyFile)
	if err != nil {
		s.failed = st
		s.log.Error().Err(err).Str("current_fingerprint", fingerprint(s.cur.Load().Leaf)).
			Msg("certificate reload failed, keeping the current certificate")
		return err
	}
	old := s.cur.Swap(c)
	s.loaded, s.failed = st, fileStamp{}
	if old.Leaf.Equal(c.Leaf) {
		s.log.Debug().Str("fingerprint", fingerprint(c.Leaf)).Msg("certificate files re-read, unchanged")
		return nil
	}
	s.log.Info().Str("fingerprint", fingerprint(c.Leaf)).Str("previous_fingerprint", fingerprint(old.Leaf)).
		Strs("names", certNames(c.Leaf)).Time("not_after", c.Leaf.NotAfter).
		Msg("certificate reloaded")
	warnValidity(s.log, c.Leaf, s.certFile)
	return nil
}

func (s *fileSource) stamp() fileStamp {
	var st fileStamp
	st.cert, _ = os.Stat(s.certFile) // a missing file is a nil stamp: loading reports it
	st.key, _ = os.Stat(s.keyFile)
	return st
}

func (a fileStamp) equal(b fileStamp) bool {
	return sameVersion(a.cert, b.cert) && sameVersion(a.key, b.key)
}

// sameVersion reports whether two stats show the same file, unmodified.
// The inode comparison (os.SameFile) catches a rename over the old file even
// when the new one has the same size and an older modification time.
func sameVersion(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// loadKeyPair reads and checks the operator's files. Errors name the
// configuration key of the file at fault.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	if err := checkCertPEM(certPEM); err != nil {
		return nil, fmt.Errorf("tls.cert_file: %s: %w", certFile, err)
	}
	// The certificates parse, so what X509KeyPair reports is about the key:
	// unparsable, or not the certificate's.
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %s (for tls.cert_file %s): %w", keyFile, certFile, err)
	}
	return &c, nil
}

var errNoCertificate = errors.New("no CERTIFICATE block in the PEM data")

// checkCertPEM checks that data holds at least one certificate and that
// every certificate in it parses.
func checkCertPEM(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n, err)
		}
	}
	if n == 0 {
		return errNoCertificate
	}
	return nil
}

// warnValidity logs a served certificate that clients will reject for its
// dates. It is still served: the operator decides.
func warnValidity(log zerolog.Logger, leaf *x509.Certificate, file string) {
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		log.Warn().Str("file", file).Time("not_after", leaf.NotAfter).Msg("certificate has expired")
	case now.Before(leaf.NotBefore):
		log.Warn().Str("file", file).Time("not_before", leaf.NotBefore).Msg("certificate is not valid yet")
	}
}
