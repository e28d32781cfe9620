package setup

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kinds of Event.
const (
	KindLogin     = "login"     // the login worked
	KindRefused   = "refused"   // the login failed; Message says why
	KindUntrusted = "untrusted" // the device refused imapwhy's certificate
)

// Event is one thing a device did, for the live view of the set-up page:
// the page shows the events from the viewer's own IP address (the phone
// that opened the page is the phone whose mail app logs in).
type Event struct {
	Seq     uint64 // set by Publish
	Time    time.Time
	Client  netip.Addr
	Kind    string
	User    string   // "" for KindUntrusted (no login yet)
	Message string   // the diagnosis, for KindRefused
	Steps   []string // what to do, for KindRefused
	Link    string   // the incident page, "" if none
}

// Bounds of the live view.
const (
	recentMax     = 64               // events kept for pages opened later
	recentAge     = 15 * time.Minute // and for how long
	maxStreams    = 64               // event streams open at once
	streamBuffer  = 16               // events queued per stream; a slower page misses some
	streamMaxLife = 30 * time.Minute // a stream ends after this (EventSource reconnects)
	heartbeat     = 20 * time.Second
)

// Events passes login events to the set-up pages that follow them. Publish
// never blocks. The zero value is not usable: use NewEvents.
type Events struct {
	now func() time.Time

	mu     sync.Mutex
	seq    uint64
	recent []Event
	subs   map[*stream]struct{}
	closed bool
}

type stream struct {
	client netip.Addr
	user   string
	ch     chan Event
}

// NewEvents returns an empty event hub; now is its clock (nil: time.Now).
func NewEvents(now func() time.Time) *Events {
	if now == nil {
		now = time.Now
	}
	return &Events{now: now, subs: map[*stream]struct{}{}}
}

// Publish hands an event to the pages following its client. Safe on a nil
// *Events (no set-up pages).
func (e *Events) Publish(ev Event) {
	if e == nil {
		return
	}
	ev.Client = ev.Client.Unmap()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.seq++
	ev.Seq = e.seq
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	e.recent = append(e.recent, ev)
	if len(e.recent) > recentMax {
		e.recent = append(e.recent[:0], e.recent[len(e.recent)-recentMax:]...)
	}
	for s := range e.subs {
		if s.matches(ev) {
			select {
			case s.ch <- ev:
			default: // the page is not reading: it misses this one
			}
		}
	}
}

// Close ends every stream (before the web server shuts down: a stream
// never goes idle by itself). Later Publish calls do nothing.
func (e *Events) Close() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	for s := range e.subs {
		close(s.ch)
		delete(e.subs, s)
	}
}

func (s *stream) matches(ev Event) bool {
	return ev.Client == s.client && (s.user == "" || ev.User == "" || strings.EqualFold(ev.User, s.user))
}

// since returns the recent events for a client (and user, if not "") with
// a sequence number above after, oldest first.
func (e *Events) since(client netip.Addr, user string, after uint64) (evs []Event, last uint64) {
	s := &stream{client: client.Unmap(), user: user}
	e.mu.Lock()
	defer e.mu.Unlock()
	cutoff := e.now().Add(-recentAge)
	for _, ev := range e.recent {
		if ev.Seq > after && ev.Time.After(cutoff) && s.matches(ev) {
			evs = append(evs, ev)
		}
	}
	return evs, e.seq
}

// subscribe opens a stream; ok is false when too many are open.
func (e *Events) subscribe(client netip.Addr, user string) (s *stream, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || len(e.subs) >= maxStreams {
		return nil, false
	}
	s = &stream{client: client.Unmap(), user: user, ch: make(chan Event, streamBuffer)}
	e.subs[s] = struct{}{}
	return s, true
}

func (e *Events) unsubscribe(s *stream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.subs[s]; ok {
		delete(e.subs, s)
		close(s.ch)
	}
}

// eventJSON is an event as the page's script reads it.
type eventJSON struct {
	Seq     uint64   `json:"seq"`
	Time    string   `json:"time"`
	Kind    string   `json:"kind"`
	User    string   `json:"user,omitempty"`
	Message string   `json:"message,omitempty"`
	Steps   []string `json:"steps,omitempty"`
	Link    string   `json:"link,omitempty"`
}

func toJSON(ev Event) eventJSON {
	return eventJSON{Seq: ev.Seq, Time: ev.Time.UTC().Format(time.RFC3339), Kind: ev.Kind, User: ev.User,
		Message: ev.Message, Steps: ev.Steps, Link: ev.Link}
}

// serveStream is GET /setup/events: server-sent events of the viewer's
// device, starting after ?after=SEQ (what the page already shows).
func (e *Events) serveStream(w http.ResponseWriter, r *http.Request, client netip.Addr, user string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if id, err := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && id > after {
		after = id
	}
	s, ok := e.subscribe(client, user)
	if !ok {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many pages are following logins", http.StatusServiceUnavailable)
		return
	}
	defer e.unsubscribe(s)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("X-Accel-Buffering", "no")
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(2 * heartbeat))
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n\n")
	backlog, _ := e.since(client, user, after)
	for _, ev := range backlog {
		writeEvent(w, ev)
		after = ev.Seq
	}
	fl.Flush()

	life := time.NewTimer(streamMaxLife)
	defer life.Stop()
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	rc := http.NewResponseController(w)
	for {
		// The web server's write timeout is meant for pages, not for a
		// stream: each write gets its own.
		rc.SetWriteDeadline(time.Now().Add(2 * heartbeat))
		select {
		case ev, ok := <-s.ch:
			if !ok {
				return
			}
			if ev.Seq <= after {
				continue // already sent from the backlog
			}
			writeEvent(w, ev)
		case <-beat.C:
			fmt.Fprint(w, ": still here\n\n")
		case <-life.C:
			return
		case <-r.Context().Done():
			return
		}
		fl.Flush()
	}
}

func writeEvent(w http.ResponseWriter, ev Event) {
	b, _ := json.Marshal(toJSON(ev)) // strings, ints: cannot fail
	fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.Seq, b)
}
