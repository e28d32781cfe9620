package shield

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
)

// Several instances behind a load balancer share the history through a
// Store of their own (Redis, in internal/state) and the login rate limits
// through a SharedLimiter. Whatever is shared may fail: the shield and the
// throttle then go on with what this process holds.

// OpenShared makes the shield that c asks for over a shared store, keyed
// by the secret that every instance sharing it holds. It returns nil when c
// switches the shield off.
func OpenShared(c config.Shield, store Store, secret [SecretSize]byte, opts Options) *Shield {
	if !c.On() {
		return nil
	}
	opts.ForwardedTries = c.ForwardedTries
	opts.Window = c.Window.D()
	opts.HistoryTTL = c.HistoryTTL.D()
	return New(store, secret, opts)
}

// SharedLimiter keeps token buckets that every instance counts against:
// the login rate limits.
type SharedLimiter interface {
	// Take takes from each bucket up to its N tokens (as many as there
	// are; N = 0 only looks), in one exchange, and reports for each
	// whether it had a token. An error means the shared buckets cannot
	// be reached now: the caller counts in its own memory instead.
	Take(buckets ...Bucket) ([]bool, error)
}

// Bucket names one shared token bucket, which holds PerMinute tokens and
// refills at PerMinute a minute, and what to take from it.
type Bucket struct {
	Kind, Key string
	PerMinute int
	N         int
}

// Kinds of shared limits.
const (
	LimitAddress  = "addr"      // logins from a client address (prefix)
	LimitUserNet  = "user"      // failures of a user from one network
	LimitUserWide = "user-wide" // failures of a user from anywhere
)

// SetShared makes the login rate limits count in l instead of here (nil:
// here only, the default). The connection limit and the failure delay stay
// per instance. When l fails, the limits are counted here until it works
// again.
func (t *Throttle) SetShared(l SharedLimiter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.shared = l
}

// sharedLimits is the shared limiter and the limits, nil if none.
func (t *Throttle) sharedLimits() (SharedLimiter, config.Limits) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.shared, t.lim
}

// allowAddressShared is AllowAddress through the shared limiter; done is
// false without one or when it fails.
func (t *Throttle) allowAddressShared(addr netip.Addr) (ok, done bool) {
	l, lim := t.sharedLimits()
	if l == nil {
		return false, false
	}
	n := lim.PerAddressLoginsPerMinute
	if n == config.Unlimited {
		return true, true
	}
	had, err := l.Take(Bucket{Kind: LimitAddress, Key: ClientPrefix(addr).String(), PerMinute: n, N: 1})
	if err != nil || len(had) != 1 {
		return false, false
	}
	return had[0], true
}

// allowUserShared is AllowUser's look at the user's failure budgets
// through the shared limiter, in one exchange; done is false without one
// or when it fails.
func (t *Throttle) allowUserShared(addr netip.Addr, user string) (ok, done bool) {
	l, lim := t.sharedLimits()
	if l == nil {
		return false, false
	}
	bs := t.userBuckets(lim, addr, user, 0)
	if len(bs) == 0 {
		return true, true
	}
	had, err := l.Take(bs...)
	if err != nil || len(had) != len(bs) {
		return false, false
	}
	for _, h := range had {
		if !h {
			return false, true
		}
	}
	return true, true
}

// userBuckets are the user's failure budgets, taking n from each.
func (t *Throttle) userBuckets(lim config.Limits, addr netip.Addr, user string, n int) []Bucket {
	per := lim.PerUserLoginsPerMinute
	if per == config.Unlimited {
		return nil
	}
	u := normalUser(user)
	return []Bucket{
		{Kind: LimitUserNet, Key: u + "\x00" + UserPrefix(addr).String(), PerMinute: per, N: n},
		{Kind: LimitUserWide, Key: u, PerMinute: userWide(per), N: n},
	}
}

// spendShared is Spend through the shared limiter; false without one or
// when it fails (the caller then spends here).
func (t *Throttle) spendShared(addr netip.Addr, user string, n int) bool {
	l, lim := t.sharedLimits()
	if l == nil {
		return false
	}
	bs := t.userBuckets(lim, addr, user, n)
	if len(bs) == 0 {
		return true
	}
	_, err := l.Take(bs...)
	return err == nil
}

// recentlyWorked reports whether the attempt's password logged in through
// this process within recentRefresh, and no refusal of any of the user's
// passwords was recorded since (by any instance sharing the store).
func (a *Attempt) recentlyWorked(mac [sha256.Size]byte, now time.Time) bool {
	at, ok := a.s.recent.since(a.key, mac, now)
	if !ok {
		return false
	}
	for _, f := range a.rec.Failed {
		if !f.Last.Before(at) {
			return false
		}
	}
	return true
}

// since is when mac logged in for key, if within recentRefresh of now.
func (r *recentSuccesses) since(key string, mac [sha256.Size]byte, now time.Time) (time.Time, bool) {
	if !r.fresh(key, mac, now) {
		return time.Time{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[key]
	return e.at, ok
}

// ReadSecret reads a secret file made like state_dir/secret (32 bytes,
// mode 0600), for instances that share one.
func ReadSecret(path string) ([SecretSize]byte, error) { return readSecret(path) }
