package upstream

import "testing"

// TestChooseMechanismOAuth: a token goes with the client's mechanism, or
// the other OAuth one when the server offers only that, never as a
// password.
func TestChooseMechanismOAuth(t *testing.T) {
	both := []string{"IMAP4REV1", "AUTH=PLAIN", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER"}
	for _, tc := range []struct {
		caps []string
		mech string
		want string
	}{
		{both, "XOAUTH2", "XOAUTH2"},
		{both, "OAUTHBEARER", "OAUTHBEARER"},
		{[]string{"AUTH=XOAUTH2"}, "OAUTHBEARER", "XOAUTH2"},
		{[]string{"AUTH=OAUTHBEARER"}, "XOAUTH2", "OAUTHBEARER"},
		{[]string{"AUTH=PLAIN"}, "XOAUTH2", ""},
		{[]string{"IMAP4REV1"}, "OAUTHBEARER", ""},
	} {
		if got := ChooseMechanism(tc.caps, Credentials{User: "u", Password: "tok", Mechanism: tc.mech}); got != tc.want {
			t.Errorf("ChooseMechanism(%v, %s) = %q, want %q", tc.caps, tc.mech, got, tc.want)
		}
	}
	if err := checkCredentials(Config{TLS: "implicit"}, Credentials{User: "u", Password: "a b", Mechanism: "XOAUTH2"}); err == nil {
		t.Errorf("a token with a space was accepted")
	}
	if err := checkCredentials(Config{TLS: "implicit"}, Credentials{User: "u", Password: "tok", Mechanism: "CRAM-MD5"}); err == nil {
		t.Errorf("mechanism CRAM-MD5 was accepted")
	}
}
