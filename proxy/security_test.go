package proxy

// End-to-end tests of what a stranger can and cannot do through the proxy:
// lock the owner out, learn about the real password from the history.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/testkit"
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

// TestHistoryOnlyForKnownNetworks: "Caps Lock seems to be on" tells that
// the case-inverted guess is the password; it is said only to a network
// that has logged in as the user before. From another network the same
// typo gets the plain credentials.rejected.
func TestHistoryOnlyForKnownNetworks(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	if got, _ := r.tryLoginFrom(t, "127.0.0.1", "alice", "alicepass"); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("first login: %q", got)
	}
	got, alert := r.tryLoginFrom(t, "127.0.1.1", "alice", "ALICEPASS")
	if !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
		t.Fatalf("from another network: %q", got)
	}
	if ev := r.lastFailure(t); ev["cause"] != string(diagnose.CauseCredentialsRejected) {
		t.Errorf("from another network: %v, want credentials.rejected", ev["cause"])
	}
	wantMessage(t, alert, diagnose.CauseCredentialsRejected)
	if _, alert := r.tryLoginFrom(t, "127.0.0.1", "alice", "ALICEPASS"); r.lastFailure(t)["cause"] != string(diagnose.CauseCredentialsCapsLock) {
		t.Errorf("from the owner's network: %v (%q), want credentials.caps_lock", r.lastFailure(t)["cause"], alert)
	}
}

// TestBadUserNameRefused: a user name over 256 bytes, or with control or
// format characters (C0 controls, CR LF, bidi overrides), is refused by the proxy itself
// with client.invalid_username, nothing goes upstream, and the log holds
// the name capped and cleaned.
func TestBadUserNameRefused(t *testing.T) {
	r := startProtectRig(t, quickLimits)
	for _, user := range []string{
		strings.Repeat("a", 4000) + "@example.com",
		"alice\x01admin",
		"\u202eelgoog@example.com",
		"alice\r\nforged",
	} {
		before, failures := r.up.Logins.Load(), len(r.logs.Events("auth_failure"))
		tc := dialTestClient(t, r.srv.Addrs()[0])
		tc.Send(fmt.Sprintf("a LOGIN {%d+}\r\n%s alicepass\r\n", len(user), user))
		lines := tc.Until("a ")
		if got := lines[len(lines)-1]; !strings.HasPrefix(got, "a NO [AUTHENTICATIONFAILED] ") {
			t.Errorf("%.20q: %q", user, got)
		}
		testkit.WaitFor(t, func() bool { return len(r.logs.Events("auth_failure")) > failures })
		ev := r.lastFailure(t)
		logged, _ := ev["user"].(string)
		if ev["cause"] != string(diagnose.CauseClientInvalidUsername) || len(logged) > diagnose.MaxUsernameLen ||
			strings.ContainsAny(logged, "\x00\r\n\u202e") {
			t.Errorf("%.20q logged as cause %v, user %.40q (%d bytes)", user, ev["cause"], logged, len(logged))
		}
		if r.up.Logins.Load() != before {
			t.Errorf("%.20q reached the upstream", user)
		}
		tc.Conn.Close()
	}
}
