package testkit

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Conn is the server side of one scripted connection.
type Conn struct {
	T      testing.TB
	Conn   net.Conn
	Reader *bufio.Reader
}

// Send writes lines, each with CRLF, in one write. Errors are ignored:
// some scripts expect the client to have gone.
func (c *Conn) Send(lines ...string) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	c.Conn.Write([]byte(b.String()))
}

// Line reads one line without its CRLF.
func (c *Conn) Line() (string, error) {
	line, err := c.Reader.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// Expect reads one line and reports an error unless it is want.
func (c *Conn) Expect(want string) bool {
	c.T.Helper()
	got, err := c.Line()
	if err != nil {
		c.T.Errorf("server: waiting for %q: %v (got %q)", want, err, got)
		return false
	}
	if got != want {
		c.T.Errorf("server got %q, want %q", got, want)
		return false
	}
	return true
}

// ExpectEOF reports an error unless the client hangs up without a word.
func (c *Conn) ExpectEOF() {
	c.T.Helper()
	if line, err := c.Reader.ReadString('\n'); err != io.EOF || line != "" {
		c.T.Errorf("server: got %q, %v; want the client to hang up", line, err)
	}
}

// WaitClose reads and drops everything until the client hangs up.
func (c *Conn) WaitClose() { io.Copy(io.Discard, c.Reader) }

// Serve serves play on every connection to a loopback listener (TLS
// with cert if it is not nil) and returns its address. Each play is
// bounded by Timeout; the test's end waits for them.
func Serve(t testing.TB, cert *tls.Certificate, play func(c *Conn)) string {
	t.Helper()
	var conf *tls.Config
	if cert != nil {
		conf = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	return Accept(t, Listen(t, "", conf), func(conn net.Conn) {
		play(&Conn{T: t, Conn: conn, Reader: bufio.NewReader(conn)})
	})
}

// ReplyIMAP serves a plaintext IMAP server on loopback that answers from a
// table: the greeting, then for each command the lines of
// replies[COMMAND] (upper case), "{tag}" replaced by the command's tag, or
// "tag BAD" for commands not in the table. LOGOUT ends the connection
// after its reply. It returns the address.
func ReplyIMAP(t testing.TB, greeting string, replies map[string][]string) string {
	t.Helper()
	return Serve(t, nil, func(c *Conn) {
		c.Send(greeting)
		for {
			line, err := c.Line()
			if err != nil {
				return
			}
			fields := strings.Fields(line)
			if len(fields) < 2 {
				return
			}
			tag, cmd := fields[0], strings.ToUpper(fields[1])
			reply, ok := replies[cmd]
			if !ok {
				reply = []string{"{tag} BAD unknown command"}
			}
			for _, r := range reply {
				c.Send(strings.ReplaceAll(r, "{tag}", tag))
			}
			if cmd == "LOGOUT" {
				return
			}
		}
	})
}

// MemUser is a user of a MemIMAP server and the messages of its INBOX.
type MemUser struct {
	Name, Password string
	Messages       [][]byte
}

// MemIMAPOptions configure a MemIMAP server; the zero value is a
// plaintext IMAP4rev1 server without users that refuses logins before TLS.
type MemIMAPOptions struct {
	Users []MemUser
	// TLS is "implicit" (a TLS listener), "starttls" (STARTTLS offered) or
	// "" (neither); both need Cert.
	TLS  string
	Cert *tls.Certificate
	// InsecureAuth allows logins without TLS.
	InsecureAuth bool
	// Caps default to IMAP4rev1 alone.
	Caps imap.CapSet
	// CountLogins counts the logins in MemIMAP.Logins. It hides the
	// optional session interfaces (MOVE, NAMESPACE...) from the server.
	CountLogins bool
}

// MemIMAP is go-imap's imapserver with its in-memory backend on loopback.
type MemIMAP struct {
	Addr   string
	Mem    *imapmemserver.Server
	Logins atomic.Int64 // with CountLogins: the logins that reached it
}

// StartMemIMAP starts a MemIMAP server; it stops when the test ends.
func StartMemIMAP(t testing.TB, o MemIMAPOptions) *MemIMAP {
	t.Helper()
	m := &MemIMAP{Mem: imapmemserver.New()}
	for _, u := range o.Users {
		m.AddUser(t, u)
	}
	caps := o.Caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}}
	}
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s := m.Mem.NewSession()
			if o.CountLogins {
				return &countingSession{Session: s, logins: &m.Logins}, nil, nil
			}
			return s, nil, nil
		},
		Caps:         caps,
		Logger:       log.New(io.Discard, "", 0),
		InsecureAuth: o.InsecureAuth,
	}
	var conf *tls.Config
	if o.Cert != nil {
		conf = &tls.Config{Certificates: []tls.Certificate{*o.Cert}}
	}
	ln := Listen(t, "", nil)
	switch o.TLS {
	case "implicit":
		ln = tls.NewListener(ln, conf)
	case "starttls":
		opts.TLSConfig = conf
	}
	srv := imapserver.New(opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	m.Addr = ln.Addr().String()
	return m
}

// AddUser creates the user with an INBOX holding its messages, or replaces
// it (a new password, say).
func (m *MemIMAP) AddUser(t testing.TB, u MemUser) {
	t.Helper()
	user := imapmemserver.NewUser(u.Name, u.Password)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	for _, msg := range u.Messages {
		if _, err := user.Append("INBOX", literal(msg), &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m.Mem.AddUser(user)
}

// countingSession counts the logins that reach the server.
type countingSession struct {
	imapserver.Session
	logins *atomic.Int64
}

func (s *countingSession) Login(user, pw string) error {
	s.logins.Add(1)
	return s.Session.Login(user, pw)
}

// literal adapts a message to imap.LiteralReader.
func literal(b []byte) imap.LiteralReader {
	return &sizedReader{Reader: bytes.NewReader(b), n: int64(len(b))}
}

type sizedReader struct {
	io.Reader
	n int64
}

func (r *sizedReader) Size() int64 { return r.n }

// MemServer starts a MemIMAP server with user alice, password alicepass
// and an empty INBOX, and returns its address. mode is a config TLS mode:
// implicit (TLS listener), starttls (STARTTLS offered) or none (plaintext
// logins allowed), with pki's Good certificate. With insecure false and
// mode none, the server is a plain one that refuses logins before TLS
// (LOGINDISABLED) and offers no STARTTLS.
func MemServer(t testing.TB, mode string, insecure bool, pki *PKI) string {
	t.Helper()
	o := MemIMAPOptions{
		Users:        []MemUser{{Name: "alice", Password: "alicepass"}},
		Cert:         &pki.Good,
		InsecureAuth: insecure,
	}
	if mode == "implicit" || mode == "starttls" {
		o.TLS = mode
	}
	return StartMemIMAP(t, o).Addr
}

// Plain is the SASL PLAIN initial response for user and password, as a
// client sends it in base64.
func Plain(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// Says is a play that sends lines (a greeting, say) and then waits for the
// client to hang up.
func Says(lines ...string) func(c *Conn) {
	return func(c *Conn) {
		c.Send(lines...)
		c.WaitClose()
	}
}
