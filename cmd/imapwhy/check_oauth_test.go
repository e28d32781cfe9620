package main

import (
	"strings"
	"testing"
	"time"

	"github.com/imapwhy/imapwhy/internal/dovecottest"
	"github.com/imapwhy/imapwhy/internal/oauthtest"
)

// TestCheckOAuthTokenStdin: `imapwhy check --oauth-token-stdin` against
// Dovecot checking a real provider's tokens: what the token is for and
// when it expires, the login, the diagnosis; never the token.
func TestCheckOAuthTokenStdin(t *testing.T) {
	op, dc := oauthtest.StartWithDovecot(t, dovecottest.Options{})
	caFile := dc.CAFile(t)
	good := op.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword})
	noScope := op.Token(t, oauthtest.TokenRequest{User: oauthtest.Alice, Password: oauthtest.AlicePassword, Scopes: []string{"openid", "email"}, Lifetime: -time.Hour})
	args := []string{oauthtest.Alice, "--server", dc.IMAPS, "--ca-file", caFile, "--oauth-token-stdin"}

	code, stdout, stderr := checkCmd(t, good+"\n", args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, good[20:44]) {
		t.Errorf("the output holds a piece of the token")
	}
	for _, want := range []string{"token: JWT for imap-server; scopes openid email imap; expires ", "(AUTHENTICATE XOAUTH2)", "Result: OK"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = checkCmd(t, "  "+noScope+"  \r\n", append(args, "--json")...)
	if code != 1 || !strings.Contains(stdout, `"cause": "oauth.token_expired"`) || !strings.Contains(stdout, `"expired": true`) ||
		!strings.Contains(stdout, `"status": "401"`) {
		t.Errorf("expired token without the scope: exit %d\n%s", code, stdout)
	}
	for _, tok := range []string{good, noScope} {
		if strings.Contains(stdout, tok[20:44]) {
			t.Errorf("the output holds a piece of the token")
		}
	}

	if code, _, stderr := checkCmd(t, good+"\n", append(args, "--password-stdin")...); code != 2 || !strings.Contains(stderr, "one secret at a time") {
		t.Errorf("both secrets: exit %d, %s", code, stderr)
	}
	if code, _, stderr := checkCmd(t, "\n", args...); code != 2 || !strings.Contains(stderr, "no token") {
		t.Errorf("no token: exit %d, %s", code, stderr)
	}
}
