package diagnose

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/imapwhy/imapwhy/internal/oauthsasl"
)

// OAuth causes: a login with XOAUTH2 or OAUTHBEARER that the provider
// refused.
const (
	CauseOAuthTokenExpired      Cause = "oauth.token_expired"
	CauseOAuthWrongAudience     Cause = "oauth.wrong_audience"
	CauseOAuthScopeMissing      Cause = "oauth.scope_missing"
	CauseOAuthUserMismatch      Cause = "oauth.user_mismatch"
	CauseOAuthMailboxNotEnabled Cause = "oauth.mailbox_not_enabled"
	CauseOAuthTokenRejected     Cause = "oauth.token_rejected"
)

// OAuth bridge causes: a password login that imapwhy signs in upstream
// with the account's stored OAuth grant, and the provider's token endpoint
// refused or could not be reached.
const (
	// The refresh token was revoked or has expired (invalid_grant): the
	// person must connect the account again.
	CauseOAuthReconnectRequired Cause = "oauth.reconnect_required"
	// The provider wants consent, or an administrator's approval, before
	// it issues tokens for mail.
	CauseOAuthConsentRequired Cause = "oauth.consent_required"
	// The provider's token endpoint did not answer.
	CauseOAuthProviderUnreachable Cause = "oauth.provider_unreachable"
)

// OAuth holds the facts of an OAuth login (XOAUTH2 or OAUTHBEARER). It
// never holds the token: Token has only what the token says about itself.
type OAuth struct {
	Mechanism string    // the mechanism used upstream, "XOAUTH2" or "OAUTHBEARER"
	User      string    // the user name in the SASL message
	At        time.Time // when the login was tried: Token.Expires is compared with it
	Token     TokenFacts
	// Challenge is the provider's decoded error challenge, nil if none came.
	Challenge *OAuthError
	// WantAudiences and WantScopes are what the server accepts, when the
	// operator said so; empty: the provider's own (known for Gmail and
	// Microsoft), or unknown.
	WantAudiences []string
	WantScopes    []string
}

// TokenFacts are the claims of a JWT access token, read without checking
// its signature (imapwhy only explains; the provider decides), or only
// the token's form when it is opaque. Of these, only Audiences, Scopes,
// Roles, Expires and Tenant may be logged.
type TokenFacts struct {
	Form      string    // TokenJWT, TokenGoogle (ya29.), TokenOpaque, or "" when there was no token
	Audiences []string  // aud
	Scopes    []string  // scp (Microsoft) or scope, split on spaces
	Roles     []string  // roles: application permissions (Microsoft app-only tokens)
	Expires   time.Time // exp; zero when unknown
	User      string    // upn, preferred_username, email or unique_name: whose token it is
	Tenant    string    // tid (Microsoft's directory)
}

// Token forms.
const (
	TokenJWT    = "jwt"
	TokenGoogle = "google" // Google's opaque access tokens, "ya29."
	TokenOpaque = "opaque"
)

// OAuthError is the JSON a provider sends as the error challenge of a
// refused OAuth login (RFC 7628 3.2.2; Gmail's XOAUTH2 sends the same
// shape, e.g. {"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}).
type OAuthError struct {
	Status              string `json:"status"`
	Schemes             string `json:"schemes,omitempty"`
	Scope               string `json:"scope,omitempty"`
	OpenIDConfiguration string `json:"openid-configuration,omitempty"`
}

// maxToken bounds what ReadToken decodes.
const maxToken = 16 << 10

// ReadToken reads what an access token says about itself. A JWT's
// payload is decoded without checking the signature; anything else is
// opaque. The token itself is not kept.
func ReadToken(token string) TokenFacts {
	if token == "" {
		return TokenFacts{}
	}
	if strings.HasPrefix(token, "ya29.") {
		return TokenFacts{Form: TokenGoogle}
	}
	opaque := TokenFacts{Form: TokenOpaque}
	parts := strings.Split(token, ".")
	if len(token) > maxToken || len(parts) != 3 {
		return opaque
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return opaque
	}
	var c struct {
		Aud               json.RawMessage `json:"aud"`
		Scp               json.RawMessage `json:"scp"`
		Scope             json.RawMessage `json:"scope"`
		Roles             json.RawMessage `json:"roles"`
		Exp               json.Number     `json:"exp"`
		UPN               string          `json:"upn"`
		PreferredUsername string          `json:"preferred_username"`
		Email             string          `json:"email"`
		UniqueName        string          `json:"unique_name"`
		Tid               string          `json:"tid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return opaque
	}
	f := TokenFacts{
		Form:      TokenJWT,
		Audiences: stringList(c.Aud),
		Scopes:    stringList(c.Scp),
		Roles:     stringList(c.Roles),
		Tenant:    clean(c.Tid),
	}
	if len(f.Scopes) == 0 {
		f.Scopes = stringList(c.Scope)
	}
	if n, err := c.Exp.Int64(); err == nil && n > 0 {
		f.Expires = time.Unix(n, 0).UTC()
	} else if x, err := c.Exp.Float64(); err == nil && x > 0 {
		f.Expires = time.Unix(int64(x), 0).UTC()
	}
	for _, u := range []string{c.UPN, c.PreferredUsername, c.Email, c.UniqueName} {
		if u = clean(u); u != "" {
			f.User = u
			break
		}
	}
	return f
}

// stringList reads a claim that is a string (space-separated) or an
// array of strings.
func stringList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return cleanAll(strings.Fields(one))
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		var out []string
		for _, m := range many {
			out = append(out, cleanAll(strings.Fields(m))...)
		}
		return out
	}
	return nil
}

// clean bounds a claim value for logs and texts.
func clean(s string) string { return sanitizeLine(s, 200) }

func cleanAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if c := clean(s); c != "" {
			out = append(out, c)
		}
		if len(out) == 50 {
			break
		}
	}
	return out
}

// ParseOAuthError reads an error challenge (already base64-decoded).
func ParseOAuthError(challenge []byte) (*OAuthError, bool) {
	var e OAuthError
	if len(challenge) > 4096 || json.Unmarshal(challenge, &e) != nil || e.Status == "" {
		return nil, false
	}
	e.Status, e.Schemes, e.Scope = clean(e.Status), clean(e.Schemes), clean(e.Scope)
	e.OpenIDConfiguration = clean(e.OpenIDConfiguration)
	return &e, true
}

// oauthProvider is what a provider's mail server wants of a token, and
// where its help for OAuth is.
type oauthProvider struct {
	audiences []string // aud values of tokens for its mail server
	scopes    []string // delegated scopes that allow IMAP (any one)
	roles     []string // application permissions that allow IMAP (any one)
	help      string   // how to get a token for IMAP
	mailbox   string   // how an admin enables IMAP for a mailbox
}

var (
	googleOAuth = oauthProvider{
		scopes: []string{"https://mail.google.com/"},
		help:   "https://developers.google.com/gmail/imap/xoauth2-protocol",
	}
	microsoftOAuth = oauthProvider{
		audiences: []string{"https://outlook.office.com", "https://outlook.office365.com", "00000002-0000-0ff1-ce00-000000000000"},
		scopes:    []string{"IMAP.AccessAsUser.All"},
		roles:     []string{"IMAP.AccessAsApp"},
		help:      "https://learn.microsoft.com/en-us/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth",
		mailbox:   "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/pop3-and-imap4/enable-or-disable-pop3-or-imap4-access",
	}
	oauthProviders = map[string]oauthProvider{
		"gmail":            googleOAuth,
		"google_workspace": googleOAuth,
		"microsoft365":     microsoftOAuth,
		"outlook":          microsoftOAuth,
	}
)

// oauthNotConnected is Microsoft's text for a token it accepted for a
// mailbox it cannot open.
const oauthNotConnected = "authenticated but not connected"

// oauth explains a refused OAuth login from the provider's texts and
// error challenge and the token's own claims. Temporary codes
// (UNAVAILABLE, LIMIT...) are left to the code layer.
func (ev *evidence) oauth() (verdict, bool) {
	a := ev.o.OAuth
	if a == nil {
		if _, ok := oauthsasl.Is(ev.o.Mechanism); !ok {
			return verdict{}, false
		}
		// An OAuth login of which only the mechanism is known.
		a = &OAuth{Mechanism: ev.o.Mechanism}
	}
	r := ev.reply
	if r == nil || r.Status == "OK" {
		return verdict{}, false
	}
	for _, t := range ev.texts {
		if strings.Contains(strings.ToLower(t), oauthNotConnected) {
			// After the token was accepted: the mailbox.
			return verdict{cause: CauseOAuthMailboxNotEnabled, confidence: High}, true
		}
	}
	if ev.o.Phase == PhaseAfterLogin {
		return verdict{}, false
	}
	if r.Code != "" && r.Code != codeAuthenticationFailed && r.Code != codeAuthorizationFailed && r.Code != "ALERT" {
		return verdict{}, false
	}
	want := ev.oauthWants()
	tok := a.Token
	if !tok.Expires.IsZero() && !a.At.IsZero() && !tok.Expires.After(a.At) {
		return verdict{cause: CauseOAuthTokenExpired, confidence: High}, true
	}
	if len(want.audiences) > 0 && len(tok.Audiences) > 0 && !anyAudience(tok.Audiences, want.audiences) {
		return verdict{cause: CauseOAuthWrongAudience, confidence: High}, true
	}
	if c := a.Challenge; c != nil && (c.Status == "insufficient_scope" || c.Status == "403") {
		return verdict{cause: CauseOAuthScopeMissing, confidence: High}, true
	}
	hasScopes := len(tok.Scopes) > 0 || len(tok.Roles) > 0
	if hasScopes && (len(want.scopes) > 0 || len(want.roles) > 0) &&
		!anyScope(tok.Scopes, want.scopes) && !anyScope(tok.Roles, want.roles) {
		return verdict{cause: CauseOAuthScopeMissing, confidence: High}, true
	}
	if tok.User != "" && a.User != "" && !strings.EqualFold(tok.User, a.User) {
		return verdict{cause: CauseOAuthUserMismatch, confidence: High}, true
	}
	if tok.Form == TokenJWT && ev.rec.provider != nil && oauthProviders[ev.rec.provider.primary().ID].mailbox != "" {
		// Microsoft answers "AUTHENTICATE failed." alike for everything;
		// with a token that is in date, for the mail server, with the
		// scope and for this user, what is left is the mailbox.
		return verdict{cause: CauseOAuthMailboxNotEnabled, confidence: Medium, alternative: CauseOAuthTokenRejected}, true
	}
	v := verdict{cause: CauseOAuthTokenRejected, confidence: Low}
	if a.Challenge != nil || ev.rec.provider != nil {
		v.confidence = Medium
	}
	if tok.Form != TokenJWT {
		// Nothing to read in an opaque token; an expired one is the
		// usual reason.
		v.alternative = CauseOAuthTokenExpired
	}
	return v, true
}

// oauthWants is what the server wants of a token: the operator's word,
// else the recognised provider's.
func (ev *evidence) oauthWants() oauthProvider {
	var w oauthProvider
	if a := ev.o.OAuth; a != nil {
		w.audiences, w.scopes = a.WantAudiences, a.WantScopes
	}
	if len(w.audiences) > 0 || len(w.scopes) > 0 {
		return w
	}
	if p := ev.rec.provider; p != nil {
		return oauthProviders[p.primary().ID]
	}
	return w
}

func anyAudience(have, want []string) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimRight(s, "/")) }
	return slices.ContainsFunc(have, func(h string) bool {
		return slices.ContainsFunc(want, func(w string) bool { return norm(h) == norm(w) })
	})
}

// anyScope: one of have is one of want, alone or after a resource
// ("https://outlook.office.com/IMAP.AccessAsUser.All").
func anyScope(have, want []string) bool {
	return slices.ContainsFunc(have, func(h string) bool {
		return slices.ContainsFunc(want, func(w string) bool {
			return strings.EqualFold(h, w) || strings.HasSuffix(strings.ToLower(h), "/"+strings.ToLower(w))
		})
	})
}

// TakesOAuth reports whether the provider's mail server is known to take
// OAuth tokens (XOAUTH2 or OAUTHBEARER).
func TakesOAuth(providerID string) bool {
	_, ok := oauthProviders[providerID]
	return ok
}

// oauthHelp picks the provider's help page for an OAuth cause.
func oauthHelp(providerID string, c Cause) string {
	p, ok := oauthProviders[providerID]
	if !ok {
		return ""
	}
	if c == CauseOAuthMailboxNotEnabled && p.mailbox != "" {
		return p.mailbox
	}
	return p.help
}

// IsOAuth reports whether c is one of the OAuth causes.
func (c Cause) IsOAuth() bool { return strings.HasPrefix(string(c), "oauth.") }

// Summary says in one line what a token is for and when it expires, from
// the claims that may be logged (audience, scopes, roles, expiry,
// tenant), for support people; at is now, for "expired 3h ago".
func (f TokenFacts) Summary(at time.Time) string {
	switch f.Form {
	case "":
		return "no token"
	case TokenGoogle:
		return "Google access token (opaque: only Google can read it)"
	case TokenOpaque:
		return "opaque token (not a JWT: only its issuer can read it)"
	}
	parts := []string{"JWT"}
	if len(f.Audiences) > 0 {
		parts[0] += " for " + strings.Join(f.Audiences, ", ")
	}
	if len(f.Scopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(f.Scopes, " "))
	}
	if len(f.Roles) > 0 {
		parts = append(parts, "app permissions "+strings.Join(f.Roles, " "))
	}
	if f.Tenant != "" {
		parts = append(parts, "tenant "+f.Tenant)
	}
	if !f.Expires.IsZero() {
		exp := "expires " + f.Expires.UTC().Format("2006-01-02 15:04:05 UTC")
		if !at.IsZero() {
			if d := f.Expires.Sub(at).Round(time.Second); d > 0 {
				exp += " (in " + d.String() + ")"
			} else {
				exp = "expired " + f.Expires.UTC().Format("2006-01-02 15:04:05 UTC") + " (" + (-d).String() + " ago)"
			}
		}
		parts = append(parts, exp)
	}
	return strings.Join(parts, "; ")
}

// GrantFailure is the OAuth bridge's failed token request: the OAuth error
// code and description of the provider's answer (RFC 6749 section 5.2), or
// that it did not answer. It never holds a token.
type GrantFailure struct {
	Error       string // "invalid_grant", "consent_required", ...
	Description string // error_description, as the provider wrote it
	Unreachable bool   // no answer from the token endpoint
}

// Entra ID's AADSTS codes in error_description that tell causes apart.
var (
	grantDisabled = []string{"AADSTS50057", "AADSTS50053", "AADSTS7000112", "account is disabled", "account has been disabled", "user account is disabled"}
	grantConsent  = []string{"AADSTS65001", "AADSTS65004", "AADSTS90094", "AADSTS90095", "AADSTS900971", "consent", "admin approval", "administrator"}
)

func (g *GrantFailure) verdict() verdict {
	if g.Unreachable {
		return verdict{cause: CauseOAuthProviderUnreachable, confidence: High}
	}
	desc := strings.ToLower(g.Description)
	mentions := func(words []string) bool {
		for _, w := range words {
			if strings.Contains(desc, strings.ToLower(w)) {
				return true
			}
		}
		return false
	}
	switch {
	case mentions(grantDisabled):
		return verdict{cause: CauseAccountDisabled, confidence: High}
	case g.Error == "consent_required" || mentions(grantConsent):
		return verdict{cause: CauseOAuthConsentRequired, confidence: High}
	case g.Error == "invalid_grant" || g.Error == "interaction_required" || g.Error == "login_required":
		return verdict{cause: CauseOAuthReconnectRequired, confidence: High}
	case g.Error == "invalid_client" || g.Error == "unauthorized_client":
		// The operator's registration is wrong or gone: the person
		// cannot fix it; the administrator must.
		return verdict{cause: CauseOAuthConsentRequired, confidence: Low, alternative: CauseOAuthReconnectRequired}
	case g.Error == "temporarily_unavailable" || g.Error == "server_error":
		return verdict{cause: CauseOAuthProviderUnreachable, confidence: Medium}
	}
	return verdict{cause: CauseOAuthReconnectRequired, confidence: Low}
}
