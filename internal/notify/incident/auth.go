package incident

import (
	"crypto/subtle"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/imapwhy/imapwhy/internal/shield"
)

// authResult is the outcome of an admin login.
type authResult int

const (
	authMissing authResult = iota // no credentials sent: ask for them
	authOK
	authRefused // wrong user name or password
	authLimited // too many wrong ones from this address lately
)

// Bounds of password guessing: authFailures wrong logins per client
// address (an IPv4 address or an IPv6 /64, as the IMAP limits count them),
// refilled at one per authRefill; authGlobalFailures wrong logins from all
// addresses together, refilled at one per authGlobalRefill, so that many
// addresses cannot guess faster; at most authMaxAddrs addresses tracked;
// at most authConcurrent bcrypt comparisons at once (each costs tens of
// milliseconds of CPU by design).
const (
	authFailures       = 5
	authRefill         = 12 * time.Second
	authGlobalFailures = 60
	authGlobalRefill   = 3 * time.Second
	authMaxAddrs       = 4096
	authConcurrent     = 2
)

// authGuard checks HTTP Basic credentials against a bcrypt hash, and
// slows down guessing per client address and overall.
type authGuard struct {
	user []byte
	hash []byte
	now  func() time.Time
	sem  chan struct{}

	mu     sync.Mutex
	fails  map[netip.Prefix]*rate.Limiter
	global *rate.Limiter
}

func newAuthGuard(a Admin, now func() time.Time) *authGuard {
	return &authGuard{
		user:   []byte(a.User),
		hash:   a.Hash,
		now:    now,
		sem:    make(chan struct{}, authConcurrent),
		fails:  make(map[netip.Prefix]*rate.Limiter),
		global: rate.NewLimiter(rate.Every(authGlobalRefill), authGlobalFailures),
	}
}

func (g *authGuard) check(r *http.Request) authResult {
	addr := shield.ClientPrefix(remoteAddr(r))
	if g.limited(addr) {
		return authLimited
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return authMissing
	}
	if g.matches(user, pass) {
		return authOK
	}
	g.failed(addr)
	return authRefused
}

// matches compares in constant time and always runs bcrypt, so that a
// wrong user name takes as long as a wrong password.
func (g *authGuard) matches(user, pass string) bool {
	g.sem <- struct{}{}
	defer func() { <-g.sem }()
	userOK := subtle.ConstantTimeCompare([]byte(user), g.user) == 1
	passOK := bcrypt.CompareHashAndPassword(g.hash, []byte(pass)) == nil
	return userOK && passOK
}

func (g *authGuard) limited(addr netip.Prefix) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.global.TokensAt(now) < 1 {
		return true
	}
	lim := g.fails[addr]
	return lim != nil && lim.TokensAt(now) < 1
}

func (g *authGuard) failed(addr netip.Prefix) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.fails[addr]
	if lim == nil {
		if len(g.fails) >= authMaxAddrs {
			g.forgetRestedLocked()
		}
		lim = rate.NewLimiter(rate.Every(authRefill), authFailures)
		g.fails[addr] = lim
	}
	lim.AllowN(g.now(), 1)
	g.global.AllowN(g.now(), 1)
}

// forgetRestedLocked drops the addresses whose allowance is full again;
// if none is, it starts over (the bcrypt bound still holds).
func (g *authGuard) forgetRestedLocked() {
	now := g.now()
	for a, lim := range g.fails {
		if lim.TokensAt(now) >= authFailures {
			delete(g.fails, a)
		}
	}
	if len(g.fails) >= authMaxAddrs {
		clear(g.fails)
	}
}
