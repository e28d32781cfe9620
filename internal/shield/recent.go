package shield

import (
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"sync"
	"time"
)

// recentRefresh is how long a password that logged in may log in again
// without a new argon2id verifier: the stored record is refreshed at most
// this often per user. A mail app logs in many times an hour (every poll,
// every folder it syncs); each argon2id hash costs tens of milliseconds of
// CPU and 19 MiB, which would make the shield the slowest part of a login.
const recentRefresh = time.Hour

// recentMax bounds the users remembered; past it the memory starts empty
// again (the next success of each user pays one hash).
const recentMax = 10000

// recentSuccesses remembers, in this process's memory only, a keyed hash
// of the password that last logged in for each user. It is never written
// to the store: the store keeps argon2id verifiers, which is what must
// resist guessing if the file is stolen. Whoever can read this process's
// memory can read passwords in flight anyway.
type recentSuccesses struct {
	mu sync.Mutex
	m  map[string]recentSuccess // by user key
}

type recentSuccess struct {
	mac [sha256.Size]byte
	at  time.Time
}

// quickMAC is HMAC-SHA256(secret, user key, password): microseconds, for
// recognising a password that just worked.
func (h *hasher) quickMAC(key, password string) [sha256.Size]byte {
	m := hmac.New(sha256.New, h.secret[:])
	io.WriteString(m, "imapwhy recent v1\x00")
	io.WriteString(m, key)
	io.WriteString(m, "\x00")
	hashPassword(m, password)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	wipeBlock(m)
	return out
}

// fresh reports whether mac is the password that logged in for key within
// recentRefresh of now.
func (r *recentSuccesses) fresh(key string, mac [sha256.Size]byte, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[key]
	return ok && hmac.Equal(e.mac[:], mac[:]) && now.Sub(e.at) < recentRefresh && !now.Before(e.at)
}

// remember records mac as the password that logged in for key at now.
func (r *recentSuccesses) remember(key string, mac [sha256.Size]byte, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= recentMax {
		r.m = make(map[string]recentSuccess)
	}
	r.m[key] = recentSuccess{mac: mac, at: now}
}

// forget drops what is remembered for key: after a refusal, the next
// success must go through the store, so that it clears the failure there.
func (r *recentSuccesses) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, key)
}
