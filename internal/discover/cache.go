package discover

import (
	"container/list"
	"sync"
	"time"
)

// cache keeps discovery outcomes per domain, found or not, until they
// expire. It holds at most max entries and drops the least recently used one
// to make room, so a stream of logins for made-up domains cannot grow it
// without bound.
type cache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // domain -> element holding *cacheEntry
	lru     *list.List               // front: most recently used
}

type cacheEntry struct {
	domain string
	outcome
	expires time.Time
}

func newCache(max int, now func() time.Time) *cache {
	return &cache{max: max, now: now, entries: make(map[string]*list.Element), lru: list.New()}
}

// get returns the outcome stored for domain, if any and not expired.
func (c *cache) get(domain string) (outcome, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[domain]
	if !ok {
		return outcome{}, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return outcome{}, false
	}
	c.lru.MoveToFront(el)
	return e.outcome, true
}

// put stores an outcome for ttl. A ttl <= 0 stores nothing.
func (c *cache) put(domain string, o outcome, ttl time.Duration) {
	if ttl <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{domain: domain, outcome: o, expires: c.now().Add(ttl)}
	if el, ok := c.entries[domain]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[domain] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *cache) removeLocked(el *list.Element) {
	c.lru.Remove(el)
	delete(c.entries, el.Value.(*cacheEntry).domain)
}
