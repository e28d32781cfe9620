// Package webhook posts each diagnosed login failure as JSON to a URL, for
// gateway admins: bounded queue, rate limit, retries with
// backoff, an optional HMAC-SHA256 signature, and never a secret in the
// body (the Event type has no field that could hold one).
//
//	s, _ := webhook.New(webhook.Options{URL: "https://hooks.example.com/x", Secret: key})
//	s.Send(webhook.Event{Cause: "account.locked", User: "ann@example.com", ...})
//	defer s.Close(ctx)
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/imapwhy/imapwhy/diagnose"
)

// Event is the JSON body of one POST: what failed and why, never a
// password or any other secret.
type Event struct {
	Event     string    `json:"event"` // always "auth_failure"
	Time      time.Time `json:"time"`
	Cause     string    `json:"cause"`
	Code      string    `json:"code"`
	Temporary bool      `json:"temporary"`
	User      string    `json:"user"`
	Client    string    `json:"client,omitempty"`   // the mail app's IP address
	Provider  string    `json:"provider,omitempty"` // catalog ID
	Link      string    `json:"link,omitempty"`     // the incident page, while it lives
	Notice    bool      `json:"notice"`             // answered with the notice mailbox
	// Suppressed counts the failures not posted since the previous POST
	// (over the rate limit, or the queue was full).
	Suppressed int `json:"suppressed,omitempty"`
}

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// with the configured secret, when there is one.
const SignatureHeader = "X-Imapwhy-Signature"

// Options configures a Sender.
type Options struct {
	URL       string
	Secret    []byte        // HMAC key; nil: no signature
	PerMinute int           // POSTs per minute at most (burst: as many); default 30
	Queue     int           // events waiting at most; default 100
	MaxTries  int           // tries of one POST; default 5
	Timeout   time.Duration // one try; default 10s
	// Client, if set, replaces the default HTTP client (tests, custom roots).
	Client *http.Client
	// Backoff is the wait before the first retry, doubled for each further
	// one and capped at MaxBackoff; default 1s.
	Backoff time.Duration
	Log     zerolog.Logger
	// Now is the rate limiter's clock; nil: time.Now.
	Now func() time.Time
}

// MaxBackoff caps the wait between two tries, Retry-After included.
const MaxBackoff = time.Minute

// Sender posts events from one goroutine. It is safe for concurrent use.
type Sender struct {
	o       Options
	client  *http.Client
	limiter *rate.Limiter
	queue   chan Event
	ctx     context.Context // canceled by Close at its deadline
	cancel  context.CancelFunc
	done    chan struct{}

	mu         sync.Mutex
	closed     bool
	suppressed int
}

// New checks the options and starts the sender.
func New(o Options) (*Sender, error) {
	if o.URL == "" {
		return nil, errors.New("webhook: no URL")
	}
	if o.PerMinute <= 0 {
		o.PerMinute = 30
	}
	if o.Queue <= 0 {
		o.Queue = 100
	}
	if o.MaxTries <= 0 {
		o.MaxTries = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := o.Client
	if client == nil {
		client = &http.Client{
			// A webhook that redirects elsewhere is not followed: the body
			// goes only where the operator said.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		o:       o,
		client:  client,
		limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(o.PerMinute)), o.PerMinute),
		queue:   make(chan Event, o.Queue),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// Send queues e without blocking. Over the rate limit, with a full queue
// or after Close, e is dropped and counted in the next POST's Suppressed.
func (s *Sender) Send(e Event) {
	e.Event = "auth_failure"
	e.User = diagnose.CleanUsername(e.User)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.limiter.AllowN(s.o.Now(), 1) {
		s.suppressed++
		return
	}
	select {
	case s.queue <- e:
	default:
		s.suppressed++
		s.o.Log.Warn().Str("event", "webhook_queue_full").Msg("webhook queue full; failure not posted")
	}
}

// Close stops taking events and posts those queued until ctx ends; then
// it abandons the rest (and a try in flight) and waits for the goroutine.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return ctx.Err()
	}
}

func (s *Sender) run() {
	defer close(s.done)
	defer s.cancel()
	for e := range s.queue {
		s.mu.Lock()
		e.Suppressed, s.suppressed = s.suppressed, 0
		s.mu.Unlock()
		if err := s.post(e); err != nil {
			s.mu.Lock()
			s.suppressed += 1 + e.Suppressed
			s.mu.Unlock()
			s.o.Log.Warn().Err(err).Str("event", "webhook_failed").Str("cause", e.Cause).Msg("webhook POST failed")
		}
	}
}

// post sends one event, retrying network errors, 408, 429 and 5xx with
// exponential backoff (or the server's Retry-After, capped).
func (s *Sender) post(e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	wait := s.o.Backoff
	for try := 1; ; try++ {
		retryAfter, err := s.try(body)
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) || try == s.o.MaxTries {
			return fmt.Errorf("webhook: try %d of %d: %w", try, s.o.MaxTries, err)
		}
		d := min(max(wait, retryAfter), MaxBackoff)
		s.o.Log.Debug().Err(err).Str("event", "webhook_retry").Int("try", try).Int64("wait_ms", d.Milliseconds()).Msg("webhook POST will be retried")
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return fmt.Errorf("webhook: given up at close: %w", err)
		}
		wait = min(2*wait, MaxBackoff)
	}
}

// permanentError is an answer that retrying cannot change (4xx).
type permanentError struct{ status int }

func (e *permanentError) Error() string { return "the receiver answered " + strconv.Itoa(e.status) }

// try makes one POST. It returns the server's Retry-After, if any.
func (s *Sender) try(body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imapwhy")
	if len(s.o.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(s.o.Secret, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("the receiver answered %d", c)
	default:
		return 0, &permanentError{status: c}
	}
}

// retryAfter reads a Retry-After in seconds (the HTTP-date form is rare
// for webhooks and ignored).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, MaxBackoff)
}

// Sign returns the signature header's value for body: "sha256=" and the
// hex HMAC-SHA256 with secret. Receivers compute the same and compare with
// hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
