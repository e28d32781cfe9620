package discover

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Where a Result came from.
const (
	SourceCatalog    = "catalog"
	SourceAutoconfig = "autoconfig"
	SourceSRV        = "srv"
	SourceMX         = "mx"
)

// Error classes of Lookup and Guard; test them with errors.Is.
var (
	// ErrNotAnAddress: the user name is not an email address, so there is
	// no domain to look up.
	ErrNotAnAddress = errors.New("the user name is not an email address")
	// ErrDomainNotAllowed: an allow-list is set and the domain is not on it.
	ErrDomainNotAllowed = errors.New("the domain is not on the allowed list")
	// ErrNotFound: no source knows an IMAP server for the domain. The error
	// is a *NotFoundError saying why each source had nothing.
	ErrNotFound = errors.New("no IMAP server found")
	// ErrPrivateAddress: refused by policy, because a host resolves to a
	// loopback, private, link-local or other non-public address. The error
	// is a *ForbiddenAddressError, possibly wrapped.
	ErrPrivateAddress = errors.New("the address is not public")
)

// Result is an IMAP server found for an email address.
type Result struct {
	Host     string
	Port     int
	TLS      string // config.TLSImplicit, TLSStartTLS or TLSNone ("implicit", "starttls", "none")
	Username string // the login name for this address, resolved; "" if unknown (use what the user typed)
	Source   string // SourceCatalog, SourceAutoconfig, SourceSRV or SourceMX
	Provider string // provider ID when the catalog or an MX rule knows it; "" otherwise
	Detail   string // where exactly: the autoconfig URL, the SRV name, the MX host (for people, not programs)
}

// Resolver is the DNS interface discovery needs. *net.Resolver implements it.
type Resolver interface {
	IPResolver
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
}

// Options configure a Discoverer. The zero value is usable: real DNS, real
// autoconfig URLs, private addresses refused, every domain allowed, no
// catalog.
type Options struct {
	// Catalog answers from the built-in provider catalog (first, without
	// network). It is given the domain in lower-case ASCII (IDNA) form. The
	// Username of its Result may use the autoconfig placeholders
	// (%EMAILADDRESS%...). ok with an empty Host means the provider is
	// known but publishes no fixed server: the network sources are asked,
	// and their answer gets the catalog's Provider if it has none.
	Catalog func(domain string) (r Result, ok bool)
	// Resolver does every DNS lookup, the guard's included. nil: net.DefaultResolver.
	Resolver Resolver
	// AllowPrivate lets discovered hosts resolve to loopback, private,
	// link-local and other non-public addresses. Off by default: otherwise a
	// domain's DNS or autoconfig file could point the proxy at the
	// operator's own network.
	AllowPrivate bool
	// AllowPlaintext accepts autoconfig servers with socketType plain
	// (TLS "none"). Off by default: passwords would cross the network in
	// the clear.
	AllowPlaintext bool
	// AllowDomains, when not empty, is the list of email domains that may
	// be looked up (exact match, any case, IDNA or Unicode form). Other
	// domains get ErrDomainNotAllowed without any network use.
	AllowDomains []string
	// AutoconfigRoots are the roots trusted for autoconfig HTTPS.
	// nil: the system's.
	AutoconfigRoots *x509.CertPool
	// AutoconfigURLs lists the autoconfig URLs to try for a domain (lower
	// case ASCII) and an address. nil: DefaultAutoconfigURLs. Only https
	// URLs are fetched. Tests point it at a local server's port.
	AutoconfigURLs func(domain, email string) []string
	// MXRules maps MX hosts to providers. nil: DefaultMXRules(); an empty,
	// non-nil slice turns MX guesses off.
	MXRules []MXRule
	// Timeout bounds each network attempt: one autoconfig URL, one SRV
	// name, the MX lookup. 0 or less: 5s.
	Timeout time.Duration
	// TTL is how long a found server is kept; NegativeTTL how long "nothing
	// found" or "refused" is kept (at most 30s when a lookup failed for a
	// temporary reason such as a timeout). 0: 1h and 5m. Negative: not kept.
	TTL, NegativeTTL time.Duration
	// CacheSize bounds the number of domains kept. 0: 1024. Negative: no cache.
	CacheSize int
	// Now is the clock for the cache. nil: time.Now.
	Now func() time.Time
}

// Defaults for Options.
const (
	defaultTimeout     = 5 * time.Second
	defaultTTL         = time.Hour
	defaultNegativeTTL = 5 * time.Minute
	defaultCacheSize   = 1024
	// temporaryTTL caps how long a failure is kept when a source timed out
	// or the DNS server failed: the next login may well succeed.
	temporaryTTL = 30 * time.Second
)

// NotFoundError reports that no source knew an IMAP server for Domain.
// errors.Is(err, ErrNotFound) is true for it. Steps keeps each source's own
// error, in the order tried (autoconfig, SRV, MX), for logs and for
// `imapwhy check`; they are not part of the Unwrap chain, so that a
// *NotFoundError is never also mistaken for one of their classes.
type NotFoundError struct {
	Domain string
	Steps  []error
}

func (e *NotFoundError) Error() string {
	parts := make([]string, 0, len(e.Steps))
	for _, s := range e.Steps {
		parts = append(parts, strings.ReplaceAll(s.Error(), "\n", "; "))
	}
	return fmt.Sprintf("no IMAP server found for %s: %s", e.Domain, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Discoverer finds the IMAP server for email addresses. It is safe for
// concurrent use. Create it with New.
type Discoverer struct {
	catalog        func(string) (Result, bool)
	resolver       Resolver
	guard          *Guard
	transport      *http.Transport
	allowDomains   map[string]bool
	allowPlaintext bool
	autoconfigURLs func(domain, email string) []string
	mxRules        []MXRule
	timeout        time.Duration
	ttl            time.Duration
	negativeTTL    time.Duration
	cache          *cache
	randIntN       func(int) int // SRV weight choice; tests make it deterministic

	mu      sync.Mutex
	flights map[string]*flight // domain -> the lookup in progress
}

// flight is one network discovery that concurrent Lookups for the same
// domain wait for instead of repeating it.
type flight struct {
	done chan struct{}
	outcome
	abandoned bool // the leader's context ended first: the outcome answers nobody else
}

// outcome is what a discovery ended with: a server (whose Username is
// still a template) or an error.
type outcome struct {
	res Result
	err error
}

// New returns a Discoverer for opts.
func New(opts Options) *Discoverer {
	d := &Discoverer{
		catalog:        opts.Catalog,
		resolver:       opts.Resolver,
		allowPlaintext: opts.AllowPlaintext,
		autoconfigURLs: opts.AutoconfigURLs,
		mxRules:        opts.MXRules,
		timeout:        defaultTimeout,
		ttl:            orDefault(opts.TTL, defaultTTL),
		negativeTTL:    orDefault(opts.NegativeTTL, defaultNegativeTTL),
		randIntN:       rand.IntN,
		flights:        make(map[string]*flight),
	}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if d.autoconfigURLs == nil {
		d.autoconfigURLs = DefaultAutoconfigURLs
	}
	if opts.Timeout > 0 {
		d.timeout = opts.Timeout
	}
	if d.mxRules == nil {
		d.mxRules = DefaultMXRules()
	}
	d.mxRules = slices.Clone(d.mxRules) // the caller's slice may change later
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	d.cache = newCache(orDefault(opts.CacheSize, defaultCacheSize), now)
	d.guard = NewGuard(d.resolver, opts.AllowPrivate)
	d.transport = newAutoconfigTransport(d.guard, opts.AutoconfigRoots)
	if len(opts.AllowDomains) > 0 {
		d.allowDomains = make(map[string]bool, len(opts.AllowDomains))
		for _, dom := range opts.AllowDomains {
			d.allowDomains[normalizeDomain(dom)] = true
		}
	}
	return d
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// normalizeDomain returns the lookup form of an allow-list entry; an entry
// that is not a valid domain is kept lower-cased, and matches nothing a
// parsed address could produce.
func normalizeDomain(dom string) string {
	if ascii, err := asciiDomain(strings.TrimSpace(dom)); err == nil {
		return ascii
	}
	return strings.ToLower(strings.TrimSpace(dom))
}

// Guard returns the guard used for autoconfig fetches, with the same
// resolver and AllowPrivate policy. The proxy dials discovered upstreams
// through its DialContext.
func (d *Discoverer) Guard() *Guard { return d.guard }

// Lookup finds the IMAP server for an email address: the built-in catalog,
// then the domain's autoconfig file, then DNS SRV (RFC 6186), then MX
// records of known providers. Outcomes from the network are cached per
// domain, found or not.
//
// Errors: ErrNotAnAddress, ErrDomainNotAllowed (no network used for
// either), ErrNotFound, ErrPrivateAddress (nothing else was found and a
// source was refused by the guard), or the context's error.
func (d *Discoverer) Lookup(ctx context.Context, email string) (Result, error) {
	a, err := parseAddress(email)
	if err != nil {
		return Result{}, err
	}
	if d.allowDomains != nil && !d.allowDomains[a.ascii] {
		return Result{}, fmt.Errorf("%w: %s", ErrDomainNotAllowed, a.ascii)
	}
	known, ok := d.fromCatalog(a)
	if ok && known.Host != "" {
		known.Username = expandUsername(known.Username, a)
		return known, nil
	}
	r, err := d.lookupDomain(ctx, a)
	if err != nil {
		return Result{}, err
	}
	if r.Provider == "" {
		r.Provider = known.Provider
	}
	r.Username = expandUsername(r.Username, a)
	return r, nil
}

// fromCatalog asks the built-in catalog; ok is false when it does not know
// the domain.
func (d *Discoverer) fromCatalog(a address) (Result, bool) {
	if d.catalog == nil {
		return Result{}, false
	}
	r, ok := d.catalog(a.ascii)
	if !ok {
		return Result{}, false
	}
	r.Source = SourceCatalog
	if r.Detail == "" {
		r.Detail = "built-in catalog"
	}
	return r, true
}

// lookupDomain answers from the cache, or joins a discovery already running
// for the domain, or runs one.
func (d *Discoverer) lookupDomain(ctx context.Context, a address) (Result, error) {
	for {
		// The cache is read under d.mu: a leader stores its outcome before
		// it leaves d.flights, so no flight and no entry means no answer yet.
		d.mu.Lock()
		if o, ok := d.cache.get(a.ascii); ok {
			d.mu.Unlock()
			return o.res, o.err
		}
		f, running := d.flights[a.ascii]
		if !running {
			f = &flight{done: make(chan struct{})}
			d.flights[a.ascii] = f
		}
		d.mu.Unlock()
		if !running {
			return d.lead(ctx, a, f)
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("discover %s: %w", a.ascii, ctx.Err())
		}
		// A leader whose own context ended has no answer for us: try again.
		if !f.abandoned {
			return f.res, f.err
		}
	}
}

// lead runs the discovery for f, caches its outcome and wakes the waiters,
// even if the discovery panics.
func (d *Discoverer) lead(ctx context.Context, a address, f *flight) (Result, error) {
	f.abandoned = true // until there is an outcome
	defer func() {
		d.mu.Lock()
		delete(d.flights, a.ascii)
		d.mu.Unlock()
		close(f.done)
	}()
	f.res, f.err = d.discover(ctx, a)
	f.abandoned = ctx.Err() != nil
	if !f.abandoned {
		d.cache.put(a.ascii, f.outcome, d.ttlFor(f.err))
	}
	return f.res, f.err
}

// ttlFor says how long an outcome is kept.
func (d *Discoverer) ttlFor(err error) time.Duration {
	switch {
	case err == nil:
		return d.ttl
	case temporary(err):
		return min(d.negativeTTL, temporaryTTL)
	}
	return d.negativeTTL
}

// discover tries the network sources in order and returns the first
// server found.
func (d *Discoverer) discover(ctx context.Context, a address) (Result, error) {
	sources := []func(context.Context, address) (Result, error){
		d.autoconfig,
		func(ctx context.Context, a address) (Result, error) { return d.srvLookup(ctx, a.ascii) },
		func(ctx context.Context, a address) (Result, error) { return d.mxLookup(ctx, a.ascii) },
	}
	var steps []error
	for _, find := range sources {
		r, err := find(ctx, a)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("discover %s: %w", a.ascii, ctx.Err())
		}
		steps = append(steps, err)
	}
	// Nothing found. If a source was refused by policy, that is the
	// answer the operator needs to see ("autoconfig.example.com resolves
	// to 10.0.0.5"), not "nothing found".
	for _, err := range steps {
		if errors.Is(err, ErrPrivateAddress) {
			return Result{}, fmt.Errorf("discover %s: %w", a.ascii, err)
		}
	}
	return Result{}, &NotFoundError{Domain: a.ascii, Steps: steps}
}

// temporary reports whether any error in err's tree is a timeout or a
// temporary DNS failure. *NotFoundError steps are looked at too.
func temporary(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case *NotFoundError:
		for _, s := range e.Steps {
			if temporary(s) {
				return true
			}
		}
		return false
	case *net.DNSError:
		return e.IsTimeout || e.IsTemporary
	case interface{ Timeout() bool }:
		if e.Timeout() {
			return true
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if temporary(e) {
				return true
			}
		}
	case interface{ Unwrap() error }:
		return temporary(u.Unwrap())
	}
	return false
}
