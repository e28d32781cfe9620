package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestExplainOAuth: pasted XOAUTH2 exchanges, with the base64 challenge.
// The token never shows in the output, in any encoding.
func TestExplainOAuth(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	payload := func(claims string) string { return base64.RawURLEncoding.EncodeToString([]byte(claims)) }
	expired := time.Now().Add(-2 * time.Hour).Unix()
	msJWT := "eyJhbGciOiJSUzI1NiJ9." + payload(fmt.Sprintf(`{"aud":"https://outlook.office.com","scp":"IMAP.AccessAsUser.All","upn":"alice@contoso.example","tid":"t-1","exp":%d}`, expired)) + ".U0VDUkVUU0lHTkFUVVJF"
	gmailChallenge := b64([]byte(`{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`))
	for _, tc := range []struct {
		name, paste, token string
		args               []string
		cause, inText      string
	}{
		{
			name: "Gmail, whole exchange",
			paste: "* OK Gimap ready for requests from 192.0.2.7 a1\n" +
				"C: a1 AUTHENTICATE XOAUTH2 " + b64([]byte("user=bob@gmail.com\x01auth=Bearer ya29.SECRETGOOGLETOKEN\x01\x01")) + "\n" +
				"+ " + gmailChallenge + "\nC: \na1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n",
			token: "ya29.SECRETGOOGLETOKEN",
			cause: "oauth.token_rejected", inText: `challenge:   {"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}`,
		},
		{
			name:  "Gmail, server lines only",
			paste: "+ " + gmailChallenge + "\na1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n",
			args:  []string{"--server", "imap.gmail.com"},
			cause: "oauth.token_rejected", inText: "provider:    Gmail",
		},
		{
			name: "Microsoft, expired JWT with continuation",
			paste: "* OK The Microsoft Exchange IMAP4 service is ready.\nC: x AUTHENTICATE XOAUTH2\n+ \n" +
				"C: " + b64([]byte("user=alice@contoso.example\x01auth=Bearer "+msJWT+"\x01\x01")) + "\nx NO AUTHENTICATE failed.\n",
			args:  []string{"--server", "outlook.office365.com"},
			token: msJWT,
			cause: "oauth.token_expired", inText: "token:       JWT for https://outlook.office.com; scopes IMAP.AccessAsUser.All; tenant t-1; expired",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := explain(t, tc.paste, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "cause:       "+tc.cause) || !strings.Contains(out, tc.inText) {
				t.Errorf("output lacks %s / %q:\n%s", tc.cause, tc.inText, out)
			}
			_, jsonOut, _ := explain(t, tc.paste, append(tc.args, "--json")...)
			var res explainResult
			if err := json.Unmarshal([]byte(jsonOut), &res); err != nil {
				t.Fatal(err)
			}
			if res.Cause != tc.cause || res.OAuth == nil {
				t.Errorf("--json: cause %s, oauth %+v", res.Cause, res.OAuth)
			}
			if tc.token != "" {
				for _, secret := range []string{tc.token, tc.token[len(tc.token)-12:], "SECRET", b64([]byte(tc.token))[:16]} {
					if strings.Contains(out+jsonOut, secret) {
						t.Errorf("output contains a piece of the token (%q)", secret)
					}
				}
			}
		})
	}
}
