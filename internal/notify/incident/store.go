package incident

import (
	"crypto/rand"
	"encoding/base32"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Incident is one diagnosed login failure.
type Incident struct {
	ID   string    // random, 20 base32 characters (96 bits); set by Store.Add
	Time time.Time // set by Store.Add

	// Who: for the status page only, never shown on the incident page.
	Client netip.Addr // the mail app's IP address
	User   string     // the user name as typed

	// What the connection was told.
	Lang         string // "en" or "ja": the language of Message and of the page
	Message      string // exactly the diagnosed text of the NO, without the link
	Cause        diagnose.Cause
	Alternative  diagnose.Cause // "" if none
	Code         string         // the RFC 5530 code of the NO
	Temporary    bool
	Provider     string // catalog ID, "" if unknown
	ProviderName string
	HelpURL      string // the provider's help page for the fix, "" if none
	// Notice is true when the login was accepted into the notice mailbox
	// instead of refused.
	Notice bool
}

// idBytes is the entropy of an ID: 96 bits, too many to guess.
const idBytes = 12

// idLen is the length of an ID: 96 bits in base32 without padding.
const idLen = (idBytes*8 + 4) / 5

// idEncoding is lower-case base32 without padding: case-insensitive when
// read aloud or retyped, and safe in a URL path.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a fresh random ID.
func newID() string {
	var b [idBytes]byte
	rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}

// validID reports whether s has the form of an ID, before any lookup.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Path is the URL path of an incident's page.
func Path(id string) string { return "/why/" + id }

// StoreOptions configures a Store.
type StoreOptions struct {
	TTL time.Duration // how long an incident lives; default 1h
	Max int           // how many are kept at most; default 10000
	// Now is the clock; nil: time.Now. Tests pass a fake one.
	Now func() time.Time
	// Shared, if set, keeps the incidents where every instance behind a
	// load balancer finds them (shared.go).
	Shared Shared
}

// chartHours is the span of the status page's chart.
const chartHours = 24

// Store keeps incidents in memory for TTL, at most Max of them (the oldest
// go first), and counts failures per hour for the last chartHours hours.
// It is safe for concurrent use.
type Store struct {
	ttl    time.Duration
	max    int
	now    func() time.Time
	shared Shared

	mu    sync.Mutex
	byID  map[string]*Incident
	queue []*Incident // oldest first, from head on
	head  int
	hours [chartHours]hourCount

	untrusted untrustedSet // devices that refused the certificate (untrusted.go)
}

type hourCount struct {
	hour int64 // Unix hour the count belongs to
	n    int
}

// NewStore makes an empty store.
func NewStore(o StoreOptions) *Store {
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.Max <= 0 {
		o.Max = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{ttl: o.TTL, max: o.Max, now: o.Now, shared: o.Shared, byID: make(map[string]*Incident)}
}

// TTL is how long an incident lives.
func (s *Store) TTL() time.Duration { return s.ttl }

// Add stores a copy of in with a new ID and the current time, and returns
// that copy.
func (s *Store) Add(in Incident) Incident {
	out := s.addLocal(in)
	s.putShared(out)
	return out
}

func (s *Store) addLocal(in Incident) Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireLocked(now)
	in.Time = now
	in.User = diagnose.CleanUsername(in.User)
	in.ID = newID()
	for s.byID[in.ID] != nil { // 2^-96: never, but cheap to rule out
		in.ID = newID()
	}
	p := &in
	s.byID[in.ID] = p
	s.queue = append(s.queue, p)
	for len(s.byID) > s.max {
		s.dropHeadLocked()
	}
	s.countLocked(now)
	return in
}

// Get returns the incident with that ID if it has not expired.
func (s *Store) Get(id string) (Incident, bool) {
	id = strings.ToLower(id)
	if !validID(id) {
		return Incident{}, false
	}
	if in, ok := s.getLocal(id); ok {
		return in, true
	}
	return s.getShared(id)
}

func (s *Store) getLocal(id string) (Incident, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	p := s.byID[id]
	if p == nil {
		return Incident{}, false
	}
	return *p, true
}

// Recent returns the live incidents for which keep is true (nil: all),
// newest first, at most limit of them (0: no limit).
func (s *Store) Recent(keep func(*Incident) bool, limit int) []Incident {
	if out, ok := s.recentShared(keep, limit); ok {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	var out []Incident
	for i := len(s.queue) - 1; i >= s.head; i-- {
		p := s.queue[i]
		if keep != nil && !keep(p) {
			continue
		}
		out = append(out, *p)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Len is the number of live incidents.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	return len(s.byID)
}

// HourBucket is the number of failures in one hour.
type HourBucket struct {
	Start time.Time
	Count int
}

// Hourly returns the failures per hour for the last chartHours hours, the
// oldest first; the last bucket is the current hour. The counts outlive
// the incidents (they hold no details).
func (s *Store) Hourly() []HourBucket {
	if out, ok := s.hourlyShared(); ok {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nowHour := s.now().Unix() / 3600
	out := make([]HourBucket, chartHours)
	for i := range out {
		h := nowHour - chartHours + 1 + int64(i)
		out[i].Start = time.Unix(h*3600, 0)
		if c := s.hours[h%chartHours]; c.hour == h {
			out[i].Count = c.n
		}
	}
	return out
}

func (s *Store) countLocked(now time.Time) {
	h := now.Unix() / 3600
	c := &s.hours[h%chartHours]
	if c.hour != h {
		*c = hourCount{hour: h}
	}
	c.n++
}

// expireLocked drops the incidents older than the TTL. Incidents are added
// in time order, so they expire from the head of the queue.
func (s *Store) expireLocked(now time.Time) {
	for s.head < len(s.queue) && !now.Before(s.queue[s.head].Time.Add(s.ttl)) {
		s.dropHeadLocked()
	}
}

func (s *Store) dropHeadLocked() {
	p := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	delete(s.byID, p.ID)
	// Compact once half of the slice is dead, so memory stays bounded.
	if s.head > len(s.queue)/2 {
		s.queue = append(s.queue[:0:0], s.queue[s.head:]...)
		s.head = 0
	}
}
