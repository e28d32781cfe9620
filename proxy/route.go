package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/discover"
	"github.com/imapwhy/imapwhy/internal/upstream"
)

// router chooses the upstream for a login on an `upstream: auto` listener:
// a configured route for the user's email domain first, else discovery
// (built-in catalog, autoconfig, DNS SRV, MX). Discovered servers are
// dialled through discovery's guard, which refuses non-public addresses
// unless the operator allowed them.
type router struct {
	routes map[string]*upstream.Config  // by lower-case domain
	wants  map[string]config.OAuthWants // a route's upstream.oauth, by domain
	disc   *discover.Discoverer
	// guard resolves and dials discovered hosts with discovery's resolver;
	// unless discovery.allow_private is set it refuses non-public addresses.
	guard *discover.Guard
}

// newRouter prepares the routes of cfg, discovering with disc.
func newRouter(cfg config.Config, opts Options, disc *discover.Discoverer) (*router, error) {
	r := &router{routes: map[string]*upstream.Config{}, wants: map[string]config.OAuthWants{}, disc: disc, guard: disc.Guard()}
	for i, rt := range cfg.Routes {
		base, err := upstream.TLSBase(rt.Upstream, opts.UpstreamRoots)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].upstream: %w", i, err)
		}
		uc := upstream.NewConfig(rt.Upstream, base, cfg.Timeouts, opts.Dial)
		domain := strings.ToLower(strings.TrimSpace(rt.Domain))
		r.routes[domain] = &uc
		r.wants[domain] = rt.Upstream.OAuth
	}
	return r, nil
}

// route returns the upstream for user and the user name to log in there
// with. Errors are the proxy's own refusals; obs says why.
func (r *router) route(ctx context.Context, user string, st *listenerSettings, obs *diagnose.Observation) (*upstream.Config, string, error) {
	obs.Phase = diagnose.PhaseProxy
	addr := strings.TrimSpace(user)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || at == len(addr)-1 {
		obs.Typed.UserHasDomain = false
		return nil, "", discover.ErrNotAnAddress
	}
	domain := strings.ToLower(addr[at+1:])
	if uc, ok := r.routes[domain]; ok {
		if w := r.wants[domain]; obs.OAuth != nil && (len(w.Audiences) > 0 || len(w.Scopes) > 0) {
			// What this route's server wants of a token.
			obs.OAuth.WantAudiences, obs.OAuth.WantScopes = w.Audiences, w.Scopes
		}
		return uc, user, nil
	}
	res, err := r.disc.Lookup(ctx, addr)
	if err != nil {
		if errors.Is(err, discover.ErrNotAnAddress) {
			obs.Typed.UserHasDomain = false
		}
		recordNetFact(obs, "", err)
		return nil, "", fmt.Errorf("discovery: %w", err)
	}
	// Vet the host now, so that a refusal by policy is the proxy's own
	// answer; the dial vets again, against DNS answers that change.
	if _, err := r.guard.Vet(ctx, res.Host); err != nil {
		recordNetFact(obs, res.Host, err)
		return nil, "", fmt.Errorf("discovered server %s: %w", res.Host, err)
	}
	found := config.Upstream{Address: net.JoinHostPort(res.Host, strconv.Itoa(res.Port)), TLS: res.TLS, ServerName: res.Host}
	if found.TLS == "" {
		found.TLS = config.TLSImplicit
	}
	uc := upstream.NewConfig(found, st.base, st.timeouts, r.guard.DialContext)
	login := user
	if res.Username != "" {
		login = res.Username
	}
	return &uc, login, nil
}

// recordNetFact keeps what a failed lookup says about this computer's
// network (DNS not answering, no route): the diagnosis is then about the
// network, naming the provider the catalog knows, not "unknown domain".
// A refusal by policy (a private address) records nothing.
func recordNetFact(obs *diagnose.Observation, host string, err error) {
	n := diagnose.NetErrorOf(err)
	if n == diagnose.NetOK || n == diagnose.NetDNSNotFound {
		return
	}
	obs.NetError = n
	obs.Phase = diagnose.PhaseDial
	if host != "" {
		obs.Host = host
	}
}
