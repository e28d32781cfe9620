package diagnose

// Connection facts from typed Go errors and from a server's first bytes.
// Anything that reaches a server (the proxy's upstream login, `imapwhy
// check`) derives its NetError and NotIMAP facts here, so that both say the
// same thing about the same failure. Facts come from typed errors
// (errors.Is / errors.As), never from error strings.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// NetErrorOf derives the connection fact from err, an error of a DNS lookup,
// a dial, a TLS handshake, or a read or write on the connection. It returns
// NetOK when nothing in err's chain is recognised, and for
// context.Canceled (the caller gave up; that says nothing about the server).
// The caller adds what only it can know: a handshake failure that is none
// of these is NetTLSOther, a server breaking the protocol is NetProtocol,
// a connection failure of no known kind is NetOther.
//
// Certificate verification errors are classified in crypto/x509's order:
// an expired certificate, then a name mismatch, then an unknown authority.
func NetErrorOf(err error) NetError {
	if err == nil {
		return NetOK
	}
	if errors.Is(err, context.Canceled) {
		return NetOK
	}
	if isLocal(err) {
		// First: a lookup or handshake that failed for want of a socket
		// says nothing about DNS or the server.
		return NetLocal
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		if dnsErr.IsNotFound {
			return NetDNSNotFound
		}
		// No answer, SERVFAIL, a timeout or no resolver at all: the name
		// may well exist; this computer's DNS is not answering.
		return NetDNSUnavailable
	}
	if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return NetUnreachable
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return NetRefused
	}
	if cert := certNetError(err); cert != NetOK {
		return cert
	}
	if rh, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return recordHeaderNetError(rh)
	}
	if isTimeout(err) {
		return NetTimeout
	}
	if isReset(err) {
		return NetReset
	}
	return NetOK
}

// NotIMAPOf names the protocol of a plaintext server that answered our TLS
// ClientHello: "pop3", "smtp", "http" or "other" when err holds a
// tls.RecordHeaderError whose header is text of that protocol; "" for an
// IMAP server ("* OK" in plaintext: a TLS/port mix-up, NetTLSToPlain) and for
// any other error.
func NotIMAPOf(err error) string {
	rh, ok := errors.AsType[tls.RecordHeaderError](err)
	if !ok || !isText(rh.RecordHeader[:]) {
		return ""
	}
	return SniffProtocol(rh.RecordHeader[:])
}

// SniffProtocol names the protocol of a server's first bytes: "" for IMAP
// ("* OK", "* BYE"...), "pop3", "smtp", "http", or "other". Five bytes are
// enough (a TLS record header is all a failed handshake keeps).
func SniffProtocol(first []byte) string {
	switch {
	case bytes.HasPrefix(first, []byte("* ")):
		return ""
	case bytes.HasPrefix(first, []byte("+OK")):
		return "pop3"
	case len(first) >= 4 && bytes.HasPrefix(first, []byte("220")) && (first[3] == ' ' || first[3] == '-'):
		return "smtp"
	case bytes.HasPrefix(first, []byte("HTTP/")):
		return "http"
	}
	return "other"
}

// LooksLikeTLSRecord reports whether b starts like a TLS record: an alert
// (0x15) or handshake (0x16) of protocol version 3.x. Seen where a plaintext
// greeting belongs, it means the port speaks TLS (NetPlainToTLS).
func LooksLikeTLSRecord(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}

// certNetError classifies a certificate verification failure; crypto/tls
// delivers the x509 errors wrapped in *tls.CertificateVerificationError.
func certNetError(err error) NetError {
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return NetCertName
	}
	if inv, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if inv.Reason == x509.Expired { // also "not yet valid"
			return NetCertExpired
		}
		return NetCertUntrusted // a chain that does not verify
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return NetCertUntrusted
	}
	if _, ok := errors.AsType[x509.SystemRootsError](err); ok {
		return NetCertUntrusted
	}
	return NetOK
}

// recordHeaderNetError: our ClientHello got an answer that is not TLS. Text
// means a plaintext server answered (NotIMAPOf says which); anything else is
// some other handshake failure.
func recordHeaderNetError(rh tls.RecordHeaderError) NetError {
	if isText(rh.RecordHeader[:]) {
		return NetTLSToPlain
	}
	return NetTLSOther
}

// isLocal reports this computer running out of what a connection needs:
// file descriptors (EMFILE for the process, ENFILE for the system), socket
// buffers or memory, or ephemeral ports (EADDRNOTAVAIL on connect).
func isLocal(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}

// isTimeout reports a deadline: a connection's, a dial's or a context's.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	netErr, ok := errors.AsType[net.Error](err)
	return ok && netErr.Timeout()
}

// isReset reports the server closing or resetting the connection.
func isReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

// isText reports whether b is printable ASCII text (with CR, LF or tab):
// what a plaintext server's greeting starts with.
func isText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\r' && c != '\n' && c != '\t' {
			return false
		}
	}
	return len(b) > 0
}
