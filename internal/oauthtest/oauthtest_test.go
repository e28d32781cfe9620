package oauthtest_test

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/oauthsasl"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
)

// claims decodes a JWT's payload without checking it.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not a JWT (%d parts)", len(parts))
	}
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(header), `"RS256"`) {
		t.Errorf("JWT header %s: want RS256", header)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenClaims(t *testing.T) {
	p := oauthtest.Start(t, oauthtest.Options{})
	before := time.Now()
	c := claims(t, p.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword}))
	if c["iss"] != p.Issuer {
		t.Errorf("iss = %v, want %s", c["iss"], p.Issuer)
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != oauthtest.ResourceID {
		t.Errorf("aud = %v, want [%s]", c["aud"], oauthtest.ResourceID)
	}
	if c["scope"] != "openid email imap" {
		t.Errorf("scope = %v", c["scope"])
	}
	if c["preferred_username"] != oauthtest.Alice || c["sub"] != "sub-"+oauthtest.Alice {
		t.Errorf("preferred_username = %v, sub = %v", c["preferred_username"], c["sub"])
	}
	exp := time.Unix(int64(c["exp"].(float64)), 0)
	if exp.Before(before.Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("exp = %v, want an hour from now", exp)
	}

	c = claims(t, p.Token(t, oauthtest.TokenRequest{
		User: oauthtest.Bob, Password: oauthtest.BobPassword,
		Scopes: []string{"openid"}, Audience: []string{oauthtest.OtherAudience}, Lifetime: -time.Minute,
	}))
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != oauthtest.OtherAudience {
		t.Errorf("aud = %v, want [%s]", c["aud"], oauthtest.OtherAudience)
	}
	if c["scope"] != "openid" || c["preferred_username"] != oauthtest.Bob {
		t.Errorf("scope = %v, preferred_username = %v", c["scope"], c["preferred_username"])
	}
	if exp := time.Unix(int64(c["exp"].(float64)), 0); !exp.Before(time.Now()) {
		t.Errorf("exp = %v, want in the past", exp)
	}

	opaque := p.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Opaque: true})
	if strings.Count(opaque, ".") == 2 {
		t.Errorf("opaque token looks like a JWT")
	}

	if _, err := p.FetchToken(t.Context(), oauthtest.TokenRequest{User: oauthtest.Alice, Password: "wrong"}); err == nil {
		t.Errorf("wrong password: got a token")
	}
}

// startDovecot starts the provider and a Dovecot that checks its tokens.
func startDovecot(t *testing.T) (*oauthtest.Server, *dovecottest.Server) {
	p := oauthtest.Start(t, oauthtest.Options{})
	d := dovecottest.Start(t, dovecottest.Options{OAuth2: p.Dovecot()})
	return p, d
}

func TestDovecotAcceptsToken(t *testing.T) {
	p, d := startDovecot(t)
	tok := p.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword})
	opaque := p.Token(t, oauthtest.TokenRequest{User: oauthtest.Bob, Password: oauthtest.BobPassword, Opaque: true})
	for _, tc := range []struct {
		name string
		sasl sasl.Client
	}{
		{"OAUTHBEARER", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: oauthtest.Alice, Token: tok})},
		{"XOAUTH2", oauthsasl.Client{User: oauthtest.Alice, Token: tok}},
		{"opaque", oauthsasl.Client{User: oauthtest.Bob, Token: opaque}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := imapclient.DialTLS(d.IMAPS, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: d.CAPool}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			caps := c.Caps()
			if !caps.Has("AUTH=XOAUTH2") || !caps.Has("AUTH=OAUTHBEARER") {
				t.Errorf("capabilities %v lack AUTH=XOAUTH2 / AUTH=OAUTHBEARER", caps)
			}
			if err := c.Authenticate(tc.sasl); err != nil {
				t.Fatalf("authenticate: %v\n%s", err, d.LogTail(10))
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Errorf("select: %v", err)
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("logout: %v", err)
			}
		})
	}
}

// TestDovecotRefusesToken checks each refusal on the wire: the error
// challenge, the empty response, the NO; and Dovecot's logged reason.
func TestDovecotRefusesToken(t *testing.T) {
	p, d := startDovecot(t)
	alice := oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword}
	expired, other, noScope := alice, alice, alice
	expired.Lifetime = -time.Minute
	other.Audience = []string{oauthtest.OtherAudience}
	noScope.Scopes = []string{"openid", "email"}
	for _, tc := range []struct {
		name, user string
		req        oauthtest.TokenRequest
		logged     string
	}{
		{"expired", oauthtest.Alice, expired, "Introspection failed: Provided token is not valid"},
		{"wrong audience", oauthtest.Alice, other, "Introspection failed: Provided token is not valid"},
		{"missing scope", oauthtest.Alice, noScope, "Token is not valid for scope 'imap'"},
		{"wrong user", oauthtest.Bob, alice, "did not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := p.Token(t, tc.req)
			for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
				var msg string
				if mech == "XOAUTH2" {
					msg = "user=" + tc.user + "\x01auth=Bearer " + tok + "\x01\x01"
				} else {
					msg = "n,a=" + tc.user + ",\x01auth=Bearer " + tok + "\x01\x01"
				}
				challenge, final := authenticateRaw(t, d, mech, msg)
				want := map[string]string{"XOAUTH2": `{"status":"401","schemes":"bearer","scope":"mail"}`, "OAUTHBEARER": `{"status":"invalid_token"}`}[mech]
				if challenge != want {
					t.Errorf("%s challenge %q, want %q", mech, challenge, want)
				}
				if final != "a NO [AUTHENTICATIONFAILED] Authentication failed." {
					t.Errorf("%s final reply %q", mech, final)
				}
			}
			if log := d.LogTail(40); !strings.Contains(log, tc.logged) {
				t.Errorf("Dovecot's log does not say %q:\n%s", tc.logged, log)
			}
		})
	}
}

// authenticateRaw sends AUTHENTICATE with SASL-IR, answers the error
// challenge with an empty response and returns the decoded challenge and
// the tagged reply.
func authenticateRaw(t *testing.T, d *dovecottest.Server, mech, msg string) (string, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", d.IMAPS, &tls.Config{RootCAs: d.CAPool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	line() // greeting
	if _, err := conn.Write([]byte("a AUTHENTICATE " + mech + " " + base64.StdEncoding.EncodeToString([]byte(msg)) + "\r\n")); err != nil {
		t.Fatal(err)
	}
	l := line()
	if !strings.HasPrefix(l, "+ ") {
		return "", l
	}
	challenge, err := base64.StdEncoding.DecodeString(l[2:])
	if err != nil {
		t.Fatalf("challenge %q: %v", l, err)
	}
	if _, err := conn.Write([]byte("\r\n")); err != nil {
		t.Fatal(err)
	}
	return string(challenge), line()
}
