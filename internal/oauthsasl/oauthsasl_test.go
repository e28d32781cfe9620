package oauthsasl

import (
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

const jwtLike = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/=="

func TestParseGoSASLOAuthBearer(t *testing.T) {
	_, ir, err := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: "carol@example.test", Token: jwtLike, Host: "imap.example.test", Port: 993,
	}).Start()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse("oauthbearer", ir)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{Mechanism: OAUTHBEARER, User: "carol@example.test", Token: jwtLike, Host: "imap.example.test", Port: 993}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	// RFC 5801 escaping, which go-sasl does not do.
	m.User = "a,b=c@example.test"
	if !strings.Contains(string(Encode(m)), "a=a=2Cb=3Dc@example.test,") {
		t.Errorf("Encode = %q", Encode(m))
	}
	if got, err := Parse(OAUTHBEARER, Encode(m)); err != nil || got != m {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}

func TestParseXOAUTH2(t *testing.T) {
	m, err := Parse("XOAUTH2", []byte("user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"))
	if err != nil {
		t.Fatal(err)
	}
	if m.User != "someuser@example.com" || m.Token != "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg" {
		t.Errorf("got %+v", m)
	}
	if string(Encode(m)) != "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01" {
		t.Errorf("Encode = %q", Encode(m))
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		mech, msg string
		want      error
	}{
		{"PLAIN", "\x00u\x00p", ErrMechanism},
		{"XOAUTH2", "user=u\x01auth=Basic abc\x01\x01", ErrNoToken},
		{"XOAUTH2", "user=u\x01\x01", ErrNoToken},
		{"XOAUTH2", "auth=Bearer abc\x01\x01", ErrNoUser},
		{"XOAUTH2", "user=u\x01auth=Bearer a b\x01\x01", ErrToken},
		{"XOAUTH2", "user=u\x01auth=Bearer a\rb\x01\x01", ErrToken},
		{"XOAUTH2", "user=u\x01\x01auth=Bearer abc\x01\x01", ErrSyntax},
		{"XOAUTH2", "user=u\nx\x01auth=Bearer abc\x01\x01", ErrUser},
		{"OAUTHBEARER", "p=tls-unique,a=u,\x01auth=Bearer abc\x01\x01", ErrSyntax},
		{"OAUTHBEARER", "n,a=u=2X,\x01auth=Bearer abc\x01\x01", ErrSyntax},
		{"OAUTHBEARER", "n,,\x01auth=Bearer abc\x01\x01", ErrNoUser},
		{"XOAUTH2", "user=u\x01auth=Bearer " + strings.Repeat("a", MaxMessage) + "\x01\x01", ErrTooLong},
	} {
		_, err := Parse(tc.mech, []byte(tc.msg))
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%s, %q) = %v, want %v", tc.mech, tc.msg, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "abc") {
			t.Errorf("error %q quotes the token", err)
		}
	}
}
