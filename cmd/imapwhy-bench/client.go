//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/imapwire"
)

// The benchmark's own IMAP client: it writes commands and reads responses
// as lines, skipping literals without looking at them. imapclient would
// parse every FETCH item and could become the bottleneck it is supposed to
// measure.

// Buffer sizes of the client's reader: bulk reads take big gulps; idle
// sessions are many and only ever read a few short lines.
const (
	bulkReadBuffer = 64 << 10
	idleReadBuffer = 2 << 10
)

// errNotOK is a tagged reply other than OK.
var errNotOK = errors.New("tagged reply is not OK")

// client is one IMAP connection.
type client struct {
	nc   net.Conn
	cr   *countingReader
	br   *bufio.Reader
	tags int
	tls  tls.ConnectionState // the handshake's outcome, zero for plaintext
}

// countingReader counts the (plaintext) bytes the client reads.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// dial connects to addr (with TLS when tlsConf is set), reads the greeting
// and leaves the deadline of ctx, if any, on the connection.
func dial(ctx context.Context, addr string, tlsConf *tls.Config, readBuffer int) (*client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	c := &client{nc: nc}
	if tlsConf != nil {
		tc := tls.Client(nc, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c.nc, c.tls = tc, tc.ConnectionState()
	}
	c.cr = &countingReader{r: c.nc}
	c.br = bufio.NewReaderSize(c.cr, readBuffer)
	greeting, err := c.response()
	if err == nil && !strings.HasPrefix(greeting, "* OK") {
		err = fmt.Errorf("greeting %q", greeting)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting from %s: %w", addr, err)
	}
	return c, nil
}

// Close closes the connection.
func (c *client) Close() error { return c.nc.Close() }

// bytesRead is the number of bytes read from the server so far.
func (c *client) bytesRead() int64 { return c.cr.n }

// send writes one command line (and its literal data, if any) and returns
// its tag.
func (c *client) send(command string, literal ...[]byte) (string, error) {
	c.tags++
	tag := "b" + strconv.Itoa(c.tags)
	buf := make([]byte, 0, len(tag)+len(command)+3)
	buf = append(append(append(buf, tag...), ' '), command...)
	buf = append(buf, "\r\n"...)
	for _, l := range literal {
		buf = append(buf, l...)
	}
	if len(literal) > 0 {
		buf = append(buf, "\r\n"...)
	}
	_, err := c.nc.Write(buf)
	return tag, err
}

// command sends command and reads until its tagged reply, which must be OK.
func (c *client) command(command string, literal ...[]byte) error {
	tag, err := c.send(command, literal...)
	if err != nil {
		return err
	}
	return c.waitTagged(tag)
}

// waitTagged reads responses until the one tagged tag.
func (c *client) waitTagged(tag string) error {
	for {
		line, err := c.response()
		if err != nil {
			return err
		}
		rest, ok := strings.CutPrefix(line, tag+" ")
		if !ok {
			continue
		}
		if !strings.HasPrefix(rest, "OK") {
			return fmt.Errorf("%w: %q", errNotOK, line)
		}
		return nil
	}
}

// waitContinuation reads responses until a continuation request ("+ ").
func (c *client) waitContinuation() error {
	for {
		line, err := c.response()
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "+") {
			return nil
		}
		if !strings.HasPrefix(line, "*") {
			return fmt.Errorf("waiting for a continuation request: %q", line)
		}
	}
}

// response reads one whole response, skipping the literals it contains,
// and returns its first line without CRLF.
func (c *client) response() (string, error) {
	var first string
	for i := 0; ; i++ {
		line, err := c.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: only its start matters.
			if i == 0 {
				first = string(line)
			}
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = c.br.ReadSlice('\n')
			}
		} else if i == 0 {
			first = string(bytes.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return first, err
		}
		_, lit, ok := imapwire.SplitLiteral(bytes.TrimRight(line, "\r\n"))
		if !ok {
			return first, nil
		}
		if lit.Size > math.MaxInt32 {
			return first, fmt.Errorf("literal of %d bytes", lit.Size)
		}
		if _, err := c.br.Discard(int(lit.Size)); err != nil {
			return first, err
		}
	}
}

// login dials addr and logs in as the benchmark user.
func login(ctx context.Context, addr string, tlsConf *tls.Config, readBuffer int) (*client, error) {
	c, err := dial(ctx, addr, tlsConf, readBuffer)
	if err != nil {
		return nil, err
	}
	if err := c.command("LOGIN " + benchUser + " " + benchPassword); err != nil {
		c.Close()
		return nil, fmt.Errorf("login at %s: %w", addr, err)
	}
	return c, nil
}

// inSession logs in to t within timeout, runs f on the connection and
// logs out.
func inSession[T any](ctx context.Context, t target, timeout time.Duration, readBuffer int, f func(c *client) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := login(ctx, t.Addr, t.TLS, readBuffer)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.logout()
	return f(c)
}

// logout says LOGOUT and waits (briefly) for the server to answer, so
// that sessions end the way a mail app ends them.
func (c *client) logout() {
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	c.command("LOGOUT")
	c.Close()
}
