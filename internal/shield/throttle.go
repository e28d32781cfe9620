package shield

import (
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imapwhy/imapwhy/internal/config"
)

// penaltyExpiry: a client address's failure delay is forgotten after this
// long without a failure (Dovecot's PENALTY_DEFAULT_EXPIRE_SECS).
const penaltyExpiry = time.Hour

// throttleSweep is how often idle entries are dropped.
const throttleSweep = time.Minute

// userWideFactor: the failures of one user from all prefixes together are
// capped at this many times the per-prefix limit. A password matching the
// one that worked last passes even then, so that guessing from many
// networks cannot lock the owner out.
const userWideFactor = 5

// Throttle holds the per-client-address and per-user counters: the failure
// delay, the login rate limits and the connection limit (config.Limits). It
// keeps them in memory only. Client addresses are compared by IP, IPv6 by
// its /64 prefix (one host or one LAN), so that a client cannot dodge the
// limits by hopping through its own prefix.
//
// The per-user limit counts failed logins only, per user and client
// network (UserPrefix: IPv4 /24, IPv6 /64), so that a stranger's guessing
// from elsewhere never spends the owner's budget; a user-wide cap of
// userWideFactor times as many failures bounds guessing from many networks.
// It is safe for concurrent use.
type Throttle struct {
	now func() time.Time
	// key keys the fingerprints of failed passwords (in memory only): an
	// identical retry is told from a new guess without keeping the password.
	key [SecretSize]byte

	mu        sync.Mutex
	lim       config.Limits
	conns     map[netip.Prefix]int
	byAddr    map[netip.Prefix]*rate.Limiter
	byUser    map[userNet]*rate.Limiter // failures of a user from one network
	userWide  map[string]*rate.Limiter  // failures of a user from anywhere
	penalties map[netip.Prefix]*penalty
	swept     time.Time
	shared    SharedLimiter // shared.go; nil: the limits are this process's
}

// userNet is the key of the per-user limit: a user from one network.
type userNet struct {
	user string
	net  netip.Prefix
}

// penalty is the failure delay state of one client address.
type penalty struct {
	failures int      // distinct failures since the last success
	last     [16]byte // fingerprint of the last failed user and password
	at       time.Time
}

// NewThrottle makes a throttle with the limits of l (unset fields take
// config's defaults) and the clock now (nil: time.Now).
func NewThrottle(l config.Limits, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	t := &Throttle{
		now:       now,
		key:       NewSecret(),
		conns:     make(map[netip.Prefix]int),
		byAddr:    make(map[netip.Prefix]*rate.Limiter),
		byUser:    make(map[userNet]*rate.Limiter),
		userWide:  make(map[string]*rate.Limiter),
		penalties: make(map[netip.Prefix]*penalty),
	}
	t.SetLimits(l)
	return t
}

// SetLimits applies new limits (a reload). Counters are kept; rate limits
// change for the buckets already there too.
func (t *Throttle) SetLimits(l config.Limits) {
	d := config.Default().Limits
	setDur := func(p *config.Duration, v config.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur(&l.FailureDelayBase, d.FailureDelayBase)
	setDur(&l.FailureDelayMax, d.FailureDelayMax)
	setInt(&l.PerAddressLoginsPerMinute, d.PerAddressLoginsPerMinute)
	setInt(&l.PerUserLoginsPerMinute, d.PerUserLoginsPerMinute)
	setInt(&l.PerAddressConnections, d.PerAddressConnections)
	l.FailureDelayMax = max(l.FailureDelayMax, l.FailureDelayBase)

	t.mu.Lock()
	defer t.mu.Unlock()
	t.lim = l
	now := t.now()
	for _, lim := range t.byAddr {
		setRate(lim, l.PerAddressLoginsPerMinute, now)
	}
	for _, lim := range t.byUser {
		setRate(lim, l.PerUserLoginsPerMinute, now)
	}
	for _, lim := range t.userWide {
		setRate(lim, userWide(l.PerUserLoginsPerMinute), now)
	}
}

// Connect counts a new connection from addr. It returns false, counting
// nothing, when addr already has as many as allowed; otherwise the caller
// calls Disconnect when the connection ends.
func (t *Throttle) Connect(addr netip.Addr) bool {
	p := ClientPrefix(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n := t.lim.PerAddressConnections; n != config.Unlimited && t.conns[p] >= n {
		return false
	}
	t.conns[p]++
	return true
}

// Disconnect ends a connection counted by Connect.
func (t *Throttle) Disconnect(addr netip.Addr) {
	p := ClientPrefix(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns[p] <= 1 {
		delete(t.conns, p)
		return
	}
	t.conns[p]--
}

// AllowLogin takes one login from addr for user out of the rate limits,
// and reports whether it may go on: AllowAddress, then AllowUser.
func (t *Throttle) AllowLogin(addr netip.Addr, user string) bool {
	return t.AllowLoginFor(addr, user, nil)
}

// AllowLoginFor is AllowAddress, then AllowUser with lastWorked.
func (t *Throttle) AllowLoginFor(addr netip.Addr, user string, lastWorked func() bool) bool {
	return t.AllowAddress(addr) && t.AllowUser(addr, user, lastWorked)
}

// AllowAddress takes one login from addr out of the per-address limit and
// reports whether it may go on. It comes first, before the user name is
// even looked at (or rewritten by discovery), so that a client over its
// limit cannot fill the table of user names or make lookups.
func (t *Throttle) AllowAddress(addr netip.Addr) bool {
	if ok, done := t.allowAddressShared(addr); done {
		return ok
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweepLocked(now)
	return allow(t.byAddr, ClientPrefix(addr), t.lim.PerAddressLoginsPerMinute, now)
}

// AllowUser reports whether user, the name the login goes upstream with,
// may try a password from addr: the user's failure limits (counted by
// Failed and Spend, not by logins) have a token left. When they do not,
// lastWorked tells whether this login's password is the one that worked
// last (the shield's Attempt.LastWorked): such a login may go on all the
// same, so that nobody can lock the owner out. lastWorked may be nil (no
// shield); it is called without the throttle's lock held.
func (t *Throttle) AllowUser(addr netip.Addr, user string, lastWorked func() bool) bool {
	ok, done := t.allowUserShared(addr, user)
	if !done {
		u := normalUser(user)
		t.mu.Lock()
		now := t.now()
		per := t.lim.PerUserLoginsPerMinute
		ok = hasToken(t.byUser, userNet{u, UserPrefix(addr)}, per, now) &&
			hasToken(t.userWide, u, userWide(per), now)
		t.mu.Unlock()
	}
	return ok || (lastWorked != nil && lastWorked())
}

// Spend counts n password checks of user from addr against the user's
// failure limits: a refused login counts one (Failed), and each variant of
// the password the history compared on its behalf (a case-inverted or
// trimmed form) counts one more, since it tells whether that form is right.
func (t *Throttle) Spend(addr netip.Addr, user string, n int) {
	if n <= 0 || t.spendShared(addr, user, n) {
		return
	}
	u := normalUser(user)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	per := t.lim.PerUserLoginsPerMinute
	take(t.byUser, userNet{u, UserPrefix(addr)}, per, now, n)
	take(t.userWide, u, userWide(per), now, n)
}

// Failed records a failed login from addr and returns how long to wait
// before answering it: FailureDelayBase, doubled for every further failure
// from addr, up to FailureDelayMax. The same user and password as the
// address's last failure is not a further failure (a device retrying is not
// guessing), and neither is any failure after penaltyExpiry has passed
// without one.
//
// It also counts the failure against the user's limits (Spend).
func (t *Throttle) Failed(addr netip.Addr, user, password string) time.Duration {
	t.Spend(addr, user, 1)
	p := ClientPrefix(addr)
	fp := t.fingerprint(user, password)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	pen := t.penalties[p]
	if pen == nil || now.Sub(pen.at) >= penaltyExpiry {
		pen = &penalty{}
		t.penalties[p] = pen
	}
	if pen.failures == 0 || !hmac.Equal(fp[:], pen.last[:]) {
		pen.failures++
	}
	pen.last, pen.at = fp, now
	return delayFor(pen.failures, t.lim.FailureDelayBase.D(), t.lim.FailureDelayMax.D())
}

// Succeeded clears addr's failure delay, as a successful login does in
// Dovecot.
func (t *Throttle) Succeeded(addr netip.Addr) {
	p := ClientPrefix(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.penalties, p)
}

// delayFor is base doubled failures-1 times, at most max.
func delayFor(failures int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// fingerprint identifies a user and password for the last-failure check:
// an HMAC under a key that never leaves memory.
func (t *Throttle) fingerprint(user, password string) (fp [16]byte) {
	m := hmac.New(sha256.New, t.key[:])
	io.WriteString(m, normalUser(user))
	m.Write([]byte{0})
	hashPassword(m, password)
	copy(fp[:], m.Sum(nil))
	wipeBlock(m)
	return fp
}

// sweepLocked drops, once a minute, the rate limiters that are full again
// (as good as new) and the penalties that have expired.
func (t *Throttle) sweepLocked(now time.Time) {
	if now.Sub(t.swept) < throttleSweep {
		return
	}
	t.swept = now
	dropFull(t.byAddr, now)
	dropFull(t.byUser, now)
	dropFull(t.userWide, now)
	for p, pen := range t.penalties {
		if now.Sub(pen.at) >= penaltyExpiry {
			delete(t.penalties, p)
		}
	}
}

// allow takes a token from key's limiter of perMinute logins a minute
// (a burst of as many), made on first use.
func allow[K comparable](m map[K]*rate.Limiter, key K, perMinute int, now time.Time) bool {
	if perMinute == config.Unlimited {
		return true
	}
	return limiter(m, key, perMinute).AllowN(now, 1)
}

// hasToken reports whether key's limiter has a token left, taking none.
func hasToken[K comparable](m map[K]*rate.Limiter, key K, perMinute int, now time.Time) bool {
	if perMinute == config.Unlimited {
		return true
	}
	lim := m[key]
	return lim == nil || lim.TokensAt(now) >= 1
}

// take takes n tokens from key's limiter, as many as there are when fewer.
func take[K comparable](m map[K]*rate.Limiter, key K, perMinute int, now time.Time, n int) {
	if perMinute == config.Unlimited {
		return
	}
	lim := limiter(m, key, perMinute)
	for range n {
		if !lim.AllowN(now, 1) {
			return
		}
	}
}

// limiter is key's limiter, made on first use: a new limiter starts full,
// perMinute at once.
func limiter[K comparable](m map[K]*rate.Limiter, key K, perMinute int) *rate.Limiter {
	lim := m[key]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)
		m[key] = lim
	}
	return lim
}

// userWide is the user-wide failure limit for a per-network one.
func userWide(perMinute int) int {
	if perMinute == config.Unlimited {
		return perMinute
	}
	return perMinute * userWideFactor
}

func setRate(lim *rate.Limiter, perMinute int, now time.Time) {
	if perMinute == config.Unlimited {
		lim.SetLimitAt(now, rate.Inf)
		return
	}
	lim.SetLimitAt(now, rate.Limit(float64(perMinute)/60))
	lim.SetBurstAt(now, perMinute)
}

func dropFull[K comparable](m map[K]*rate.Limiter, now time.Time) {
	for k, lim := range m {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(m, k)
		}
	}
}

// ClientPrefix is the unit the per-address limits count: an IPv4 address,
// or the /64 of an IPv6 one (one host or one LAN, so that a client cannot
// hop addresses within its prefix). IPv4-mapped IPv6 addresses count as
// IPv4.
func ClientPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() || !a.IsValid() {
		return netip.PrefixFrom(a, a.BitLen())
	}
	p, _ := a.Prefix(64)
	return p
}

// UserPrefix is the client network that the per-user limits and the
// shield's trusted clients count: the /24 of an IPv4 address, the /64 of an
// IPv6 one. A whole network rather than one address, so that a client
// cannot hop addresses to get more guesses; a network rather than the
// whole internet, so that guessing from one network does not touch the
// owner's budget elsewhere. IPv4-mapped IPv6 addresses count as IPv4.
func UserPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	if !a.IsValid() {
		return netip.Prefix{}
	}
	p, _ := a.Prefix(bits)
	return p
}

// normalUser is the user name as the limits and fingerprints count it:
// without case, as the history does.
func normalUser(u string) string { return strings.ToLower(u) }
