package diagnose

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// testJWT builds a JWT with these claims and a signature nobody checks.
func testJWT(claims map[string]any) string {
	b, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(b) + ".c2lnbmF0dXJl"
}

// oauthAt is when the logins below are tried.
var oauthAt = time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)

// msToken is a Microsoft 365 delegated token for IMAP, changed by edit.
func msToken(edit func(map[string]any)) string {
	c := map[string]any{
		"aud": "https://outlook.office.com",
		"iss": "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/",
		"tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
		"scp": "IMAP.AccessAsUser.All SMTP.Send",
		"upn": "alice@contoso.example",
		"exp": oauthAt.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return testJWT(c)
}

// oauthRefused is an OAuth login the server refused with reply.
func oauthRefused(greeting, host, user, token string, challenge string, reply *Response) Observation {
	o := Observation{Phase: PhaseLogin, Host: host, Port: 993, TLSMode: "implicit", Greeting: greeting, Mechanism: "XOAUTH2", Reply: reply}
	o.OAuth = &OAuth{Mechanism: "XOAUTH2", User: user, At: oauthAt, Token: ReadToken(token)}
	if challenge != "" {
		o.OAuth.Challenge, _ = ParseOAuthError([]byte(challenge))
	}
	return o
}

const gmailChallenge = `{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`

var (
	msFailed     = no("", "AUTHENTICATE failed.")
	gmailInvalid = no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)")
	msHost       = "outlook.office365.com"
	alice        = "alice@contoso.example"
)

var oauthCases = []classifyCase{
	{name: "oauth: Microsoft, expired JWT", obs: oauthRefused(exoGreeting, msHost, alice, msToken(func(c map[string]any) { c["exp"] = oauthAt.Add(-time.Minute).Unix() }), "", msFailed),
		want: CauseOAuthTokenExpired, conf: High, provider: "microsoft365"},
	{name: "oauth: Microsoft, token for Graph", obs: oauthRefused(exoGreeting, msHost, alice, msToken(func(c map[string]any) { c["aud"] = "https://graph.microsoft.com"; c["scp"] = "Mail.Read User.Read" }), "", msFailed),
		want: CauseOAuthWrongAudience, conf: High},
	{name: "oauth: Microsoft, no IMAP scope", obs: oauthRefused(exoGreeting, msHost, alice, msToken(func(c map[string]any) { c["scp"] = "SMTP.Send offline_access" }), "", msFailed),
		want: CauseOAuthScopeMissing, conf: High},
	{name: "oauth: Microsoft, full scope URI counts", obs: oauthRefused(exoGreeting, msHost, alice, msToken(func(c map[string]any) { c["scp"] = "https://outlook.office.com/IMAP.AccessAsUser.All" }), "", msFailed),
		want: CauseOAuthMailboxNotEnabled, conf: Medium},
	{name: "oauth: Microsoft, another user's token", obs: oauthRefused(exoGreeting, msHost, "bob@contoso.example", msToken(nil), "", msFailed),
		want: CauseOAuthUserMismatch, conf: High},
	{name: "oauth: Microsoft, authenticated but not connected", obs: oauthRefused(exoGreeting, msHost, alice, msToken(nil), "", no("", "User is authenticated but not connected.")),
		want: CauseOAuthMailboxNotEnabled, conf: High},
	{name: "oauth: Microsoft, app-only token for a mailbox without permission", obs: oauthRefused(exoGreeting, msHost, "shared@contoso.example",
		msToken(func(c map[string]any) { delete(c, "scp"); delete(c, "upn"); c["roles"] = []string{"IMAP.AccessAsApp"} }), "", no("", "User is authenticated but not connected.")),
		want: CauseOAuthMailboxNotEnabled, conf: High},
	{name: "oauth: Microsoft, token fine: the mailbox", obs: oauthRefused(exoGreeting, msHost, alice, msToken(nil), "", msFailed),
		want: CauseOAuthMailboxNotEnabled, conf: Medium, alt: CauseOAuthTokenRejected, altSet: true},
	{name: "oauth: Gmail challenge, opaque token", obs: oauthRefused(gmailGreeting, "imap.gmail.com", "bob@gmail.com", "ya29.a0AfB_byC", gmailChallenge, gmailInvalid),
		want: CauseOAuthTokenRejected, conf: Medium, alt: CauseOAuthTokenExpired, altSet: true, provider: "gmail"},
	{name: "oauth: insufficient_scope challenge", obs: oauthRefused("", "imap.example.test", "bob@example.test", "opaque-token", `{"status":"insufficient_scope","scope":"mail"}`, no("AUTHENTICATIONFAILED", "Authentication failed.")),
		want: CauseOAuthScopeMissing, conf: High},
	{name: "oauth: unknown server, nothing to go on", obs: oauthRefused("", "imap.example.test", "bob@example.test", "opaque-token", "", no("", "Authentication failed.")),
		want: CauseOAuthTokenRejected, conf: Low, alt: CauseOAuthTokenExpired, altSet: true},
	{name: "oauth: a temporary failure is not the token", obs: oauthRefused(dovecotGreeting, "imap.example.test", "bob@example.test", msToken(nil), "", no("UNAVAILABLE", "Temporary authentication failure.")),
		want: CauseServerTemporaryFailure},
}

// grantCases: the OAuth bridge's token request failed; nothing reached
// the mail server.
var grantCases = []classifyCase{
	{name: "bridge: refresh token revoked", obs: Observation{Phase: PhaseProxy, Host: msHost, Grant: &GrantFailure{Error: "invalid_grant", Description: "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."}},
		want: CauseOAuthReconnectRequired, conf: High, provider: "microsoft365"},
	{name: "bridge: invalid_grant from any provider", obs: Observation{Phase: PhaseProxy, Host: "imap.example.test", Grant: &GrantFailure{Error: "invalid_grant"}},
		want: CauseOAuthReconnectRequired, conf: High},
	{name: "bridge: admin approval missing", obs: Observation{Phase: PhaseProxy, Host: msHost, Grant: &GrantFailure{Error: "invalid_grant", Description: "AADSTS65001: The user or administrator has not consented to use the application."}},
		want: CauseOAuthConsentRequired, conf: High},
	{name: "bridge: account disabled", obs: Observation{Phase: PhaseProxy, Host: msHost, Grant: &GrantFailure{Error: "invalid_grant", Description: "AADSTS50057: The user account is disabled."}},
		want: CauseAccountDisabled, conf: High},
	{name: "bridge: token endpoint unreachable", obs: Observation{Phase: PhaseProxy, Host: "imap.gmail.com", Grant: &GrantFailure{Unreachable: true}},
		want: CauseOAuthProviderUnreachable, conf: High, provider: "gmail"},
}

func init() {
	classifyCases = append(classifyCases, oauthCases...)
	classifyCases = append(classifyCases, grantCases...)
}

// TestOAuthOperatorWants: a server the catalog does not know, with the
// audience and scope the operator configured (as for the Dovecot rig).
func TestOAuthOperatorWants(t *testing.T) {
	tok := func(aud, scope, user string) string {
		return testJWT(map[string]any{"aud": []string{aud}, "scope": scope, "preferred_username": user, "exp": oauthAt.Add(time.Hour).Unix()})
	}
	for _, tc := range []struct {
		token, user string
		want        Cause
	}{
		{tok("imap-server", "openid email", "alice@example.test"), "alice@example.test", CauseOAuthScopeMissing},
		{tok("https://api.example.test", "openid imap", "alice@example.test"), "alice@example.test", CauseOAuthWrongAudience},
		{tok("imap-server", "openid imap", "alice@example.test"), "bob@example.test", CauseOAuthUserMismatch},
		{tok("imap-server", "openid imap", "alice@example.test"), "Alice@Example.test", CauseOAuthTokenRejected},
	} {
		o := oauthRefused(dovecotGreeting, "127.0.0.1", tc.user, tc.token, `{"status":"401","schemes":"bearer","scope":"mail"}`, no("AUTHENTICATIONFAILED", "Authentication failed."))
		o.OAuth.WantAudiences, o.OAuth.WantScopes = []string{"imap-server"}, []string{"imap"}
		if d := Classify(o); d.Cause != tc.want {
			t.Errorf("user %s: cause %s, want %s", tc.user, d.Cause, tc.want)
		}
	}
}

func TestReadToken(t *testing.T) {
	f := ReadToken(msToken(func(c map[string]any) { c["exp"] = 1.7e9 }))
	want := TokenFacts{
		Form: TokenJWT, Audiences: []string{"https://outlook.office.com"}, Scopes: []string{"IMAP.AccessAsUser.All", "SMTP.Send"},
		Expires: time.Unix(1.7e9, 0).UTC(), User: alice, Tenant: "9188040d-6c67-4c5b-b112-36a304b66dad",
	}
	if f.Form != want.Form || !slices.Equal(f.Audiences, want.Audiences) || !slices.Equal(f.Scopes, want.Scopes) ||
		!f.Expires.Equal(want.Expires) || f.User != want.User || f.Tenant != want.Tenant {
		t.Errorf("ReadToken = %+v, want %+v", f, want)
	}
	f = ReadToken(testJWT(map[string]any{"aud": []string{"a", "b"}, "roles": []string{"IMAP.AccessAsApp"}, "email": "x@example.test"}))
	if !slices.Equal(f.Audiences, []string{"a", "b"}) || !slices.Equal(f.Roles, []string{"IMAP.AccessAsApp"}) || f.User != "x@example.test" || !f.Expires.IsZero() {
		t.Errorf("ReadToken = %+v", f)
	}
	for tok, form := range map[string]string{
		"":                       "",
		"ya29.a0AfH6SMB":         TokenGoogle,
		"EwBwA8l6BAAU":           TokenOpaque,
		"a.b.c":                  TokenOpaque,
		"a.!!!.c":                TokenOpaque,
		strings.Repeat("x", 100): TokenOpaque,
	} {
		if f := ReadToken(tok); f.Form != form || len(f.Audiences) != 0 {
			t.Errorf("ReadToken(%q) = %+v, want form %q only", tok, f, form)
		}
	}
}

func TestParseOAuthError(t *testing.T) {
	e, ok := ParseOAuthError([]byte(gmailChallenge))
	if !ok || *e != (OAuthError{Status: "401", Schemes: "bearer mac", Scope: "https://mail.google.com/"}) {
		t.Errorf("ParseOAuthError = %+v, %v", e, ok)
	}
	for _, bad := range []string{"", "{}", "not json", `{"schemes":"bearer"}`} {
		if _, ok := ParseOAuthError([]byte(bad)); ok {
			t.Errorf("ParseOAuthError(%q) ok", bad)
		}
	}
}

// TestOAuthMessages: every OAuth cause has its own words in both languages,
// and the Microsoft help page goes to Diagnosis.HelpURL.
func TestOAuthMessages(t *testing.T) {
	d := Classify(oauthRefused(exoGreeting, msHost, alice, msToken(nil), "", no("", "User is authenticated but not connected.")))
	if !strings.Contains(d.HelpURL, "enable-or-disable-pop3-or-imap4-access") {
		t.Errorf("HelpURL = %q", d.HelpURL)
	}
	for _, c := range []Cause{CauseOAuthTokenExpired, CauseOAuthWrongAudience, CauseOAuthScopeMissing, CauseOAuthUserMismatch, CauseOAuthMailboxNotEnabled, CauseOAuthTokenRejected} {
		for _, lang := range Languages() {
			m := Message(Of(c), lang)
			if m == Message(Of(CauseCredentialsRejected), lang) {
				t.Errorf("%s/%s: fallback message", c, lang)
			}
		}
	}
	if m := Message(Diagnosis{Cause: CauseOAuthScopeMissing, Provider: "gmail", ProviderName: "Gmail"}, "en"); !strings.Contains(m, "https://mail.google.com/") {
		t.Errorf("Gmail scope message %q does not name the scope", m)
	}
}
