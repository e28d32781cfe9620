package setup

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"time"
)

// DefaultLinkTTL is how long a set-up link over plain HTTP works.
const DefaultLinkTTL = 30 * time.Minute

// Link is the short-lived secret path under which the set-up page, the
// profile and the CA are served over plain HTTP: the first contact, while
// the device does not trust imapwhy's certificate yet. Whoever sees the
// link (the QR code on the PC's screen) may fetch public things only: the
// CA certificate and a profile holding no password; the person compares
// the fingerprint before trusting it.
type Link struct {
	token   string
	expires time.Time
	now     func() time.Time
}

// NewLink makes a link valid for ttl (0: DefaultLinkTTL); now is the clock
// (nil: time.Now).
func NewLink(ttl time.Duration, now func() time.Time) *Link {
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	if now == nil {
		now = time.Now
	}
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return &Link{token: base64.RawURLEncoding.EncodeToString(b), expires: now().Add(ttl), now: now}
}

// Prefix is the path every plain-HTTP URL starts with: "/s/TOKEN".
func (l *Link) Prefix() string { return "/s/" + l.token }

// Path is the set-up page's path on the plain-HTTP server.
func (l *Link) Path() string { return l.Prefix() + "/setup" }

// Expires is when the link stops working.
func (l *Link) Expires() time.Time { return l.expires }

// check reports whether token is the link's and whether it still works.
func (l *Link) check(token string) (match, live bool) {
	match = subtle.ConstantTimeCompare([]byte(token), []byte(l.token)) == 1
	return match, match && l.now().Before(l.expires)
}
