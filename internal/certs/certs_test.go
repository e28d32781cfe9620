package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

// testLog returns a logger that keeps what it writes, shown if the test
// fails.
func testLog(t *testing.T) (zerolog.Logger, *logBuffer) {
	t.Helper()
	var b logBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.String())
		}
	})
	return zerolog.New(&b).With().Timestamp().Logger(), &b
}

// logBuffer is the Manager's log.
type logBuffer struct{ testkit.Buffer }

// count is how many log lines carry the message msg.
func (l *logBuffer) count(msg string) int {
	return strings.Count(l.String(), `"message":"`+msg+`"`)
}

var fingerprintRE = regexp.MustCompile(`^SHA256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$`)

// startTLSServer serves conf on a loopback port: each connection completes
// the handshake and then echoes. It returns the address.
func startTLSServer(t *testing.T, conf *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dialTLS completes a handshake with the server at addr and returns the
// connection, closed at the end of the test.
func dialTLS(t *testing.T, addr string, conf *tls.Config) *tls.Conn {
	t.Helper()
	c := handshake(t, addr, conf)
	t.Cleanup(func() { c.Close() })
	return c
}

// peerLeaf does a fresh handshake and returns the server's certificate.
func peerLeaf(t *testing.T, addr string, conf *tls.Config) *x509.Certificate {
	t.Helper()
	c := handshake(t, addr, conf)
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func handshake(t *testing.T, addr string, conf *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// echo checks that an established connection still carries data.
func echo(t *testing.T, c *tls.Conn) {
	t.Helper()
	msg := []byte("a1 NOOP\r\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write on an established connection: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read on an established connection: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// issuePEM returns a PEM certificate and key issued by ca for names (host
// names or IP addresses), valid until notAfter.
func issuePEM(t *testing.T, ca *testkit.CA, notAfter time.Time, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	c := ca.Issue(t, testkit.Spec{Names: names, NotAfter: notAfter})
	return c.PEM(), c.KeyPEM()
}

// parsePEMCert parses the first certificate in data.
func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeFile writes data to path the way a careful operator (or a tool like
// certbot) replaces a file: atomically.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// wantErrPrefix fails unless err starts with prefix (the configuration key
// it must name) and, if target is set, wraps target.
func wantErrPrefix(t *testing.T, err error, prefix string, target error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one starting with %q", prefix)
	}
	t.Logf("error: %v", err)
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %q does not wrap %v", err, target)
	}
}
