package oauthtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the provider's in-memory database: users, clients, pending
// authorization requests and issued access tokens. The protocol itself
// (authorization and token endpoints, JWT signing, key set, discovery,
// introspection with client authentication) is the op package's.
type storage struct {
	key      *rsa.PrivateKey
	keyID    string
	users    map[string]*user // by subject
	clientMu sync.RWMutex
	clients  map[string]*client // by client ID
	mu       sync.Mutex
	refresh  map[string]*refreshToken                // by the token itself
	devices  map[string]*op.DeviceAuthorizationState // by device code
	userCode map[string]string                       // user code -> device code
	// refreshes counts refresh_token grants served.
	refreshes int
	requests  map[string]*authRequest // by ID
	codes     map[string]string       // code -> request ID
	tokens    map[string]*token       // by ID (the JWT's jti)
	pending   map[string]issueOptions // state -> what the next token must look like
}

// issueOptions are the per-request settings Token registers under the
// authorization request's state.
type issueOptions struct {
	audience []string
	lifetime time.Duration
}

type user struct {
	subject  string
	name     string // preferred_username and email
	password string
}

type token struct {
	id       string
	clientID string
	subject  string
	audience []string
	scopes   []string
	expires  time.Time
}

func newStorage(users []User, clients []*client) (*storage, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &storage{
		key:      key,
		keyID:    randomID(),
		users:    map[string]*user{},
		clients:  map[string]*client{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		tokens:   map[string]*token{},
		pending:  map[string]issueOptions{},
		refresh:  map[string]*refreshToken{},
		devices:  map[string]*op.DeviceAuthorizationState{},
		userCode: map[string]string{},
	}
	for _, u := range users {
		sub := u.Subject
		if sub == "" {
			sub = "sub-" + u.Name
		}
		s.users[sub] = &user{subject: sub, name: u.Name, password: u.Password}
	}
	for _, c := range clients {
		s.clients[c.id] = c
	}
	return s, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *storage) userByName(name string) *user {
	for _, u := range s.users {
		if strings.EqualFold(u.name, name) {
			return u
		}
	}
	return nil
}

// login marks the authorization request id as done by the user with this
// name and password (the login form's POST).
func (s *storage) login(id, name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("unknown authorization request")
	}
	u := s.userByName(name)
	if u == nil || u.password != password {
		return errors.New("wrong user name or password")
	}
	req.subject = u.subject
	req.authTime = time.Now()
	req.done = true
	return nil
}

// CreateAuthRequest stores a validated authorization request.
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	opts, ok := s.pending[r.State]
	if ok {
		delete(s.pending, r.State)
	} else {
		// An app's own authorization request: a token for the mail
		// server, with the client's lifetime.
		c, err := s.client(r.ClientID)
		if err != nil || !c.open {
			return nil, oidc.ErrInvalidRequest().WithDescription("unknown state")
		}
		opts = issueOptions{audience: []string{ResourceID}}
	}
	req := &authRequest{
		id:           randomID(),
		clientID:     r.ClientID,
		redirectURI:  r.RedirectURI,
		state:        r.State,
		nonce:        r.Nonce,
		scopes:       r.Scopes,
		responseType: r.ResponseType,
		responseMode: r.ResponseMode,
		opts:         opts,
	}
	if r.CodeChallenge != "" {
		req.codeChallenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.requests[req.id] = req
	return req, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return nil, errors.New("authorization request not found")
	}
	return req, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// CreateAccessToken records an access token; the op package signs it with
// the expiry returned here.
func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.newToken(r)
	if err != nil {
		return "", time.Time{}, err
	}
	return t.id, t.expires, nil
}

// newToken records an access token for r; s.mu is held.
func (s *storage) newToken(r op.TokenRequest) (*token, error) {
	t := &token{id: randomID(), subject: r.GetSubject(), audience: r.GetAudience(), scopes: r.GetScopes()}
	var lifetime time.Duration
	switch req := r.(type) {
	case *authRequest:
		t.clientID, lifetime = req.clientID, req.opts.lifetime
	case *refreshRequest:
		t.clientID = req.clientID
	case *op.DeviceAuthorizationState:
		t.clientID = req.ClientID
		t.audience = []string{ResourceID}
	default:
		return nil, fmt.Errorf("grant %T is not offered", r)
	}
	if lifetime == 0 {
		if c, err := s.client(t.clientID); err == nil {
			lifetime = c.lifetime()
		}
	}
	if lifetime == 0 {
		lifetime = time.Hour
	}
	t.expires = time.Now().Add(lifetime)
	s.tokens[t.id] = t
	return t, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token
// (offline_access); a refresh grant rotates the refresh token: the one
// used is gone.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.newToken(r)
	if err != nil {
		return "", "", time.Time{}, err
	}
	authTime := time.Now()
	if current != "" {
		old, ok := s.refresh[current]
		if !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refresh, current)
		authTime = old.authTime
		s.refreshes++
	}
	rt := &refreshToken{token: "rt-" + randomID() + randomID(), clientID: t.clientID, subject: t.subject,
		audience: t.audience, scopes: t.scopes, authTime: authTime}
	s.refresh[rt.token] = rt
	return t.id, rt.token, t.expires, nil
}

// TokenRequestByRefreshToken finds what a refresh token was issued for.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[rt]
	if !ok {
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshRequest{refreshToken: *r}, nil
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, idOrToken, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, idOrToken)
	delete(s.refresh, idOrToken)
	return nil
}

// GetRefreshTokenInfo: a refresh token is its own ID.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, rt string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[rt]
	if !ok || r.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return r.subject, rt, nil
}

// revokeUser forgets every refresh token of the user, as an administrator
// revoking the user's sessions does.
func (s *storage) revokeUser(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userByName(name)
	n := 0
	for k, r := range s.refresh {
		if u != nil && r.subject == u.subject {
			delete(s.refresh, k)
			n++
		}
	}
	return n
}

// StoreDeviceAuthorization records a device authorization request (RFC
// 8628 section 3.2).
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.userCode[userCode]; ok {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}
	s.userCode[userCode] = deviceCode
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[deviceCode]
	if !ok || d.ClientID != clientID {
		return nil, errors.New("unknown device code")
	}
	c := *d
	return &c, nil
}

// approveDevice is the user entering the user code and signing in on the
// device page.
func (s *storage) approveDevice(userCode, name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dc, ok := s.userCode[userCode]
	if !ok {
		return errors.New("unknown user code")
	}
	u := s.userByName(name)
	if u == nil || u.password != password {
		return errors.New("wrong user name or password")
	}
	d := s.devices[dc]
	d.Subject, d.AuthTime, d.AMR, d.Done = u.subject, time.Now(), []string{"pwd"}, true
	delete(s.userCode, userCode)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s}}, nil
}

func (s *storage) client(id string) (*client, error) {
	s.clientMu.RLock()
	defer s.clientMu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return c, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	return s.client(id)
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, err := s.client(id)
	if err != nil || c.secret == "" || c.secret != secret {
		return errors.New("wrong client ID or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, r.GetSubject(), scopes)
}

func (s *storage) addClient(c *client) {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	s.clients[c.id] = c
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("token is invalid or has expired")
	}
	return s.setUserinfo(info, t.subject, t.scopes)
}

func (s *storage) setUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	u, ok := s.users[subject]
	if !ok {
		return errors.New("user not found")
	}
	info.Subject = u.subject
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.name
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.name
		info.EmailVerified = true
	}
	return nil
}

// SetIntrospectionFromToken answers a resource server's introspection
// (RFC 7662): active only while the token has not expired and when the
// asking client is one of the token's audiences.
func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok {
		return errors.New("unknown token")
	}
	if time.Now().After(t.expires) {
		return errors.New("token has expired")
	}
	if !slices.Contains(t.audience, clientID) {
		return errors.New("token is not meant for this client")
	}
	u, ok := s.users[t.subject]
	if !ok {
		return errors.New("user not found")
	}
	r.Scope = t.scopes
	r.ClientID = t.clientID
	r.Subject = t.subject
	r.Audience = t.audience
	r.Expiration = oidc.FromTime(t.expires)
	r.Username = u.name
	r.Email = u.name
	r.TokenType = oidc.BearerToken
	return nil
}

// GetPrivateClaimsFromRequest adds to a JWT access token what a mail
// server wants to read from it: the scopes and the user's name.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, r op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{"scope": strings.Join(r.GetScopes(), " ")}
	if u, ok := s.users[r.GetSubject()]; ok {
		claims["preferred_username"] = u.name
		claims["email"] = u.name
	}
	return claims, nil
}

func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, subject, _ string, scopes []string) (map[string]any, error) {
	return s.GetPrivateClaimsFromRequest(ctx, &oidc.JWTTokenRequest{Subject: subject, Scopes: scopes}, scopes)
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grants are not offered")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not offered")
}

func (s *storage) Health(context.Context) error { return nil }

type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.s.key }
func (k signingKey) ID() string                                  { return k.s.keyID }

type publicKey struct{ s *storage }

func (k publicKey) ID() string                         { return k.s.keyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.s.key.PublicKey }

// authRequest is one authorization request, from /authorize to the code
// exchange.
type authRequest struct {
	id            string
	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	opts          issueOptions

	// set by the login
	subject  string
	authTime time.Time
	done     bool
}

func (r *authRequest) GetID() string                         { return r.id }
func (r *authRequest) GetACR() string                        { return "" }
func (r *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (r *authRequest) GetAuthTime() time.Time                { return r.authTime }
func (r *authRequest) GetClientID() string                   { return r.clientID }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.codeChallenge }
func (r *authRequest) GetNonce() string                      { return r.nonce }
func (r *authRequest) GetRedirectURI() string                { return r.redirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType    { return r.responseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode    { return r.responseMode }
func (r *authRequest) GetScopes() []string                   { return r.scopes }
func (r *authRequest) GetState() string                      { return r.state }
func (r *authRequest) GetSubject() string                    { return r.subject }
func (r *authRequest) Done() bool                            { return r.done }

// GetAudience is the resource the token is for, chosen when it was asked
// for (Token's TokenRequest.Audience).
func (r *authRequest) GetAudience() []string { return r.opts.audience }

// client is a registered OAuth client: a mail app that asks for tokens, or
// the mail server that introspects them.
type client struct {
	id          string
	secret      string
	redirectURI string
	tokenType   op.AccessTokenType
	grants      []oidc.GrantType
	// open: the client starts its own authorization requests (Token
	// does not register them first).
	open bool
	// life is the access tokens' lifetime in nanoseconds; 0: an hour.
	life atomic.Int64
}

func (c *client) lifetime() time.Duration { return time.Duration(c.life.Load()) }

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return []string{c.redirectURI} }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return c.grants }
func (c *client) LoginURL(id string) string            { return loginPath + "?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return c.tokenType }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// refreshToken is an issued refresh token and what it was issued for.
type refreshToken struct {
	token    string
	clientID string
	subject  string
	audience []string
	scopes   []string
	authTime time.Time
}

// refreshRequest is a refresh grant's request: what the refresh token was
// issued for.
type refreshRequest struct{ refreshToken }

func (r *refreshRequest) GetAMR() []string                 { return []string{"pwd"} }
func (r *refreshRequest) GetAudience() []string            { return r.audience }
func (r *refreshRequest) GetAuthTime() time.Time           { return r.authTime }
func (r *refreshRequest) GetClientID() string              { return r.clientID }
func (r *refreshRequest) GetScopes() []string              { return r.scopes }
func (r *refreshRequest) GetSubject() string               { return r.subject }
func (r *refreshRequest) SetCurrentScopes(scopes []string) { r.scopes = scopes }
