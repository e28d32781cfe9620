package imitate

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/handoff"
	"github.com/imapwhy/imapwhy/internal/live"
)

// Options configures Start.
type Options struct {
	// CA signs the server's certificate for Provider.Host. Nil: a new CA,
	// available from Server.CA.
	CA *CA
	// Listen is the loopback address to listen on; "" means 127.0.0.1:0.
	Listen string
	// Log receives the servers' error messages (go-imap's included).
	// Nil discards them.
	Log *log.Logger
}

// Server is one running imitation.
type Server struct {
	p    Provider
	ca   *CA
	ln   net.Listener
	imap *imapserver.Server
	hand *handoff.Listener
	mem  *imapmemserver.Server
	log  *log.Logger

	// memPassword logs the session in to imapmemserver after our own login
	// layer has accepted it; the client's password goes no further.
	memPassword string

	mu     sync.Mutex
	conns  live.Set[io.Closer] // connections before login, and handed-off ones
	users  map[string]bool     // imapmemserver users created so far
	wg     sync.WaitGroup      // accept loop, pre-login goroutines, handed-off conns
	served <-chan error        // imapserver.Serve's result (handoff.Serve)
}

// Start listens on a loopback address with implicit TLS and serves p until
// Close. Everything before login is p's own text; after a successful login
// the connection is served by go-imap's imapserver with an in-memory
// mailbox (INBOX holds one message).
func Start(p Provider, opts Options) (*Server, error) {
	if p.Host == "" || p.Greeting == "" || len(p.Capabilities) == 0 {
		return nil, fmt.Errorf("imitate: provider %q needs Host, Greeting and Capabilities", p.ID)
	}
	ca := opts.CA
	if ca == nil {
		var err error
		if ca, err = NewCA(); err != nil {
			return nil, err
		}
	}
	cert, err := ca.Issue(p.Host)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("imitate: %w", err)
	}
	ln, err := listenTLS(opts.Listen, cert)
	if err != nil {
		return nil, err
	}
	s := &Server{
		p:           p.clone(),
		ca:          ca,
		ln:          ln,
		hand:        handoff.NewListener(ln.Addr()),
		mem:         imapmemserver.New(),
		log:         opts.Log,
		memPassword: hex.EncodeToString(secret),
		users:       make(map[string]bool),
	}
	if s.log == nil {
		s.log = log.New(io.Discard, "", 0)
	}
	s.imap = s.newIMAPServer()
	s.served = handoff.Serve(s.imap, s.hand)
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// listenTLS listens with implicit TLS on addr, which must be a loopback
// address ("": 127.0.0.1:0).
func listenTLS(addr string, cert tls.Certificate) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("imitate: listen address: %w", err)
	}
	if !config.IsLoopbackHost(host) {
		return nil, fmt.Errorf("imitate: %s is not a loopback address", addr)
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		return nil, fmt.Errorf("imitate: %w", err)
	}
	return ln, nil
}

// newIMAPServer configures go-imap's server for the sessions after login.
// Its capabilities must give PostLoginCapabilities.
func (s *Server) newIMAPServer() *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession: handoff.NewSession(s.newSession),
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {},
			imap.CapNamespace: {},
			imap.CapUIDPlus:   {},
			imap.CapMove:      {},
		},
		Logger: s.log,
	})
}

// Addr returns the address the server listens on ("127.0.0.1:port").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CA returns the authority that signed the server's certificate.
func (s *Server) CA() *CA { return s.ca }

// Provider returns the provider the server imitates.
func (s *Server) Provider() Provider { return s.p.clone() }

// Close stops the server: it closes the listener and every connection, and
// returns when the server's goroutines have ended.
func (s *Server) Close() error {
	if _, first := s.conns.Close(); !first {
		return nil
	}

	err := s.ln.Close()
	// imapserver closes its listener (ours) and the connections it
	// knows; a connection it accepted but has not registered yet is
	// closed below with the others.
	if cerr := s.imap.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		s.log.Printf("imitate %s: closing imapserver: %v", s.p.ID, cerr)
	}
	s.hand.Close()
	// Closed outside the set's lock: closing a handed-off one removes it.
	for _, c := range s.conns.Members() {
		c.Close()
	}
	s.wg.Wait()
	if serr := <-s.served; serr != nil {
		s.log.Printf("imitate %s: imapserver: %v", s.p.ID, serr)
	}
	return err
}

// acceptLoop accepts connections until the listener is closed.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			s.log.Printf("imitate %s: accept: %v", s.p.ID, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !s.conns.Add(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// serveConn runs the pre-login dialog and, after a successful login, hands
// the connection to imapserver.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer s.conns.Remove(c)
	ss := newLoginSession(s, c)
	user, err := ss.run()
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errLogout) {
			s.log.Printf("imitate %s: %s: %v", s.p.ID, c.RemoteAddr(), err)
		}
		c.Close()
		return
	}
	if ss.notConnected {
		ss.serveNotConnected()
		c.Close()
		return
	}
	s.handOff(c, ss.buffered(), user)
}

// handOff gives a logged-in connection to imapserver, with the bytes the
// client already sent after its login command.
func (s *Server) handOff(c net.Conn, pending []byte, user string) {
	if err := s.ensureUser(user); err != nil {
		s.log.Printf("imitate %s: %v", s.p.ID, err)
		c.Close()
		return
	}
	var hc *handoff.Conn[string]
	hc = handoff.NewConn(c, pending, user, func() { s.forget(hc) })
	s.wg.Add(1) // done when imapserver (or Close) closes hc
	if !s.conns.Add(hc) {
		hc.Close()
		return
	}
	if !s.hand.Give(hc) {
		hc.Close()
	}
}

// forget is called once when a handed-off connection is closed.
func (s *Server) forget(hc io.Closer) {
	s.conns.Remove(hc)
	s.wg.Done()
}

// newSession starts imapserver's session for a handed-off connection of
// user, who is already logged in (handoff.NewSession).
func (s *Server) newSession(user string) (imapserver.Session, error) {
	sess := s.mem.NewSession()
	if err := sess.Login(user, s.memPassword); err != nil {
		sess.Close()
		return nil, fmt.Errorf("imitate: imapmemserver login for %q: %w", user, err)
	}
	return sess, nil
}

// ensureUser creates the in-memory mailbox of user on first login: an
// INBOX with one message, so that SELECT and FETCH have something to show.
func (s *Server) ensureUser(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[user] {
		return nil
	}
	u := imapmemserver.NewUser(user, s.memPassword)
	if err := u.Create("INBOX", nil); err != nil {
		return fmt.Errorf("creating INBOX for %q: %w", user, err)
	}
	msg := welcomeMessage(s.p, user)
	if _, err := u.Append("INBOX", bytes.NewReader(msg), &imap.AppendOptions{Time: time.Now()}); err != nil {
		return fmt.Errorf("filling INBOX for %q: %w", user, err)
	}
	s.mem.AddUser(u)
	s.users[user] = true
	return nil
}

// WelcomeSubject is the subject of the one message in every imitated INBOX.
const WelcomeSubject = "Welcome to the imitation"

func welcomeMessage(p Provider, user string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s imitation <postmaster@%s>\r\n", p.Name, p.Host)
	fmt.Fprintf(&b, "To: <%s>\r\n", sanitize(user))
	fmt.Fprintf(&b, "Subject: %s\r\n", WelcomeSubject)
	b.WriteString("Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n")
	b.WriteString("Message-ID: <welcome@imitate.imapwhy.invalid>\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
	fmt.Fprintf(&b, "You are logged in to imapwhy's imitation of %s (%s).\r\n", p.Name, p.Host)
	b.WriteString("Everything after the login is served by go-imap's in-memory server.\r\n")
	return []byte(b.String())
}
