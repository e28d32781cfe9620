package loadtest_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/loadtest"
	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// The size of the run. CI runs the short version; the figure is
//
//	go test ./internal/loadtest/ -run TestLoad -v -load.sessions=2000 -load.duration=60s
//
// or IMAPWHY_LOAD=long (make load).
var (
	sessions = flag.Int("load.sessions", 100, "sessions held at once")
	duration = flag.Duration("load.duration", 10*time.Second, "how long they work once all are logged in")
)

// TestLoadThroughProxy: sessions through the proxy (implicit TLS from the
// clients, plaintext on loopback to Dovecot) log in, SELECT, APPEND,
// FETCH, IDLE at once for the duration, with no protocol error and no
// message lost.
func TestLoadThroughProxy(t *testing.T) {
	n, d := *sessions, *duration
	if os.Getenv("IMAPWHY_LOAD") == "long" {
		n, d = max(n, 2000), max(d, time.Minute)
	}
	// Both ends of every connection are in this process, plus Dovecot's.
	testkit.RaiseFileLimit(t, uint64(8*n+1000))
	dc := dovecottest.Start(t, dovecottest.Options{MaxSessions: n + 50})
	users := []loadtest.Credentials{{"alice", "alicepass"}, {"bob", "bobpass"}, {"carol@example.test", "carolpass"}, {"utf8", dovecottest.UTF8Password}}
	if per := (n + len(users) - 1) / len(users); per > 1000 {
		t.Fatalf("%d sessions per user: over Dovecot's mail_max_userip_connections", per)
	}

	pki := testkit.NewPKI(t)
	serverTLS, clientTLS := pki.ServerConfig(), pki.ClientConfig("127.0.0.1")
	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
state_dir: %s
log: {level: info}
listeners:
  - address: 127.0.0.1:0
    tls: implicit
    upstream: {address: %q, tls: none}
# Every session comes from this one test host: the per-address limits,
# meant for many clients, would refuse it.
limits: {per_address_connections: -1, per_address_logins_per_minute: -1, per_user_logins_per_minute: -1}
`, t.TempDir(), dc.IMAP)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lineCounter{}
	srv, err := proxy.New(cfg, proxy.Options{Logger: zerolog.New(logs), TLS: serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy Shutdown: %v", err)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	r, err := loadtest.Run(ctx, loadtest.Config{
		Addr:     srv.Addrs()[0].String(),
		TLS:      clientTLS,
		Users:    users,
		Sessions: n,
		Duration: d,
		Idle:     min(5*time.Second, max(time.Second, time.Duration(n)*time.Millisecond)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %s", r)
	fmt.Fprintf(os.Stderr, "load: %s\n", r)
	for _, err := range r.FirstErrors {
		t.Error(err)
	}
	if r.Held != n || r.Errors != 0 || r.Lost != 0 || r.BytesLost != 0 || r.Fetched != r.Appended || r.Appended < int64(n) {
		t.Errorf("want %d sessions held, no errors, nothing lost, every message fetched back", n)
	}
	if f := logs.failures(); f != 0 {
		t.Errorf("%d failed logins in the proxy's log", f)
	}
}

// lineCounter counts the proxy's failed logins (the log is not kept: a
// load run writes a lot of it).
type lineCounter struct {
	mu sync.Mutex
	n  int
}

func (l *lineCounter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), `"event":"auth_failure"`) {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return len(p), nil
}

func (l *lineCounter) failures() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
