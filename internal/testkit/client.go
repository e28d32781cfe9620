package testkit

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Client is a raw IMAP client for transcripts: it writes exact bytes and
// reads exact lines, and any failure fails the test.
type Client struct {
	T      testing.TB
	Conn   net.Conn
	Reader *bufio.Reader // over Conn, or over what else the test reads through
}

// NewClient reads and writes conn, within Timeout; conn is closed when the
// test ends.
func NewClient(t testing.TB, conn net.Conn) *Client {
	t.Helper()
	conn.SetDeadline(time.Now().Add(Timeout))
	t.Cleanup(func() { conn.Close() })
	return &Client{T: t, Conn: conn, Reader: bufio.NewReader(conn)}
}

// Send writes s as it is (the caller adds CRLF).
func (c *Client) Send(s string) {
	c.T.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatal(err)
	}
}

// Line reads one line and returns it without its CRLF; a line that ends
// otherwise fails the test.
func (c *Client) Line() string {
	c.T.Helper()
	l, err := c.Reader.ReadString('\n')
	if err != nil {
		c.T.Fatalf("reading a line: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.T.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// Until reads lines up to and including the first that starts with prefix.
func (c *Client) Until(prefix string) []string {
	c.T.Helper()
	var lines []string
	for {
		l := c.Line()
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
}

// Command sends one command line (without CRLF) and returns the lines up
// to its tagged reply.
func (c *Client) Command(cmd string) []string {
	c.T.Helper()
	c.Send(cmd + "\r\n")
	tag, _, _ := strings.Cut(cmd, " ")
	return c.Until(tag + " ")
}

// Greeting reads the greeting and fails the test unless it is "* OK".
func (c *Client) Greeting() string {
	c.T.Helper()
	g := c.Line()
	if !strings.HasPrefix(g, "* OK ") {
		c.T.Fatalf("greeting %q", g)
	}
	return g
}

// ReadToEnd reads until an error and returns it (io.EOF when the server
// closed the connection), with what was read.
func (c *Client) ReadToEnd() (string, error) {
	b, err := io.ReadAll(c.Reader)
	return string(b), err
}

// DialFrom connects to addr over TCP from the local address from ("" for
// any: tests play clients on different networks with 127.0.0.1 and
// 127.0.1.1, say). The connection is closed when the test ends.
func DialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TryWrites tries, through c on a selected mailbox, every command that
// could change a mailbox, and returns each one's error by command name.
func TryWrites(c *imapclient.Client) map[string]error {
	out := map[string]error{}
	msg := "Subject: x\r\n\r\nx\r\n"
	ap := c.Append("INBOX", int64(len(msg)), nil)
	ap.Write([]byte(msg))
	ap.Close()
	_, out["APPEND"] = ap.Wait()
	_, out["STORE"] = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
	_, out["COPY"] = c.Copy(imap.SeqSetNum(1), "INBOX").Wait()
	_, out["MOVE"] = c.Move(imap.SeqSetNum(1), "Trash").Wait()
	_, out["EXPUNGE"] = c.Expunge().Collect()
	out["CREATE"] = c.Create("Sent", nil).Wait()
	out["DELETE"] = c.Delete("INBOX").Wait()
	out["RENAME"] = c.Rename("INBOX", "Old", nil).Wait()
	return out
}

// ExistsHandler returns a handler for imapclient that sends each EXISTS
// count the server announces to the channel it also returns.
func ExistsHandler() (*imapclient.UnilateralDataHandler, <-chan uint32) {
	exists := make(chan uint32, 16)
	return &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}, exists
}

// IdleInbox logs c in as user, selects INBOX and starts IDLE.
func IdleInbox(t testing.TB, c *imapclient.Client, user, pass string) *imapclient.IdleCommand {
	t.Helper()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	return idle
}
