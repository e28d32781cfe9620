package diagnose

import (
	"strings"
	"testing"
)

// Greetings and capabilities as the servers send them (testdata/provider-responses.jsonl).
const (
	gmailGreeting    = "* OK Gimap ready for requests from 192.0.2.7 is27mb3495359jab"
	exoGreeting      = "* OK The Microsoft Exchange IMAP4 service is ready. [TABPADQAUAAxADIAMwBDAEEAMAAyADMAMwAuAEcAQgBSAFAAMQAyADMALgBQAFIATwBEAC4ATwBVAFQATABPAE8ASwAuAEMATwBNAA==]"
	exchangeGreeting = "* OK The Microsoft Exchange IMAP4 service is ready."
	dovecotGreeting  = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready."
	hmailGreeting    = "* OK IMAPrev1"
	icloudGreeting   = "* OK [CAPABILITY st11p00mm-iscream022 15E205 XAPPLEPUSHSERVICE IMAP4 IMAP4rev1 SASL-IR AUTH=ATOKEN AUTH=PLAIN] iSCREAM ready to rumble (15E205-0982aaf890fd:18514) st11p00mm-iscream022 [04:19:14:31:21:53]"
)

// no is a tagged NO reply.
func no(code, text string) *Response {
	return &Response{Tagged: true, Status: "NO", Code: code, Text: text}
}

// refused is an Observation of a login the server refused.
func refused(greeting string, reply *Response, typed Typed) Observation {
	return Observation{Phase: PhaseLogin, Greeting: greeting, Mechanism: "LOGIN", Reply: reply, Typed: typed}
}

func withHost(o Observation, host string) Observation {
	o.Host = host
	return o
}

type classifyCase struct {
	name     string
	obs      Observation
	want     Cause
	conf     Confidence // "" = any
	alt      Cause      // checked when altSet
	altSet   bool
	provider string // checked when not ""
}

var plainUser = Facts("bob@example.com", "correct horse")

// classifyCases reach every cause (TestEveryCauseReachable checks that).
var classifyCases = []classifyCase{
	// What the user typed: only with a refusal that says nothing more.
	{name: "trailing space", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "secret ")),
		want: CausePasswordSurroundingSpace, conf: Medium, provider: "dovecot"},
	{name: "ideographic space", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "\u3000secret")),
		want: CausePasswordSurroundingSpace, conf: Medium},
	{name: "full-width password", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "ｓｅｃｒｅｔ１")),
		want: CausePasswordFullwidth, conf: Medium},
	{name: "kana in password", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "secretあ")),
		want: CausePasswordNonASCII, conf: Low, alt: CauseCredentialsRejected, altSet: true},
	{name: "empty password", obs: refused("", no("", "LOGIN failed."), Facts("bob@example.com", "")),
		want: CausePasswordEmpty, conf: High},
	{name: "no domain where the full address is wanted", obs: refused(hmailGreeting, no("", "Invalid user name or password."), Facts("bob", "secret")),
		want: CauseUsernameMissingDomain, conf: Medium, provider: "hmailserver"},
	{name: "no domain, server unknown: fallback naming the other", obs: refused("", no("", "Login failed."), Facts("bob", "secret")),
		want: CauseCredentialsRejected, conf: Low, alt: CauseUsernameMissingDomain, altSet: true},
	{name: "user with trailing space", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com ", "secret")),
		want: CauseUsernameSurroundingSpace, conf: Medium},
	{name: "full-width user", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("ｂｏｂ@example.com", "secret")),
		want: CauseUsernameFullwidth, conf: Medium},

	// What the provider requires.
	{name: "Gmail app password text", obs: refused(gmailGreeting, no("ALERT", "Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"), Facts("bob@gmail.com", "hunter22")),
		want: CauseProviderAppPasswordRequired, conf: High, provider: "gmail"},
	{name: "Gmail refuses a password not shaped like an app password", obs: refused(gmailGreeting, no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)"), Facts("bob@gmail.com", "hunter22")),
		want: CauseProviderAppPasswordRequired, conf: Medium, alt: CauseCredentialsRejected, altSet: true, provider: "gmail"},
	{name: "Gmail refuses an app-password-shaped password", obs: refused(gmailGreeting, no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)"), Facts("bob@gmail.com", "abcd efgh ijkl mnop")),
		want: CauseCredentialsRejected, conf: Low, alt: "", altSet: true},
	{name: "Gmail, app password pasted with a trailing space", obs: refused(gmailGreeting, no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)"), Facts("bob@gmail.com", "abcdefghijklmnop ")),
		want: CausePasswordSurroundingSpace, conf: Medium, alt: "", altSet: true},
	{name: "Gmail, password not known (explain)", obs: refused(gmailGreeting, no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)"), Typed{}),
		want: CauseProviderAppPasswordRequired, conf: Low, alt: CauseCredentialsRejected, altSet: true},
	{name: "Gmail IMAP off, reworded", obs: refused(gmailGreeting, no("ALERT", "IMAP access has been turned off for this account"), plainUser),
		want: CauseProviderIMAPDisabled, conf: Medium},
	{name: "Gmail IMAP off", obs: refused(gmailGreeting, no("ALERT", "Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)"), plainUser),
		want: CauseProviderIMAPDisabled, conf: High},
	{name: "Exchange Online LOGIN failed.", obs: refused(exoGreeting, no("", "LOGIN failed."), plainUser),
		want: CauseProviderOAuthRequired, conf: Medium, alt: CauseCredentialsRejected, altSet: true, provider: "microsoft365"},
	{name: "Exchange Online, hotmail user", obs: refused(exoGreeting, no("", "LOGIN failed."), Facts("bob@hotmail.com", "secret")),
		want: CauseProviderOAuthRequired, provider: "outlook"},
	{name: "Exchange Online, typed fault is the alternative", obs: refused(exoGreeting, no("", "LOGIN failed."), Facts("bob@contoso.example", "secret ")),
		want: CauseProviderOAuthRequired, alt: CausePasswordSurroundingSpace, altSet: true},
	{name: "basic auth blocked, any server", obs: refused("", no("", "AUTHENTICATE failed. BasicAuthBlocked"), plainUser),
		want: CauseProviderOAuthRequired, conf: High},
	{name: "basic auth disabled, new wording", obs: refused("", no("", "Basic authentication is disabled for this tenant"), plainUser),
		want: CauseProviderOAuthRequired, conf: Medium},
	{name: "server offers only OAuth", obs: Observation{Phase: PhaseLogin, Capabilities: []string{"IMAP4REV1", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER"}, Mechanism: "LOGIN", Reply: no("AUTHENTICATIONFAILED", "Authentication failed"), Typed: plainUser},
		want: CauseProviderOAuthRequired, conf: Medium},
	{name: "WEBALERT", obs: Observation{Phase: PhaseLogin, Mechanism: "LOGIN", Untagged: []Response{{Status: "NO", Code: "WEBALERT", CodeArg: "https://accounts.google.com/signin/continue?x", Text: "Web login required."}}, Reply: no("ALERT", "Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)")},
		want: CauseProviderWebLoginRequired, conf: High},
	{name: "verify your identity", obs: refused("", no("", "Please verify your identity in a web browser"), plainUser),
		want: CauseProviderWebLoginRequired, conf: Medium},
	{name: "too many failed logins", obs: refused("", no("", "Too many failed login attempts, try again in 60 minutes"), plainUser),
		want: CauseAccountLocked, conf: Medium},
	{name: "temporarily locked", obs: refused("", no("ALERT", "Your account is temporarily locked."), Facts("bob@example.com", "secret ")),
		want: CauseAccountLocked, conf: Medium},
	{name: "CONTACTADMIN", obs: refused(dovecotGreeting, no("CONTACTADMIN", "Login disabled for this user"), Facts("bob@example.com", "secret ")),
		want: CauseAccountDisabled, conf: High},
	{name: "EXPIRED", obs: refused("", no("EXPIRED", "That password isn't valid any more"), plainUser),
		want: CauseAccountPasswordExpired, conf: High},
	{name: "password must be changed", obs: refused("", no("", "Your password has expired and must be changed"), plainUser),
		want: CauseAccountPasswordExpired, conf: Medium},
	{name: "LIMIT", obs: refused(dovecotGreeting, no("LIMIT", "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), plainUser),
		want: CauseAccountTooManyConnections, conf: High},
	{name: "UNAVAILABLE with the connection limit (Dovecot 2.3)", obs: refused(dovecotGreeting, no("UNAVAILABLE", "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), plainUser),
		want: CauseAccountTooManyConnections, conf: High},
	{name: "UNAVAILABLE", obs: refused(dovecotGreeting, no("UNAVAILABLE", "Temporary authentication failure. [vm:2026-11-27 10:07:51]"), Facts("bob@example.com", "secret ")),
		want: CauseServerTemporaryFailure, conf: High},
	{name: "PRIVACYREQUIRED", obs: refused(dovecotGreeting, no("PRIVACYREQUIRED", "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."), plainUser),
		want: CauseServerPrivacyRequired, conf: High},
	{name: "LOGINDISABLED on a plain connection", obs: Observation{Phase: PhaseCapability, TLSMode: "none", Capabilities: []string{"IMAP4REV1", "LOGINDISABLED"}},
		want: CauseServerPrivacyRequired, conf: High},
	{name: "no usable mechanism after TLS", obs: Observation{Phase: PhaseCapability, TLSMode: "implicit", Capabilities: []string{"IMAP4REV1", "LOGINDISABLED", "AUTH=GSSAPI"}},
		want: CauseServerNoUsableMechanism, conf: High},
	{name: "REFERRAL", obs: refused("", &Response{Tagged: true, Status: "NO", Code: "REFERRAL", CodeArg: "imap://bob;AUTH=PLAIN@127.0.0.1:1143/", Text: "Try this server instead."}, plainUser),
		want: CauseServerReferral, conf: High},
	{name: "AUTHORIZATIONFAILED to PLAIN", obs: func() Observation {
		o := refused("", no("AUTHORIZATIONFAILED", "Authorization failed"), plainUser)
		o.Mechanism = "PLAIN"
		return o
	}(), want: CauseAuthorizationFailed, conf: High},
	// Seen in the wild as a wrong-password answer to LOGIN, which names no
	// other identity.
	{name: "AUTHORIZATIONFAILED to LOGIN", obs: refused("", no("AUTHORIZATIONFAILED", "Authorization failed"), plainUser),
		want: CauseAuthorizationFailed, conf: Medium, alt: CauseCredentialsRejected, altSet: true},
	{name: "after login, the mailbox is refused", obs: Observation{Phase: PhaseAfterLogin, Greeting: exoGreeting, Reply: &Response{Tagged: true, Status: "BAD", Text: "User is authenticated but not connected."}},
		want: CauseAuthorizationFailed, conf: High},

	// History.
	{name: "password worked before", obs: withHistory(refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), plainUser), History{Known: true, SamePasswordWorked: true}),
		want: CauseCredentialsPasswordChanged, conf: Medium},
	{name: "caps lock", obs: withHistory(refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), plainUser), History{Known: true, CaseInvertedWorked: true}),
		want: CauseCredentialsCapsLock, conf: High},
	{name: "trimmed password worked", obs: withHistory(refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "secret ")), History{Known: true, TrimmedWorked: true}),
		want: CausePasswordSurroundingSpace, conf: High},
	{name: "held back: the diagnosis of the last refusal stands", obs: withHistory(Observation{Phase: PhaseProxy, Host: "imap.gmail.com", Typed: Facts("bob@gmail.com", "x")}, History{Known: true, Held: true, RepeatedFailures: 4, HeldCause: string(CauseProviderAppPasswordRequired)}),
		want: CauseProviderAppPasswordRequired, conf: Medium, alt: "", altSet: true, provider: "gmail"},
	{name: "held back after plain refusals", obs: withHistory(Observation{Phase: PhaseProxy, Typed: plainUser}, History{Known: true, Held: true, RepeatedFailures: 4, HeldCause: string(CauseCredentialsRejected)}),
		want: CauseCredentialsRepeatedFailure, conf: High},
	{name: "history never overrides a code", obs: withHistory(refused("", no("UNAVAILABLE", "Backend down"), plainUser), History{Known: true, SamePasswordWorked: true}),
		want: CauseServerTemporaryFailure},

	// Reaching the server.
	{name: "DNS", obs: Observation{Host: "imap.gmial.com", Phase: PhaseDial, NetError: NetDNSNotFound, Typed: plainUser}, want: CauseUpstreamDNSNotFound, conf: High},
	{name: "refused", obs: Observation{Phase: PhaseDial, NetError: NetRefused}, want: CauseUpstreamRefused, conf: High},
	{name: "timeout", obs: Observation{Phase: PhaseGreeting, NetError: NetTimeout}, want: CauseUpstreamTimeout, conf: High},
	{name: "TLS to a plain port", obs: Observation{Phase: PhaseTLS, NetError: NetTLSToPlain}, want: CauseUpstreamTLSMismatch, conf: High},
	{name: "plain to a TLS port", obs: Observation{Phase: PhaseGreeting, NetError: NetPlainToTLS}, want: CauseUpstreamTLSMismatch, conf: High},
	{name: "other handshake failure", obs: Observation{Phase: PhaseTLS, NetError: NetTLSOther}, want: CauseUpstreamTLSMismatch, conf: Low},
	{name: "certificate name", obs: Observation{Host: "mail.example.com", Phase: PhaseTLS, NetError: NetCertName}, want: CauseUpstreamCertificateName, conf: High},
	{name: "certificate expired", obs: Observation{Phase: PhaseTLS, NetError: NetCertExpired}, want: CauseUpstreamCertificateExpired, conf: High},
	{name: "certificate untrusted", obs: Observation{Phase: PhaseTLS, NetError: NetCertUntrusted}, want: CauseUpstreamCertificateUntrusted, conf: High},
	{name: "SMTP answered", obs: Observation{Phase: PhaseGreeting, NotIMAP: "smtp", Greeting: "220 mail.example.com ESMTP"}, want: CauseUpstreamNotIMAP, conf: High},
	{name: "STARTTLS not offered", obs: Observation{Phase: PhaseCapability, TLSMode: "starttls", Capabilities: []string{"IMAP4REV1", "AUTH=PLAIN"}}, want: CauseUpstreamStartTLSUnavailable, conf: High},
	{name: "STARTTLS refused", obs: Observation{Phase: PhaseStartTLS, TLSMode: "starttls", StartTLSOffered: true, Capabilities: []string{"IMAP4REV1", "STARTTLS"}, Reply: &Response{Tagged: true, Status: "BAD", Text: "not now"}}, want: CauseUpstreamStartTLSUnavailable, conf: High},
	{name: "wrong protocol (BYE before login)", obs: Observation{Phase: PhaseLogin, Untagged: []Response{{Status: "BYE", Text: "Too many invalid IMAP commands."}}}, want: CauseUpstreamTLSMismatch, conf: Medium},

	// This computer's network, not the server (typed network facts).
	{name: "DNS not answering, provider known by its host", obs: Observation{Host: "imap.gmail.com", Phase: PhaseDial, NetError: NetDNSUnavailable, Typed: Facts("taro@gmail.com", "x")},
		want: CauseNetworkDNSUnavailable, conf: High, provider: "gmail"},
	{name: "DNS not answering during routing: provider still named", obs: Observation{Phase: PhaseProxy, NetError: NetDNSUnavailable, Typed: Facts("taro@docomo.ne.jp", "x")},
		want: CauseNetworkDNSUnavailable, conf: High, provider: "docomo"},
	{name: "no route to the server", obs: Observation{Host: "imap.example.com", Phase: PhaseDial, NetError: NetUnreachable},
		want: CauseNetworkUnreachable, conf: High},
	// This computer could not open the connection, or it failed in a way
	// nothing names: nothing judged the credentials.
	{name: "out of file descriptors", obs: Observation{Host: "imap.example.com", Phase: PhaseDial, NetError: NetLocal, Typed: plainUser},
		want: CauseServerTemporaryFailure, conf: Low},
	{name: "connection failure of no known kind", obs: Observation{Host: "imap.example.com", Phase: PhaseGreeting, NetError: NetOther, Typed: plainUser},
		want: CauseServerTemporaryFailure, conf: Low},
	{name: "dial failed, no fact at all", obs: Observation{Host: "imap.example.com", Phase: PhaseDial, Typed: plainUser},
		want: CauseServerTemporaryFailure, conf: Low},
	{name: "handshake failed, no fact at all", obs: Observation{Host: "imap.example.com", Phase: PhaseTLS, TLSMode: "implicit", Typed: plainUser},
		want: CauseServerTemporaryFailure, conf: Low},

	// Evidence beyond the reply's text.
	{name: "LOGINDISABLED, then a plain refusal", obs: Observation{Phase: PhaseLogin, TLSMode: "none", Mechanism: "LOGIN", Capabilities: []string{"IMAP4REV1", "STARTTLS", "LOGINDISABLED"}, Reply: no("", "Login failed."), Typed: plainUser},
		want: CauseServerPrivacyRequired, conf: High},
	{name: "BAD to LOGIN with an empty password", obs: refused("", &Response{Tagged: true, Status: "BAD", Text: "Missing argument"}, Facts("bob@example.com", "")),
		want: CausePasswordEmpty, conf: High, alt: CauseServerBadCommand, altSet: true},
	{name: "BAD to LOGIN, nothing typed known", obs: refused(dovecotGreeting, &Response{Tagged: true, Status: "BAD", Code: "CLIENTBUG", Text: "Invalid characters in atom"}, Typed{}),
		want: CauseServerBadCommand, conf: Medium},
	{name: "bare BYE greeting", obs: Observation{Phase: PhaseGreeting, Greeting: "* BYE"},
		want: CausePolicyAddressBlocked, conf: Low, alt: CauseServerTemporaryFailure, altSet: true},
	{name: "bare NO greeting", obs: Observation{Phase: PhaseGreeting, Greeting: "* NO", Untagged: []Response{{Status: "NO"}}},
		want: CausePolicyAddressBlocked, conf: Low},
	{name: "BYE greeting that says why", obs: Observation{Phase: PhaseGreeting, Greeting: "* BYE Too many connections from your IP"},
		want: CauseAccountTooManyConnections, conf: Medium},
	{name: "loose server error, empty password", obs: refused("", no("", "Server error"), Facts("bob@example.com", "")),
		want: CausePasswordEmpty, conf: High, alt: CauseServerTemporaryFailure, altSet: true},
	{name: "loose server error is not high", obs: refused("", no("", "System error"), plainUser),
		want: CauseServerTemporaryFailure, conf: Medium},
	{name: "UNAVAILABLE code is high", obs: refused("", no("UNAVAILABLE", "System error"), plainUser),
		want: CauseServerTemporaryFailure, conf: High},

	{name: "NetEase wants the client to identify itself", obs: withHost(refused("", no("", "SELECT Unsafe Login. Please contact kefu@188.com for help"), Facts("li@163.com", "ABCDEFGHIJKLMNOP")), "imap.163.com"),
		want: CauseProviderClientIDRequired, conf: High, provider: "netease"},

	// The fallback.
	{name: "plain refusal", obs: refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), plainUser),
		want: CauseCredentialsRejected, conf: Low, alt: "", altSet: true},

	// The proxy's own refusals.
	{name: "proxy: plaintext", obs: Observation{Phase: PhaseProxy, Reply: no("PRIVACYREQUIRED", "Use STARTTLS first")}, want: CauseClientPlaintextRefused, conf: High},
	{name: "proxy: rate limit", obs: Observation{Phase: PhaseProxy, Reply: no("UNAVAILABLE", "Rate limit: too many login attempts")}, want: CauseClientRateLimited, conf: High},
	{name: "proxy: connections", obs: Observation{Phase: PhaseProxy, Reply: no("LIMIT", "Too many connections")}, want: CauseClientTooManyConnections, conf: High},
	{name: "proxy: mechanism", obs: Observation{Phase: PhaseProxy, Reply: no("CANNOT", "Unsupported mechanism")}, want: CauseClientUnsupportedMechanism, conf: High},
	{name: "proxy: route by domain without a domain", obs: Observation{Phase: PhaseProxy, Typed: Facts("bob", "secret")}, want: CauseUsernameMissingDomain, conf: High},
	{name: "proxy: shutting down", obs: Observation{Phase: PhaseProxy, Typed: plainUser, Reply: no("UNAVAILABLE", "imapwhy is shutting down")}, want: CauseServerTemporaryFailure, conf: High},
	{name: "proxy: user name with a control character", obs: Observation{Phase: PhaseProxy, Typed: Facts("bob\x00@example.com", "secret")}, want: CauseClientInvalidUsername, conf: High},
	{name: "proxy: unknown domain", obs: Observation{Phase: PhaseProxy, Typed: Facts("bob@unknown.example", "secret")}, want: CauseClientUnknownDomain, conf: Medium},
}

func withHistory(o Observation, h History) Observation {
	o.History = h
	return o
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			checkDiagnosis(t, Classify(tc.obs), tc)
		})
	}
}

func checkDiagnosis(t *testing.T, d Diagnosis, tc classifyCase) {
	t.Helper()
	if d.Cause != tc.want {
		t.Fatalf("cause = %s, want %s (diagnosis %+v)", d.Cause, tc.want, d)
	}
	if tc.conf != "" && d.Confidence != tc.conf {
		t.Errorf("confidence = %s, want %s", d.Confidence, tc.conf)
	}
	if tc.altSet && d.Alternative != tc.alt {
		t.Errorf("alternative = %q, want %q", d.Alternative, tc.alt)
	}
	if tc.provider != "" && d.Provider != tc.provider {
		t.Errorf("provider = %q, want %q", d.Provider, tc.provider)
	}
	if d.Temporary != d.Cause.Temporary() {
		t.Errorf("temporary = %v, want %v", d.Temporary, d.Cause.Temporary())
	}
	if d.Alternative == d.Cause {
		t.Errorf("alternative repeats the cause")
	}
	if d.Alternative != "" && !d.Alternative.Valid() {
		t.Errorf("alternative %q is not a cause", d.Alternative)
	}
}

func TestEveryCauseReachable(t *testing.T) {
	reached := map[Cause]bool{}
	for _, tc := range classifyCases {
		reached[tc.want] = true
	}
	for _, c := range Causes() {
		if !reached[c] {
			t.Errorf("no test case reaches %s", c)
		}
	}
}

// TestThinEvidence: when the server says only "no" and nothing identifies
// it, the answer is the fallback with Low confidence, never a guess.
func TestThinEvidence(t *testing.T) {
	replies := []*Response{
		no("", "Login failed."),
		no("", "LOGIN failed."),
		no("AUTHENTICATIONFAILED", "Authentication failed"),
		no("ALERT", "Invalid credentials"),
		no("", "authentication failure"),
		no("", "Invalid login or password"),
		{Tagged: true, Status: "NO"},
	}
	for _, r := range replies {
		for _, greeting := range []string{"", "* OK IMAP4rev1 server ready", exchangeGreeting, dovecotGreeting} {
			if greeting == "" && r.Text == "LOGIN failed." {
				continue // Exchange's own words: see TestTextRecognition
			}
			d := Classify(Observation{Phase: PhaseLogin, Greeting: greeting, Reply: r})
			if d.Cause != CauseCredentialsRejected || d.Confidence != Low {
				t.Errorf("%q after %q: %s/%s, want credentials.rejected/low", formatResponse(r), greeting, d.Cause, d.Confidence)
			}
		}
	}
}

// TestTypedFactsNeedRefusal: facts about what was typed explain a plain
// refusal only; they never replace an explicit code, a connection error,
// a failure after login, or an OAuth refusal.
func TestTypedFactsNeedRefusal(t *testing.T) {
	typed := Facts(" ｂｏｂ", "") // every user fault, and an empty password
	cases := []Observation{
		{Phase: PhaseDial, NetError: NetRefused},
		{Phase: PhaseTLS, NetError: NetCertUntrusted},
		{Phase: PhaseLogin, Reply: no("UNAVAILABLE", "backend down")},
		{Phase: PhaseLogin, Reply: no("CONTACTADMIN", "")},
		{Phase: PhaseLogin, Reply: no("EXPIRED", "")},
		{Phase: PhaseLogin, Reply: no("LIMIT", "")},
		{Phase: PhaseLogin, Reply: no("AUTHORIZATIONFAILED", "")},
		{Phase: PhaseLogin, Reply: no("PRIVACYREQUIRED", "")},
		{Phase: PhaseLogin, Reply: no("ALERT", "Application-specific password required")},
		{Phase: PhaseAfterLogin, Reply: &Response{Status: "BYE", Text: "Internal error occurred."}},
		{Phase: PhaseAfterLogin},
		{Phase: PhaseLogin, Mechanism: "XOAUTH2", Reply: no("AUTHENTICATIONFAILED", "Invalid credentials (Failure)")},
		{Phase: PhaseCapability, Capabilities: []string{"IMAP4REV1", "AUTH=PLAIN"}},
	}
	for _, o := range cases {
		o.Typed = typed
		d := Classify(o)
		if strings.HasPrefix(string(d.Cause), "password.") || strings.HasPrefix(string(d.Cause), "username.") {
			t.Errorf("%+v: typed-fact cause %s without a plain refusal", o, d.Cause)
		}
	}
}

// TestUnseenWording: wordings that are not in the corpus, for any server.
func TestUnseenWording(t *testing.T) {
	cases := map[string]Cause{
		"Please use an app-specific password for this application":                     CauseProviderAppPasswordRequired,
		"Application password required":                                                CauseProviderAppPasswordRequired,
		"アプリパスワードを使用してください":                                                            CauseProviderAppPasswordRequired,
		"IMAP is disabled for this account":                                            CauseProviderIMAPDisabled,
		"Please enable IMAP in your mailbox settings":                                  CauseProviderIMAPDisabled,
		"IMAP access is not enabled":                                                   CauseProviderIMAPDisabled,
		"Basic auth blocked by policy":                                                 CauseProviderOAuthRequired,
		"Basic authentication has been turned off; use OAuth":                          CauseProviderOAuthRequired,
		"Too many authentication failures":                                             CauseAccountLocked,
		"Too many failed logins from your address":                                     CauseAccountLocked,
		"Account temporarily blocked":                                                  CauseAccountLocked,
		"Your IP address has been banned":                                              CauseAccountLocked,
		"Password expired":                                                             CauseAccountPasswordExpired,
		"Your password must be changed before you can log in":                          CauseAccountPasswordExpired,
		"Account suspended":                                                            CauseAccountDisabled,
		"Too many simultaneous connections":                                            CauseAccountTooManyConnections,
		"Maximum number of concurrent sessions reached":                                CauseAccountTooManyConnections,
		"Unusual sign-in activity detected, sign in with your browser":                 CauseProviderWebLoginRequired,
		"STARTTLS is required before authentication":                                   CauseServerPrivacyRequired,
		"Cleartext logins are disabled":                                                CauseServerPrivacyRequired,
		"Authentication server is down, try again later":                               CauseServerTemporaryFailure,
		"Unsupported authentication mechanism":                                         CauseServerNoUsableMechanism,
		"Please log in with your authorization code":                                   CauseProviderAppPasswordRequired,
		"请使用授权码登录":                                                                     CauseProviderAppPasswordRequired,
		"IMAP服务未开启":                                                                    CauseProviderIMAPDisabled,
		"앱 비밀번호를 사용하세요":                                                                CauseProviderAppPasswordRequired,
		"Bitte verwenden Sie ein App-Passwort":                                         CauseProviderAppPasswordRequired,
		"Already reached per-10 minute limit for logins by \"bob@example.com\" of 500": CauseAccountLocked,
		"Logins are not allowed from your country":                                     CausePolicyAddressBlocked,
		"Access denied from this network":                                              CausePolicyAddressBlocked,
	}
	for text, want := range cases {
		d := Classify(refused("", no("", text), plainUser))
		if d.Cause != want {
			t.Errorf("%q: %s, want %s", text, d.Cause, want)
		}
		if d.Confidence == High {
			t.Errorf("%q: a loose match is %s", text, d.Confidence)
		}
	}
}

func TestCodeAndTemporary(t *testing.T) {
	want := map[Cause]string{
		CauseCredentialsRejected:       "AUTHENTICATIONFAILED",
		CauseAccountDisabled:           "CONTACTADMIN",
		CauseAccountPasswordExpired:    "EXPIRED",
		CauseServerPrivacyRequired:     "PRIVACYREQUIRED",
		CauseAuthorizationFailed:       "AUTHORIZATIONFAILED",
		CauseAccountTooManyConnections: "LIMIT",
		CauseServerTemporaryFailure:    "UNAVAILABLE",
		CauseUpstreamTimeout:           "UNAVAILABLE",
		CauseClientPlaintextRefused:    "PRIVACYREQUIRED",
	}
	for c, code := range want {
		if got := Of(c).Code; got != code {
			t.Errorf("%s: code %s, want %s", c, got, code)
		}
	}
	for _, c := range []Cause{CauseAccountLocked, CauseAccountTooManyConnections, CauseServerTemporaryFailure, CauseUpstreamTimeout} {
		if !c.Temporary() {
			t.Errorf("%s should be temporary", c)
		}
	}
	for _, c := range []Cause{CauseCredentialsRejected, CauseProviderAppPasswordRequired, CauseUpstreamCertificateName} {
		if c.Temporary() {
			t.Errorf("%s should not be temporary", c)
		}
	}
	// The upstream's own code for a connection limit is passed on.
	d := Classify(refused(dovecotGreeting, no("UNAVAILABLE", "Maximum number of connections from user+IP exceeded"), plainUser))
	if d.Code != "UNAVAILABLE" {
		t.Errorf("Dovecot 2.3 connection limit: code %s, want UNAVAILABLE", d.Code)
	}
	if Cause("no.such").Valid() || Cause("no.such").Code() != "AUTHENTICATIONFAILED" {
		t.Error("unknown cause: Valid or Code wrong")
	}
}

func TestRecognition(t *testing.T) {
	cases := []struct {
		name string
		obs  Observation
		want string
	}{
		{"host suffix", Observation{Host: "IMAP.Gmail.com."}, "gmail"},
		{"server name wins", Observation{Host: "203.0.113.9", ServerName: "imap.mail.me.com"}, "icloud"},
		{"greeting", Observation{Greeting: icloudGreeting}, "icloud"},
		{"capability", Observation{Capabilities: []string{"IMAP4REV1", "X-GM-EXT-1"}}, "gmail"},
		{"Workspace by the user's domain", Observation{Greeting: gmailGreeting, Typed: Facts("bob@company.example", "")}, "google_workspace"},
		{"Gmail user stays Gmail", Observation{Greeting: gmailGreeting, Typed: Facts("bob@googlemail.com", "")}, "gmail"},
		{"Exchange Online token", Observation{Greeting: exoGreeting}, "microsoft365"},
		{"Outlook.com user", Observation{Host: "outlook.office365.com", Typed: Facts("bob@live.jp", "")}, "outlook"},
		{"on-premises Exchange is software", Observation{Greeting: exchangeGreeting}, "exchange"},
		{"host beats nginx greeting", Observation{Host: "imap.fastmail.com", Greeting: "* OK IMAP4 ready"}, "fastmail"},
		{"nginx alone", Observation{Greeting: "* OK IMAP4 ready"}, "nginx"},
		{"user's domain when nothing else is known", Observation{Typed: Facts("taro@docomo.ne.jp", "")}, "docomo"},
		{"not the user's domain when the server is known", Observation{Host: "mail.example.org", Typed: Facts("taro@docomo.ne.jp", "")}, ""},
		{"unknown", Observation{Host: "mail.example.org", Greeting: "* OK hello"}, ""},
		{"no partial label match", Observation{Host: "notgmail.com"}, ""},
		{"Japanese ISP subdomain", Observation{Host: "imap.ocn.ne.jp"}, "ocn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.obs
			o.Phase, o.Reply = PhaseLogin, no("", "Login failed.")
			if d := Classify(o); d.Provider != tc.want {
				t.Errorf("provider = %q, want %q", d.Provider, tc.want)
			}
		})
	}
}

func TestJapaneseProviders(t *testing.T) {
	// docomo takes only its system-generated IMAP password; the shape is
	// from a third-party page, so a mismatch is only Low evidence.
	o := withHost(refused("", no("", "LOGIN failed"), Facts("taro@docomo.ne.jp", "myDaccountPW")), "imap.spmode.ne.jp")
	d := Classify(o)
	checkDiagnosis(t, d, classifyCase{want: CauseProviderAppPasswordRequired, conf: Low, alt: CauseCredentialsRejected, altSet: true, provider: "docomo"})
	if msg := Message(d, "ja"); !strings.Contains(msg, "IMAP専用パスワード") || !strings.Contains(msg, "ドコモメール") {
		t.Errorf("ja message does not name the IMAP password: %s", msg)
	}
	// @nifty: IMAP is a paid option.
	d = Classify(withHost(refused("", no("", "Authentication failed"), plainUser), "imap.nifty.com"))
	checkDiagnosis(t, d, classifyCase{want: CauseProviderIMAPDisabled, conf: Low, alt: CauseCredentialsRejected, altSet: true, provider: "nifty"})
	// Yahoo! JAPAN: the password, or access from other apps switched off.
	d = Classify(withHost(refused("", no("", "Authentication failed"), plainUser), "imap.mail.yahoo.co.jp"))
	checkDiagnosis(t, d, classifyCase{want: CauseCredentialsRejected, conf: Low, alt: CauseProviderIMAPDisabled, altSet: true, provider: "yahoo_japan"})
	// Only the user's domain is known (explain --user): provider facts
	// are Low evidence.
	d = Classify(Observation{Phase: PhaseLogin, Reply: no("", "LOGIN failed."), Typed: userFactsOnly(Facts("bob@hotmail.com", ""))})
	checkDiagnosis(t, d, classifyCase{want: CauseProviderOAuthRequired, conf: Low, provider: "outlook"})
	d = Classify(Observation{Phase: PhaseLogin, Reply: no("", "LOGIN failed."), Typed: Facts("bob@gmail.com", "hunter22")})
	checkDiagnosis(t, d, classifyCase{want: CauseProviderAppPasswordRequired, conf: Low, provider: "gmail"})
	// Xserver wants the full address.
	d = Classify(withHost(refused("", no("", "Authentication failed"), Facts("info", "secret")), "sv1234.xserver.jp"))
	checkDiagnosis(t, d, classifyCase{want: CauseUsernameMissingDomain, conf: Medium, provider: "xserver"})
}

func TestDetail(t *testing.T) {
	r := no("AUTHENTICATIONFAILED", "Invalid credentials\r\n(Failure)\x00 "+strings.Repeat("x", 500))
	d := Classify(refused("", r, plainUser))
	if len(d.Detail) > maxDetail || strings.ContainsAny(d.Detail, "\r\n\x00") {
		t.Errorf("detail not sanitised or bounded: %q", d.Detail)
	}
	if !strings.HasPrefix(d.Detail, "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure) xxx") {
		t.Errorf("detail = %q", d.Detail)
	}
	d = Classify(Observation{Phase: PhaseTLS, NetError: NetCertName})
	if d.Detail != "tls: cert_name" {
		t.Errorf("detail = %q", d.Detail)
	}
}

// benchObservations are typical failures, from cheap to expensive.
var benchObservations = []Observation{
	refused(dovecotGreeting, no("AUTHENTICATIONFAILED", "Authentication failed."), Facts("bob@example.com", "secret ")),
	refused(gmailGreeting, no("ALERT", "Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)"), plainUser),
	withHost(refused(exoGreeting, no("", "LOGIN failed."), Facts("bob@contoso.example", "secret")), "outlook.office365.com"),
	{Phase: PhaseLogin, Mechanism: "LOGIN", Untagged: []Response{{Status: "NO", Code: "WEBALERT", CodeArg: "https://accounts.google.com/x", Text: "Web login required."}}, Reply: no("ALERT", "Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)")},
	refused("* OK Welcome", no("", "Login failed."), Facts("bob", "secret")),
	{Phase: PhaseTLS, NetError: NetCertName, Host: "imap.example.org"},
}

func BenchmarkClassify(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for i := range benchObservations {
			Classify(benchObservations[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(benchObservations)), "ns/classify")
}

// TestTextRecognition: with no host and no greeting, a provider's own
// wording, or a server host named in what a mail app showed, identifies
// the provider; the answer is that provider's likely causes, never High
// unless the text itself is the provider's known text.
func TestTextRecognition(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		provider string
		want     []Cause
		maxConf  Confidence
	}{
		{"Exchange Online's bare refusal", "NO LOGIN failed.", "microsoft365", []Cause{CauseProviderOAuthRequired}, Low},
		{"Gmail host in a client's text", "The user name or password for imap.gmail.com is incorrect.", "gmail",
			[]Cause{CauseProviderAppPasswordRequired, CauseCredentialsRejected}, Medium},
		{"Thunderbird's text", "Login to server imap.mail.yahoo.com with username bob@yahoo.com failed.", "yahoo",
			[]Cause{CauseProviderAppPasswordRequired, CauseCredentialsRejected}, Medium},
		{"Apple Mail's text", "The IMAP server \u201cimap.mail.me.com\u201d rejected the password for user \u201cbob\u201d.", "icloud",
			[]Cause{CauseProviderAppPasswordRequired, CauseCredentialsRejected}, Medium},
		{"QQ's authorization code", "NO Please using authorized code to login. More information at http://service.mail.qq.com/cgi-bin/help?subtype=1&&id=28&&no=1001256", "qq",
			[]Cause{CauseProviderAppPasswordRequired}, High},
		{"NetEase's ID requirement", "a3 NO SELECT Unsafe Login. Please contact kefu@188.com for help", "coremail",
			[]Cause{CauseProviderClientIDRequired}, High},
		{"Mail.ru's app password", "NO [AUTHENTICATIONFAILED] NEOBHODIM parol prilozheniya https://help.mail.ru/mail/security/protection/external / Aplication password is REQUIRED", "mailru",
			[]Cause{CauseProviderAppPasswordRequired}, High},
		{"Cyrus before TLS", "a1 NO Login only available under a layer", "cyrus", []Cause{CauseServerPrivacyRequired}, High},
		// What libraries print around the server's words.
		{"imaplib's bytes", `imap_tools.errors.MailboxLoginError: Response status "OK" expected, but "NO" received. Data: [b'LOGIN failed.']`, "microsoft365",
			[]Cause{CauseProviderOAuthRequired}, Low},
		{"a Rust debug print", `IMAP password auth failed for username 'x@hotmail.com': No("code: None, info: Some(\"LOGIN failed.\")")`, "",
			[]Cause{CauseCredentialsRejected, CauseProviderOAuthRequired}, Low},
		{"Perl's die", "ERROR: 4 NO [AUTHENTICATIONFAILED] Authentication failed. at /usr/local/share/perl5/Mail/IMAPClient.pm line 1388.", "",
			[]Cause{CauseCredentialsRejected}, Low},
	}
	rank := map[Confidence]int{Low: 0, Medium: 1, High: 2}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseTranscript(strings.NewReader(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			d := Classify(o)
			ok := false
			for _, c := range tc.want {
				ok = ok || d.Cause == c
			}
			if !ok || d.Provider != tc.provider || rank[d.Confidence] > rank[tc.maxConf] {
				t.Errorf("%s/%s provider %q; want one of %v at most %s, provider %q", d.Cause, d.Confidence, d.Provider, tc.want, tc.maxConf, tc.provider)
			}
		})
	}
	// Another server's greeting speaks against Exchange Online.
	d := Classify(Observation{Phase: PhaseLogin, Greeting: "* OK IMAP4rev1 server ready", Reply: no("", "LOGIN failed.")})
	if d.Provider != "" || d.Cause != CauseCredentialsRejected {
		t.Errorf("LOGIN failed. after another greeting: %+v", d)
	}
}

// TestReported: imapwhy's own machine-readable line is read back as its
// diagnosis, not guessed again from its prose (a full-width password's
// message mentions "app password" nowhere, but a guess from the words
// would find one); a notice-mailbox login is no success.
func TestReported(t *testing.T) {
	d := Diagnosis{Cause: CausePasswordFullwidth, Confidence: Medium, Code: CausePasswordFullwidth.Code(), Provider: "gmail", ProviderName: "Gmail"}
	transcript := "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN LANGUAGE] imapwhy ready.\n" +
		"* OK [" + ResponseCode + " " + d.Report(false) + "] " + ReportText + "\n" +
		"* OK [ALERT] " + Message(d, "en") + "\n" +
		"a1 NO [AUTHENTICATIONFAILED] " + Message(d, "en") + "\n"
	o, err := ParseTranscript(strings.NewReader(transcript))
	if err != nil {
		t.Fatal(err)
	}
	got := Classify(o)
	if got.Cause != CausePasswordFullwidth || got.Confidence != Medium || got.Provider != "gmail" {
		t.Errorf("%+v", got)
	}
	notice := "* OK [" + ResponseCode + " " + Diagnosis{Cause: CauseProviderIMAPDisabled, Confidence: High}.Report(true) + "] " + ReportText + "\n" +
		"* OK [ALERT] IMAP is off\na1 OK [CAPABILITY IMAP4rev1] Logged in\n"
	o, err = ParseTranscript(strings.NewReader(notice))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := ReportedBy(o); o.LoginSucceeded || !ok || !r.Notice || Classify(o).Cause != CauseProviderIMAPDisabled {
		t.Errorf("notice mailbox login: %+v %+v", o, r)
	}
	if _, ok := ParseReport("cause=no.such confidence=high"); ok {
		t.Error("unknown cause accepted")
	}
}
