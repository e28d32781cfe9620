package proxy

import (
	"strings"
	"testing"

	"github.com/imapwhy/imapwhy/internal/config"
)

// TestPreauthOAuth: XOAUTH2 and OAUTHBEARER with SASL-IR and with a
// continuation, cancelled, malformed, over-long, and before TLS; the
// mechanisms are advertised only where the listener says the upstream
// takes them.
func TestPreauthOAuth(t *testing.T) {
	serverTLS, clientTLS := frontTestTLS(t)
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	xo := frontB64("user=alice@example.test\x01auth=Bearer " + tok + "\x01\x01")
	ob := frontB64("n,a=alice@example.test,\x01host=imap.example.test\x01port=993\x01auth=Bearer " + tok + "\x01\x01")
	want := func(tag, mech string) *loginRequest {
		return &loginRequest{Tag: tag, Mechanism: mech, Username: "alice@example.test", Password: tok}
	}
	oauthGreet := "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER] imapwhy ready."
	tests := []struct {
		name  string
		cfg   frontConfig
		steps []frontStep
	}{
		{"SASL-IR, continuation, cancel, malformed", frontConfig{Secure: true, OAuth: true, Limits: config.Limits{MaxLoginTries: 10}}, []frontStep{
			{want: []string{oauthGreet}},
			{send: "a1 AUTHENTICATE XOAUTH2 " + xo + "\r\n", login: want("a1", "XOAUTH2"), want: frontFailLines("a1")},
			{send: "a2 authenticate oauthbearer " + ob + "\r\n", login: want("a2", "OAUTHBEARER"), want: frontFailLines("a2")},
			{send: "a3 AUTHENTICATE XOAUTH2\r\n", want: []string{"+ "}},
			{send: xo + "\r\n", login: want("a3", "XOAUTH2"), want: frontFailLines("a3")},
			{send: "a4 AUTHENTICATE OAUTHBEARER\r\n", want: []string{"+ "}},
			{send: "*\r\n", want: []string{"a4 BAD Authentication cancelled"}},
			{send: "a5 AUTHENTICATE XOAUTH2 " + frontB64("user=alice\x01auth=Basic abc\x01\x01") + "\r\n",
				want: []string{"a5 NO [AUTHENTICATIONFAILED] Malformed XOAUTH2 message"}},
			{send: "a6 AUTHENTICATE OAUTHBEARER " + frontB64("p=tls-unique,,\x01auth=Bearer abc\x01\x01") + "\r\n",
				want: []string{"a6 NO [AUTHENTICATIONFAILED] Malformed OAUTHBEARER message"}},
			{send: "a7 AUTHENTICATE XOAUTH2 !!!\r\n", want: []string{"a7 BAD [CLIENTBUG] Invalid base64 data"}},
			{send: "a8 CAPABILITY\r\n", want: []string{"* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER", "a8 OK CAPABILITY completed"}},
		}},
		{"not advertised, still taken", frontConfig{Secure: true}, []frontStep{
			{want: []string{frontGreetSecure}},
			{send: "a1 AUTHENTICATE XOAUTH2 " + xo + "\r\n", login: want("a1", "XOAUTH2"), want: frontFailLines("a1")},
		}},
		{"before TLS: refused, no token invited; after STARTTLS advertised", frontConfig{TLSConfig: serverTLS, OAuth: true}, []frontStep{
			{want: []string{frontGreetPlain}},
			{send: "a1 AUTHENTICATE XOAUTH2 " + xo + "\r\n", want: frontPrivacyLines("a1", "en")},
			{send: "a2 AUTHENTICATE OAUTHBEARER\r\n", want: frontPrivacyLines("a2", "en")},
			{send: "a3 STARTTLS\r\n", want: []string{"a3 OK Begin TLS negotiation now."}, tls: true},
			{send: "a4 CAPABILITY\r\n", want: []string{"* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID LANGUAGE AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER", "a4 OK CAPABILITY completed"}},
		}},
		{"a message over max_line ends the connection like any long line", frontConfig{Secure: true, OAuth: true, Limits: config.Limits{MaxLine: 1024}}, []frontStep{
			{want: []string{oauthGreet}},
			{send: "a1 AUTHENTICATE XOAUTH2 " + frontB64("user=a\x01auth=Bearer "+strings.Repeat("x", 2000)+"\x01\x01") + "\r\n",
				want: []string{"* BYE Command line too long"}, end: errFrontLimit, eof: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := frontStart(t, tt.cfg)
			for i, st := range tt.steps {
				h.step(i, st, clientTLS)
			}
		})
	}
}

// TestRedactToken: a server quoting the AUTHENTICATE line back gets the
// token masked in every form the proxy sent it.
func TestRedactToken(t *testing.T) {
	req := &loginRequest{Mechanism: "XOAUTH2", Username: "alice@example.test", Password: "ya29.a0AfB_secret-token"}
	for _, form := range oauthForms(req) {
		got := redactPassword("BAD AUTHENTICATE "+form+" rejected", req)
		if got != "BAD AUTHENTICATE *** rejected" {
			t.Errorf("redactPassword = %q", got)
		}
	}
	if got := redactPassword("token ya29.a0AfB_secret-token refused", req); got != "token *** refused" {
		t.Errorf("redactPassword = %q", got)
	}
}
