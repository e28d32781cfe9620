package proxy

// Errors of the upstream login and the typed connection facts derived from
// them. Facts come from typed errors (errors.Is / errors.As), never from
// error strings (STYLE.md point 7).

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

	"github.com/imapwhy/imapwhy/diagnose"
)

// upstreamError is a failed upstream login: the phase it failed in and why.
// It never holds the password.
type upstreamError struct {
	Phase diagnose.Phase
	Err   error
}

func (e *upstreamError) Error() string { return "upstream " + string(e.Phase) + ": " + e.Err.Error() }
func (e *upstreamError) Unwrap() error { return e.Err }

// upstreamStatusError is the server saying no: a tagged NO or BAD, or a BYE.
// Its message leaves out the server's text (a server may quote the command
// back); the text is in the Observation.
type upstreamStatusError struct {
	Resp diagnose.Response
}

func (e *upstreamStatusError) Error() string {
	s := "server answered " + e.Resp.Status
	if e.Resp.Code != "" {
		s += " [" + e.Resp.Code + "]"
	}
	return s
}

// upstreamProtocolError is the server breaking IMAP, or not speaking it.
type upstreamProtocolError struct {
	what string
}

func (e *upstreamProtocolError) Error() string { return "server broke the protocol: " + e.what }

var (
	errUpstreamUnsafeCredentials = errors.New("contains CR, LF or NUL")
	errUpstreamNoStartTLS        = errors.New("the server does not offer STARTTLS")
	errUpstreamNoMechanism       = errors.New("the server offers no password login the proxy can use")
	errUpstreamPlainToTLS        = errors.New("no plaintext greeting, and the port completes a TLS handshake")
	errUpstreamStartTLSInjection = &upstreamProtocolError{what: "data after the STARTTLS OK (command injection)"}
)

// upstreamNetError derives the connection fact from err, the error of the
// given phase. Causes from the Observation's own checks (NetProtocol,
// NetTLSToPlain...) are set where they are seen, not here.
func upstreamNetError(err error, phase diagnose.Phase) diagnose.NetError {
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return diagnose.NetDNSNotFound
	}
	if errors.Is(err, context.Canceled) {
		return diagnose.NetOK // our caller gave up; nothing to say about the server
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return diagnose.NetRefused
	}
	if cert := upstreamCertError(err); cert != diagnose.NetOK {
		return cert
	}
	if upstreamIsTimeout(err) {
		return diagnose.NetTimeout
	}
	if upstreamIsReset(err) {
		return diagnose.NetReset
	}
	if _, ok := errors.AsType[*upstreamProtocolError](err); ok {
		return diagnose.NetProtocol
	}
	if phase == diagnose.PhaseTLS {
		return diagnose.NetTLSOther
	}
	return diagnose.NetOK
}

// upstreamCertError classifies a certificate verification failure; the
// x509 errors arrive wrapped in *tls.CertificateVerificationError.
func upstreamCertError(err error) diagnose.NetError {
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return diagnose.NetCertName
	}
	if inv, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		if inv.Reason == x509.Expired { // also "not yet valid"
			return diagnose.NetCertExpired
		}
		return diagnose.NetCertUntrusted // a chain that does not verify
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return diagnose.NetCertUntrusted
	}
	if _, ok := errors.AsType[x509.SystemRootsError](err); ok {
		return diagnose.NetCertUntrusted
	}
	return diagnose.NetOK
}

// upstreamIsTimeout reports a deadline (ours, the dial's or the context's).
func upstreamIsTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	netErr, ok := errors.AsType[net.Error](err)
	return ok && netErr.Timeout()
}

// upstreamIsReset reports the server closing or resetting the connection.
func upstreamIsReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE)
}

// upstreamSniff names the protocol of a server's first bytes: "" for IMAP
// ("* OK", "* BYE"...), "pop3", "smtp", "http", or "other".
func upstreamSniff(first []byte) string {
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

// upstreamIsText reports whether b is printable ASCII text (with CR, LF or
// tab): what a plaintext server's greeting starts with.
func upstreamIsText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\r' && c != '\n' && c != '\t' {
			return false
		}
	}
	return len(b) > 0
}

// upstreamIsTLSRecord reports whether b starts like a TLS record: an alert
// (0x15) or handshake (0x16) of protocol version 3.x.
func upstreamIsTLSRecord(b []byte) bool {
	return len(b) >= 2 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}

// upstreamRecordHeader turns the record header of a TLS handshake that got
// no TLS answer into facts: a plaintext server answered (which one?), or
// something else did.
func upstreamRecordHeader(rh tls.RecordHeaderError) (netErr diagnose.NetError, notIMAP string) {
	head := rh.RecordHeader[:]
	if !upstreamIsText(head) {
		return diagnose.NetTLSOther, ""
	}
	return diagnose.NetTLSToPlain, upstreamSniff(head)
}
