// Package oauthtest runs a real OAuth 2.0 / OpenID Connect provider for
// tests: zitadel/oidc's op package (authorization code flow, RS256-signed
// JWT access tokens, key set, discovery, RFC 7662 introspection with client
// authentication) over HTTPS on a free loopback port, with an in-memory
// database of users and clients. It stops when the test ends.
//
//	p := oauthtest.Start(t, oauthtest.Options{})
//	tok := p.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword})
//
// Token signs in the way a mail app does (authorization request, the login
// form, the redirect with a code, the code exchange) and returns the access
// token. Its claims: iss, sub, aud, exp, iat, nbf, jti, client_id, scope,
// preferred_username and email (the user's mail address).
//
// A mail server checks tokens by introspection as the client ResourceID
// with ResourceSecret: the provider answers active only while the token has
// not expired and when ResourceID is one of its audiences; the answer
// carries scope and username. Server.Dovecot is the dovecottest
// Options.OAuth2 that sets Dovecot's oauth2 passdb up that way.
package oauthtest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/text/language"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
)

// The default users, clients and scopes.
const (
	Alice         = "alice@example.test"
	AlicePassword = "alice-oauth-pass"
	Bob           = "bob@example.test"
	BobPassword   = "bob-oauth-pass"

	// MailScope is the scope a token needs for the mail server.
	MailScope = "imap"
	// ResourceID is the mail server's client ID: the audience of tokens
	// meant for it, and who it introspects as.
	ResourceID     = "imap-server"
	ResourceSecret = "imap-server-secret"
	// OtherAudience is the audience of a token meant for another service.
	OtherAudience = "https://api.example.test"

	appID       = "mailapp"
	appSecret   = "mailapp-secret"
	opaqueAppID = "mailapp-opaque"
	// appRedirect is where the provider sends the browser back with the
	// code; nothing is dialled there, Token stops at the redirect.
	appRedirect = "https://127.0.0.1/oauth-callback"

	loginPath  = "/login"
	devicePath = "/device"
)

// DefaultScopes are what Token asks for when TokenRequest.Scopes is nil.
var DefaultScopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, MailScope}

// User is a user of the provider. Name is the preferred_username and the
// email; Subject defaults to "sub-" + Name.
type User struct {
	Name, Password, Subject string
}

// Options change the provider. The zero value is fine.
type Options struct {
	// Users replace the default users (Alice and Bob).
	Users []User
}

// Server is a running provider.
type Server struct {
	// Issuer is https://127.0.0.1:port: the iss of its tokens and where
	// /.well-known/openid-configuration is.
	Issuer string
	// IntrospectionURL is the RFC 7662 endpoint.
	IntrospectionURL string
	// CAPEM is the PEM certificate its HTTPS is served with (self-signed,
	// for 127.0.0.1); CAPool holds it.
	CAPEM  []byte
	CAPool *x509.CertPool

	srv   *httptest.Server
	store *storage
	// tokenCalls counts requests to the token endpoint.
	tokenCalls atomic.Int64
}

// Start starts the provider; it is stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	users := opts.Users
	if users == nil {
		users = []User{{Name: Alice, Password: AlicePassword}, {Name: Bob, Password: BobPassword}}
	}
	code := []oidc.GrantType{oidc.GrantTypeCode}
	store, err := newStorage(users, []*client{
		{id: appID, secret: appSecret, redirectURI: appRedirect, tokenType: op.AccessTokenTypeJWT, grants: code},
		{id: opaqueAppID, secret: appSecret, redirectURI: appRedirect, tokenType: op.AccessTokenTypeBearer, grants: code},
		{id: ResourceID, secret: ResourceSecret, redirectURI: appRedirect, tokenType: op.AccessTokenTypeJWT},
	})
	if err != nil {
		t.Fatalf("oauthtest: %v", err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	issuer := "https://" + srv.Listener.Addr().String()
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:             sha256.Sum256([]byte(store.keyID)),
		CodeMethodS256:        true,
		GrantTypeRefreshToken: true,
		AuthMethodPost:        true,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     5 * time.Minute,
			PollInterval: time.Second,
			UserFormPath: devicePath,
			UserCode:     op.UserCodeBase20,
		},
	}, store, op.StaticIssuer(issuer))
	if err != nil {
		srv.Close()
		t.Fatalf("oauthtest: %v", err)
	}
	mux.Handle(loginPath, op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(loginHandler(store, op.AuthCallbackURL(provider))))
	mux.Handle(devicePath, deviceHandler(store))
	s := &Server{store: store, srv: srv}
	tokenPath := provider.TokenEndpoint().Relative()
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			s.tokenCalls.Add(1)
		}
		provider.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cert := srv.Certificate()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	*s = Server{
		Issuer:           issuer,
		IntrospectionURL: provider.IntrospectionEndpoint().Absolute(issuer),
		CAPEM:            pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		CAPool:           pool,
		srv:              srv,
		store:            store,
	}
	return s
}

// deviceHandler is the provider's device page (RFC 8628 section 3.3):
// the user enters the user code and signs in.
func deviceHandler(store *storage) http.Handler {
	return signInPage("user_code", `<input name="user_code" value=%q>`, store.approveDevice,
		func(w http.ResponseWriter, _ *http.Request, _ string) {
			fmt.Fprint(w, "Device approved. You can close this page.")
		})
}

// signInPage is a page where the user signs in for the request the form
// field key names (input shows it, a format of its value): a GET shows the
// form, a POST checks the user name and password with signIn, then done
// answers.
func signInPage(key, input string, signIn func(value, user, password string) error, done func(w http.ResponseWriter, r *http.Request, value string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		v := r.Form.Get(key)
		if r.Method != http.MethodPost {
			fmt.Fprintf(w, `<form method="post">`+input+`<input name="username"><input type="password" name="password"></form>`, v)
			return
		}
		if err := signIn(v, r.Form.Get("username"), r.Form.Get("password")); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		done(w, r, v)
	})
}

// Client is an app registered with the provider that asks for its own
// tokens: the authorization code flow (with PKCE) to RedirectURI, the
// device flow, refresh tokens (offline_access), revocation. Its tokens
// are for the mail server (audience ResourceID).
type Client struct {
	ID string
	// Secret: "" for a public client.
	Secret      string
	RedirectURI string
}

// AddClient registers c.
func (s *Server) AddClient(c Client) {
	s.store.addClient(&client{
		id: c.ID, secret: c.Secret, redirectURI: c.RedirectURI, tokenType: op.AccessTokenTypeJWT, open: true,
		grants: []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode},
	})
}

// SetLifetime changes the lifetime of the access tokens issued to client
// id from now on (0: an hour).
func (s *Server) SetLifetime(id string, d time.Duration) {
	if c, err := s.store.client(id); err == nil {
		c.life.Store(int64(d))
	}
}

// RevokeUser forgets every refresh token of the user named name, as an
// administrator ending the user's sessions does; it returns how many.
func (s *Server) RevokeUser(name string) int { return s.store.revokeUser(name) }

// Refreshes is how many refresh_token grants the provider has served.
func (s *Server) Refreshes() int {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return s.store.refreshes
}

// TokenCalls is how many requests reached the token endpoint (any grant,
// answered or refused).
func (s *Server) TokenCalls() int64 { return s.tokenCalls.Load() }

// RefreshTokens is how many refresh tokens are valid now.
func (s *Server) RefreshTokens() int {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	return len(s.store.refresh)
}

// ApproveDevice posts the device page's form as the user would: the user
// code shown by the app, then the user's name and password.
func (s *Server) ApproveDevice(ctx context.Context, userCode, user, password string) error {
	form := url.Values{"user_code": {userCode}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Issuer+devicePath, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = do(s.srv.Client(), req)
	return err
}

// Browser is an HTTP client that trusts the provider's certificate and
// the PEM certificates given (the app's pages), for tests that walk the
// pages as a browser does; it does not follow redirects.
func (s *Server) Browser(extraPEM ...[]byte) *http.Client {
	pool := s.CAPool.Clone()
	for _, p := range extraPEM {
		pool.AppendCertsFromPEM(p)
	}
	tr := s.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Login posts the provider's login form for the authorization request
// whose login page is loginURL (where /authorize redirected the browser)
// and returns where the provider sends the browser next (the app's
// redirect URI with the code and state).
func (s *Server) Login(ctx context.Context, browser *http.Client, loginURL, user, password string) (*url.URL, error) {
	u, err := url.Parse(loginURL)
	if err != nil {
		return nil, err
	}
	form := url.Values{"id": {u.Query().Get("id")}, "username": {user}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Issuer+loginPath, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := do(browser, req)
	if err != nil {
		return nil, err
	}
	// The provider's callback redirects once more, to the app.
	for i := 0; i < 5 && resp.StatusCode/100 == 3; i++ {
		loc, err := resp.Location()
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(loc.String(), s.Issuer) {
			return loc, nil
		}
		if resp, err = get(ctx, browser, loc.String()); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("login: no redirect to the app (HTTP %d)", resp.StatusCode)
}

// loginHandler is the provider's login page: the form a browser posts
// the user name and password to.
func loginHandler(store *storage, callback func(context.Context, string) string) http.Handler {
	return signInPage("id", `<input type="hidden" name="id" value=%q>`, store.login,
		func(w http.ResponseWriter, r *http.Request, id string) {
			http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
		})
}

// TokenRequest is what Token asks for.
type TokenRequest struct {
	// User and Password sign in on the login form.
	User, Password string
	// Scopes default to DefaultScopes.
	Scopes []string
	// Audience defaults to ResourceID (a token for the mail server).
	Audience []string
	// Lifetime defaults to an hour; a negative one gives a token that
	// expired that long ago.
	Lifetime time.Duration
	// Opaque asks for an opaque (encrypted, not JWT) access token.
	Opaque bool
}

// Token signs in and returns the access token; failures fail t.
func (s *Server) Token(t testing.TB, r TokenRequest) string {
	t.Helper()
	tok, err := s.FetchToken(context.Background(), r)
	if err != nil {
		t.Fatalf("oauthtest: %v", err)
	}
	return tok
}

// FetchToken is Token with an error instead of a test.
func (s *Server) FetchToken(ctx context.Context, r TokenRequest) (string, error) {
	opts := issueOptions{audience: r.Audience, lifetime: r.Lifetime}
	if opts.audience == nil {
		opts.audience = []string{ResourceID}
	}
	if opts.lifetime == 0 {
		opts.lifetime = time.Hour
	}
	scopes := r.Scopes
	if scopes == nil {
		scopes = DefaultScopes
	}
	clientID := appID
	if r.Opaque {
		clientID = opaqueAppID
	}
	state := randomID()
	s.store.mu.Lock()
	s.store.pending[state] = opts
	s.store.mu.Unlock()

	conf := &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: appSecret,
		RedirectURL:  appRedirect,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   s.Issuer + "/authorize",
			TokenURL:  s.Issuer + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
	browser := &http.Client{
		Transport: s.srv.Client().Transport,
		// Follow the provider's redirects, stop at the app's.
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), appRedirect) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	verifier := oauth2.GenerateVerifier()
	resp, err := get(ctx, browser, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		return "", fmt.Errorf("authorization request: %w", err)
	}
	if resp.Request.URL.Path != loginPath {
		return "", fmt.Errorf("authorization request ended at %s, not the login page", resp.Request.URL.Path)
	}
	form := url.Values{
		"id":       {resp.Request.URL.Query().Get("id")},
		"username": {r.User},
		"password": {r.Password},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Issuer+loginPath, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = do(browser, req)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), appRedirect) {
		return "", fmt.Errorf("login: no redirect to the app (HTTP %d)", resp.StatusCode)
	}
	if e := loc.Query().Get("error"); e != "" {
		return "", fmt.Errorf("authorization: %s: %s", e, loc.Query().Get("error_description"))
	}
	if loc.Query().Get("state") != state {
		return "", errors.New("authorization: state changed")
	}
	return s.exchange(ctx, conf, loc.Query().Get("code"), verifier)
}

// exchange trades the code for the access token (RFC 6749 4.1.3). It is
// not oauth2.Config.Exchange because a token that expired on issue has a
// negative expires_in, which that cannot parse.
func (s *Server) exchange(ctx context.Context, conf *oauth2.Config, code, verifier string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {conf.RedirectURL},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(conf.ClientID), url.QueryEscape(conf.ClientSecret))
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		return "", fmt.Errorf("code exchange: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil {
		return "", fmt.Errorf("code exchange: HTTP %d: %w", resp.StatusCode, err)
	}
	if body.AccessToken == "" {
		return "", fmt.Errorf("code exchange: HTTP %d: %s: %s", resp.StatusCode, body.Error, body.Description)
	}
	return body.AccessToken, nil
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return do(c, req)
}

// do sends req and reads the body away; a status of 400 or more is an error.
func do(c *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

// Dovecot is the dovecottest setting for a Dovecot that checks this
// provider's tokens: introspection as ResourceID, MailScope required.
func (s *Server) Dovecot() *dovecottest.OAuth2 {
	return &dovecottest.OAuth2{
		IntrospectionURL: s.IntrospectionURL,
		ClientID:         ResourceID,
		ClientSecret:     ResourceSecret,
		CAPEM:            s.CAPEM,
		Scope:            MailScope,
	}
}

// StartWithDovecot starts the provider, then a Dovecot whose oauth2 passdb
// checks its tokens (opts set everything else of Dovecot's), and returns
// both.
func StartWithDovecot(t testing.TB, opts dovecottest.Options) (*Server, *dovecottest.Server) {
	t.Helper()
	op := Start(t, Options{})
	opts.OAuth2 = op.Dovecot()
	return op, dovecottest.Start(t, opts)
}
