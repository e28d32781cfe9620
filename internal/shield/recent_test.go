package shield

import (
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// TestRecentSuccess: a password that just logged in logs in again without
// a new verifier, but a refusal in between sends the next success through
// the store, so that the refusal is cleared there and the password is not
// held later.
func TestRecentSuccess(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	s.Begin("alice", "Right").Succeeded()
	a := s.Begin("alice", "Right")
	a.Succeeded()
	if a.v != nil {
		t.Error("the same password logging in again computed a verifier")
	}
	clock.Advance(recentRefresh + time.Second)
	a = s.Begin("alice", "Right")
	a.Succeeded()
	if a.v == nil {
		t.Error("after recentRefresh the record was not refreshed")
	}

	// The server now refuses it (say the account was reset) as often as
	// the shield forwards, then takes it again.
	for range s.ForwardedTries() {
		s.Begin("alice", "Right").Failed(diagnose.CauseCredentialsRejected)
	}
	a = s.Begin("alice", "Right")
	a.Succeeded()
	if a.v == nil {
		t.Error("a success after refusals skipped the store")
	}
	if hold, _ := s.Begin("alice", "Right").Check(); hold {
		t.Error("a password that logged in after its refusals is held")
	}
}
