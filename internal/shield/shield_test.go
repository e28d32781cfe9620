package shield

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

// fastParams keep the tests quick; BenchmarkVerifier measures the real cost.
var fastParams = Params{Time: 1, Memory: 64, Threads: 1}

// newFakeClock is a clock the test moves.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC))
}

// newTestShield is a shield on a memory store with the defaults of config
// and the fake clock; store errors fail the test.
func newTestShield(t testing.TB, clock *testkit.Clock) *Shield {
	t.Helper()
	return New(NewMemoryStore(1000), NewSecret(), Options{
		Params:  fastParams,
		Now:     clock.Now,
		OnError: func(err error) { t.Errorf("store: %v", err) },
	})
}

// upstream stands in for the IMAP server: it accepts one password per user
// and counts the logins that reach it.
type upstream struct {
	held      int // attempts the shield held back
	passwords map[string]string
	logins    int
}

// login runs one login through the shield as the proxy does, and returns
// the cause the client is told ("" for success).
func (u *upstream) login(s *Shield, user, password string) diagnose.Cause {
	a := s.Begin(user, password)
	if hold, hist := a.Check(); hold {
		u.held++
		return diagnose.Classify(diagnose.Observation{Phase: diagnose.PhaseProxy, History: hist}).Cause
	}
	u.logins++
	if u.passwords[user] == password {
		a.Succeeded()
		return ""
	}
	o := refusedObservation(user, password)
	o.History = a.Explain()
	d := diagnose.Classify(o)
	a.Failed(d.Cause)
	return d.Cause
}

// refusedObservation is a plain "NO [AUTHENTICATIONFAILED]" from a server
// diagnose does not know.
func refusedObservation(user, password string) diagnose.Observation {
	return diagnose.Observation{
		Host: "imap.example.test", Port: 993, TLSMode: "implicit",
		Phase:        diagnose.PhaseLogin,
		Greeting:     "* OK IMAP ready",
		Capabilities: []string{"IMAP4REV1", "AUTH=PLAIN"},
		Mechanism:    "PLAIN",
		Reply:        &diagnose.Response{Tagged: true, Status: "NO", Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."},
		Typed:        diagnose.Facts(user, password),
	}
}

// TestStaleDeviceHeldBack: a phone retries a stale password every 30 s for
// an hour. Only the first ForwardedTries reach the server; the others are
// answered from history, with the diagnosis the server's last refusal got
// (the password was changed). A different password still
// goes through, and once the window has passed without a forwarded try the
// password may be tried again.
func TestStaleDeviceHeldBack(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	const user, stale = "alice@example.test", "old-Passw0rd"
	up := &upstream{passwords: map[string]string{user: stale}}
	if c := up.login(s, user, stale); c != "" { // the phone worked until the password was changed
		t.Fatalf("first login: %s", c)
	}
	up.passwords[user], up.logins = "new-Passw0rd", 0

	attempts := 0
	for elapsed := time.Duration(0); elapsed < time.Hour; elapsed += 30 * time.Second {
		attempts++
		switch c := up.login(s, user, stale); c {
		case "":
			t.Fatal("the stale password logged in")
		case diagnose.CauseCredentialsPasswordChanged:
		default:
			t.Errorf("attempt %d: %s, want %s", attempts, c, diagnose.CauseCredentialsPasswordChanged)
		}
		clock.Advance(30 * time.Second)
	}
	held := up.held
	reached := up.logins
	t.Logf("shield: %d of %d attempts reached the upstream", reached, attempts)
	fmt.Printf("shield: %d of %d attempts reached the upstream\n", reached, attempts)
	if attempts != 120 || reached > s.ForwardedTries() {
		t.Errorf("%d of %d attempts reached the upstream, want at most %d", reached, attempts, s.ForwardedTries())
	}
	if held != attempts-reached {
		t.Errorf("%d held, want %d", held, attempts-reached)
	}

	// A different password is always forwarded.
	before := up.logins
	if c := up.login(s, user, "new-Passw0rd"); c != "" {
		t.Errorf("the right password: %s", c)
	}
	if up.logins != before+1 {
		t.Error("a different password was not forwarded")
	}
	// An hour after its last forwarded try, the stale password is tried again.
	clock.Advance(time.Hour)
	before, heldBefore := up.logins, up.held
	if up.login(s, user, stale); up.held != heldBefore {
		t.Error("still held after the window")
	}
	if up.logins != before+1 {
		t.Error("not forwarded after the window")
	}
}

// TestHeldDiagnosis: the held answer is the cause diagnosed when the
// password last reached the server, marked held.
func TestHeldDiagnosis(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	up := &upstream{passwords: map[string]string{"bob": "Right-1"}}
	up.login(s, "bob", "Right-1")
	for range 3 {
		if c := up.login(s, "bob", "Right-1 "); c != diagnose.CausePasswordSurroundingSpace {
			t.Fatalf("forwarded try: %s, want %s", c, diagnose.CausePasswordSurroundingSpace)
		}
	}
	a := s.Begin("bob", "Right-1 ")
	hold, hist := a.Check()
	if !hold || !hist.Held || hist.HeldCause != string(diagnose.CausePasswordSurroundingSpace) || hist.RepeatedFailures != 4 {
		t.Fatalf("Check: %v %+v", hold, hist)
	}
	d := diagnose.Classify(diagnose.Observation{Phase: diagnose.PhaseProxy, History: hist})
	if d.Cause != diagnose.CausePasswordSurroundingSpace || !d.Held {
		t.Errorf("diagnosis %+v", d)
	}
	// User names are compared without case.
	if hold, _ := s.Begin("BOB", "Right-1 ").Check(); !hold {
		t.Error("BOB is not bob")
	}
}

// TestHistoryCauses: what worked before explains a refusal, with certainty.
func TestHistoryCauses(t *testing.T) {
	const user = "carol@example.test"
	tests := []struct {
		name     string
		worked   []string // passwords that logged in, in order
		current  string   // the password the server takes now
		typed    string
		want     diagnose.History
		cause    diagnose.Cause
		conf     diagnose.Confidence
		noRecord bool
	}{
		{name: "password changed", worked: []string{"Summer-2026"}, current: "Autumn-2026", typed: "Summer-2026",
			want: diagnose.History{Known: true, SamePasswordWorked: true, RepeatedFailures: 1}, cause: diagnose.CauseCredentialsPasswordChanged},
		{name: "changed twice, an older one", worked: []string{"Spring-2026", "Summer-2026"}, current: "Autumn-2026", typed: "Spring-2026",
			want: diagnose.History{Known: true, SamePasswordWorked: true, RepeatedFailures: 1}, cause: diagnose.CauseCredentialsPasswordChanged},
		{name: "caps lock", worked: []string{"Summer-2026"}, current: "Summer-2026", typed: "sUMMER-2026",
			want: diagnose.History{Known: true, CaseInvertedWorked: true, RepeatedFailures: 1}, cause: diagnose.CauseCredentialsCapsLock, conf: diagnose.High},
		{name: "trailing space", worked: []string{"Summer-2026"}, current: "Summer-2026", typed: "Summer-2026 ",
			want: diagnose.History{Known: true, TrimmedWorked: true, RepeatedFailures: 1}, cause: diagnose.CausePasswordSurroundingSpace, conf: diagnose.High},
		{name: "pasted with a newline", worked: []string{"Summer-2026"}, current: "Summer-2026", typed: "\tSummer-2026\n",
			want: diagnose.History{Known: true, TrimmedWorked: true, RepeatedFailures: 1}, cause: diagnose.CausePasswordSurroundingSpace, conf: diagnose.High},
		{name: "full-width", worked: []string{"Summer-2026"}, current: "Summer-2026", typed: "Ｓｕｍｍｅｒ－２０２６",
			want: diagnose.History{Known: true, FoldedWorked: true, RepeatedFailures: 1}, cause: diagnose.CausePasswordFullwidth, conf: diagnose.High},
		{name: "caps lock, not the last password", worked: []string{"Summer-2026", "Autumn-2026"}, current: "Autumn-2026", typed: "sUMMER-2026",
			want: diagnose.History{Known: true, RepeatedFailures: 1}, cause: diagnose.CauseCredentialsRejected},
		{name: "just wrong", worked: []string{"Summer-2026"}, current: "Summer-2026", typed: "Winter-1999",
			want: diagnose.History{Known: true, RepeatedFailures: 1}, cause: diagnose.CauseCredentialsRejected},
		{name: "no history", current: "Summer-2026", typed: "Summer-2026 ",
			want: diagnose.History{RepeatedFailures: 1}, cause: diagnose.CausePasswordSurroundingSpace, conf: diagnose.Medium},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			s := newTestShield(t, clock)
			for _, p := range tt.worked {
				s.Begin(user, p).Succeeded()
				clock.Advance(time.Hour)
			}
			a := s.Begin(user, tt.typed)
			if hold, _ := a.Check(); hold {
				t.Fatal("held on the first failure")
			}
			h := a.Explain()
			if h != tt.want {
				t.Errorf("Explain = %+v, want %+v", h, tt.want)
			}
			o := refusedObservation(user, tt.typed)
			o.History = h
			d := diagnose.Classify(o)
			if d.Cause != tt.cause || (tt.conf != "" && d.Confidence != tt.conf) {
				t.Errorf("Classify: %s (%s), want %s (%s)", d.Cause, d.Confidence, tt.cause, tt.conf)
			}
		})
	}
}

// TestOnlyWrongCredentialsHeld: a refusal the same password may get past
// later is never held back, however often it comes.
func TestOnlyWrongCredentialsHeld(t *testing.T) {
	for _, c := range diagnose.Causes() {
		t.Run(string(c), func(t *testing.T) {
			clock := newFakeClock()
			s := newTestShield(t, clock)
			for range 5 {
				a := s.Begin("dave", "pw")
				a.Check()
				a.Failed(c)
			}
			hold, _ := s.Begin("dave", "pw").Check()
			if hold != countsAgainstPassword[c] {
				t.Errorf("held = %v after five %s", hold, c)
			}
		})
	}
	for _, c := range []diagnose.Cause{diagnose.CauseAccountLocked, diagnose.CauseProviderIMAPDisabled,
		diagnose.CauseProviderWebLoginRequired, diagnose.CauseServerTemporaryFailure, diagnose.CauseUpstreamTimeout,
		diagnose.CauseAccountDisabled, diagnose.CauseAuthorizationFailed} {
		if countsAgainstPassword[c] {
			t.Errorf("%s would hold back a password that may work later", c)
		}
	}
}

// TestSuccessReleases: once a password logs in (from any device), it is no
// longer held.
func TestSuccessReleases(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	for range 3 {
		s.Begin("erin", "pw-1").Failed(diagnose.CauseCredentialsRejected)
	}
	if hold, _ := s.Begin("erin", "pw-1").Check(); !hold {
		t.Fatal("not held after three refusals")
	}
	s.Begin("erin", "pw-1").Succeeded() // the server took it after all (the account was fixed)
	if hold, _ := s.Begin("erin", "pw-1").Check(); hold {
		t.Error("still held after it logged in")
	}
}

// TestLifetimes: passwords that worked last history_ttl, failures window.
func TestLifetimes(t *testing.T) {
	clock := newFakeClock()
	s := New(NewMemoryStore(10), NewSecret(), Options{
		Params: fastParams, Now: clock.Now, Window: 10 * time.Minute, HistoryTTL: 24 * time.Hour, ForwardedTries: 1,
	})
	s.Begin("frank", "good").Succeeded()
	s.Begin("frank", "bad").Failed(diagnose.CauseCredentialsRejected)
	clock.Advance(9 * time.Minute)
	if hold, _ := s.Begin("frank", "bad").Check(); !hold {
		t.Error("forgotten within the window")
	}
	clock.Advance(2 * time.Minute)
	if hold, _ := s.Begin("frank", "bad").Check(); hold {
		t.Error("held after the window")
	}
	clock.Advance(23 * time.Hour)
	if h := s.Begin("frank", "good").Explain(); !h.SamePasswordWorked {
		t.Errorf("forgotten within the TTL: %+v", h)
	}
	clock.Advance(time.Hour)
	if h := s.Begin("frank", "good").Explain(); h.Known || h.SamePasswordWorked {
		t.Errorf("remembered after the TTL: %+v", h)
	}
}

// TestPerUserBounds: a user's record keeps the newest entries only.
func TestPerUserBounds(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	for i := range maxFailed + 3 {
		clock.Advance(time.Second)
		s.Begin("gina", fmt.Sprint("bad-", i)).Failed(diagnose.CauseCredentialsRejected)
	}
	for i := range maxWorked + 3 {
		clock.Advance(time.Second)
		s.Begin("gina", fmt.Sprint("good-", i)).Succeeded()
	}
	r, ok, _ := s.store.Get(s.h.userKey("gina"), clock.Now())
	if !ok || len(r.Failed) != maxFailed || len(r.Worked) != maxWorked {
		t.Fatalf("record: %v, %d failed, %d worked", ok, len(r.Failed), len(r.Worked))
	}
	if h := s.Begin("gina", fmt.Sprint("good-", maxWorked+2)).Explain(); !h.SamePasswordWorked {
		t.Error("the newest password that worked was dropped")
	}
	if h := s.Begin("gina", "good-0").Explain(); h.SamePasswordWorked {
		t.Error("the oldest password that worked was kept")
	}
}

// TestConcurrentAttempts: attempts of many users at once (run with -race).
func TestConcurrentAttempts(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprint("user", i%3)
			for j := range 10 {
				a := s.Begin(user, fmt.Sprint("pw", j%2))
				if hold, _ := a.Check(); hold {
					continue
				}
				if j%2 == 0 {
					a.Succeeded()
				} else {
					a.Explain()
					a.Failed(diagnose.CauseCredentialsRejected)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 3 {
		if hold, _ := s.Begin(fmt.Sprint("user", i), "pw1").Check(); !hold {
			t.Errorf("user%d's failing password not held", i)
		}
	}
}

// TestOpen: the configuration picks the store; off is nil.
func TestOpen(t *testing.T) {
	off := false
	c := config.Default().Shield
	c.Enabled = &off
	if s, err := Open(c, t.TempDir(), Options{}); s != nil || err != nil {
		t.Errorf("Open(off) = %v, %v", s, err)
	}
	dir := filepath.Join(t.TempDir(), "state")
	c = config.Default().Shield
	s, err := Open(c, dir, Options{Params: fastParams})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.store.(*MemoryStore); !ok {
		t.Errorf("default store %T", s.store)
	}
	s.Close()
	if _, err := os.Stat(dir); err == nil {
		t.Error("the memory store wrote to the state directory")
	}
	c.Store = config.StoreFile
	s, err = Open(c, dir, Options{Params: fastParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.store.(*FileStore); !ok {
		t.Errorf("file store %T", s.store)
	}
	for _, name := range []string{secretFile, historyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, fi.Mode(), err)
		}
	}
}

// TestFileStoreSurvivesRestart: with the file store, history outlives the
// process, and the file holds neither passwords nor user names.
func TestFileStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := config.Default().Shield
	c.Store = config.StoreFile
	clock := newFakeClock()
	const user, pw, stale = "Hanako.Yamada@example.test", "Sakura-Password-2026", "Ume-Password-2025"
	s, err := Open(c, dir, Options{Params: fastParams, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.Begin(user, stale).Succeeded()
	clock.Advance(time.Hour)
	s.Begin(user, pw).Succeeded()
	for range 3 {
		s.Begin(user, stale).Failed(diagnose.CauseCredentialsPasswordChanged)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(c, dir, Options{Params: fastParams, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if hold, h := s.Begin(user, stale).Check(); !hold || h.HeldCause != string(diagnose.CauseCredentialsPasswordChanged) {
		t.Errorf("after a restart: held %v, %+v", hold, h)
	}
	if h := s.Begin(user, strings.ToUpper(pw[:1])+strings.ToLower(pw[1:])).Explain(); !h.Known {
		t.Errorf("history lost: %+v", h)
	}
	if h := s.Begin(user, caseInverted(pw)).Explain(); !h.CaseInvertedWorked {
		t.Errorf("after a restart, caps lock not recognised: %+v", h)
	}
	data, err := os.ReadFile(filepath.Join(dir, historyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{user, strings.ToLower(user), "Hanako", pw, stale, caseInverted(pw)} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the history file contains %q", secret)
		}
	}
}

// TestSecretFile: the secret is made once, kept, and refused when others
// may read it.
func TestSecretFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := LoadSecret(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadSecret(dir)
	if err != nil || a != b {
		t.Fatalf("second load: %v, same %v", err, a == b)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v", fi.Mode().Perm())
	}
	path := filepath.Join(dir, secretFile)
	os.Chmod(path, 0o644)
	if _, err := LoadSecret(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a readable secret: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadSecret(dir); err == nil {
		t.Error("a short secret was taken")
	}
}

// TestSecretSeparatesStores: verifiers made under another secret match
// nothing, so a replaced secret file means an empty history, not wrong
// answers.
func TestSecretSeparatesStores(t *testing.T) {
	clock := newFakeClock()
	st := NewMemoryStore(10)
	New(st, NewSecret(), Options{Params: fastParams, Now: clock.Now}).Begin("ivy", "pw").Succeeded()
	other := New(st, NewSecret(), Options{Params: fastParams, Now: clock.Now})
	if h := other.Begin("ivy", "pw").Explain(); h.Known {
		t.Errorf("history seen under another secret: %+v", h)
	}
}

func TestVariants(t *testing.T) {
	for _, tt := range []struct{ in, inverted, trimmed, folded string }{
		{"Abc-1", "aBC-1", "Abc-1", "Abc-1"},
		{" pass\t", " PASS\t", "pass", " pass\t"},
		{"\u3000ｐａｓｓ１", "\u3000ＰＡＳＳ１", "ｐａｓｓ１", " pass1"},
		{"Ärger", "äRGER", "Ärger", "Ärger"},
		{"1234", "1234", "1234", "1234"},
	} {
		if got := caseInverted(tt.in); got != tt.inverted {
			t.Errorf("caseInverted(%q) = %q", tt.in, got)
		}
		if got := trimmed(tt.in); got != tt.trimmed {
			t.Errorf("trimmed(%q) = %q", tt.in, got)
		}
		if got := folded(tt.in); got != tt.folded {
			t.Errorf("folded(%q) = %q", tt.in, got)
		}
	}
}

// TestHistoryOnlyForKnownClients: what the history knows about the real
// password (Caps Lock, an old password, the device's repeated wrong one)
// is told only to a client network that logged in as the user before; a
// stranger gets an ordinary refusal and no variant is even compared for it.
// A stranger's repeated password is still held back.
func TestHistoryOnlyForKnownClients(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	owner := netip.MustParseAddr("198.51.100.7")
	ownerLaptop := netip.MustParseAddr("198.51.100.200") // same /24
	stranger := netip.MustParseAddr("203.0.113.9")
	const user = "alice"
	s.BeginFrom(owner, user, "Summer-2026").Succeeded()
	clock.Advance(time.Hour)
	s.BeginFrom(owner, user, "Autumn-2026").Succeeded() // changed

	for _, tt := range []struct {
		typed string
		known diagnose.History
	}{
		{"aUTUMN-2026", diagnose.History{Known: true, CaseInvertedWorked: true, RepeatedFailures: 1}},
		{"Summer-2026", diagnose.History{Known: true, SamePasswordWorked: true, RepeatedFailures: 1}},
	} {
		a := s.BeginFrom(stranger, user, tt.typed)
		if h := a.Explain(); h != (diagnose.History{RepeatedFailures: 1, Stranger: true}) || a.Checks() != 0 {
			t.Errorf("%s from a stranger: %+v, %d variants compared", tt.typed, h, a.Checks())
		}
		a = s.BeginFrom(ownerLaptop, user, tt.typed)
		if h := a.Explain(); h != tt.known || a.Checks() == 0 {
			t.Errorf("%s from the owner's network: %+v, %d variants compared", tt.typed, h, a.Checks())
		}
	}

	for range 3 {
		s.BeginFrom(stranger, user, "Winter-1999").Failed(diagnose.CauseCredentialsRejected)
	}
	hold, h := s.BeginFrom(stranger, user, "Winter-1999").Check()
	d := diagnose.Classify(diagnose.Observation{Phase: diagnose.PhaseProxy, History: h})
	if !hold || d.Cause != diagnose.CauseCredentialsRejected || h.RepeatedFailures != 0 || h.HeldCause != "" {
		t.Errorf("stranger's repeated password: hold %v, %+v, told %s", hold, h, d.Cause)
	}
	hold, h = s.BeginFrom(owner, user, "Winter-1999").Check()
	d = diagnose.Classify(diagnose.Observation{Phase: diagnose.PhaseProxy, History: h})
	if !hold || d.Cause != diagnose.CauseCredentialsRepeatedFailure {
		t.Errorf("owner's repeated password: hold %v, told %s", hold, d.Cause)
	}

	// A new network becomes known by logging in, even with a password that
	// just logged in elsewhere (no argon2id hash then).
	s.BeginFrom(stranger, user, "Autumn-2026").Succeeded()
	if h := s.BeginFrom(stranger, user, "Summer-2026").Explain(); !h.SamePasswordWorked {
		t.Errorf("after logging in from it: %+v", h)
	}
}

// TestLastWorked: only the password that logged in last is recognised,
// from any network.
func TestLastWorked(t *testing.T) {
	clock := newFakeClock()
	s := newTestShield(t, clock)
	a := netip.MustParseAddr("198.51.100.7")
	if s.BeginFrom(a, "alice", "pw-1").LastWorked() {
		t.Error("no history, yet LastWorked")
	}
	s.BeginFrom(a, "alice", "pw-1").Succeeded()
	s.BeginFrom(a, "alice", "pw-2").Succeeded()
	far := netip.MustParseAddr("2001:db8::1")
	if !s.BeginFrom(far, "Alice", "pw-2").LastWorked() {
		t.Error("the last password not recognised")
	}
	for _, pw := range []string{"pw-1", "PW-2", "pw-2 ", ""} {
		if s.BeginFrom(far, "alice", pw).LastWorked() {
			t.Errorf("%q taken for the last password", pw)
		}
	}
	// Without the in-memory shortcut: from the stored verifier.
	s.recent.forget(s.h.userKey("alice"))
	if !s.BeginFrom(far, "alice", "pw-2").LastWorked() || s.BeginFrom(far, "alice", "pw-1").LastWorked() {
		t.Error("stored verifier: wrong answer")
	}
}
