package state

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"net/http/httptest"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/metrics"
	"github.com/imapwhy/imapwhy/internal/notify/incident"
	"github.com/imapwhy/imapwhy/internal/redistest"
	"github.com/imapwhy/imapwhy/internal/shield"
	"github.com/imapwhy/imapwhy/internal/testkit"
)

var fastParams = shield.Params{Time: 1, Memory: 64, Threads: 1}

// instance is one imapwhy's shared state, as serve opens it.
type instance struct {
	r   *Redis
	m   *metrics.Metrics
	log *testkit.Buffer
}

func openInstance(t *testing.T, addr, stateDir string) *instance {
	t.Helper()
	c := config.Redis{Address: addr, KeyPrefix: "test:", Timeout: config.Duration(200 * time.Millisecond)}
	in := &instance{m: metrics.New(), log: &testkit.Buffer{}}
	r, err := Open(c, stateDir, Options{Log: zerolog.New(in.log), Metrics: in.m, Recheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	in.r = r
	return in
}

// twoInstances share one Redis and one secret (the first one's state
// directory's, copied).
func twoInstances(t *testing.T, addr string) (*instance, *instance) {
	t.Helper()
	d1, d2 := t.TempDir(), t.TempDir()
	a := openInstance(t, addr, d1)
	b, err := os.ReadFile(filepath.Join(d1, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d2, "secret"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return a, openInstance(t, addr, d2)
}

func (in *instance) shield(maxTries int) *shield.Shield {
	return shield.New(in.r.History(100), in.r.Secret(), shield.Options{ForwardedTries: maxTries, Params: fastParams})
}

// TestHistoryShared: a stale password is held back after ForwardedTries
// refusals in all, whichever instance saw them.
func TestHistoryShared(t *testing.T) {
	rs := redistest.Start(t)
	a, b := twoInstances(t, rs.Addr)
	sa, sb := a.shield(3), b.shield(3)
	// The password worked once, on a.
	sa.Begin("alice", "old").Succeeded()
	forwarded := 0
	for i := range 6 {
		s := sa
		if i%2 == 1 {
			s = sb
		}
		at := s.Begin("alice", "old")
		if hold, _ := at.Check(); hold {
			continue
		}
		forwarded++
		at.Failed(diagnose.CauseCredentialsRejected)
	}
	if forwarded != 3 {
		t.Errorf("the stale password was forwarded %d times over two instances, want 3", forwarded)
	}
	if a.r.Degraded() != "" || b.r.Degraded() != "" {
		t.Errorf("degraded: %q %q", a.r.Degraded(), b.r.Degraded())
	}
}

// TestLimiterShared: the per-user limit counts the failures seen by
// every instance, and the per-address limit their logins.
func TestLimiterShared(t *testing.T) {
	rs := redistest.Start(t)
	a, b := twoInstances(t, rs.Addr)
	lim := config.Limits{PerUserLoginsPerMinute: 4, PerAddressLoginsPerMinute: 100}
	ta, tb := shield.NewThrottle(lim, nil), shield.NewThrottle(lim, nil)
	ta.SetShared(a.r.Limiter())
	tb.SetShared(b.r.Limiter())
	addr := netip.MustParseAddr("192.0.2.1")
	allowed := 0
	for i := range 10 {
		th := ta
		if i%2 == 1 {
			th = tb
		}
		if th.AllowLogin(addr, "Bob") {
			allowed++
			th.Failed(addr, "bob", fmt.Sprintf("guess %d", i))
		}
	}
	if allowed != 4 {
		t.Errorf("%d failing logins of one user allowed over two instances, want 4", allowed)
	}
	// The address limit counts every login, over both instances.
	lim = config.Limits{PerUserLoginsPerMinute: 100, PerAddressLoginsPerMinute: 3}
	ta.SetLimits(lim)
	tb.SetLimits(lim)
	other := netip.MustParseAddr("198.51.100.9")
	allowed = 0
	for i := range 6 {
		th := ta
		if i%2 == 1 {
			th = tb
		}
		if th.AllowLogin(other, fmt.Sprintf("user%d", i)) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d logins from one address allowed over two instances, want 3", allowed)
	}
}

// TestIncidentsShared: a page made on one instance opens on the other,
// and the status page of either lists it.
func TestIncidentsShared(t *testing.T) {
	rs := redistest.Start(t)
	a, b := twoInstances(t, rs.Addr)
	sa := incident.NewStore(incident.StoreOptions{Shared: a.r.Incidents(100)})
	sb := incident.NewStore(incident.StoreOptions{Shared: b.r.Incidents(100)})
	in := sa.Add(incident.Incident{User: "carol@example.test", Client: netip.MustParseAddr("192.0.2.77"),
		Lang: "en", Message: "wrong password", Cause: diagnose.CauseCredentialsRejected, Code: "AUTHENTICATIONFAILED"})
	got, ok := sb.Get(in.ID)
	if !ok || got.User != in.User || got.Client != in.Client || got.Message != in.Message || !got.Time.Equal(in.Time) {
		t.Fatalf("the other instance found %v %+v, want %+v", ok, got, in)
	}
	if r := sb.Recent(nil, 10); len(r) != 1 || r[0].ID != in.ID {
		t.Errorf("the other instance's recent list: %+v", r)
	}
	h := sb.Hourly()
	if h[len(h)-1].Count != 1 {
		t.Errorf("the other instance's chart counts %d this hour, want 1", h[len(h)-1].Count)
	}
	if _, ok := sb.Get(strings.Repeat("a", len(in.ID))); ok {
		t.Error("an unknown ID was found")
	}
	// Nothing in Redis names the user, the client or the ID.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, k := range keys {
		all.WriteString(k + "\n")
		if v, err := rdb.Get(ctx, k).Result(); err == nil {
			all.WriteString(v + "\n")
		}
		if v, err := rdb.ZRange(ctx, k, 0, -1).Result(); err == nil {
			all.WriteString(strings.Join(v, "\n"))
		}
	}
	for _, secret := range []string{"carol", "192.0.2.77", in.ID, "wrong password"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("Redis holds %q in clear", secret)
		}
	}
}

// TestRedisAway: with Redis gone the instance goes on in memory, says
// degraded once, counts the errors; when Redis is back it uses it again.
func TestRedisAway(t *testing.T) {
	rs := redistest.Start(t)
	a, b := twoInstances(t, rs.Addr)
	sa, sb := a.shield(2), b.shield(2)
	rs.Stop()
	start := time.Now()
	at := sa.Begin("dave", "pw")
	at.Failed(diagnose.CauseCredentialsRejected)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a login waited %s for an absent Redis", d)
	}
	if a.r.Degraded() == "" {
		t.Fatal("not degraded with Redis stopped")
	}
	if !strings.Contains(metricsText(t, a.m), "imapwhy_state_degraded 1") {
		t.Error("imapwhy_state_degraded is not 1")
	}
	// The memory behind goes on: this instance's refusals hold the
	// password back.
	sa.Begin("dave", "pw").Failed(diagnose.CauseCredentialsRejected)
	if hold, _ := sa.Begin("dave", "pw").Check(); !hold {
		t.Error("without Redis, this instance's own refusals do not hold the password")
	}
	if !strings.Contains(a.log.String(), `"event":"state_degraded"`) {
		t.Errorf("no state_degraded warning:\n%s", a.log.String())
	}
	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for a.r.Degraded() != "" {
		if time.Now().After(deadline) {
			t.Fatal("not recovered 10 s after Redis came back")
		}
		sa.Begin("dave", "pw") // ops while down do not ask Redis
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(a.log.String(), `"event":"state_recovered"`) {
		t.Errorf("no state_recovered line:\n%s", a.log.String())
	}
	// Shared again: b's refusals count for a.
	for range 2 {
		sb.Begin("erin", "pw").Failed(diagnose.CauseCredentialsRejected)
	}
	if hold, _ := sa.Begin("erin", "pw").Check(); !hold {
		t.Error("after recovery, the other instance's refusals are not seen")
	}
}

// TestRedisSlow: a Redis that accepts but does not answer costs a login
// at most the timeout, once; then the instance works from memory until
// Redis answers again.
func TestRedisSlow(t *testing.T) {
	rs := redistest.Start(t)
	a := openInstance(t, rs.Addr, t.TempDir())
	sa := a.shield(2)
	sa.Begin("frank", "pw").Failed(diagnose.CauseCredentialsRejected)
	rs.Pause()
	defer rs.Resume()
	for i := range 5 {
		start := time.Now()
		at := sa.Begin("frank", "pw")
		at.Check()
		at.Failed(diagnose.CauseCredentialsRejected)
		// 200ms is the configured timeout (openInstance); the first
		// login meets it at most twice (read, write), later ones never.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("login %d took %s with Redis not answering", i, d)
		}
	}
	if a.r.Degraded() == "" {
		t.Fatal("not degraded with Redis not answering")
	}
	rs.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for a.r.Degraded() != "" {
		if time.Now().After(deadline) {
			t.Fatal("not recovered after Redis answered again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIdleOutage: an instance that serves no login notices an outage too.
func TestIdleOutage(t *testing.T) {
	rs := redistest.Start(t)
	a := openInstance(t, rs.Addr, t.TempDir())
	rs.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for a.r.Degraded() == "" {
		if time.Now().After(deadline) {
			t.Fatal("an idle instance did not notice Redis going away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs.Start()
	for a.r.Degraded() != "" {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("not recovered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisTLSAndPassword: state.redis.tls (verified against ca_file) and
// password_file; a wrong password is an unreachable Redis, not a crash.
func TestRedisTLSAndPassword(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{TLS: true, Password: "redis-secret"})
	dir := t.TempDir()
	pw := filepath.Join(dir, "redis.password")
	if err := os.WriteFile(pw, []byte("redis-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Redis{Address: rs.Addr, KeyPrefix: "test:", Timeout: config.Duration(time.Second),
		TLS: true, CAFile: rs.CAFile, ServerName: "127.0.0.1", PasswordFile: pw}
	r := openRedis(t, c, dir)
	if d := r.Degraded(); d != "" {
		t.Fatalf("over TLS with the password: degraded %q", d)
	}
	if had, err := r.Limiter().Take(shield.Bucket{Kind: shield.LimitUserWide, Key: "x", PerMinute: 5, N: 1}); err != nil || len(had) != 1 || !had[0] {
		t.Errorf("Take over TLS: %v %v", had, err)
	}
	// Another CA: the certificate is refused, so Redis is unreachable.
	c.CAFile = ""
	other := openRedis(t, c, dir)
	if other.Degraded() == "" {
		t.Error("a Redis certificate from an unknown CA was accepted")
	}
	// A wrong password: degraded, not an error at start.
	c.CAFile = rs.CAFile
	os.WriteFile(pw, []byte("wrong"), 0o600)
	wrong := openRedis(t, c, dir)
	if wrong.Degraded() == "" {
		t.Error("a wrong Redis password was not noticed")
	}
}

// openRedis opens the shared state of c, rechecked every 50ms, until t ends.
func openRedis(t *testing.T, c config.Redis, dir string) *Redis {
	t.Helper()
	r, err := Open(c, dir, Options{Recheck: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestOtherSecret: an instance with another secret is refused at start
// instead of writing state nobody can read.
func TestOtherSecret(t *testing.T) {
	rs := redistest.Start(t)
	openInstance(t, rs.Addr, t.TempDir())
	c := config.Redis{Address: rs.Addr, KeyPrefix: "test:", Timeout: config.Duration(200 * time.Millisecond)}
	if r, err := Open(c, t.TempDir(), Options{}); err == nil {
		r.Close()
		t.Fatal("an instance with another secret was let in")
	}
}

func metricsText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}
