package proxy

// End-to-end tests of what a stranger can and cannot do through the proxy:
// lock the owner out, learn about the real password from the history.

import (
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
)

// TestStrangerCannotLockOut: 21 wrong logins for alice from one network
// (127.0.0.1) spend that network's per-user budget only; alice's right
// password from another network (127.0.1.1) logs in, and nobody is told
// "from this device" about someone else's attempts.
func TestStrangerCannotLockOut(t *testing.T) {
	r := startProtectRig(t, `failure_delay_base: 1ms, failure_delay_max: 1ms`)
	limited := 0
	for i := range 21 {
		got, alert := r.tryLoginFrom(t, "127.0.0.1", "alice", "guess-"+string(rune('a'+i)))
		if strings.HasPrefix(got, "a NO [UNAVAILABLE] ") {
			limited++
			if strings.Contains(alert, "this device") {
				t.Errorf("the rate limit speaks of this device: %q", alert)
			}
		}
	}
	if limited == 0 {
		t.Fatal("21 wrong logins a minute from one address were never limited")
	}
	if got, _ := r.tryLoginFrom(t, "127.0.1.1", "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Errorf("the owner from another network: %q", got)
	}
	if msg := diagnose.Message(diagnose.Of(diagnose.CauseClientRateLimited), "en"); strings.Contains(msg, "device") {
		t.Errorf("client.rate_limited message: %q", msg)
	}
}
