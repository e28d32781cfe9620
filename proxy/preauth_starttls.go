package proxy

// STARTTLS (RFC 9051 §6.2.1, RFC 3501 §6.2.1).

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
)

// errFrontHandshake: the TLS handshake after STARTTLS failed. The client
// is neither speaking plaintext any more nor TLS yet, so nothing can be
// said to it.
var errFrontHandshake = errors.New("STARTTLS handshake failed")

// cmdStartTLS upgrades a plain connection. Bytes the client sent after the
// STARTTLS line, before the handshake, are refused rather than carried over:
// they were sent in the clear and would otherwise be executed as if they had
// come over TLS (command injection: CVE-2011-0411 in Postfix, CVE-2011-1926
// in Cyrus IMAP).
func (f *front) cmdStartTLS() (*loginRequest, error) {
	if err := f.argEnd(); err != nil {
		return nil, err
	}
	if f.tlsActive {
		return nil, &frontBad{text: "TLS is already active"}
	}
	if f.cfg.TLSConfig == nil {
		return nil, &frontBad{text: "STARTTLS is not available here"}
	}
	if n := f.br.Buffered(); n > 0 {
		f.tagged("BAD", "CLIENTBUG", "Data after STARTTLS refused")
		return nil, f.byeErr("STARTTLS refused: data was sent after it", errFrontProtocol, "%d bytes pipelined after STARTTLS", n)
	}
	f.tagged("OK", "", "Begin TLS negotiation now.")
	if err := f.flush(); err != nil {
		return nil, err
	}
	tc := tls.Server(f.c, f.cfg.TLSConfig)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("%w: %w", errFrontHandshake, err)
	}
	f.c = tc
	f.br = bufio.NewReader(tc)
	f.bw = bufio.NewWriter(tc)
	f.tlsActive = true
	// What the client said before TLS may have been altered by an active
	// attacker; RFC 5255 §3.1 has the client re-issue LANGUAGE afterwards,
	// so the negotiated language and the ID are forgotten.
	f.lang, f.langAsked = f.cfg.Language, false
	f.id = nil
	return nil, nil
}
