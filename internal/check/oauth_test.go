package check

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/diagnose"
	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
)

// TestCheckOAuthToken: a token checked step by step against Dovecot whose
// oauth2 passdb asks a real OpenID provider. The report says what the
// token is for and when it expires, and why the server refused it; the
// token itself is nowhere in the report.
func TestCheckOAuthToken(t *testing.T) {
	op, dc := oauthtest.StartWithDovecot(t, dovecottest.Options{})
	caFile := dc.CAFile(t)
	alice := oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword}
	expired := alice
	expired.Lifetime = -time.Minute
	for _, tc := range []struct {
		name    string
		req     oauthtest.TokenRequest
		ok      bool
		cause   diagnose.Cause
		summary string
	}{
		{"good token", alice, true, "", "JWT for imap-server; scopes openid email imap; expires "},
		{"expired token", expired, false, diagnose.CauseOAuthTokenExpired, "JWT for imap-server; scopes openid email imap; expired "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := op.Token(t, tc.req)
			rep := Run(context.Background(), oauthtest.Alice, tok, Options{Server: dc.IMAPS, CAFile: caFile, OAuth: true})
			if rep.OK != tc.ok {
				t.Errorf("OK = %v, want %v; steps %+v", rep.OK, tc.ok, rep.Steps)
			}
			if rep.Token == nil || !strings.HasPrefix(rep.Token.Summary, tc.summary) {
				t.Fatalf("token %+v, want a summary starting %q", rep.Token, tc.summary)
			}
			if tc.cause != "" && (rep.Diagnosis == nil || rep.Diagnosis.Cause != tc.cause) {
				t.Errorf("diagnosis %+v, want %s", rep.Diagnosis, tc.cause)
			}
			if !tc.ok && (rep.Token.Challenge == nil || rep.Token.Challenge.Status != "401") {
				t.Errorf("the error challenge was not kept: %+v", rep.Token.Challenge)
			}
			if rep.IMAP.Mechanism != "XOAUTH2" {
				t.Errorf("mechanism %q", rep.IMAP.Mechanism)
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			wantSchema(t, b)
			for _, piece := range []string{tok, tok[len(tok)/2 : len(tok)/2+24]} {
				if strings.Contains(string(b), piece) {
					t.Errorf("the report holds the token (or a piece of it)")
				}
			}
		})
	}
}
