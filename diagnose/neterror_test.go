package diagnose

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
)

func TestSniffProtocol(t *testing.T) {
	tests := []struct{ first, want string }{
		{"* OK ", ""},
		{"* BYE", ""},
		{"+OK D", "pop3"},
		{"220 m", "smtp"},
		{"220-m", "smtp"},
		{"2200 ", "other"},
		{"HTTP/", "http"},
		{"SSH-2", "other"},
		{"", "other"},
	}
	for _, tc := range tests {
		if got := SniffProtocol([]byte(tc.first)); got != tc.want {
			t.Errorf("SniffProtocol(%q) = %q, want %q", tc.first, got, tc.want)
		}
	}
}

func TestLooksLikeTLSRecord(t *testing.T) {
	tests := []struct {
		b    []byte
		want bool
	}{
		{[]byte{0x16, 0x03, 0x01}, true},  // handshake
		{[]byte{0x15, 0x03, 0x03}, true},  // alert
		{[]byte{0x17, 0x03, 0x03}, false}, // application data never comes first
		{[]byte{0x16}, false},
		{[]byte("* OK"), false},
	}
	for _, tc := range tests {
		if got := LooksLikeTLSRecord(tc.b); got != tc.want {
			t.Errorf("LooksLikeTLSRecord(%x) = %v, want %v", tc.b, got, tc.want)
		}
	}
}

// TestNetErrorOf classifies typed errors as the standard library builds
// them, wrapped the way callers wrap them.
func TestNetErrorOf(t *testing.T) {
	header := func(s string) error {
		var rh tls.RecordHeaderError
		copy(rh.RecordHeader[:], s)
		return fmt.Errorf("TLS handshake: %w", rh)
	}
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	tests := []struct {
		name    string
		err     error
		want    NetError
		notIMAP string
	}{
		{"nil", nil, NetOK, ""},
		{"not found", &net.DNSError{Err: "no such host", Name: "imap.example.invalid", IsNotFound: true}, NetDNSNotFound, ""},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, NetDNSUnavailable, ""},
		{"dns server failure", &net.DNSError{Err: "server misbehaving", IsTemporary: true}, NetDNSUnavailable, ""},
		{"no resolver", fmt.Errorf("lookup: %w", &net.DNSError{Err: "connection refused", Name: "imap.gmail.com"}), NetDNSUnavailable, ""},
		{"host unreachable", dial(syscall.EHOSTUNREACH), NetUnreachable, ""},
		{"network unreachable", dial(syscall.ENETUNREACH), NetUnreachable, ""},
		{"our own cancel", fmt.Errorf("dial: %w", context.Canceled), NetOK, ""},
		{"refused", dial(syscall.ECONNREFUSED), NetRefused, ""},
		{"reset", dial(syscall.ECONNRESET), NetReset, ""},
		{"broken pipe", fmt.Errorf("write: %w", syscall.EPIPE), NetReset, ""},
		{"eof", fmt.Errorf("reading the greeting: %w", io.EOF), NetReset, ""},
		{"unexpected eof", io.ErrUnexpectedEOF, NetReset, ""},
		{"deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), NetTimeout, ""},
		{"context deadline", fmt.Errorf("dial: %w", context.DeadlineExceeded), NetTimeout, ""},
		{"name", &tls.CertificateVerificationError{Err: x509.HostnameError{Host: "imap.example.com"}}, NetCertName, ""},
		{"expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, NetCertExpired, ""},
		{"not authorized to sign", x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}, NetCertUntrusted, ""},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, NetCertUntrusted, ""},
		{"no system roots", x509.SystemRootsError{}, NetCertUntrusted, ""},
		{"imap in plaintext", header("* OK "), NetTLSToPlain, ""},
		{"pop3 in plaintext", header("+OK D"), NetTLSToPlain, "pop3"},
		{"smtp in plaintext", header("220 s"), NetTLSToPlain, "smtp"},
		{"http in plaintext", header("HTTP/"), NetTLSToPlain, "http"},
		{"binary answer", header("\x17\x03\x03\xff\xff"), NetTLSOther, ""},
		{"something else", errors.New("no"), NetOK, ""},
		// This computer out of file descriptors, buffers, memory or ports,
		// as the net package reports it (the socket call fails before any
		// packet is sent).
		{"out of file descriptors", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}, NetLocal, ""},
		{"system out of files", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.ENFILE)}, NetLocal, ""},
		{"no buffer space", fmt.Errorf("write: %w", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ENOBUFS)}), NetLocal, ""},
		{"out of memory", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.ENOMEM)}, NetLocal, ""},
		{"out of ephemeral ports", dial(syscall.EADDRNOTAVAIL), NetLocal, ""},
		{"text alone is not a fact", errors.New("socket: too many open files"), NetOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NetErrorOf(tc.err); got != tc.want {
				t.Errorf("NetErrorOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if got := NotIMAPOf(tc.err); got != tc.notIMAP {
				t.Errorf("NotIMAPOf(%v) = %q, want %q", tc.err, got, tc.notIMAP)
			}
		})
	}
}

// TestNetErrorOfRealErrors gets the errors from real operations: a closed
// loopback port, and TLS handshakes over loopback.
func TestNetErrorOfRealErrors(t *testing.T) {
	t.Run("dns not answering", func(t *testing.T) {
		// A resolver whose DNS server is a closed loopback port: the name
		// may exist, but nothing answers.
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.LocalAddr().String()
		l.Close()
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}}
		_, err = r.LookupHost(context.Background(), "imap.gmail.com")
		if got := NetErrorOf(err); got != NetDNSUnavailable {
			t.Errorf("NetErrorOf(%v) = %q, want %q", err, got, NetDNSUnavailable)
		}
	})
	t.Run("refused", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", testkit.ClosedPort(t), 5*time.Second)
		if err == nil {
			conn.Close()
			t.Fatal("dial succeeded")
		}
		if got := NetErrorOf(err); got != NetRefused {
			t.Errorf("NetErrorOf(%v) = %q, want %q", err, got, NetRefused)
		}
	})

	now := time.Now()
	ca := testkit.NewCA(t, "test CA")
	roots := ca.Pool()
	leaf := func(name string, notAfter time.Time, signed bool) tls.Certificate {
		spec := testkit.Spec{Names: []string{name}, NotAfter: notAfter}
		if !signed {
			return testkit.SelfSigned(t, spec).TLS()
		}
		return ca.Issue(t, spec).TLS()
	}
	tests := []struct {
		name string
		cert tls.Certificate
		want NetError
	}{
		{"verified", leaf("imap.example.test", now.Add(time.Hour), true), NetOK},
		{"wrong name", leaf("imap.other.test", now.Add(time.Hour), true), NetCertName},
		{"expired", leaf("imap.example.test", now.Add(-time.Hour), true), NetCertExpired},
		{"self-signed", leaf("imap.example.test", now.Add(time.Hour), false), NetCertUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := netErrHandshake(t, tc.cert, &tls.Config{ServerName: "imap.example.test", RootCAs: roots})
			if got := NetErrorOf(err); got != tc.want {
				t.Errorf("NetErrorOf(%v) = %q, want %q", err, got, tc.want)
			}
		})
	}

	t.Run("imap greeting to a ClientHello", func(t *testing.T) {
		client, server := testkit.TCPPair(t)
		server.Write([]byte("* OK [CAPABILITY IMAP4rev1] ready\r\n"))
		err := tls.Client(client, &tls.Config{ServerName: "imap.example.test"}).Handshake()
		if got := NetErrorOf(err); got != NetTLSToPlain {
			t.Errorf("NetErrorOf(%v) = %q, want %q", err, got, NetTLSToPlain)
		}
		if got := NotIMAPOf(err); got != "" {
			t.Errorf("NotIMAPOf(%v) = %q, want IMAP", err, got)
		}
	})
}

// netErrHandshake runs a TLS handshake between a client with cfg and a server
// with cert, and returns the client's error.
func netErrHandshake(t *testing.T, cert tls.Certificate, cfg *tls.Config) error {
	t.Helper()
	client, server := testkit.TCPPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer server.Close()
		tls.Server(server, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
	}()
	err := tls.Client(client, cfg).Handshake()
	client.Close()
	<-done
	return err
}
