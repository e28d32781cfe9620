package certs

import (
	"errors"
	"net"
	"reflect"
)

// TLS alerts a client sends when it does not trust the server's
// certificate (RFC 8446 section 6.2): bad_certificate (iOS, Thunderbird),
// certificate_unknown (Java, some Android apps), unknown_ca (curl,
// OpenSSL, Go).
var untrustedAlerts = map[uint64]string{
	42: "bad_certificate",
	46: "certificate_unknown",
	48: "unknown_ca",
}

// RefusedByClient reports whether a server-side handshake error is the
// client's alert that it does not trust our certificate, and names the
// alert. A device that says so has not installed (or not trusted) the
// local CA yet.
func RefusedByClient(err error) (alert string, ok bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return "", false
	}
	// crypto/tls reports a received alert as a net.OpError whose Err is
	// its unexported alert type, a uint8 holding the alert number.
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return "", false
	}
	alert, ok = untrustedAlerts[v.Uint()]
	return alert, ok
}
