package shield

import (
	"bytes"
	"container/heap"
	"slices"
	"sync"
	"time"
)

// Store keeps one Record per user key. Implementations are safe for
// concurrent use and bounded: when a new record does not fit, the record
// that expires first among the others is dropped. A failure is remembered
// for an hour and a password that worked for a month, so a flood of
// failures evicts older failures, not the passwords that worked, and a new
// record always gets in.
type Store interface {
	// Get returns the record stored under key, unless there is none or it
	// has expired at now.
	Get(key string, now time.Time) (Record, bool, error)
	// Update calls fn with the record stored under key (the zero Record
	// when there is none or it has expired at now) and stores what fn
	// leaves in it until the time fn returns; a zero time deletes the
	// record. Updates are atomic with respect to each other.
	Update(key string, now time.Time, fn func(r *Record) (expires time.Time)) error
	// Close releases the store.
	Close() error
}

// clone is a deep copy of r, so that a caller's changes never reach the
// store's copy.
func (r Record) clone() Record {
	c := Record{Salt: bytes.Clone(r.Salt), Worked: slices.Clone(r.Worked), Failed: slices.Clone(r.Failed), Clients: slices.Clone(r.Clients)}
	for i := range c.Worked {
		c.Worked[i].Verifier = bytes.Clone(c.Worked[i].Verifier)
	}
	for i := range c.Failed {
		c.Failed[i].Verifier = bytes.Clone(c.Failed[i].Verifier)
	}
	for i := range c.Clients {
		c.Clients[i].Tag = bytes.Clone(c.Clients[i].Tag)
	}
	return c
}

// MemoryStore is a Store in memory: the history is forgotten at exit.
type MemoryStore struct {
	mu   sync.Mutex
	max  int
	recs map[string]*memEntry
	exp  expiryHeap // the same entries, the one that expires first on top
}

type memEntry struct {
	key     string
	rec     Record
	expires time.Time
	index   int // in the heap
}

// NewMemoryStore makes an empty store of at most maxRecords users.
func NewMemoryStore(maxRecords int) *MemoryStore {
	return &MemoryStore{max: max(maxRecords, 1), recs: make(map[string]*memEntry)}
}

// Get implements Store.
func (s *MemoryStore) Get(key string, now time.Time) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.recs[key]
	if !ok || !now.Before(e.expires) {
		return Record{}, false, nil
	}
	return e.rec.clone(), true, nil
}

// Update implements Store.
func (s *MemoryStore) Update(key string, now time.Time, fn func(*Record) time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(now)
	e, ok := s.recs[key]
	var r Record
	if ok {
		r = e.rec.clone()
	}
	expires := fn(&r)
	switch {
	case !now.Before(expires) && ok:
		s.removeLocked(e)
	case !now.Before(expires):
	case ok:
		e.rec, e.expires = r.clone(), expires
		heap.Fix(&s.exp, e.index)
	default:
		e = &memEntry{key: key, rec: r.clone(), expires: expires}
		s.recs[key] = e
		heap.Push(&s.exp, e)
		for len(s.recs) > s.max {
			s.removeLocked(s.exp.firstBut(e))
		}
	}
	return nil
}

// Len is the number of records held, expired ones included until the next
// Update.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// Close implements Store; the records are dropped.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.recs)
	s.exp = nil
	return nil
}

// expireLocked drops the records that have expired at now.
func (s *MemoryStore) expireLocked(now time.Time) {
	for len(s.exp) > 0 && !now.Before(s.exp[0].expires) {
		s.removeLocked(s.exp[0])
	}
}

func (s *MemoryStore) removeLocked(e *memEntry) {
	heap.Remove(&s.exp, e.index)
	delete(s.recs, e.key)
}

// expiryHeap orders entries by expiry (container/heap).
type expiryHeap []*memEntry

// firstBut is the entry that expires first, other than e. The heap has at
// least two entries.
func (h expiryHeap) firstBut(e *memEntry) *memEntry {
	if h[0] != e {
		return h[0]
	}
	// e is on top: the next is one of its children.
	if len(h) > 2 && h.Less(2, 1) {
		return h[2]
	}
	return h[1]
}

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
