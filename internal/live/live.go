// Package live keeps a server's live connections (or sessions), so that
// shutting down can reach each one, and refuses new ones once it has begun.
// The proxy, the notice mailbox and the provider imitations use it.
package live

import "sync"

// Set is a set of live members. The zero Set is empty and open; it must not
// be copied after first use.
type Set[T comparable] struct {
	mu      sync.Mutex
	members map[T]struct{}
	closed  bool
}

// Add adds v; it returns false, and does not add v, once Close has been
// called: the caller then ends v itself.
func (s *Set[T]) Add(v T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.members == nil {
		s.members = make(map[T]struct{})
	}
	s.members[v] = struct{}{}
	return true
}

// Remove removes v (a member that has ended).
func (s *Set[T]) Remove(v T) {
	s.mu.Lock()
	delete(s.members, v)
	s.mu.Unlock()
}

// Close refuses new members from now on and returns the present ones, to
// be ended outside the set's lock (ending one may Remove it). first is
// false when Close had been called already.
func (s *Set[T]) Close() (members []T, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first = !s.closed
	s.closed = true
	return s.list(), first
}

// Closed reports whether Close has been called.
func (s *Set[T]) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Members returns the present members.
func (s *Set[T]) Members() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list()
}

// Len is the number of present members.
func (s *Set[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

func (s *Set[T]) list() []T {
	l := make([]T, 0, len(s.members))
	for v := range s.members {
		l = append(l, v)
	}
	return l
}
