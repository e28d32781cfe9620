package handoff_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/imapwhy/imapwhy/internal/handoff"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// recorder is a net.Conn that keeps what is written to it, up to limit
// bytes (0: no limit); past the limit Write fails.
type recorder struct {
	net.Conn // nil: only the methods below may be used
	buf      bytes.Buffer
	limit    int
}

var errFull = errors.New("recorder full")

func (r *recorder) Write(p []byte) (int, error) {
	if r.limit > 0 && r.buf.Len()+len(p) > r.limit {
		n, _ := r.buf.Write(p[:r.limit-r.buf.Len()])
		return n, errFull
	}
	return r.buf.Write(p)
}

func (r *recorder) SetDeadline(time.Time) error { return nil }

func TestConnDropsPreauthGreetingOnce(t *testing.T) {
	const greeting = "* PREAUTH [CAPABILITY IMAP4rev1] IMAP server ready\r\n"
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"greeting then a response", []string{greeting, "a1 OK done\r\n"}, "a1 OK done\r\n"},
		{"greeting and a response in one write", []string{greeting + "a1 OK done\r\n"}, "a1 OK done\r\n"},
		{"greeting split across writes", []string{"* PRE", "AUTH [CAPABILITY IMAP4rev1] IMAP server ready\r", "\n", "* 1 EXISTS\r\n"}, "* 1 EXISTS\r\n"},
		{"only the first line", []string{greeting, greeting}, greeting},
		{"greeting alone", []string{greeting}, ""},
		{"BYE instead of the greeting", []string{"* BYE no such user\r\n"}, "* BYE no such user\r\n"},
		{"split NO instead of the greeting", []string{"* NO [SERVER", "BUG] Internal server error\r\nrest"}, "* NO [SERVERBUG] Internal server error\r\nrest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			c := handoff.NewConn(rec, nil, "", nil)
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := rec.buf.String(); got != tt.want {
				t.Errorf("written %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConnShortWrite checks the count a failed Write returns: the bytes of
// p that were dropped, held back or written.
func TestConnShortWrite(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		limit  int
		want   int // returned by the last write
	}{
		{"after the greeting", []string{"* PREAUTH ready\r\nabc"}, 1, len("* PREAUTH ready\r\n") + 1},
		{"in a passed-on first line", []string{"* BYE x\r\n"}, 3, 3},
		{"in the held-back part of a first line", []string{"* BY", "E x\r\nab"}, 3, 0},
		{"later", []string{"* PREAUTH ready\r\n", "abcdef"}, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := handoff.NewConn(&recorder{limit: tt.limit}, nil, "", nil)
			var n int
			var err error
			for _, w := range tt.writes {
				n, err = c.Write([]byte(w))
			}
			if n != tt.want || !errors.Is(err, errFull) {
				t.Errorf("last Write = %d, %v; want %d, %v", n, err, tt.want, errFull)
			}
		})
	}
}

func TestConnReadsPendingFirst(t *testing.T) {
	tests := []struct {
		name    string
		pending string
		later   string // sent by the client after the hand-off
	}{
		{"pending and later", "a2 SELECT INBOX\r\na3 NOOP\r\n", "a4 LOGOUT\r\n"},
		{"no pending", "", "a2 LOGOUT\r\n"},
		{"only pending", "a2 LOGOUT\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer client.Close()
			c := handoff.NewConn(server, []byte(tt.pending), "", nil)
			defer c.Close()
			sent := make(chan error, 1)
			go func() {
				var err error
				if tt.later != "" { // net.Pipe: even an empty Write waits for a Read
					_, err = client.Write([]byte(tt.later))
				}
				sent <- err
			}()
			c.SetReadDeadline(time.Now().Add(testkit.Timeout))
			got := make([]byte, len(tt.pending)+len(tt.later))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if want := tt.pending + tt.later; string(got) != want {
				t.Errorf("read %q, want %q", got, want)
			}
			if err := testkit.Receive(t, sent, testkit.Timeout, "the client's Write"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConnCloseRunsOnCloseOnce(t *testing.T) {
	tests := []struct {
		name  string
		close func(c *handoff.Conn[int])
	}{
		{"Close twice", func(c *handoff.Conn[int]) { c.Close(); c.Close() }},
		{"Bye before the session, then Close", func(c *handoff.Conn[int]) { c.Bye("bye"); c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer client.Close()
			calls := 0
			c := handoff.NewConn(server, nil, 0, func() { calls++ })
			tt.close(c)
			if calls != 1 {
				t.Errorf("onClose ran %d times, want 1", calls)
			}
			if _, err := server.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("the connection is still open: Write: %v", err)
			}
		})
	}
	server, client := net.Pipe()
	defer client.Close()
	if err := handoff.NewConn(server, nil, 0, nil).Close(); err != nil {
		t.Errorf("Close without onClose: %v", err)
	}
}

func TestListener(t *testing.T) {
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 993}
	if got := handoff.NewListener(tcp).Addr(); got != tcp {
		t.Errorf("Addr() = %v, want %v", got, tcp)
	}
	if got := handoff.NewListener(nil).Addr(); got == nil || got.Network() == "" {
		t.Errorf("Addr() of NewListener(nil) = %v", got)
	}

	ln := handoff.NewListener(nil)
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	given := make(chan bool, 1)
	go func() { given <- ln.Give(server) }()
	if c, err := ln.Accept(); c != server || err != nil {
		t.Errorf("Accept() = %v, %v; want the given conn", c, err)
	}
	if !<-given {
		t.Error("Give returned false for an accepted conn")
	}

	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	if err := ln.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := testkit.Receive(t, accepted, testkit.Timeout, "a waiting Accept after Close"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("waiting Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if ln.Give(server) {
		t.Error("Give after Close returned true")
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestServeThenClose closes imapserver right after Serve returned, and
// before it: neither may race (go test -race) or hang, and Give afterwards
// fails.
func TestServeThenClose(t *testing.T) {
	tests := []struct {
		name        string
		closeBefore bool
		wantErr     bool
	}{
		{"Close after Serve", false, false},
		{"Close before Serve", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := handoff.NewListener(nil)
			srv := newIMAPServer(func(string) (imapserver.Session, error) { return nil, errors.New("unused") })
			if tt.closeBefore {
				srv.Close()
			}
			started := make(chan (<-chan error), 1)
			go func() { started <- handoff.Serve(srv, ln) }()
			served := testkit.Receive(t, started, testkit.Timeout, "handoff.Serve")
			srv.Close()
			if tt.closeBefore {
				ln.Close() // imapserver never had it
			}
			if err := testkit.Receive(t, served, testkit.Timeout, "imapserver.Serve after Close"); (err != nil) != tt.wantErr {
				t.Errorf("imapserver.Serve: %v, want error: %v", err, tt.wantErr)
			}
			if _, open := <-served; open {
				t.Error("the channel Serve returned is not closed")
			}
			server, client := net.Pipe()
			defer client.Close()
			if ln.Give(server) {
				t.Error("Give after imapserver.Close returned true")
			}
			server.Close()
		})
	}
}

// TestThroughImapserver runs whole sessions: a login layer of the test's
// own answers LOGIN, then hands the connection to imapserver with
// imapmemserver behind it.
func TestThroughImapserver(t *testing.T) {
	tests := []struct {
		name string
		send string   // what the client sends at once, LOGIN first
		bye  bool     // the server says Conn.Bye after the last reply to send
		want []string // prefixes of lines the client must read, in order
	}{
		{"commands pipelined after LOGIN", "a1 LOGIN alice pw\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n", false,
			[]string{"a1 OK", "* 1 EXISTS", "a2 OK", "* BYE", "a3 OK"}},
		{"Bye during the session", "a1 LOGIN alice pw\r\na2 NOOP\r\n", true,
			[]string{"a1 OK", "a2 OK", "* BYE imapwhy closes the session"}},
		{"session refused with BYE", "a1 LOGIN nobody pw\r\n", false,
			[]string{"a1 OK", "* BYE no such user"}},
		{"session failed", "a1 LOGIN broken pw\r\n", false,
			[]string{"a1 OK", "* NO [SERVERBUG]"}},
	}
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("alice", "pw")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: hello\r\n\r\nhello\r\n"
	if _, err := u.Append("INBOX", strings.NewReader(msg), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	ln := handoff.NewListener(nil)
	srv := newIMAPServer(func(user string) (imapserver.Session, error) {
		switch user {
		case "nobody":
			return nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "no such user"}
		case "broken":
			return nil, errors.New("broken back end")
		}
		sess := mem.NewSession()
		if err := sess.Login(user, "pw"); err != nil {
			return nil, err
		}
		return sess, nil
	})
	served := handoff.Serve(srv, ln)
	defer func() {
		srv.Close()
		<-served
	}()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := testkit.TCPPair(t)
			defer client.Close()
			client.SetDeadline(time.Now().Add(testkit.Timeout))
			if _, err := client.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			closed := make(chan struct{})
			hc, err := answerLogin(server, func() { close(closed) })
			if err != nil {
				server.Close()
				t.Fatal(err)
			}
			if !ln.Give(hc) {
				hc.Close()
				t.Fatal("Give returned false")
			}
			var lines []string
			if tt.bye {
				lines = readLines(t, client, tt.want[:len(tt.want)-1])
				hc.Bye("imapwhy closes the session")
			}
			lines = append(lines, readLines(t, client, nil)...)
			if !containsInOrder(lines, tt.want) {
				t.Errorf("client read %q, want lines starting %q in order", lines, tt.want)
			}
			if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "* PREAUTH") }) {
				t.Errorf("imapserver's greeting reached the client: %q", lines)
			}
			testkit.Receive(t, closed, testkit.Timeout, "the close of the handed-off connection")
		})
	}
}

func newIMAPServer(newSession func(user string) (imapserver.Session, error)) *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession:   handoff.NewSession(newSession),
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		Logger:       log.New(io.Discard, "", 0),
		InsecureAuth: true,
	})
}

// answerLogin is the test's login layer: it reads "tag LOGIN user pass",
// answers OK and wraps c for the hand-off with the bytes read past the
// login.
func answerLogin(c net.Conn, onClose func()) (*handoff.Conn[string], error) {
	c.SetDeadline(time.Now().Add(testkit.Timeout))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[1] != "LOGIN" {
		return nil, errors.New("not a LOGIN: " + line)
	}
	if _, err := c.Write([]byte(f[0] + " OK [CAPABILITY IMAP4rev1] Logged in\r\n")); err != nil {
		return nil, err
	}
	pending, _ := br.Peek(br.Buffered())
	return handoff.NewConn(c, bytes.Clone(pending), f[2], onClose), nil
}

// readLines reads lines from c until it has read lines starting with each
// of until, in order; nil until: to the end.
func readLines(t *testing.T, c net.Conn, until []string) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
		if until != nil && containsInOrder(lines, until) {
			return lines
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("after %q: %v", lines, err)
	}
	return lines
}

// containsInOrder reports whether lines has lines starting with each of
// prefixes, in that order.
func containsInOrder(lines, prefixes []string) bool {
	for _, l := range lines {
		if len(prefixes) > 0 && strings.HasPrefix(l, prefixes[0]) {
			prefixes = prefixes[1:]
		}
	}
	return len(prefixes) == 0
}
