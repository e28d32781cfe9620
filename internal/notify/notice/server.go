package notice

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/imapwhy/imapwhy/internal/handoff"
	"github.com/imapwhy/imapwhy/internal/live"
)

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("notice: server closed")

// DefaultMaxSession is how long a notice session lasts by default: then it
// is closed with a BYE, so that the app logs in again and the real server
// is tried again (an app sitting in IDLE would otherwise never notice the
// problem was fixed).
const DefaultMaxSession = 10 * time.Minute

// capabilities is what imapserver announces after login with caps (a test
// compares it with imapserver's own CAPABILITY answer).
var (
	caps         = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapNamespace: {}}
	capabilities = []string{"IMAP4rev1", "SASL-IR", "LITERAL-", "UNSELECT", "ENABLE", "IDLE", "UTF8=ACCEPT", "NAMESPACE"}
)

// Capabilities returns the capability list of a notice session, for the
// tagged OK that answers the login before Serve takes over.
func Capabilities() []string { return append([]string(nil), capabilities...) }

// byeTexts end a session at MaxSession, per language.
var byeTexts = map[string]string{
	"en": "imapwhy closes the notice mailbox now; your mail app will try your real mailbox again",
	"ja": "imapwhy はお知らせメールボックスを閉じます。メールアプリは本来のメールボックスへの接続を再び試みます",
}

// Options configures a Server.
type Options struct {
	// MaxSession bounds one notice session; 0: DefaultMaxSession.
	MaxSession time.Duration
	// Logger receives go-imap's messages (client errors, mostly); nil
	// discards them.
	Logger imapserver.Logger
}

// Server runs go-imap's imapserver for connections whose login the caller
// has already answered with OK. It is safe for concurrent use.
type Server struct {
	imap       *imapserver.Server
	ln         *handoff.Listener
	maxSession time.Duration
	seen       *firstSeen
	served     <-chan error // imapserver.Serve's result (handoff.Serve)

	conns live.Set[*handoffConn]
}

// handoffConn is a connection handed to imapserver, with the session of
// its notice.
type handoffConn = handoff.Conn[*session]

// NewServer starts the imapserver behind the notice mailboxes.
func NewServer(o Options) *Server {
	if o.MaxSession <= 0 {
		o.MaxSession = DefaultMaxSession
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard, "", 0)
	}
	s := &Server{
		ln:         handoff.NewListener(nil),
		maxSession: o.MaxSession,
		seen:       newFirstSeen(),
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession: handoff.NewSession(func(sess *session) (imapserver.Session, error) { return sess, nil }),
		Caps:       caps,
		Logger:     o.Logger,
		// The connection is already private (TLS, or loopback for a
		// tls: none listener) and logged in: no LOGIN is ever read here.
		InsecureAuth: true,
	})
	s.served = handoff.Serve(s.imap, s.ln)
	return s
}

// Serve shows n in the notice mailbox on c, a connection whose login the
// caller has answered with OK [CAPABILITY Capabilities()]; pending are the
// bytes the client sent after its login. It returns when the session ends:
// the client logged out or went away, MaxSession passed (BYE), or Close.
// c is closed on return.
func (s *Server) Serve(c net.Conn, pending []byte, n Notice) error {
	n.Time = s.seen.first(n)
	done := make(chan struct{})
	hc := handoff.NewConn(readOnlyConn{c}, pending, newSession(compose(n), n.Lang), func() { close(done) })
	if !s.conns.Add(hc) {
		hc.Close()
		return ErrClosed
	}
	defer s.conns.Remove(hc)
	if !s.ln.Give(hc) {
		hc.Close()
		return ErrClosed
	}
	timer := time.NewTimer(s.maxSession)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		bye, ok := byeTexts[n.Lang]
		if !ok {
			bye = byeTexts["en"]
		}
		hc.Bye(bye)
		<-done
	}
	return nil
}

// Close ends every notice session and stops the imapserver.
func (s *Server) Close() error {
	conns, first := s.conns.Close()
	if !first {
		return nil
	}
	s.ln.Close()
	err := s.imap.Close()
	// imapserver closes the connections it has registered; these are
	// also the ones it may not have registered yet.
	for _, hc := range conns {
		hc.Close()
	}
	if serr := <-s.served; err == nil {
		err = serr
	}
	return err
}

// firstSeen remembers when a notice was first shown, so that the same
// notice shown again (the app logs in every few minutes) is the same
// message: same Date, same bytes, same UIDVALIDITY. The app then does not
// announce it as new mail each time. Bounded in size and age.
type firstSeen struct {
	mu sync.Mutex
	m  map[[32]byte]time.Time
}

// Bounds of firstSeen.
const (
	firstSeenMax = 4096
	firstSeenTTL = 24 * time.Hour
)

func newFirstSeen() *firstSeen { return &firstSeen{m: make(map[[32]byte]time.Time)} }

// first returns the time n's content was first seen, n.Time if never.
func (f *firstSeen) first(n Notice) time.Time {
	key := noticeKey(n)
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.m[key]; ok && n.Time.Sub(t) < firstSeenTTL && !n.Time.Before(t) {
		return t
	}
	if len(f.m) >= firstSeenMax {
		for k, t := range f.m {
			if n.Time.Sub(t) >= firstSeenTTL {
				delete(f.m, k)
			}
		}
		if len(f.m) >= firstSeenMax {
			clear(f.m)
		}
	}
	f.m[key] = n.Time
	return n.Time
}

// noticeKey identifies a notice's content, its time aside.
func noticeKey(n Notice) [32]byte {
	h := sha256.New()
	field := func(s string) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(s)))
		h.Write(l[:])
		h.Write([]byte(s))
	}
	field(strings.ToLower(n.User))
	field(n.Lang)
	field(n.Message)
	field(string(n.Cause))
	field(n.ProviderName)
	field(n.HelpURL)
	field(strings.Join(n.Steps, "\n"))
	if n.Temporary {
		field("temporary")
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}
