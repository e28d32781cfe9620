package dovecottest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// OAuth2 switches on Dovecot's OAuth mechanisms, XOAUTH2 and OAUTHBEARER
// (advertised where PLAIN is: on secured connections), checked by an
// oauth2 passdb that asks an OAuth provider's RFC 7662 introspection
// endpoint over HTTPS (introspection_mode = post, client authentication
// with HTTP Basic). A login succeeds when the provider says the token is
// active, the token's scope holds Scope, and its UsernameAttribute equals
// the user name in the SASL message (compared lower-cased).
//
// Every refusal is answered the same way, as Dovecot 2.3 does: the error
// challenge (XOAUTH2: {"status":"401","schemes":"bearer","scope":"mail"},
// OAUTHBEARER: {"status":"invalid_token"}), and after the client's empty
// response NO [AUTHENTICATIONFAILED] Authentication failed. The reason is
// only in Dovecot's log. A provider that cannot be reached gives
// NO [UNAVAILABLE].
type OAuth2 struct {
	// IntrospectionURL is the provider's https:// introspection endpoint.
	IntrospectionURL string
	// ClientID and ClientSecret are what Dovecot introspects as; the
	// provider answers active only for tokens whose audience is ClientID.
	ClientID, ClientSecret string
	// CAPEM is the PEM certificate(s) the provider's HTTPS is checked with.
	CAPEM []byte
	// Scope is the scope a token must have (Dovecot's "scope" setting).
	// Empty: none checked.
	Scope string
	// UsernameAttribute is the introspection field holding the user's
	// name; default "username".
	UsernameAttribute string
}

func (s *Server) oauth2ConfPath() string { return filepath.Join(s.Dir, "oauth2.conf.ext") }
func (s *Server) oauth2CAPath() string   { return filepath.Join(s.Dir, "certs", "oauth2-ca.pem") }

// writeOAuth2 writes the oauth2 passdb's settings file (it holds the client
// secret, so it is written like the passwd-file) and the provider's CA.
func (s *Server) writeOAuth2(o *OAuth2) error {
	u, err := url.Parse(o.IntrospectionURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("OAuth2.IntrospectionURL %q is not an https URL", o.IntrospectionURL)
	}
	attr := o.UsernameAttribute
	if attr == "" {
		attr = "username"
	}
	for _, v := range []string{o.ClientID, o.ClientSecret, attr} {
		if !confValueOK(v) {
			return fmt.Errorf("OAuth2: %q cannot be a Dovecot setting", v)
		}
	}
	if o.Scope != "" && !confValueOK(o.Scope) {
		return fmt.Errorf("OAuth2.Scope %q cannot be a Dovecot setting", o.Scope)
	}
	if len(o.CAPEM) == 0 {
		return fmt.Errorf("OAuth2.CAPEM is empty")
	}
	if err := s.writeSecret(s.oauth2CAPath(), o.CAPEM, 0o644, time.Time{}); err != nil {
		return err
	}
	// Dovecot's HTTP client sends the URL's user and password as HTTP
	// Basic authentication.
	u.User = url.UserPassword(o.ClientID, o.ClientSecret)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by imapwhy's internal/dovecottest.\n")
	fmt.Fprintf(&b, "introspection_mode = post\n")
	fmt.Fprintf(&b, "introspection_url = %s\n", u.String())
	fmt.Fprintf(&b, "client_id = %s\nclient_secret = %s\n", o.ClientID, o.ClientSecret)
	fmt.Fprintf(&b, "username_attribute = %s\n", attr)
	fmt.Fprintf(&b, "active_attribute = active\nactive_value = true\n")
	if o.Scope != "" {
		fmt.Fprintf(&b, "scope = %s\n", o.Scope)
	}
	fmt.Fprintf(&b, "tls_ca_cert_file = %s\n", s.oauth2CAPath())
	fmt.Fprintf(&b, "timeout_msecs = 10000\n")
	return s.writeSecret(s.oauth2ConfPath(), []byte(b.String()), 0o640, time.Time{})
}
