package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/imapwire"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// frontFakeConn is an in-memory net.Conn: the client's bytes come from in,
// whatever the front end writes is collected in out (at most maxOut bytes
// when maxOut > 0). It makes buffering deterministic and fuzzing fast.
type frontFakeConn struct {
	in     io.Reader
	out    bytes.Buffer
	maxOut int
	read   int64 // bytes the front end took from in
}

var errFrontFakeFull = errors.New("fake conn: output limit reached")

func (c *frontFakeConn) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *frontFakeConn) Write(p []byte) (int, error) {
	if c.maxOut > 0 && c.out.Len()+len(p) > c.maxOut {
		return 0, errFrontFakeFull
	}
	return c.out.Write(p)
}

func (c *frontFakeConn) Close() error { return nil }
func (c *frontFakeConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 143}
}
func (c *frontFakeConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *frontFakeConn) SetDeadline(time.Time) error      { return nil }
func (c *frontFakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *frontFakeConn) SetWriteDeadline(time.Time) error { return nil }

// frontFuzzLimits are small so that the fuzzer reaches every limit.
var frontFuzzLimits = config.Limits{MaxLine: 128, MaxLiteral: 32, MaxCommands: 16, MaxBadCommands: 4, MaxLoginTries: 3}

// FuzzPreauth feeds arbitrary client bytes to the front end. The first byte
// picks the listener: bit 0 Secure, bit 1 STARTTLS offered, bit 2 Japanese.
// It checks that nothing panics, that the dialog ends, that the output is
// bounded and made of well-formed response lines, and that every login has
// a valid tag and a known mechanism.
func FuzzPreauth(f *testing.F) {
	serverTLS, _ := frontTestTLS(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		cfg := frontConfig{Secure: data[0]&1 != 0, Limits: frontFuzzLimits, Language: "en"}
		if data[0]&2 != 0 {
			cfg.TLSConfig = serverTLS
		}
		if data[0]&4 != 0 {
			cfg.Language = "ja"
		}
		input := data[1:]
		maxOut := 4096 + 64*len(input)
		conn := &frontFakeConn{in: bytes.NewReader(input), maxOut: maxOut}
		fr := newFront(conn, cfg)
		for i := 0; ; i++ {
			if i > frontFuzzLimits.MaxCommands {
				t.Fatalf("next returned %d logins: more than commands allowed", i)
			}
			req, err := fr.next()
			if err != nil {
				if errors.Is(err, errFrontFakeFull) {
					t.Fatalf("output over %d bytes for %d input bytes", maxOut, len(input))
				}
				break
			}
			if !imapwire.IsTag(req.Tag) || (req.Mechanism != "LOGIN" && req.Mechanism != "PLAIN") {
				t.Fatalf("bad login request: tag %q mechanism %q", req.Tag, req.Mechanism)
			}
			// Echo what the client chose into the reply, to exercise
			// sanitising; alternate failure and success.
			if i%2 == 0 {
				err = fr.refuse(reply{tag: req.Tag, code: "AUTHENTICATIONFAILED", text: req.Username + req.Password})
			} else {
				err = fr.loggedIn(req.Tag, []string{"IMAP4rev1", req.Username})
			}
			if err != nil {
				t.Fatalf("answering login: %v", err)
			}
		}
		frontCheckOutput(t, conn.out.String(), cfg.Limits.MaxLine)
	})
}

// frontCheckOutput checks that out, up to a TLS handshake, is CRLF-ended
// lines that each start with "* ", "+ " or a tag and a space, and no longer
// than a tag of the maximal line and a bounded text.
func frontCheckOutput(t *testing.T, out string, maxLine int) {
	t.Helper()
	const startTLS = " OK Begin TLS negotiation now.\r\n"
	if i := strings.Index(out, startTLS); i >= 0 {
		out = out[:i+len(startTLS)] // TLS records follow
	}
	if out != "" && !strings.HasSuffix(out, "\r\n") {
		t.Fatalf("output does not end with CRLF: %q", out)
	}
	for _, line := range strings.SplitAfter(out, "\r\n") {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\r\n")
		if strings.ContainsAny(body, "\r\n\x00") {
			t.Fatalf("CR, LF or NUL inside a response line: %q", line)
		}
		if len(body) > maxLine+1024 {
			t.Fatalf("response line of %d bytes", len(body))
		}
		tag, _, ok := strings.Cut(body, " ")
		if !ok || (tag != "*" && tag != "+" && !imapwire.IsTag(tag)) {
			t.Fatalf("response line without a tag: %q", line)
		}
	}
}

// frontTestTLS returns a server config with a certificate for localhost
// and loopback addresses, and a client config that trusts it.
func frontTestTLS(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	pki := testkit.NewPKI(tb)
	return pki.ServerConfig(), pki.ClientConfig("localhost")
}
