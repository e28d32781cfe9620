package shield

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
)

// Options tune a Shield. Zero fields take config's defaults.
type Options struct {
	// ForwardedTries is how often the same failing password of a user
	// reaches the server within Window before it is held back.
	ForwardedTries int
	// Window is how long a failing password is remembered after it was
	// last forwarded.
	Window time.Duration
	// HistoryTTL is how long a password that worked is remembered.
	HistoryTTL time.Duration
	// Params is the argon2id cost; zero means DefaultParams.
	Params Params
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnError receives the store's errors (the shield fails open); nil
	// drops them.
	OnError func(error)
}

// Shield is the failure history and the lock-out shield. It is safe for
// concurrent use.
type Shield struct {
	store  Store
	h      *hasher
	recent recentSuccesses // passwords that just logged in, in memory
	tries  int
	life   lifetimes
	now    func() time.Time
	onErr  func(error)
}

// New makes a shield over store. The secret keys the verifiers and user
// keys: a store is only useful with the secret it was written with.
func New(store Store, secret [SecretSize]byte, opts Options) *Shield {
	d := config.Default().Shield
	s := &Shield{
		store: store,
		h:     newHasher(secret, opts.Params),
		tries: opts.ForwardedTries,
		life:  lifetimes{window: opts.Window, ttl: opts.HistoryTTL},
		now:   opts.Now,
		onErr: opts.OnError,
	}
	if s.tries <= 0 {
		s.tries = d.ForwardedTries
	}
	if s.life.window <= 0 {
		s.life.window = d.Window.D()
	}
	if s.life.ttl <= 0 {
		s.life.ttl = d.HistoryTTL.D()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.onErr == nil {
		s.onErr = func(error) {}
	}
	return s
}

// Open makes the shield that c asks for, with a file store in stateDir
// (history.db, keyed by the secret in stateDir/secret) or a memory store
// with a secret that lives as long as the process. It returns nil and no
// error when c switches the shield off. opts.Now, Params and OnError are
// used; the rest comes from c.
func Open(c config.Shield, stateDir string, opts Options) (*Shield, error) {
	if !c.On() {
		return nil, nil
	}
	opts.ForwardedTries = c.ForwardedTries
	opts.Window = c.Window.D()
	opts.HistoryTTL = c.HistoryTTL.D()
	switch c.Store {
	case config.StoreMemory, "":
		return New(NewMemoryStore(c.MaxUsers), NewSecret(), opts), nil
	case config.StoreFile:
		secret, err := LoadSecret(stateDir)
		if err != nil {
			return nil, err
		}
		st, err := OpenFileStore(filepath.Join(stateDir, historyFile), c.MaxUsers)
		if err != nil {
			return nil, err
		}
		return New(st, secret, opts), nil
	}
	return nil, fmt.Errorf("shield: unknown store %q", c.Store)
}

// Close closes the store.
func (s *Shield) Close() error { return s.store.Close() }

// ForwardedTries is how often a failing password reaches the server
// within the window.
func (s *Shield) ForwardedTries() int { return s.tries }

// Begin starts one login attempt of user with password from a client of
// unknown address; see BeginFrom.
func (s *Shield) Begin(user, password string) *Attempt {
	return s.BeginFrom(netip.Addr{}, user, password)
}

// BeginFrom starts one login attempt of user with password from the client
// at addr. It reads the user's history; the attempt's methods compute
// verifiers only when the history has something to compare them with.
// What the history knows is told only to a client network (UserPrefix)
// that has logged in as this user before.
func (s *Shield) BeginFrom(addr netip.Addr, user, password string) *Attempt {
	a := &Attempt{s: s, key: s.h.userKey(user), password: password}
	a.client = s.h.clientTag(a.key, UserPrefix(addr))
	now := s.now()
	rec, found, err := s.store.Get(a.key, now)
	if err != nil {
		s.onErr(err)
	}
	if found {
		rec.prune(now, s.life)
	}
	if found && !rec.empty() {
		a.rec, a.found, a.salt = rec, true, rec.Salt
	} else {
		a.salt = newSalt()
	}
	a.trusted = a.found && a.rec.knows(a.client)
	return a
}

// countsAgainstPassword: the causes that say these credentials are wrong
// and will stay wrong, so that sending them again cannot help. Only these
// are recorded as failures, and so only these are ever held back.
var countsAgainstPassword = map[diagnose.Cause]bool{
	diagnose.CauseCredentialsRejected:         true,
	diagnose.CauseCredentialsPasswordChanged:  true,
	diagnose.CauseCredentialsCapsLock:         true,
	diagnose.CausePasswordSurroundingSpace:    true,
	diagnose.CausePasswordFullwidth:           true,
	diagnose.CausePasswordNonASCII:            true,
	diagnose.CausePasswordEmpty:               true,
	diagnose.CauseUsernameMissingDomain:       true,
	diagnose.CauseUsernameSurroundingSpace:    true,
	diagnose.CauseUsernameFullwidth:           true,
	diagnose.CauseProviderAppPasswordRequired: true,
	diagnose.CauseProviderOAuthRequired:       true,
	diagnose.CauseAccountPasswordExpired:      true,
}

// Attempt is one login through the shield. It holds the password until the
// login is over: drop it then. It is not safe for concurrent use.
type Attempt struct {
	s        *Shield
	key      string
	password string
	rec      Record // the history when the attempt began, pruned
	found    bool   // rec has entries
	salt     []byte // rec's salt, or a new one for a new record
	v        []byte // verifier of password, computed once
	client   []byte // the client network's tag
	trusted  bool   // the client network logged in as this user before
	checks   int    // variants of the password compared with the history
}

// LastWorked reports whether the password is the one that logged in last
// for this user: the account or the provider changed, not the typing.
func (a *Attempt) LastWorked() bool {
	if !a.found {
		return false
	}
	if a.s.recent.fresh(a.key, a.s.h.quickMAC(a.key, a.password), a.s.now()) {
		return true
	}
	last := a.rec.lastWorked()
	return last != nil && sameVerifier(a.verifier(), last)
}

// Forget drops the password and its verifier from the attempt; the attempt
// is of no further use.
func (a *Attempt) Forget() {
	a.password = ""
	clear(a.v)
	a.v = nil
}

// Checks is how many variants of the password (case inverted, trimmed,
// folded) Explain compared with the password that worked: each tells
// whether that variant is right, so the caller counts them against the
// user's failure limits like guesses of their own (Throttle.Spend).
func (a *Attempt) Checks() int { return a.checks }

// verifier is the password's verifier under the attempt's salt.
func (a *Attempt) verifier() []byte {
	if a.v == nil {
		a.v = a.s.h.verifier(a.salt, a.password)
	}
	return a.v
}

// Check decides, before anything is sent upstream, whether to hold this
// attempt back: the server has refused this same password ForwardedTries
// times within the window. When it holds, the History says so (Held, how
// often the password was seen, the cause last diagnosed for it) and the
// caller answers from it; a different password is never held.
func (a *Attempt) Check() (hold bool, h diagnose.History) {
	if !a.found {
		return false, h
	}
	h.Known = true
	if len(a.rec.Failed) == 0 {
		return false, h
	}
	// A password that logged in with no refusal since (Failed forgets it)
	// is not a failing one: no hash is needed to tell.
	if a.recentlyWorked(a.s.h.quickMAC(a.key, a.password), a.s.now()) {
		return false, h
	}
	v := a.verifier()
	f := a.rec.failure(v)
	if f == nil || f.Forwarded < a.s.tries {
		return false, h
	}
	held := *f
	held.Held++
	now := a.s.now()
	a.update(now, func(r *Record) {
		if f := r.failure(v); f != nil {
			f.Held++
			held = *f
		}
	})
	if !a.trusted {
		// Held all the same (the account must not get locked), but a
		// stranger is not told that this password failed before.
		return true, diagnose.History{Held: true, Stranger: true}
	}
	h.Held = true
	h.RepeatedFailures = held.Forwarded + held.Held
	h.HeldCause = held.Cause
	return true, h
}

// Explain gives the history facts for a login the server refused, for
// diagnose.Classify: whether this exact password, or the password as meant
// (case inverted, trimmed, folded to half-width), is one that worked.
func (a *Attempt) Explain() diagnose.History {
	h := diagnose.History{RepeatedFailures: 1}
	if !a.found {
		return h
	}
	if !a.trusted {
		// Whether this password worked before, or a variant of it is
		// the right one, is for the owner's own devices only.
		h.Stranger = true
		return h
	}
	h.Known = true
	v := a.verifier()
	if f := a.rec.failure(v); f != nil {
		h.RepeatedFailures += f.Forwarded + f.Held
	}
	h.SamePasswordWorked = a.rec.worked(v)
	last := a.rec.lastWorked()
	if last == nil || sameVerifier(v, last) {
		// No variant of the last password that worked can be it.
		return h
	}
	h.CaseInvertedWorked = a.variantIs(caseInverted(a.password), last)
	h.TrimmedWorked = a.variantIs(trimmed(a.password), last)
	h.FoldedWorked = a.variantIs(folded(a.password), last)
	return h
}

// variantIs reports whether alt, a variant of the password, has verifier
// want. A variant equal to the password is not one.
func (a *Attempt) variantIs(alt string, want []byte) bool {
	if alt == a.password {
		return false
	}
	a.checks++
	return sameVerifier(a.s.h.verifier(a.salt, alt), want)
}

// Failed records that the server refused the password with cause (as
// diagnosed). Causes the same password may get past later are not
// recorded (see countsAgainstPassword).
func (a *Attempt) Failed(cause diagnose.Cause) {
	if !countsAgainstPassword[cause] {
		return
	}
	a.s.recent.forget(a.key)
	v := a.verifier()
	now := a.s.now()
	a.update(now, func(r *Record) { r.refused(v, string(cause), now) })
}

// Succeeded records that the password logged in: it is the one that worked
// last, and no longer a failing one.
//
// The same password logging in again within recentRefresh costs no
// argon2id hash: the record stored for its first success stands.
func (a *Attempt) Succeeded() {
	now := a.s.now()
	mac := a.s.h.quickMAC(a.key, a.password)
	if a.recentlyWorked(mac, now) {
		if !a.trusted {
			a.update(now, func(r *Record) { r.loggedInFrom(a.client, now) })
		}
		return
	}
	v := a.verifier()
	a.update(now, func(r *Record) {
		r.succeeded(v, now)
		r.loggedInFrom(a.client, now)
	})
	a.s.recent.remember(a.key, mac, now)
}

// update applies change to the stored record. A record made meanwhile with
// another salt (a concurrent first login of the same user) is left alone:
// this attempt's verifiers mean nothing there.
func (a *Attempt) update(now time.Time, change func(*Record)) {
	err := a.s.store.Update(a.key, now, func(r *Record) time.Time {
		r.prune(now, a.s.life)
		if r.empty() {
			r.Salt = a.salt
		}
		if bytes.Equal(r.Salt, a.salt) {
			change(r)
		}
		return r.expiry(a.s.life)
	})
	if err != nil {
		a.s.onErr(err)
	}
}
