// Package bridge is the OAuth bridge: a mail app that can only send a
// password signs in to a provider that wants OAuth. The person connects
// the account once (Connect: the device flow, or the browser flow on the
// /connect pages); imapwhy keeps the refresh token sealed under a key
// derived from the app password (store.go). A password login for a bridged
// account then opens the grant with that password, gets an access token
// (cached until shortly before it expires, one refresh at a time per
// account) and the proxy signs in upstream with XOAUTH2 or OAUTHBEARER.
//
// Tokens are passwords: they are never logged, never in errors, pages or
// notifications.
package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/config"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/shield"
)

// Built-in providers.
const (
	MicrosoftIMAPScope = "https://outlook.office.com/IMAP.AccessAsUser.All"
	GoogleMailScope    = "https://mail.google.com/"
)

// Options carries what the configuration cannot.
type Options struct {
	// Store keeps the sealed grants (NewFileStore(state_dir/oauth-bridge)).
	Store Store
	// PublicURL is the base of the /connect links in refusals ("" : none).
	PublicURL string
	// HTTPClient, if set, talks to the providers (tests). nil: one that
	// trusts the system roots (or a provider's ca_file), with timeouts.
	HTTPClient *http.Client
	// Margin: an access token is used until this long before it expires;
	// 0: one minute.
	Margin time.Duration
	// Params is the argon2id cost of the sealing key; zero:
	// shield.DefaultParams.
	Params shield.Params
	// Logger receives connections, disconnections and refused token
	// requests (user, provider, the OAuth error; never a token). The zero
	// value discards them.
	Logger zerolog.Logger
}

// Bridge is the configured bridge. It is safe for concurrent use.
type Bridge struct {
	providers []*provider
	opts      Options
	mac       [32]byte // keys the in-memory password checks of cached tokens

	mu    sync.Mutex
	cache map[string]*cached // by user
	group singleflight.Group
}

// cached is an access token in memory, with what proves the password.
type cached struct {
	access  string
	expires time.Time
	check   []byte
}

// provider is one configured provider with its endpoints.
type provider struct {
	cfg    config.BridgeProvider
	secret string
	client *http.Client

	emu      sync.Mutex
	found    bool // endpoint and revoke are known
	endpoint oauth2.Endpoint
	revoke   string
}

// New builds the bridge from the configuration.
func New(cfg config.OAuthBridge, opts Options) (*Bridge, error) {
	if opts.Margin == 0 {
		opts.Margin = time.Minute
	}
	if opts.Params.Time == 0 || opts.Params.Memory == 0 || opts.Params.Threads == 0 {
		opts.Params = shield.DefaultParams
	}
	if opts.Store == nil {
		return nil, errors.New("oauth bridge: no store")
	}
	b := &Bridge{opts: opts, cache: map[string]*cached{}}
	rand.Read(b.mac[:])
	for _, pc := range cfg.Providers {
		p := &provider{cfg: pc, client: opts.HTTPClient}
		if pc.ClientSecretFile != "" {
			s, err := os.ReadFile(pc.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("oauth_bridge %s: client_secret_file: %w", pc.Name, err)
			}
			p.secret = strings.TrimSpace(strings.SplitN(string(s), "\n", 2)[0])
		}
		if p.client == nil {
			var err error
			if p.client, err = httpClient(pc.CAFile); err != nil {
				return nil, fmt.Errorf("oauth_bridge %s: %w", pc.Name, err)
			}
		}
		b.providers = append(b.providers, p)
	}
	return b, nil
}

func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_file: no certificate in it")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, nil
}

// provider returns the provider that user's account uses, or nil.
func (b *Bridge) provider(user string) *provider {
	u := normal(user)
	at := strings.LastIndexByte(u, '@')
	if at < 0 {
		return nil
	}
	for _, p := range b.providers {
		for _, x := range p.cfg.Users {
			if x == u {
				return p
			}
		}
	}
	for _, p := range b.providers {
		for _, d := range p.cfg.Domains {
			if d == u[at+1:] {
				return p
			}
		}
	}
	return nil
}

// providerNamed returns the provider called name, or nil.
func (b *Bridge) providerNamed(name string) *provider {
	for _, p := range b.providers {
		if p.cfg.Name == name {
			return p
		}
	}
	return nil
}

// Bridged reports whether user's password logins go through the bridge:
// the account is configured for it and has been connected.
func (b *Bridge) Bridged(user string) bool {
	if b.provider(user) == nil {
		return false
	}
	_, err := b.opts.Store.Load(user)
	return err == nil
}

// Configured reports whether user's account is one the bridge serves
// (connected or not), and the provider's kind.
func (b *Bridge) Configured(user string) (kind string, ok bool) {
	p := b.provider(user)
	if p == nil {
		return "", false
	}
	return p.cfg.Kind, true
}

// ConfiguredKind reports whether a provider of this kind is configured
// (microsoft, google, oidc).
func (b *Bridge) ConfiguredKind(kind string) bool {
	for _, p := range b.providers {
		if p.cfg.Kind == kind {
			return true
		}
	}
	return false
}

// ConnectURL is the page where user connects the account ("" without a
// public URL).
func (b *Bridge) ConnectURL(user string) string {
	if b.opts.PublicURL == "" {
		return ""
	}
	u := strings.TrimSuffix(b.opts.PublicURL, "/") + ConnectPath
	if user != "" {
		u += "?user=" + url.QueryEscape(user)
	}
	return u
}

// Token is an access token for a login upstream.
type Token struct {
	Access    string
	Mechanism string // oauthsasl.XOAUTH2 or OAUTHBEARER
}

// GrantError is a token request the provider refused or did not answer.
// Its text has the OAuth error code, never a token.
type GrantError struct{ Failure diagnose.GrantFailure }

func (e *GrantError) Error() string {
	if e.Failure.Unreachable {
		return "oauth bridge: token endpoint unreachable"
	}
	return "oauth bridge: token request refused: " + e.Failure.Error
}

// Token returns an access token for user, whose app password is password:
// from the cache, or by opening the stored grant and refreshing. A wrong
// password is ErrWrongPassword and the provider is not asked; an account
// that was never connected is ErrNotConnected.
func (b *Bridge) Token(ctx context.Context, user, password string) (Token, error) {
	p := b.provider(user)
	if p == nil {
		return Token{}, ErrNotConnected
	}
	mech := oauthsasl.XOAUTH2
	if p.cfg.Mechanism == "oauthbearer" {
		mech = oauthsasl.OAUTHBEARER
	}
	u := normal(user)
	check := b.check(u, password)
	b.mu.Lock()
	c := b.cache[u]
	b.mu.Unlock()
	if c != nil && time.Now().Before(c.expires.Add(-b.opts.Margin)) && subtle.ConstantTimeCompare(c.check, check) == 1 {
		return Token{Access: c.access, Mechanism: mech}, nil
	}
	// Another password than the cached token's is checked against the
	// stored grant: it is wrong, or the account was connected again (by
	// imapwhy connect in another process) with a new one.
	// One refresh at a time per account and password: sessions that start
	// together wait for the first one's answer.
	v, err, _ := b.group.Do(u+"\x00"+hex.EncodeToString(check), func() (any, error) {
		return b.refresh(context.WithoutCancel(ctx), p, u, password, check)
	})
	if err != nil {
		return Token{}, err
	}
	return Token{Access: v.(string), Mechanism: mech}, nil
}

// check is the in-memory proof of a password for a cached token.
func (b *Bridge) check(user, password string) []byte {
	m := hmac.New(sha256.New, b.mac[:])
	io.WriteString(m, user+"\x00"+password)
	return m.Sum(nil)
}

// refresh opens the stored grant and trades the refresh token for an
// access token; a rotated refresh token is sealed again and stored.
func (b *Bridge) refresh(ctx context.Context, p *provider, user, password string, check []byte) (string, error) {
	b.mu.Lock()
	if c := b.cache[user]; c != nil && time.Now().Before(c.expires.Add(-b.opts.Margin)) && subtle.ConstantTimeCompare(c.check, check) == 1 {
		b.mu.Unlock()
		return c.access, nil
	}
	b.mu.Unlock()
	rec, err := b.opts.Store.Load(user)
	if err != nil {
		return "", err
	}
	g, k, err := rec.open(password)
	if err != nil {
		return "", err
	}
	defer clear(k)
	if rec.Provider != p.cfg.Name {
		// The account was connected with a provider the configuration no
		// longer gives it: its token is not sent to another one.
		return "", &GrantError{Failure: diagnose.GrantFailure{Error: "invalid_grant", Description: "connected with another provider"}}
	}
	conf, err := p.config(ctx, "")
	if err != nil {
		return "", &GrantError{Failure: diagnose.GrantFailure{Unreachable: true}}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := conf.TokenSource(p.ctx(ctx), &oauth2.Token{RefreshToken: g.RefreshToken}).Token()
	if err != nil {
		err = grantError(err)
		var ge *GrantError
		errors.As(err, &ge)
		b.opts.Logger.Warn().Str("event", "oauth_bridge_refresh_failed").Str("user", user).Str("provider", p.cfg.Name).
			Str("oauth_error", ge.Failure.Error).Bool("unreachable", ge.Failure.Unreachable).Msg("the provider refused or did not answer the token request")
		return "", err
	}
	if tok.RefreshToken != "" && tok.RefreshToken != g.RefreshToken {
		if err := rec.seal(k, grant{RefreshToken: tok.RefreshToken}); err == nil {
			_ = b.opts.Store.Save(rec)
		}
	}
	exp := tok.Expiry
	if exp.IsZero() {
		exp = time.Now().Add(time.Hour)
	}
	b.mu.Lock()
	b.cache[user] = &cached{access: tok.AccessToken, expires: exp, check: check}
	b.mu.Unlock()
	return tok.AccessToken, nil
}

// grantError turns a failed token request into a GrantError: the
// provider's error code and description, or unreachable.
func grantError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		f := diagnose.GrantFailure{Error: re.ErrorCode, Description: re.ErrorDescription}
		if f.Error == "" {
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(re.Body, &body) == nil {
				f.Error, f.Description = body.Error, body.Description
			}
		}
		if f.Error == "" && re.Response != nil && re.Response.StatusCode >= 500 {
			f.Unreachable = true
		}
		return &GrantError{Failure: f}
	}
	return &GrantError{Failure: diagnose.GrantFailure{Unreachable: true}}
}

// Forget drops what is kept for user: the cached access token and the
// stored grant.
func (b *Bridge) forget(user string) error {
	u := normal(user)
	b.mu.Lock()
	delete(b.cache, u)
	b.mu.Unlock()
	return b.opts.Store.Delete(u)
}

// Disconnect forgets user's account: the refresh token is revoked at the
// provider when it has a revocation endpoint and password opens it, and
// the stored grant is deleted either way.
func (b *Bridge) Disconnect(ctx context.Context, user, password string) error {
	p := b.provider(user)
	rec, err := b.opts.Store.Load(user)
	if err != nil {
		return err
	}
	revoked := false
	if p != nil && password != "" {
		if g, k, err := rec.open(password); err == nil {
			clear(k)
			revoked = p.revokeToken(ctx, g.RefreshToken)
		}
	}
	if err := b.forget(user); err != nil {
		return err
	}
	b.opts.Logger.Info().Str("event", "oauth_bridge_disconnected").Str("user", normal(user)).Bool("revoked", revoked).Msg("account disconnected from the OAuth bridge")
	return nil
}

// ctx carries the provider's HTTP client for package oauth2.
func (p *provider) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// config is the oauth2 configuration; redirect is the browser flow's
// redirect URI ("" for refreshes and the device flow).
func (p *provider) config(ctx context.Context, redirect string) (*oauth2.Config, error) {
	p.emu.Lock()
	if !p.found {
		// Discovery failed before: it is tried again.
		e, r, err := p.endpoints(ctx)
		if err != nil {
			p.emu.Unlock()
			return nil, err
		}
		p.endpoint, p.revoke, p.found = e, r, true
	}
	p.emu.Unlock()
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		switch p.cfg.Kind {
		case config.BridgeMicrosoft:
			scopes = []string{MicrosoftIMAPScope, "offline_access"}
		case config.BridgeGoogle:
			scopes = []string{GoogleMailScope}
		}
	}
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.secret, Endpoint: p.endpoint, RedirectURL: redirect, Scopes: scopes}, nil
}

// endpoints are the built-in ones, or the issuer's discovery document's.
func (p *provider) endpoints(ctx context.Context) (oauth2.Endpoint, string, error) {
	switch p.cfg.Kind {
	case config.BridgeMicrosoft:
		base := "https://login.microsoftonline.com/" + url.PathEscape(p.cfg.Tenant) + "/oauth2/v2.0/"
		return oauth2.Endpoint{AuthURL: base + "authorize", TokenURL: base + "token", DeviceAuthURL: base + "devicecode", AuthStyle: oauth2.AuthStyleInParams}, "", nil
	case config.BridgeGoogle:
		return oauth2.Endpoint{AuthURL: "https://accounts.google.com/o/oauth2/v2/auth", TokenURL: "https://oauth2.googleapis.com/token",
			DeviceAuthURL: "https://oauth2.googleapis.com/device/code", AuthStyle: oauth2.AuthStyleInParams}, "https://oauth2.googleapis.com/revoke", nil
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	u := strings.TrimSuffix(p.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return oauth2.Endpoint{}, "", err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return oauth2.Endpoint{}, "", fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer     string `json:"issuer"`
		Auth       string `json:"authorization_endpoint"`
		Token      string `json:"token_endpoint"`
		Device     string `json:"device_authorization_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	if resp.StatusCode != http.StatusOK {
		return oauth2.Endpoint{}, "", fmt.Errorf("discovery: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return oauth2.Endpoint{}, "", fmt.Errorf("discovery: %w", err)
	}
	if strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(p.cfg.Issuer, "/") || d.Token == "" {
		return oauth2.Endpoint{}, "", errors.New("discovery: issuer or token endpoint does not match")
	}
	style := oauth2.AuthStyleInHeader
	if p.secret == "" {
		style = oauth2.AuthStyleInParams
	}
	return oauth2.Endpoint{AuthURL: d.Auth, TokenURL: d.Token, DeviceAuthURL: d.Device, AuthStyle: style}, d.Revocation, nil
}

// revokeToken asks the provider to revoke a refresh token (RFC 7009) and
// reports whether it said yes; failures are otherwise ignored: the grant
// is forgotten here anyway.
func (p *provider) revokeToken(ctx context.Context, rt string) bool {
	if _, err := p.config(ctx, ""); err != nil || p.revoke == "" {
		return false
	}
	form := url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}
	if p.secret == "" {
		form.Set("client_id", p.cfg.ClientID)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revoke, strings.NewReader(form.Encode()))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.secret != "" {
		req.SetBasicAuth(url.QueryEscape(p.cfg.ClientID), url.QueryEscape(p.secret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
