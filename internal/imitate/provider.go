package imitate

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// Provider is one imitated IMAP service: what it says before login and how
// each login ends.
type Provider struct {
	ID   string // short stable ID: "gmail", "microsoft365", ...
	Name string // display name
	Host string // the real host name it imitates; its certificate is for this name

	// Greeting is the first line, without CRLF. "{client}" stands for the
	// client's IP address (Gmail names it).
	Greeting string
	// Capabilities is the answer to CAPABILITY before login, in the
	// provider's order.
	Capabilities []string
	// CapabilityOK is the tagged reply to CAPABILITY, after the tag.
	CapabilityOK string
	// AppPassword is the form of the provider's app passwords, used by the
	// AppPasswordForm and NotAppPasswordForm rules; nil: it has none.
	AppPassword *regexp.Regexp

	// Scenarios are the named outcomes, each reached by a user name and a
	// password rule. The first scenario whose user, mechanism and rule fit
	// a login decides it.
	Scenarios []Scenario
	// Otherwise decides logins no scenario fits. User is ignored and
	// "{user}" in a reply stands for the user name sent. When nothing fits
	// at all the reply is RFC 5530's "NO [AUTHENTICATIONFAILED]
	// Authentication failed".
	Otherwise []Scenario

	// Assumed is true when no wire text of this provider is known and the
	// texts are an educated guess (see Source).
	Assumed bool
	// Source says where the greeting and capabilities come from.
	Source string

	texts sessionTexts
}

// Scenario is one way a login ends.
type Scenario struct {
	Name     string       // short ID, unique within the provider
	User     string       // user name that selects it (compared case-insensitively)
	Password string       // a password that reaches it (demo, tests)
	Rule     PasswordRule // which passwords reach it for User
	// Mechanism restricts the scenario to one login command: "LOGIN",
	// "PLAIN" (AUTHENTICATE PLAIN), "OAUTH" (AUTHENTICATE XOAUTH2 or
	// OAUTHBEARER, with a bearer token for the password) or "" for LOGIN
	// and PLAIN. The demo and the tests use LOGIN for "".
	Mechanism string
	// Challenge, for an OAuth scenario, is the base64 error challenge sent
	// as "+ <Challenge>" before the tagged reply; the reply comes after the
	// client's answer to it (Gmail's documented exchange). "": none.
	Challenge string
	// NotConnected: the login succeeds, but every command after it is
	// answered "BAD User is authenticated but not connected." and the
	// second one is followed by BYE (Microsoft 365, a token whose user may
	// not open the mailbox).
	NotConnected bool
	// Untagged are the lines sent before the tagged reply, without CRLF.
	Untagged []string
	// Reply is the tagged reply to LOGIN, after the tag ("NO [ALERT] ...").
	Reply string
	// AuthReply is the tagged reply to AUTHENTICATE PLAIN when it differs
	// from Reply (Microsoft and Yahoo name the command).
	AuthReply string

	Description string // what it imitates, for people
	Source      string // corpus record(s) the texts come from, or "assumed"
}

// PasswordRule says which passwords reach a scenario.
type PasswordRule int

const (
	AnyPassword        PasswordRule = iota // the user name alone decides
	ExactPassword                          // only the scenario's Password
	AppPasswordForm                        // a password in the provider's app-password form
	NotAppPasswordForm                     // a password not in that form
)

func (r PasswordRule) String() string {
	switch r {
	case AnyPassword:
		return "any password"
	case ExactPassword:
		return "exactly this password"
	case AppPasswordForm:
		return "an app password"
	case NotAppPasswordForm:
		return "not an app password"
	}
	return "unknown rule"
}

// OK reports whether the scenario ends in a successful login.
func (s Scenario) OK() bool { return strings.HasPrefix(s.Reply, "OK") }

// Command returns the login command the scenario is shown with: "LOGIN",
// "PLAIN" (AUTHENTICATE PLAIN) or "XOAUTH2" for an OAuth scenario.
func (s Scenario) Command() string {
	switch s.Mechanism {
	case "PLAIN":
		return "PLAIN"
	case mechOAuth:
		return "XOAUTH2"
	}
	return "LOGIN"
}

// mechOAuth is Scenario.Mechanism for both OAuth mechanisms.
const mechOAuth = "OAUTH"

// ReplyFor returns the tagged reply, after the tag, to login command mech
// ("LOGIN" or "PLAIN").
func (s Scenario) ReplyFor(mech string) string {
	if mech == "PLAIN" && s.AuthReply != "" {
		return s.AuthReply
	}
	return s.Reply
}

// Transcript returns the lines the server sends in answer to the
// scenario's login (with Command), without CRLF: the error challenge if
// any, the untagged lines, then the tagged reply under tag.
func (s Scenario) Transcript(tag string) []string {
	var lines []string
	if s.Challenge != "" {
		lines = append(lines, "+ "+s.Challenge)
	}
	lines = append(lines, s.Untagged...)
	return append(lines, tag+" "+s.ReplyFor(s.Command()))
}

// sessionTexts are a provider's answers to the other commands it accepts
// before login.
type sessionTexts struct {
	noop      string // tagged reply to NOOP
	id        string // untagged ID response
	idOK      string // tagged reply to ID
	logoutBye string // untagged BYE before the tagged reply to LOGOUT
	logout    string // tagged reply to LOGOUT
	literal   string // continuation request for a synchronizing literal
}

// Generic answers (RFC 3501 examples) for providers whose own are unknown.
var defaultTexts = sessionTexts{
	noop:      "OK NOOP completed",
	id:        "* ID NIL",
	idOK:      "OK ID completed",
	logoutBye: "* BYE IMAP4rev1 Server logging out",
	logout:    "OK LOGOUT completed",
	literal:   "+ Ready for additional command text",
}

// fallback decides a login that fits no scenario at all.
var fallback = Scenario{Name: "authentication-failed", Reply: "NO [AUTHENTICATIONFAILED] Authentication failed"}

// decide returns the scenario that a login with user and password via
// mech ("LOGIN", "PLAIN" or "OAUTH") reaches.
func (p *Provider) decide(user, password, mech string) *Scenario {
	for i := range p.Scenarios {
		s := &p.Scenarios[i]
		if strings.EqualFold(s.User, user) && fits(s.Mechanism, mech) && p.accepts(s, password) {
			return s
		}
	}
	for i := range p.Otherwise {
		s := &p.Otherwise[i]
		if fits(s.Mechanism, mech) && p.accepts(s, password) {
			return s
		}
	}
	return &fallback
}

// fits reports whether a scenario for want decides a login via mech: ""
// fits LOGIN and PLAIN, OAUTH fits XOAUTH2 and OAUTHBEARER.
func fits(want, mech string) bool {
	if mech == mechOAuth {
		return want == mechOAuth
	}
	return want == "" || want == mech
}

// accepts applies s.Rule to password.
func (p *Provider) accepts(s *Scenario, password string) bool {
	switch s.Rule {
	case AnyPassword:
		return true
	case ExactPassword:
		return password == s.Password
	case AppPasswordForm:
		return p.AppPassword != nil && p.AppPassword.MatchString(password)
	case NotAppPasswordForm:
		return p.AppPassword == nil || !p.AppPassword.MatchString(password)
	}
	return false
}

// sessionTexts returns the provider's texts, with generic ones where it has
// none.
func (p *Provider) sessionTexts() sessionTexts {
	t, d := p.texts, defaultTexts
	return sessionTexts{
		noop:      cmp.Or(t.noop, d.noop),
		id:        cmp.Or(t.id, d.id),
		idOK:      cmp.Or(t.idOK, d.idOK),
		logoutBye: cmp.Or(t.logoutBye, d.logoutBye),
		logout:    cmp.Or(t.logout, d.logout),
		literal:   cmp.Or(t.literal, d.literal),
	}
}

// clone returns a deep copy of p, so that a running server does not share
// slices with its caller.
func (p Provider) clone() Provider {
	p.Capabilities = slices.Clone(p.Capabilities)
	p.Scenarios = cloneScenarios(p.Scenarios)
	p.Otherwise = cloneScenarios(p.Otherwise)
	return p
}

func cloneScenarios(ss []Scenario) []Scenario {
	ss = slices.Clone(ss)
	for i := range ss {
		ss[i].Untagged = slices.Clone(ss[i].Untagged)
	}
	return ss
}

// Lookup returns the built-in provider with the given ID.
func Lookup(id string) (Provider, bool) {
	for _, p := range Providers() {
		if p.ID == id {
			return p, true
		}
	}
	return Provider{}, false
}
