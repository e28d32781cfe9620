package diagnose

import (
	_ "embed"
	"encoding/base64"
	"regexp"
	"strings"
	"unicode/utf16"
)

// ServerInfo says where a provider's IMAP server is.
type ServerInfo struct {
	Host string // "" when the provider publishes no fixed server
	Port int
	TLS  string // "implicit", "starttls" or "none" (the config package's values)
}

// ProviderKind tells a mail provider from server software.
type ProviderKind string

const (
	KindProvider ProviderKind = "provider" // a mail service people have accounts at
	KindSoftware ProviderKind = "software" // server software, recognised by its greeting
)

// UsernameForm is what a provider wants as the IMAP user name.
type UsernameForm string

const (
	UsernameAddress   UsernameForm = "address"    // the whole email address
	UsernameLocalPart UsernameForm = "local_part" // only the part before '@'
	UsernameAny       UsernameForm = "any"        // either, an account ID, or unknown
)

// AppPasswordPolicy says whether a provider wants app passwords from mail apps.
type AppPasswordPolicy string

const (
	AppPasswordsRequired AppPasswordPolicy = "required" // the account password is refused over IMAP
	AppPasswordsOptional AppPasswordPolicy = "optional" // needed once 2-step verification is on
	AppPasswordsNone     AppPasswordPolicy = "none"     // the provider has none (or none is known)
)

// HelpPages are a provider's own help pages, "" where none is known.
type HelpPages struct {
	AppPassword string // where to make an app password
	EnableIMAP  string // where to switch IMAP on
	OAuth       string // why passwords are refused and what to use instead
	WebLogin    string // unblocking a sign-in
	Password    string // changing or resetting the password
	General     string // general help for mail apps
}

// Provider is one entry of the built-in catalog (diagnose/providers.yaml):
// a mail provider or server software, with the facts Classify and Message
// use. Values returned by this package are copies; the slices and the map
// are shared and must not be modified.
type Provider struct {
	ID     string
	Name   string // display name, ASCII
	NameJA string // display name in Japanese, "" to use Name
	Kind   ProviderKind
	// Domains are the email domains the provider hosts; an entry starting
	// with '.' matches every subdomain.
	Domains []string
	IMAP    ServerInfo
	// SMTP is the provider's outgoing server, for set-up profiles (imapwhy
	// does not relay mail); Host "" when the catalog does not know it.
	SMTP             ServerInfo
	Username         UsernameForm
	AcceptsPasswords bool // false: only OAuth sign-in works over IMAP
	AppPasswords     AppPasswordPolicy
	Help             HelpPages
	// Unconfirmed names facts that come from help pages, third-party
	// pages or inference rather than from observed wire text, with a note.
	Unconfirmed map[string]string
	Sources     []string
}

//go:embed providers.yaml
var providersYAML []byte

// catalogData is the parsed catalog; it is built once at init.
var catalogData = mustLoadCatalog(providersYAML)

// LookupDomain returns the catalog's provider for an email domain
// ("gmail.com", "docomo.ne.jp"), case-insensitively. A server host given in
// the catalog as "{domain}" is filled in with the domain.
func LookupDomain(domain string) (Provider, bool) {
	d := normaliseHost(domain)
	e := catalogData.byDomain(d)
	if e == nil {
		return Provider{}, false
	}
	p := e.Provider
	p.IMAP.Host = strings.ReplaceAll(p.IMAP.Host, "{domain}", d)
	p.SMTP.Host = strings.ReplaceAll(p.SMTP.Host, "{domain}", d)
	return p, true
}

// providerByID returns the catalog entry with that ID, or nil.
func providerByID(id string) *entry {
	return catalogData.ids[id]
}

// catalog is the compiled provider catalog.
type catalog struct {
	entries  []*entry
	ids      map[string]*entry
	domains  map[string]*entry // exact email domains
	suffixes []suffixEntry     // email domain suffixes (".ocn.ne.jp"), longest first
	hosts    []suffixEntry     // server host names and suffixes, longest first
	shapes   []*entry          // entries with an app-password shape
}

type suffixEntry struct {
	suffix string
	e      *entry
}

// entry is a Provider plus its compiled matchers.
type entry struct {
	Provider
	greeting      []matcher
	greetingToken *regexp.Regexp // applied to the decoded "[base64]" token of the greeting
	capabilities  []*regexp.Regexp
	signatures    []matcher // on the server's failure texts: wording only this entry uses
	shape         *regexp.Regexp
	shapeConf     Confidence // how far a password not of this shape says "not an app password"
	texts         []textRule
	refusal       *verdict // what an unexplained refusal most likely means here
	sharesWith    string   // ID of the entry whose servers this one shares
	shared        *entry   // that entry, linked by index
	siblings      []*entry // entries sharing this one's servers
}

// textRule maps a provider's known failure text to a verdict.
type textRule struct {
	re *regexp.Regexp
	v  verdict
}

// matcher is a regexp with a literal prefilter: most greetings do not
// contain the literal, and strings.Contains is far cheaper than a match.
type matcher struct {
	literal string
	re      *regexp.Regexp
}

func newMatcher(re *regexp.Regexp) matcher {
	lit, _ := re.LiteralPrefix()
	return matcher{literal: lit, re: re}
}

func (m matcher) match(s string) bool {
	if m.literal != "" && !strings.Contains(s, m.literal) {
		return false
	}
	return m.re.MatchString(s)
}

// byDomain finds the provider for a normalised email domain.
func (c *catalog) byDomain(d string) *entry {
	if d == "" {
		return nil
	}
	if e := c.domains[d]; e != nil {
		return e
	}
	for _, s := range c.suffixes {
		if strings.HasSuffix(d, s.suffix) {
			return s.e
		}
	}
	return nil
}

// byHost finds the entry whose server host names match h.
func (c *catalog) byHost(h string) *entry {
	if h == "" {
		return nil
	}
	for _, s := range c.hosts {
		if h == s.suffix || (strings.HasSuffix(h, s.suffix) && h[len(h)-len(s.suffix)-1] == '.') {
			return s.e
		}
	}
	return nil
}

// hasDomain reports whether the entry hosts the email domain d.
func (e *entry) hasDomain(d string) bool {
	for _, x := range e.Domains {
		if x == d || (strings.HasPrefix(x, ".") && strings.HasSuffix(d, x)) {
			return true
		}
	}
	return false
}

// matchesServer reports whether the greeting or capabilities identify e.
func (e *entry) matchesServer(greeting string, caps []string) bool {
	if e.greetingToken != nil {
		if tok, ok := greetingToken(greeting); ok && e.greetingToken.MatchString(tok) {
			return true
		}
	}
	if greeting != "" {
		for _, m := range e.greeting {
			if m.match(greeting) {
				return true
			}
		}
	}
	for _, re := range e.capabilities {
		for _, c := range caps {
			if re.MatchString(c) {
				return true
			}
		}
	}
	return false
}

// greetingToken decodes the bracketed base64 token Exchange Online puts at
// the end of its greeting: UTF-16LE text naming the backend server
// ("LO4P123CA0233.GBRP123.PROD.OUTLOOK.COM").
func greetingToken(greeting string) (string, bool) {
	g := strings.TrimSpace(greeting)
	if !strings.HasSuffix(g, "]") {
		return "", false
	}
	i := strings.LastIndexByte(g, '[')
	if i < 0 || len(g)-i > 200 {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(g[i+1 : len(g)-1])
	if err != nil || len(raw) == 0 || len(raw)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(raw)/2)
	for j := range u {
		u[j] = uint16(raw[2*j]) | uint16(raw[2*j+1])<<8
	}
	return string(utf16.Decode(u)), true
}

// recognition is what the catalog says about the server of an observation.
type recognition struct {
	provider *entry // the mail provider, nil if unknown
	software *entry // the server software, nil if unknown
	byUser   bool   // provider guessed from the user's email domain only
	byText   bool   // recognised only from the wording of a failure text
}

// best is the entry to name in a Diagnosis: the provider, else the software.
func (r recognition) best() *entry {
	if r.provider != nil {
		return r.provider
	}
	return r.software
}

// recognise identifies provider and software from the host names, the
// greeting, the capabilities and, when nothing is known about the server,
// the user's email domain.
func (c *catalog) recognise(o *Observation) recognition {
	var r recognition
	for _, h := range []string{o.ServerName, o.Host} {
		if e := c.byHost(normaliseHost(h)); e != nil {
			r.assign(e)
			break
		}
	}
	for _, e := range c.entries {
		if (e.Kind == KindProvider && r.provider != nil) || (e.Kind == KindSoftware && r.software != nil) {
			continue
		}
		if e.matchesServer(o.Greeting, o.Capabilities) {
			r.assign(e)
		}
	}
	domain := userDomain(o.Typed.Username)
	if r.provider == nil && r.software == nil && o.Host == "" && o.ServerName == "" {
		r.provider = c.byDomain(domain)
		r.byUser = r.provider != nil
	}
	if r.provider == nil && r.software == nil {
		c.recogniseText(o, &r)
	}
	if r.provider != nil {
		r.provider = r.provider.sibling(domain)
	}
	return r
}

// recogniseText identifies the server from its failure texts alone: a
// wording only one provider or server program uses (a signature), else,
// when no server host is known, a server host named in the text (what a
// mail app shows: "The user name or password for imap.gmail.com is
// incorrect."). Either is weaker than the host or the greeting.
func (c *catalog) recogniseText(o *Observation, r *recognition) {
	texts := observedTexts(o)
	for _, e := range c.entries {
		if o.Greeting != "" && (len(e.greeting) > 0 || e.greetingToken != nil) {
			// A greeting that is not this entry's speaks against it.
			continue
		}
		for _, m := range e.signatures {
			for _, t := range texts {
				if m.match(t) {
					r.assign(e)
					r.byText = true
					return
				}
			}
		}
	}
	if o.Host != "" || o.ServerName != "" {
		return
	}
	for _, t := range texts {
		for _, h := range hostInTextRE.FindAllString(t, 8) {
			if e := c.byHost(normaliseHost(h)); e != nil {
				r.assign(e)
				r.byText = true
				return
			}
		}
	}
}

// hostInTextRE finds host names in a text.
var hostInTextRE = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b`)

// observedTexts are the server texts of an observation: the reply's and
// the untagged lines'.
func observedTexts(o *Observation) []string {
	var ts []string
	if o.Reply != nil && o.Reply.Text != "" {
		ts = append(ts, o.Reply.Text)
	}
	for _, u := range o.Untagged {
		if u.Text != "" {
			ts = append(ts, u.Text)
		}
	}
	if strings.HasPrefix(o.Greeting, "* BYE") || strings.HasPrefix(o.Greeting, "* NO") {
		ts = append(ts, o.Greeting)
	}
	return ts
}

func (r *recognition) assign(e *entry) {
	if e.Kind == KindProvider {
		r.provider = e
	} else {
		r.software = e
	}
}

// sibling picks, among entries that share e's servers, the one the user's
// email domain belongs to: Outlook.com rather than Microsoft 365 for
// hotmail.com, Google Workspace rather than Gmail for a company domain.
func (e *entry) sibling(domain string) *entry {
	if domain == "" || len(e.siblings) == 0 {
		return e
	}
	for _, s := range e.siblings {
		if s.hasDomain(domain) {
			return s
		}
	}
	if len(e.Domains) > 0 && !e.hasDomain(domain) {
		for _, s := range e.siblings {
			if len(s.Domains) == 0 {
				return s
			}
		}
	}
	return e
}

// primary is the entry whose servers e shares, or e itself.
func (e *entry) primary() *entry {
	if e.shared != nil {
		return e.shared
	}
	return e
}

// normaliseHost lower-cases a host or domain and drops a trailing dot.
func normaliseHost(h string) string {
	h = strings.TrimSpace(h)
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}

// userDomain is the normalised domain of an email address, "" if none.
func userDomain(user string) string {
	user = strings.TrimSpace(user)
	at := strings.LastIndexByte(user, '@')
	if at < 0 || at == len(user)-1 {
		return ""
	}
	return normaliseHost(user[at+1:])
}

func lowerAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = normaliseHost(x)
	}
	return out
}

func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
