package shield

import (
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
)

// BenchmarkVerifier is the cost of one argon2id verifier with DefaultParams:
// what one login pays (a refused one with history up to four times).
func BenchmarkVerifier(b *testing.B) {
	h := newHasher(NewSecret(), DefaultParams)
	salt := newSalt()
	b.ReportAllocs()
	for b.Loop() {
		h.verifier(salt, "correct horse battery staple")
	}
}

// BenchmarkLogin is the shield's cost per login with DefaultParams and the
// memory store, for the three paths.
func BenchmarkLogin(b *testing.B) {
	clock := newFakeClock()
	s := New(NewMemoryStore(1000), NewSecret(), Options{Params: DefaultParams, Now: clock.Now})
	s.Begin("alice", "Right-Password").Succeeded()
	for range s.ForwardedTries() {
		s.Begin("alice", "Stale-Password").Failed(diagnose.CauseCredentialsPasswordChanged)
	}
	b.Run("success", func(b *testing.B) {
		for b.Loop() {
			a := s.Begin("alice", "Right-Password")
			a.Check()
			a.Succeeded()
		}
	})
	b.Run("held", func(b *testing.B) {
		for b.Loop() {
			if hold, _ := s.Begin("alice", "Stale-Password").Check(); !hold {
				b.Fatal("not held")
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		// A wrong password: Check, then Explain (its verifier and the
		// case-inverted one's), then Failed.
		for b.Loop() {
			a := s.Begin("alice", "Wrong-Password")
			a.Check()
			a.Explain()
			a.Failed(diagnose.CauseCredentialsRejected)
			clock.Advance(s.life.window) // forget it, so that it is never held
		}
	})
}
