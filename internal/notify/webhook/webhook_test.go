package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
)

// receiver is a local webhook endpoint that answers with the given codes
// in turn (200 once they are used up) and records every body.
type receiver struct {
	mu     sync.Mutex
	codes  []int
	bodies [][]byte
	sigs   []string
	got    chan struct{}
}

func newReceiver(t *testing.T, codes ...int) (*receiver, string) {
	r := &receiver{codes: codes, got: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get(SignatureHeader))
		code := 200
		if len(r.codes) > 0 {
			code, r.codes = r.codes[0], r.codes[1:]
		}
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			code = 400
		}
		w.WriteHeader(code)
		r.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("the receiver got %d of %d requests", len(r.bodies), n)
		}
	}
}

func (r *receiver) events(t *testing.T) []Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, b := range r.bodies {
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
		out = append(out, e)
	}
	return out
}

func closeSender(t *testing.T, s *Sender) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func sampleEvent() Event {
	return Event{
		Time: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Cause: "account.locked", Code: "UNAVAILABLE", Temporary: true,
		User: "ann@example.com", Client: "192.0.2.7", Provider: "gmail", Link: "https://gw.example.com/why/abcdefghijklmnopqrst",
	}
}

func TestBodyAndSignature(t *testing.T) {
	rcv, url := newReceiver(t)
	secret := []byte("hook-secret")
	s, err := New(Options{URL: url, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(sampleEvent())
	rcv.wait(t, 1)
	closeSender(t, s)
	body := rcv.bodies[0]
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "auth_failure", "time": "2026-11-27T10:00:00Z", "cause": "account.locked", "code": "UNAVAILABLE",
		"temporary": true, "user": "ann@example.com", "client": "192.0.2.7", "provider": "gmail",
		"link": "https://gw.example.com/why/abcdefghijklmnopqrst", "notice": false,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("unexpected fields in %s", body)
	}
	if !hmac.Equal([]byte(rcv.sigs[0]), []byte(Sign(secret, body))) || !strings.HasPrefix(rcv.sigs[0], "sha256=") {
		t.Errorf("signature %q", rcv.sigs[0])
	}
	if strings.Contains(string(body), string(secret)) {
		t.Error("the secret is in the body")
	}
}

func TestRetries(t *testing.T) {
	rcv, url := newReceiver(t, 503, 429, 200)
	s, err := New(Options{URL: url, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(sampleEvent())
	rcv.wait(t, 3)
	closeSender(t, s)
	if n := len(rcv.events(t)); n != 3 {
		t.Errorf("%d tries, want 3 (503, 429, then 200)", n)
	}

	// A 4xx other than 408/429 is not retried; MaxTries bounds the rest.
	rcv, url = newReceiver(t, 404, 500, 500, 500)
	s, err = New(Options{URL: url, Backoff: time.Millisecond, MaxTries: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(sampleEvent())
	rcv.wait(t, 1)
	s.Send(sampleEvent())
	rcv.wait(t, 2)
	closeSender(t, s)
	if n := len(rcv.events(t)); n != 3 {
		t.Errorf("%d requests, want 1 (404) + 2 (500, 500)", n)
	}
}

func TestRateLimit(t *testing.T) {
	rcv, url := newReceiver(t)
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := New(Options{URL: url, PerMinute: 2, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s.Send(sampleEvent())
	}
	rcv.wait(t, 2)
	mu.Lock()
	now = now.Add(30 * time.Second) // one more token
	mu.Unlock()
	s.Send(sampleEvent())
	rcv.wait(t, 1)
	closeSender(t, s)
	ev := rcv.events(t)
	if len(ev) != 3 {
		t.Fatalf("%d POSTs, want 3 (2 at once, 1 after 30s)", len(ev))
	}
	// The three over the limit are counted in a later POST (which one
	// depends on when the sender dequeued), never lost silently.
	if n := ev[0].Suppressed + ev[1].Suppressed + ev[2].Suppressed; n != 3 {
		t.Errorf("suppressed counts %d %d %d, want 3 in all", ev[0].Suppressed, ev[1].Suppressed, ev[2].Suppressed)
	}
}

func TestCloseAbandonsAtDeadline(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	s, err := New(Options{URL: srv.URL, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s.Send(sampleEvent())
	s.Send(sampleEvent())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); err == nil {
		t.Error("Close returned nil with a POST still hanging")
	}
	s.Send(sampleEvent()) // after Close: dropped, no panic
}

// TestUserNameCleaned: a user name is attacker text; the event carries it
// capped and without control or format characters, so a receiver's log or
// chat message cannot get forged lines or reordered text.
func TestUserNameCleaned(t *testing.T) {
	rcv, url := newReceiver(t)
	s, err := New(Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEvent()
	e.User = "ann\r\nX-Forged: 1\u202e" + strings.Repeat("a", 8192)
	s.Send(e)
	rcv.wait(t, 1)
	closeSender(t, s)
	got := rcv.events(t)[0].User
	if len(got) > diagnose.MaxUsernameLen || strings.ContainsAny(got, "\r\n\u202e") || !strings.HasPrefix(got, "ann") {
		t.Errorf("user sent as %d bytes: %q", len(got), got[:min(len(got), 40)])
	}
}
