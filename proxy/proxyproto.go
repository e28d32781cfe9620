package proxy

// The PROXY protocol (HAProxy's, v1 and v2) on both sides: a load
// balancer in front says who the client is, and the upstream can be told
// the same.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/rs/zerolog"
)

// proxyHeaderTimeout bounds the wait for a trusted source's PROXY header:
// a balancer sends it at once.
const proxyHeaderTimeout = 5 * time.Second

// Sizes of the header: v1 is one line of at most 107 bytes; v2 is 16
// bytes and its payload, whose TLVs are bounded here (a balancer's are a
// few dozen bytes).
const (
	proxyV1Max        = 107
	proxyV2Fixed      = 16
	proxyV2MaxPayload = 2048
)

var (
	proxyV1Sig = []byte("PROXY ")
	proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// trustsProxy reports whether the listener requires a PROXY header from the
// connection's TCP peer.
func (st *listenerSettings) trustsProxy(peer netip.Addr) bool {
	for _, p := range st.proxyFrom {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// acceptProxyHeader reads the PROXY header when the TCP peer is a trusted
// source, and takes the client's address from it. A trusted source must
// send one: without it, or with a malformed one, the connection is closed
// with a log line and false is returned. Other peers send none (a header
// from them would be read as an IMAP command and not believed).
func (ss *session) acceptProxyHeader() bool {
	if !ss.st.trustsProxy(ss.addr) {
		return true
	}
	peer := ss.raw.RemoteAddr()
	ss.raw.SetReadDeadline(time.Now().Add(min(proxyHeaderTimeout, ss.st.timeouts.PreAuth.D())))
	h, err := readProxyHeader(ss.raw)
	ss.raw.SetReadDeadline(time.Time{})
	if err != nil {
		ss.srv.log.Warn().Str("event", "proxy_header_refused").Str("conn", ss.id).
			Str("peer", peer.String()).Err(err).Msg("a trusted source sent no valid PROXY header; connection closed")
		ss.srv.opts.Metrics.ProxyHeaderRefused()
		return false
	}
	if h.Command.IsLocal() || h.TransportProtocol.IsUnspec() {
		// The balancer's own health check (LOCAL), or a client it cannot
		// name (v1 UNKNOWN, v2 UNSPEC): the peer's address stands, as the
		// protocol says.
		ss.balancerCheck = h.Command.IsLocal()
		return true
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		ss.srv.log.Warn().Str("event", "proxy_header_refused").Str("conn", ss.id).
			Str("peer", peer.String()).Msg("the PROXY header carries no TCP addresses; connection closed")
		ss.srv.opts.Metrics.ProxyHeaderRefused()
		return false
	}
	ss.remote, ss.local = src, dst
	ss.addr = src.AddrPort().Addr().Unmap()
	return true
}

// remoteAddr is the client's address: a trusted PROXY header's source, or
// the TCP peer.
func (ss *session) remoteAddr() net.Addr {
	if ss.remote != nil {
		return ss.remote
	}
	return ss.raw.RemoteAddr()
}

// localAddr is the address the client connected to: a trusted PROXY
// header's destination, or the socket's own.
func (ss *session) localAddr() net.Addr {
	if ss.local != nil {
		return ss.local
	}
	return ss.raw.LocalAddr()
}

// readProxyHeader reads exactly one PROXY header (v1 or v2) from c, not a
// byte more: what follows (a TLS ClientHello, an IMAP command) stays on
// the socket for the session.
func readProxyHeader(c io.Reader) (*proxyproto.Header, error) {
	buf := make([]byte, len(proxyV1Sig), proxyV2Fixed)
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, fmt.Errorf("reading the PROXY header: %w", err)
	}
	switch {
	case bytes.Equal(buf, proxyV1Sig):
		// One line ending in CRLF; read a byte at a time so as not to
		// read past it.
		var b [1]byte
		for !bytes.HasSuffix(buf, []byte("\r\n")) {
			if len(buf) >= proxyV1Max {
				return nil, errors.New("PROXY v1 header longer than 107 bytes")
			}
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return nil, fmt.Errorf("reading the PROXY header: %w", err)
			}
			buf = append(buf, b[0])
		}
	case bytes.Equal(buf, proxyV2Sig[:len(buf)]):
		buf = buf[:proxyV2Fixed]
		if _, err := io.ReadFull(c, buf[len(proxyV1Sig):]); err != nil {
			return nil, fmt.Errorf("reading the PROXY header: %w", err)
		}
		n := int(binary.BigEndian.Uint16(buf[14:16]))
		if n > proxyV2MaxPayload {
			return nil, fmt.Errorf("PROXY v2 header of %d bytes", n)
		}
		buf = append(buf, make([]byte, n)...)
		if _, err := io.ReadFull(c, buf[proxyV2Fixed:]); err != nil {
			return nil, fmt.Errorf("reading the PROXY header: %w", err)
		}
	default:
		return nil, errors.New("the connection does not start with a PROXY header")
	}
	return proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(buf), len(buf)+16))
}

// logProxySource adds the balancer's address to a session's log context
// when the client came through one.
func (ss *session) logProxySource(ctx zerolog.Context) zerolog.Context {
	if ss.remote != nil {
		return ctx.Str("via", ss.raw.RemoteAddr().String())
	}
	return ctx
}
