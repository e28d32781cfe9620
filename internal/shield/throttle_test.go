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

// TestLoginRates: per-address and per-user token buckets; the user's
// counts failed logins.
func TestLoginRates(t *testing.T) {
	clock := newFakeClock()
	th := NewThrottle(testLimits(), clock.Now)
	allowed := func(addr netip.Addr, user string, n int) int {
		ok := 0
		for range n {
			if th.AllowLogin(addr, user) {
				ok++
				th.Failed(addr, user, "wrong")
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
	if got := allowed(netip.MustParseAddr("198.51.100.1"), "w", 1); got != 1 {
		t.Error("another address is limited too")
	}
	clock.Advance(20 * time.Second) // refills 2 address tokens, 1 per user
	if got := allowed(addrA, "u", 3); got != 1 {
		t.Errorf("after 20 s: %d allowed for u", got)
	}
	clock.Advance(time.Hour)
	th.AllowLogin(addrB, "w") // sweeps the idle buckets
	th.mu.Lock()
	n := len(th.byAddr) + len(th.byUser) + len(th.userWide)
	th.mu.Unlock()
	if n != 1 {
		t.Errorf("%d buckets after the sweep, want only addrB's", n)
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
	if ClientPrefix(netip.MustParseAddr("::ffff:192.0.2.1")) != ClientPrefix(addrA) {
		t.Error("IPv4-mapped address counted apart")
	}
}

// TestUserLimitPerNetwork: the per-user limit counts failures per client
// network (IPv4 /24, IPv6 /64): guessing from one network never refuses the
// owner elsewhere, successful logins never count, and the password that
// worked last passes even a spent limit. All networks together are capped
// at userWideFactor times the limit.
func TestUserLimitPerNetwork(t *testing.T) {
	clock := newFakeClock()
	l := testLimits()
	l.PerAddressLoginsPerMinute = config.Unlimited
	th := NewThrottle(l, clock.Now) // 3 failures a minute per user and network
	attacker := netip.MustParseAddr("203.0.113.9")
	for range 3 {
		if !th.AllowLogin(attacker, "alice") {
			t.Fatal("refused within the limit")
		}
		th.Failed(attacker, "alice", "guess")
	}
	if th.AllowLogin(attacker, "alice") {
		t.Error("a fourth failure a minute from the same address allowed")
	}
	if th.AllowLogin(netip.MustParseAddr("203.0.113.200"), "ALICE") {
		t.Error("another address of the same /24 allowed")
	}
	if !th.AllowLoginFor(attacker, "alice", func() bool { return true }) {
		t.Error("the password that worked last refused")
	}
	if th.AllowLoginFor(attacker, "alice", func() bool { return false }) {
		t.Error("another password allowed past the limit")
	}
	owner := netip.MustParseAddr("198.51.100.7")
	for i := range 30 { // a mail app that logs in often: successes never count
		if !th.AllowLogin(owner, "alice") {
			t.Fatalf("the owner refused at login %d", i)
		}
	}
	if !th.AllowLogin(attacker, "bob") {
		t.Error("another user refused")
	}

	// IPv6 by /64.
	v6 := netip.MustParseAddr("2001:db8:1:2::10")
	th.Spend(v6, "carol", 3)
	if th.AllowLogin(netip.MustParseAddr("2001:db8:1:2:ffff::1"), "carol") {
		t.Error("another address of the same /64 allowed")
	}
	if !th.AllowLogin(netip.MustParseAddr("2001:db8:1:3::1"), "carol") {
		t.Error("another /64 refused")
	}

	// Many networks: the user-wide cap, still passed by the right password.
	for i := range userWideFactor {
		th.Spend(netip.AddrFrom4([4]byte{10, byte(i), 0, 1}), "dave", 3)
	}
	next := netip.MustParseAddr("10.200.0.1")
	if th.AllowLogin(next, "dave") {
		t.Error("past the user-wide cap allowed")
	}
	if !th.AllowLoginFor(next, "dave", func() bool { return true }) {
		t.Error("the password that worked last refused past the user-wide cap")
	}
	clock.Advance(time.Minute)
	if !th.AllowLogin(attacker, "alice") || !th.AllowLogin(next, "dave") {
		t.Error("not refilled after a minute")
	}
	if UserPrefix(netip.MustParseAddr("::ffff:203.0.113.9")) != netip.MustParsePrefix("203.0.113.0/24") {
		t.Error("IPv4-mapped address not counted by its /24")
	}
}
