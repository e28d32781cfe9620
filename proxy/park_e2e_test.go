//go:build linux

package proxy_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/testkit"
	"github.com/imapwhy/imapwhy/proxy"
)

// TestParkedSessionsDovecot: through every route to a real Dovecot, a
// session in IDLE parks both directions (no goroutine waits for it); a
// message delivered meanwhile reaches the client as EXISTS, the client
// ends IDLE, stores and fetches a 1 MiB message after parking again, and
// logs out; the session ends and nothing stays parked. The routes run one
// after the other, so that the server's parked count is this session's.
func TestParkedSessionsDovecot(t *testing.T) {
	defer proxy.ParkQuickly(50 * time.Millisecond)()
	e := startE2E(t)
	parked := func(n int) {
		t.Helper()
		testkit.WaitFor(t, func() bool { return proxy.ParkedDirections(e.srv) == n })
	}
	for i, r := range routes {
		t.Run(r.String(), func(t *testing.T) {
			h, exists := testkit.ExistsHandler()
			c := e.client(t, r, h)
			idle := testkit.IdleInbox(t, c, "alice", "alicepass")
			parked(2)
			if err := e.dc.Deliver("alice", []byte("Subject: while parked\r\n\r\nnew\r\n")); err != nil {
				t.Fatal(err)
			}
			testkit.Receive(t, exists, 20*time.Second, "EXISTS during IDLE")
			parked(2)
			if err := idle.Close(); err != nil {
				t.Fatalf("IDLE done: %v", err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatalf("IDLE: %v", err)
			}
			parked(2)
			msg := largeMessage(1 << 20)
			uid := appendMessage(t, c, msg)
			parked(2)
			if got := fetchMessage(t, c, uid); !bytes.Equal(got, msg) {
				t.Fatalf("FETCH after a park gave %d bytes, want the %d appended", len(got), len(msg))
			}
			if err := c.Logout().Wait(); err != nil {
				t.Fatalf("LOGOUT: %v", err)
			}
			parked(0)
			testkit.WaitFor(t, func() bool { return len(e.logs.events("session_end")) == i+1 })
		})
	}
}
