package shield

import (
	"crypto/hmac"
	"time"
)

// Bounds of one user's record: older entries are dropped first.
const (
	maxWorked  = 4 // passwords that worked
	maxFailed  = 8 // passwords the server refused
	maxClients = 8 // client networks that logged in
)

// Record is what a Store keeps for one user: a salt, verifiers and times.
// It holds no password and no user name.
type Record struct {
	Salt   []byte    `json:"salt"`
	Worked []Worked  `json:"worked,omitempty"` // the last one that worked first
	Failed []Failure `json:"failed,omitempty"` // the last one forwarded first
	// Clients are the client networks that logged in as this user, the
	// last first: only they are told what the history knows.
	Clients []Client `json:"clients,omitempty"`
}

// Client is a client network that logged in, as a keyed hash.
type Client struct {
	Tag []byte    `json:"t"`
	At  time.Time `json:"at"` // its last successful login
}

// Worked is a password that logged in.
type Worked struct {
	Verifier []byte    `json:"v"`
	At       time.Time `json:"at"` // the last successful login with it
}

// Failure is a password the server refused, within the window.
type Failure struct {
	Verifier  []byte    `json:"v"`
	First     time.Time `json:"first"`     // the first refusal in this window
	Last      time.Time `json:"last"`      // the last time it was forwarded and refused
	Forwarded int       `json:"forwarded"` // refusals by the server in this window
	Held      int       `json:"held"`      // tries answered from history since
	Cause     string    `json:"cause"`     // the cause diagnosed at the last refusal
}

// lifetimes are how long each kind of entry is kept.
type lifetimes struct {
	window time.Duration // a failure, after it was last forwarded
	ttl    time.Duration // a password that worked, after its last login
}

// prune drops the entries that have expired at now.
func (r *Record) prune(now time.Time, l lifetimes) {
	w := r.Worked[:0]
	for _, e := range r.Worked {
		if now.Before(e.At.Add(l.ttl)) {
			w = append(w, e)
		}
	}
	r.Worked = w
	f := r.Failed[:0]
	for _, e := range r.Failed {
		if now.Before(e.Last.Add(l.window)) {
			f = append(f, e)
		}
	}
	r.Failed = f
	c := r.Clients[:0]
	for _, e := range r.Clients {
		if now.Before(e.At.Add(l.ttl)) {
			c = append(c, e)
		}
	}
	r.Clients = c
}

// expiry is when the last entry expires; zero for an empty record.
func (r *Record) expiry(l lifetimes) time.Time {
	var t time.Time
	for _, e := range r.Worked {
		if x := e.At.Add(l.ttl); x.After(t) {
			t = x
		}
	}
	for _, e := range r.Failed {
		if x := e.Last.Add(l.window); x.After(t) {
			t = x
		}
	}
	for _, e := range r.Clients {
		if x := e.At.Add(l.ttl); x.After(t) {
			t = x
		}
	}
	return t
}

// empty reports whether the record has no entries.
func (r *Record) empty() bool { return len(r.Worked) == 0 && len(r.Failed) == 0 }

// failure is the entry for verifier v, or nil.
func (r *Record) failure(v []byte) *Failure {
	for i := range r.Failed {
		if sameVerifier(v, r.Failed[i].Verifier) {
			return &r.Failed[i]
		}
	}
	return nil
}

// worked reports whether v is a password that worked.
func (r *Record) worked(v []byte) bool {
	for _, e := range r.Worked {
		if sameVerifier(v, e.Verifier) {
			return true
		}
	}
	return false
}

// knows reports whether the client network tag logged in as this user.
func (r *Record) knows(tag []byte) bool {
	for _, e := range r.Clients {
		if hmac.Equal(tag, e.Tag) {
			return true
		}
	}
	return false
}

// loggedInFrom records a login from the client network tag.
func (r *Record) loggedInFrom(tag []byte, now time.Time) {
	r.Clients = moveToFront(r.Clients, Client{Tag: tag, At: now}, func(e Client) bool { return hmac.Equal(tag, e.Tag) }, maxClients)
}

// lastWorked is the verifier of the password that worked last, or nil.
func (r *Record) lastWorked() []byte {
	if len(r.Worked) == 0 {
		return nil
	}
	return r.Worked[0].Verifier
}

// refused records a refusal of v with its cause, most recent first.
func (r *Record) refused(v []byte, cause string, now time.Time) {
	f := Failure{Verifier: v, First: now}
	if old := r.failure(v); old != nil {
		f = *old
	}
	f.Last = now
	f.Forwarded++
	f.Cause = cause
	r.Failed = moveToFront(r.Failed, f, func(e Failure) bool { return sameVerifier(v, e.Verifier) }, maxFailed)
}

// succeeded records a login with v: it is the password that worked last,
// and no longer a failing one.
func (r *Record) succeeded(v []byte, now time.Time) {
	f := r.Failed[:0]
	for _, e := range r.Failed {
		if !sameVerifier(v, e.Verifier) {
			f = append(f, e)
		}
	}
	r.Failed = f
	r.Worked = moveToFront(r.Worked, Worked{Verifier: v, At: now}, func(e Worked) bool { return sameVerifier(v, e.Verifier) }, maxWorked)
}

// moveToFront puts e first, drops the entries that match, and keeps at
// most max.
func moveToFront[T any](s []T, e T, match func(T) bool, max int) []T {
	out := make([]T, 0, min(len(s)+1, max))
	out = append(out, e)
	for _, x := range s {
		if len(out) == max {
			break
		}
		if !match(x) {
			out = append(out, x)
		}
	}
	return out
}
