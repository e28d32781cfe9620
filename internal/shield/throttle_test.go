package shield

import (
	"net/netip"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/config"
)

func testLimits() config.Limits {
	l := config.Default().Limits
	l.FailureDelayBase = config.Duration(2 * time.Second)
	l.FailureDelayMax = config.Duration(15 * time.Second)
	l.PerAddressLoginsPerMinute = 6
	l.PerUserLoginsPerMinute = 3
	l.PerAddressConnections = 2
	return l
}

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
)

// TestFailureDelay: doubling per distinct failure from an address, capped,
// not grown by the same password again, reset by a success, forgotten
// after an hour.
func TestFailureDelay(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(testLimits(), clock.Now)
	steps := []struct {
		addr     netip.Addr
		user, pw string
		want     time.Duration
	}{
		{addrA, "u", "guess1", 2 * time.Second},
		{addrA, "u", "guess2", 4 * time.Second},
		{addrA, "u", "guess2", 4 * time.Second}, // a device retrying: not grown
		{addrA, "u", "guess2", 4 * time.Second},
		{addrA, "u", "guess3", 8 * time.Second},
		{addrA, "v", "guess3", 15 * time.Second}, // another user: a new guess; capped
		{addrA, "u", "guess4", 15 * time.Second},
		{addrB, "u", "guess1", 2 * time.Second}, // another address starts afresh
	}
	for i, s := range steps {
		if got := th.Failed(s.addr, s.user, s.pw); got != s.want {
			t.Errorf("step %d: delay %v, want %v", i, got, s.want)
		}
	}
	th.Succeeded(addrA)
	if got := th.Failed(addrA, "u", "guess5"); got != 2*time.Second {
		t.Errorf("after a success: %v", got)
	}
	th.Failed(addrB, "u", "guess2")
	clock.Advance(penaltyExpiry)
	if got := th.Failed(addrB, "u", "guess3"); got != 2*time.Second {
		t.Errorf("after an hour: %v", got)
	}
}

// TestLoginRates: per-address and per-user token buckets.
func TestLoginRates(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(testLimits(), clock.Now)
	allowed := func(addr netip.Addr, user string, n int) int {
		ok := 0
		for range n {
			if th.AllowLogin(addr, user) {
				ok++
			}
		}
		return ok
	}
	if got := allowed(addrA, "u", 5); got != 3 {
		t.Errorf("user limit 3 a minute: %d of 5 allowed", got)
	}
	if got := allowed(addrA, "v", 5); got != 1 {
		// 5 tokens of the address went to the 5 tries above.
		t.Errorf("address limit 6 a minute: %d of 5 allowed", got)
	}
	if got := allowed(addrB, "w", 1); got != 1 {
		t.Error("another address is limited too")
	}
	clock.Advance(20 * time.Second) // refills 2 address tokens, 1 per user
	if got := allowed(addrA, "u", 3); got != 1 {
		t.Errorf("after 20 s: %d allowed for u", got)
	}
	clock.Advance(time.Hour)
	th.AllowLogin(addrB, "w") // sweeps the idle buckets
	th.mu.Lock()
	n := len(th.byAddr) + len(th.byUser)
	th.mu.Unlock()
	if n != 2 {
		t.Errorf("%d buckets after the sweep, want only addrB's and w's", n)
	}

	l := testLimits()
	l.PerAddressLoginsPerMinute = config.Unlimited
	l.PerUserLoginsPerMinute = config.Unlimited
	th.SetLimits(l)
	if got := allowed(addrA, "u", 100); got != 100 {
		t.Errorf("unlimited: %d of 100", got)
	}
}

func TestConnectionLimit(t *testing.T) {
	th := NewThrottle(testLimits(), nil)
	if !th.Connect(addrA) || !th.Connect(addrA) {
		t.Fatal("refused within the limit")
	}
	if th.Connect(addrA) {
		t.Error("third connection allowed")
	}
	if !th.Connect(addrB) {
		t.Error("another address refused")
	}
	th.Disconnect(addrA)
	if !th.Connect(addrA) {
		t.Error("refused after a disconnect")
	}
	th.Disconnect(addrA)
	th.Disconnect(addrA)
	th.Disconnect(addrB)
	if len(th.conns) != 0 {
		t.Errorf("counts left: %v", th.conns)
	}
	// IPv6 addresses count by /64, IPv4-mapped ones as IPv4.
	v6a, v6b := netip.MustParseAddr("2001:db8:1:2::10"), netip.MustParseAddr("2001:db8:1:2:ffff::1")
	th.Connect(v6a)
	th.Connect(v6b)
	if th.Connect(netip.MustParseAddr("2001:db8:1:2::99")) {
		t.Error("a third address of the same /64 allowed")
	}
	if !th.Connect(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("another /64 refused")
	}
	if clientPrefix(netip.MustParseAddr("::ffff:192.0.2.1")) != clientPrefix(addrA) {
		t.Error("IPv4-mapped address counted apart")
	}
}
