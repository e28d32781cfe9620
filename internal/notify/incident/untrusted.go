package incident

import (
	"net/netip"
	"slices"
	"sync"
	"time"
)

// maxUntrusted bounds the devices remembered as not trusting imapwhy.
const maxUntrusted = 64

// Untrusted is a device that refused imapwhy's certificate: it has not
// installed (or not trusted) the local CA yet.
type Untrusted struct {
	Client netip.Addr
	Time   time.Time // the last refusal
}

// untrustedSet remembers devices that refused the certificate, for the
// status page, for the store's TTL; a device that logs in later is
// forgotten.
type untrustedSet struct {
	mu sync.Mutex
	by map[netip.Addr]time.Time
}

// MarkUntrusted notes that the device at client refused imapwhy's
// certificate.
func (s *Store) MarkUntrusted(client netip.Addr) {
	if !client.IsValid() {
		return
	}
	u := &s.untrusted
	now := s.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.by == nil {
		u.by = map[netip.Addr]time.Time{}
	}
	u.by[client.Unmap()] = now
	u.expireLocked(now.Add(-s.ttl))
	for len(u.by) > maxUntrusted {
		oldest, at := netip.Addr{}, now
		for a, t := range u.by {
			if t.Before(at) || !oldest.IsValid() {
				oldest, at = a, t
			}
		}
		delete(u.by, oldest)
	}
}

// Trusted forgets client: a device that logged in trusts imapwhy now.
func (s *Store) Trusted(client netip.Addr) {
	u := &s.untrusted
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.by, client.Unmap())
}

// UntrustedDevices lists the devices that refused the certificate within
// the TTL, the latest first.
func (s *Store) UntrustedDevices() []Untrusted {
	u := &s.untrusted
	now := s.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.expireLocked(now.Add(-s.ttl))
	out := make([]Untrusted, 0, len(u.by))
	for a, t := range u.by {
		out = append(out, Untrusted{Client: a, Time: t})
	}
	slices.SortFunc(out, func(a, b Untrusted) int { return b.Time.Compare(a.Time) })
	return out
}

func (u *untrustedSet) expireLocked(before time.Time) {
	for a, t := range u.by {
		if t.Before(before) {
			delete(u.by, a)
		}
	}
}
