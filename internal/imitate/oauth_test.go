package imitate_test

import (
	"encoding/base64"
	"testing"

	"github.com/imapwhy/imapwhy/internal/imitate"
)

func xoauth2Message(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
}

// TestGmailOAuthChallenge: a refused token gets Google's documented error
// challenge, and the NO only after the client's empty response.
func TestGmailOAuthChallenge(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "gmail"))
	for _, user := range []string{"expired@gmail.com", "someone-else@gmail.com"} {
		r := dialRaw(t, srv, cfg)
		r.Line()
		r.Send("T AUTHENTICATE XOAUTH2 " + xoauth2Message(user, "ya29.a0AfB_expired") + "\r\n")
		got := r.Line()
		if got != "+ "+imitate.GmailOAuthChallenge {
			t.Fatalf("%s: got %q, want the error challenge", user, got)
		}
		raw, err := base64.StdEncoding.DecodeString(got[2:])
		if err != nil || string(raw) != `{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`+"\n" {
			t.Errorf("challenge decodes to %q, %v", raw, err)
		}
		r.Send("\r\n")
		if got := r.Line(); got != "T NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)" {
			t.Errorf("%s: final reply %q", user, got)
		}
	}
	r := dialRaw(t, srv, cfg)
	r.Line()
	r.Send("T AUTHENTICATE OAUTHBEARER " + base64.StdEncoding.EncodeToString([]byte("n,a=oauth@gmail.com,\x01auth=Bearer ya29.good\x01\x01")) + "\r\n")
	if got := r.Line(); got != "T OK oauth@gmail.com authenticated (Success)" {
		t.Errorf("OAUTHBEARER: got %q", got)
	}
	r = dialRaw(t, srv, cfg)
	r.Line()
	r.Send("T AUTHENTICATE XOAUTH2 " + base64.StdEncoding.EncodeToString([]byte("ya29.raw-token-no-sasl")) + "\r\n")
	if got := r.Line(); got != "T NO Invalid SASL argument." {
		t.Errorf("malformed message: got %q", got)
	}
}

// TestMicrosoftOAuthTexts: Exchange Online's texts for token logins.
func TestMicrosoftOAuthTexts(t *testing.T) {
	srv, cfg := startServer(t, provider(t, "microsoft365"))
	r := dialRaw(t, srv, cfg)
	r.Line()
	r.Send("T AUTHENTICATE OAUTHBEARER " + base64.StdEncoding.EncodeToString([]byte("n,a=oauth@contoso.example,\x01auth=Bearer x\x01\x01")) + "\r\n")
	if got := r.Line(); got != "T NO Unsupported authentication mechanism." {
		t.Errorf("OAUTHBEARER (not offered): got %q", got)
	}
	r.Send("U AUTHENTICATE XOAUTH2 " + xoauth2Message("graph@contoso.example", "eyJ0eXAi.graph.token") + "\r\n")
	if got := r.Line(); got != "U NO AUTHENTICATE failed." {
		t.Errorf("graph token: got %q", got)
	}
	r.Send("V AUTHENTICATE XOAUTH2 " + xoauth2Message("oauth@contoso.example", "eyJ0eXAi.good.token") + "\r\n")
	if got := r.Line(); got != "V OK AUTHENTICATE completed." {
		t.Errorf("good token: got %q", got)
	}

	r = dialRaw(t, srv, cfg)
	r.Line()
	r.Send("T AUTHENTICATE XOAUTH2\r\n")
	if got := r.Line(); got != "+ " {
		t.Fatalf("got %q, want a continuation request", got)
	}
	r.Send(xoauth2Message("shared@contoso.example", "eyJ0eXAi.app.token") + "\r\n")
	if got := r.Line(); got != "T OK AUTHENTICATE completed." {
		t.Fatalf("not connected: login got %q", got)
	}
	r.Send("A NAMESPACE\r\n")
	if got := r.Line(); got != "A BAD User is authenticated but not connected." {
		t.Errorf("first command: got %q", got)
	}
	r.Send("B SELECT INBOX\r\n")
	if got := r.Line(); got != "B BAD User is authenticated but not connected." {
		t.Errorf("second command: got %q", got)
	}
	if got := r.Line(); got != "* BYE Connection closed. 14" {
		t.Errorf("after the second command: got %q", got)
	}
}
